// Process-wide runtime facts and settings of the libtorch side: versions, devices, thread count.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace tf {

struct RuntimeInfo {
  std::string torchVersion;
  bool cudaCompiled = false;   // libtorch found at build time had CUDA
  bool cudaAvailable = false;  // a CUDA device is usable now
  int cudaDeviceCount = 0;
  bool tensorrtCompiled = false;
  std::string tensorrtVersion;  // empty when not compiled in
  int threads = 0;              // intra-op threads used by native calls
  bool jitOptimize = true;      // TorchScript graph optimizer on
  std::string parallelInfo;     // at::get_parallel_info(): OpenMP / MKL / BLAS threading
};

RuntimeInfo runtimeInfo();

// Sets the intra-op thread count for every later native call (applied per worker thread, as OpenMP thread
// counts are per-thread). Throws RangeError when n < 1 or n > 1024.
void setThreads(int n);
int threads();

// Turns libtorch's TorchScript graph optimizer (profiling, fusion, autodiff subgraphs) on or off for every later
// native call. Applied per worker thread, as libtorch keeps the switch per thread.
void setJitOptimize(bool enabled);
bool jitOptimize();

// Applies the configured thread count and graph-optimizer switch on the calling thread. Every native job calls it
// first.
void applyThreadSettings();

// Seeds libtorch's CPU (and CUDA) random generators.
void manualSeed(uint64_t seed);

// Parses "cpu", "cuda" or "cuda:N"; throws RangeError for anything else and DeviceUnavailableError when CUDA
// is asked for but not available.
std::string normalizeDevice(const std::string& device);

}  // namespace tf
