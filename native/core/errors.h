// Exceptions thrown by the core. Each one carries the `code` that the TypeScript layer maps to a typed error class
// (src/errors.ts), so the N-API layer needs one catch clause for all of them and a new kind cannot be left unmapped.
#pragma once

#include <cmath>
#include <stdexcept>
#include <string>

namespace tf {

// Which JS error constructor an exception becomes.
enum class ErrorKind { Error, Type, Range };

// The part every core exception shares, beside its standard base class (which gives what()).
class CodedError {
 public:
  virtual ~CodedError() = default;
  virtual const char* code() const noexcept = 0;
  virtual ErrorKind kind() const noexcept { return ErrorKind::Error; }
  virtual const char* message() const noexcept = 0;
};

namespace detail {
template <class Base, ErrorKind Kind>
class Coded : public Base, public CodedError {
 public:
  explicit Coded(const std::string& what) : Base(what) {}
  explicit Coded(const char* what) : Base(what) {}
  ErrorKind kind() const noexcept override { return Kind; }
  const char* message() const noexcept override { return Base::what(); }
};
}  // namespace detail

#define TF_CODED_ERROR(Name, Base, Kind, Code)                  \
  class Name : public detail::Coded<Base, Kind> {               \
   public:                                                      \
    using detail::Coded<Base, Kind>::Coded;                     \
    const char* code() const noexcept override { return Code; } \
  }

// An argument has the wrong type or shape (becomes a JS TypeError).
TF_CODED_ERROR(TypeError, std::invalid_argument, ErrorKind::Type, "ERR_INVALID_ARG_TYPE");

// An argument is out of its allowed range (becomes a JS RangeError).
TF_CODED_ERROR(RangeError, std::out_of_range, ErrorKind::Range, "ERR_OUT_OF_RANGE");

// A model file could not be read or is not a usable model (becomes ModelLoadError).
TF_CODED_ERROR(ModelLoadError, std::runtime_error, ErrorKind::Error, "ERR_MODEL_LOAD");

// A file could not be written (becomes SaveError).
TF_CODED_ERROR(SaveError, std::runtime_error, ErrorKind::Error, "ERR_SAVE");

// A device was asked for that this build or machine does not have (becomes BackendUnavailableError).
TF_CODED_ERROR(DeviceUnavailableError, std::runtime_error, ErrorKind::Error, "ERR_BACKEND_UNAVAILABLE");

// The model ran but failed (wrong input shape for the network, non-finite loss, ...) (becomes InferenceError).
TF_CODED_ERROR(RuntimeFailure, std::runtime_error, ErrorKind::Error, "ERR_INFERENCE");

// Image bytes are corrupt, truncated, over the pixel limit or not the format claimed (becomes InvalidImageError).
TF_CODED_ERROR(InvalidImage, std::runtime_error, ErrorKind::Error, "ERR_INVALID_IMAGE");

// A valid JPEG the native fast path does not handle (CMYK, a non-sRGB ICC profile, ...): the caller decodes it with
// its general decoder instead.
TF_CODED_ERROR(UnsupportedJpeg, std::runtime_error, ErrorKind::Error, "ERR_UNSUPPORTED_JPEG");

// A data-parallel collective or rendezvous failed: a peer died, hung past the timeout or never joined, or the ranks
// disagree (becomes DistributedError).
TF_CODED_ERROR(DistributedError, std::runtime_error, ErrorKind::Error, "ERR_DISTRIBUTED");

#undef TF_CODED_ERROR

// RangeError naming the option unless v is finite and within [lo, hi].
inline void requireFinite(double v, const std::string& name, double lo, double hi) {
  if (!std::isfinite(v) || v < lo || v > hi) {
    throw RangeError(name + " must be a finite number between " + std::to_string(lo) + " and " + std::to_string(hi) +
                     ", received " + std::to_string(v));
  }
}

}  // namespace tf
