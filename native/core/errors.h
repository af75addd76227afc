// Exceptions thrown by the core. The N-API layer maps each kind to a JS error class and code.
#pragma once

#include <stdexcept>
#include <string>

namespace tf {

// An argument has the wrong type or shape (becomes a JS TypeError).
class TypeError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

// An argument is out of its allowed range (becomes a JS RangeError).
class RangeError : public std::out_of_range {
 public:
  using std::out_of_range::out_of_range;
};

// A model file could not be read or is not a usable model (becomes ModelLoadError).
class ModelLoadError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A file could not be written (becomes SaveError).
class SaveError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A device was asked for that this build or machine does not have (becomes BackendUnavailableError).
class DeviceUnavailableError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The model ran but failed (wrong input shape for the network, non-finite loss, ...) (becomes InferenceError).
class RuntimeFailure : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Image bytes are corrupt, truncated, over the pixel limit or not the format claimed (becomes InvalidImageError).
class InvalidImage : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A valid JPEG the native fast path does not handle (CMYK, a non-sRGB ICC profile, ...): the caller decodes it with
// its general decoder instead (code ERR_UNSUPPORTED_JPEG).
class UnsupportedJpeg : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace tf
