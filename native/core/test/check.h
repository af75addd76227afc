// A minimal check harness for the plain C++ tests (no test framework to install): CHECK records a failure and
// goes on; finish() prints the count and gives the exit status for ctest.
#pragma once

#include <cstdio>
#include <string>

namespace tftest {

inline int& failures() {
  static int n = 0;
  return n;
}
inline int& checks() {
  static int n = 0;
  return n;
}

inline void check(bool ok, const std::string& what, const char* file, int line) {
  ++checks();
  if (ok) return;
  ++failures();
  std::fprintf(stderr, "%s:%d: FAILED: %s\n", file, line, what.c_str());
}

inline int finish(const char* name) {
  std::printf("%s: %d/%d checks passed\n", name, checks() - failures(), checks());
  return failures() == 0 ? 0 : 1;
}

}  // namespace tftest

#define CHECK(cond) ::tftest::check((cond), #cond, __FILE__, __LINE__)
#define CHECK_MSG(cond, msg) ::tftest::check((cond), std::string(#cond) + ": " + (msg), __FILE__, __LINE__)
