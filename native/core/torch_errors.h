// Turning libtorch and standard exceptions into the core's own (errors.h), with libtorch's messages shortened.
#pragma once

#include <c10/util/Exception.h>

#include <exception>
#include <string>

#include "errors.h"

namespace tf {

// The useful part of a libtorch error: no C++ backtrace, and for TorchScript interpreter errors only the final
// "XxxError: ..." line instead of the serialized-code traceback.
std::string shortMessage(const c10::Error& e);
std::string shortMessage(const std::string& message);

// Inside a catch block: rethrows the project's own exceptions (every CodedError) unchanged and any libtorch or
// standard exception as E(context + ": " + its short message).
template <class E>
[[noreturn]] void rethrowAs(const std::string& context) {
  try {
    throw;
  } catch (const CodedError&) {
    throw;
  } catch (const c10::Error& e) {
    throw E(context + ": " + shortMessage(e));
  } catch (const std::exception& e) {
    throw E(context + ": " + shortMessage(std::string(e.what())));
  }
}

}  // namespace tf
