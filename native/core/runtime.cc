#include "runtime.h"

#include <ATen/Parallel.h>
#include <torch/csrc/jit/python/update_graph_executor_opt.h>
#include <torch/cuda.h>
#include <torch/utils.h>
#include <torch/version.h>

#include <atomic>
#include <regex>
#include <thread>

#include "errors.h"

#ifdef TF_WITH_TENSORRT
#include <NvInferVersion.h>
#endif

namespace tf {

namespace {
// Default: every core, capped at 4 (more threads rarely help a batch-16 CNN and oversubscribe shared machines).
int defaultThreads() {
  const unsigned hw = std::thread::hardware_concurrency();
  return static_cast<int>(hw == 0 ? 1 : (hw > 4 ? 4 : hw));
}
std::atomic<int> gThreads{defaultThreads()};
std::atomic<bool> gJitOptimize{true};
}  // namespace

RuntimeInfo runtimeInfo() {
  RuntimeInfo info;
  info.torchVersion = TORCH_VERSION;
#ifdef TF_WITH_CUDA
  info.cudaCompiled = true;
#endif
  info.cudaAvailable = torch::cuda::is_available();
  info.cudaDeviceCount = info.cudaAvailable ? static_cast<int>(torch::cuda::device_count()) : 0;
#ifdef TF_WITH_TENSORRT
  info.tensorrtCompiled = true;
  info.tensorrtVersion = std::to_string(NV_TENSORRT_MAJOR) + "." + std::to_string(NV_TENSORRT_MINOR) + "." +
                         std::to_string(NV_TENSORRT_PATCH);
#endif
  info.threads = gThreads.load();
  info.jitOptimize = gJitOptimize.load();
  applyThreadSettings();
  info.parallelInfo = at::get_parallel_info();
  return info;
}

void setThreads(int n) {
  if (n < 1 || n > 1024) {
    throw RangeError("threads must be an integer between 1 and 1024, received " + std::to_string(n));
  }
  gThreads.store(n);
}

int threads() { return gThreads.load(); }

void setJitOptimize(bool enabled) { gJitOptimize.store(enabled); }
bool jitOptimize() { return gJitOptimize.load(); }

void applyThreadSettings() {
  const int n = gThreads.load();
  if (at::get_num_threads() != n) at::set_num_threads(n);
  const bool optimize = gJitOptimize.load();
  if (torch::jit::getGraphExecutorOptimize() != optimize) torch::jit::setGraphExecutorOptimize(optimize);
}

void manualSeed(uint64_t seed) { torch::manual_seed(seed); }

std::string normalizeDevice(const std::string& device) {
  static const std::regex pattern("^(cpu|cuda)(:([0-9]+))?$");
  std::smatch m;
  if (!std::regex_match(device, m, pattern) || (m[1] == "cpu" && m[2].matched)) {
    throw RangeError("device must be 'cpu', 'cuda' or 'cuda:N', received '" + device + "'");
  }
  if (m[1] == "cuda") {
    if (!torch::cuda::is_available()) {
#ifdef TF_WITH_CUDA
      throw DeviceUnavailableError("device '" + device + "' requested but no CUDA device is available");
#else
      throw DeviceUnavailableError("device '" + device +
                                   "' requested but this addon was built against a CPU-only libtorch (" +
                                   TORCH_VERSION + "); rebuild with a CUDA libtorch (Torch_DIR) to use CUDA");
#endif
    }
    const int index = m[3].matched ? std::stoi(m[3]) : 0;
    if (index >= static_cast<int>(torch::cuda::device_count())) {
      throw RangeError("device '" + device + "' does not exist: " + std::to_string(torch::cuda::device_count()) +
                       " CUDA device(s) found");
    }
    return "cuda:" + std::to_string(index);
  }
  return "cpu";
}

}  // namespace tf
