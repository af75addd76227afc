// Every core exception carries its code and JS error kind, and rethrowAs keeps every one of them unchanged while
// turning libtorch and standard exceptions into the requested type with a short message.
#include <c10/util/Exception.h>

#include <functional>
#include <string>

#include "../errors.h"
#include "../torch_errors.h"
#include "check.h"

namespace {

template <class E>
void codeAndKind(const char* code, tf::ErrorKind kind) {
  try {
    throw E("what happened");
  } catch (const tf::CodedError& e) {
    CHECK_MSG(std::string(e.code()) == code, code);
    CHECK_MSG(e.kind() == kind, code);
    CHECK_MSG(std::string(e.message()) == "what happened", code);
  } catch (...) {
    CHECK_MSG(false, std::string(code) + " is not a CodedError");
  }
}

// rethrowAs<RuntimeFailure> inside a catch block, as the core uses it.
void rethrown(const std::function<void()>& thrower, const std::function<void()>& onRethrow) {
  try {
    try {
      thrower();
    } catch (...) {
      tf::rethrowAs<tf::RuntimeFailure>("forward failed");
    }
  } catch (...) {
    onRethrow();
  }
}

template <class E>
void keptByRethrowAs(const char* code) {
  bool kept = false;
  rethrown([] { throw E("as thrown"); },
           [&] {
             try {
               throw;
             } catch (const E& e) {
               kept = std::string(e.what()) == "as thrown" && std::string(e.code()) == code;
             } catch (...) {
             }
           });
  CHECK_MSG(kept, code);
}

void converted() {
  std::string message, code;
  rethrown([] { TORCH_CHECK(false, "Expected 4-dimensional input"); },
           [&] {
             try {
               throw;
             } catch (const tf::RuntimeFailure& e) {
               message = e.what();
               code = e.code();
             } catch (...) {
             }
           });
  CHECK_MSG(message == "forward failed: Expected 4-dimensional input", message);
  CHECK(code == "ERR_INFERENCE");
  message.clear();
  rethrown([] { throw std::runtime_error("disk full"); },
           [&] {
             try {
               throw;
             } catch (const tf::RuntimeFailure& e) {
               message = e.what();
             } catch (...) {
             }
           });
  CHECK_MSG(message == "forward failed: disk full", message);
}

void shortMessages() {
  CHECK(tf::shortMessage(std::string("bad shape\nException raised from foo at bar.cpp:1")) == "bad shape");
  CHECK(tf::shortMessage(std::string("x\nTraceback of TorchScript, serialized code:\n  ...\nRuntimeError: boom")) ==
        "boom");
}

}  // namespace

int main() {
  using tf::ErrorKind;
  codeAndKind<tf::TypeError>("ERR_INVALID_ARG_TYPE", ErrorKind::Type);
  codeAndKind<tf::RangeError>("ERR_OUT_OF_RANGE", ErrorKind::Range);
  codeAndKind<tf::ModelLoadError>("ERR_MODEL_LOAD", ErrorKind::Error);
  codeAndKind<tf::SaveError>("ERR_SAVE", ErrorKind::Error);
  codeAndKind<tf::DeviceUnavailableError>("ERR_BACKEND_UNAVAILABLE", ErrorKind::Error);
  codeAndKind<tf::RuntimeFailure>("ERR_INFERENCE", ErrorKind::Error);
  codeAndKind<tf::InvalidImage>("ERR_INVALID_IMAGE", ErrorKind::Error);
  codeAndKind<tf::UnsupportedJpeg>("ERR_UNSUPPORTED_JPEG", ErrorKind::Error);

  keptByRethrowAs<tf::TypeError>("ERR_INVALID_ARG_TYPE");
  keptByRethrowAs<tf::RangeError>("ERR_OUT_OF_RANGE");
  keptByRethrowAs<tf::ModelLoadError>("ERR_MODEL_LOAD");
  keptByRethrowAs<tf::SaveError>("ERR_SAVE");
  keptByRethrowAs<tf::DeviceUnavailableError>("ERR_BACKEND_UNAVAILABLE");
  keptByRethrowAs<tf::RuntimeFailure>("ERR_INFERENCE");
  keptByRethrowAs<tf::InvalidImage>("ERR_INVALID_IMAGE");
  keptByRethrowAs<tf::UnsupportedJpeg>("ERR_UNSUPPORTED_JPEG");

  converted();
  shortMessages();
  return tftest::finish("errors_test");
}
