// Free functions: runtimeInfo() and setThreads(n), both sync.
#pragma once

#include <napi.h>

namespace tfn {

void InitRuntime(Napi::Env env, Napi::Object exports);

}  // namespace tfn
