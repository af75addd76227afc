#include "cuda_util.h"

#include <regex>
#include <utility>

#include "../core/errors.h"

namespace tf::trt {

void checkCuda(cudaError_t status, const char* what) {
  if (status == cudaSuccess) return;
  // Clear the sticky "last error" of non-fatal failures so later calls do not report it again.
  cudaGetLastError();
  throw RuntimeFailure(std::string(what) + ": " + cudaGetErrorName(status) + ": " + cudaGetErrorString(status));
}

std::vector<GpuInfo> listGpus(std::string* error) {
  std::vector<GpuInfo> out;
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess) {
    cudaGetLastError();
    if (error) *error = std::string(cudaGetErrorName(status)) + ": " + cudaGetErrorString(status);
    return out;
  }
  for (int i = 0; i < count; ++i) {
    try {
      out.push_back(gpuInfo(i));
    } catch (const std::exception& e) {
      if (error) *error = e.what();
    }
  }
  return out;
}

GpuInfo gpuInfo(int index) {
  cudaDeviceProp prop{};
  checkCuda(cudaGetDeviceProperties(&prop, index), "cudaGetDeviceProperties");
  GpuInfo g;
  g.index = index;
  g.name = prop.name;
  g.computeMajor = prop.major;
  g.computeMinor = prop.minor;
  g.totalMemory = prop.totalGlobalMem;
  g.multiprocessors = prop.multiProcessorCount;
  return g;
}

int cudaDeviceIndex(const std::string& device) {
  static const std::regex pattern("^(auto|cuda)(:([0-9]+))?$");
  std::smatch m;
  if (!std::regex_match(device, m, pattern) || (m[1] == "auto" && m[2].matched)) {
    throw RangeError("TensorRT runs on a CUDA device: expected 'cuda', 'cuda:N' or 'auto' for `device`, received '" +
                     device + "'");
  }
  std::string why;
  const auto gpus = listGpus(&why);
  if (gpus.empty()) {
    throw DeviceUnavailableError("TensorRT needs a CUDA GPU and none is visible" +
                                 (why.empty() ? "" : " (" + why + ")"));
  }
  const int index = m[3].matched ? std::stoi(m[3]) : 0;
  if (index >= static_cast<int>(gpus.size())) {
    throw RangeError("device '" + device + "' does not exist: " + std::to_string(gpus.size()) +
                     " CUDA device(s) found");
  }
  return index;
}

namespace {
std::string formatCudaVersion(int v) {
  return v <= 0 ? "" : std::to_string(v / 1000) + "." + std::to_string((v % 1000) / 10);
}
}  // namespace

std::string cudaRuntimeVersion() {
  int v = 0;
  if (cudaRuntimeGetVersion(&v) != cudaSuccess) {
    cudaGetLastError();
    return "";
  }
  return formatCudaVersion(v);
}

std::string cudaDriverVersion() {
  int v = 0;
  if (cudaDriverGetVersion(&v) != cudaSuccess) {
    cudaGetLastError();
    return "";
  }
  return formatCudaVersion(v);
}

DeviceGuard::DeviceGuard(int index) {
  checkCuda(cudaGetDevice(&previous_), "cudaGetDevice");
  if (previous_ != index) checkCuda(cudaSetDevice(index), "cudaSetDevice");
}

DeviceGuard::~DeviceGuard() {
  int current = -1;
  if (previous_ >= 0 && cudaGetDevice(&current) == cudaSuccess && current != previous_) cudaSetDevice(previous_);
}

CudaStream::CudaStream() { checkCuda(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreate"); }

CudaStream::~CudaStream() {
  if (stream_) cudaStreamDestroy(stream_);
}

void CudaStream::synchronize(const char* what) const { checkCuda(cudaStreamSynchronize(stream_), what); }

DeviceBuffer::DeviceBuffer(size_t bytes) : bytes_(bytes) {
  if (bytes > 0) checkCuda(cudaMalloc(&ptr_, bytes), "cudaMalloc");
}

DeviceBuffer::~DeviceBuffer() {
  if (ptr_) cudaFree(ptr_);
}

DeviceBuffer::DeviceBuffer(DeviceBuffer&& o) noexcept
    : ptr_(std::exchange(o.ptr_, nullptr)), bytes_(std::exchange(o.bytes_, 0)) {}

DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&& o) noexcept {
  if (this != &o) {
    if (ptr_) cudaFree(ptr_);
    ptr_ = std::exchange(o.ptr_, nullptr);
    bytes_ = std::exchange(o.bytes_, 0);
  }
  return *this;
}

PinnedBuffer::PinnedBuffer(size_t bytes) : bytes_(bytes) {
  if (bytes > 0) checkCuda(cudaHostAlloc(&ptr_, bytes, cudaHostAllocDefault), "cudaHostAlloc");
}

PinnedBuffer::~PinnedBuffer() {
  if (ptr_) cudaFreeHost(ptr_);
}

PinnedBuffer::PinnedBuffer(PinnedBuffer&& o) noexcept
    : ptr_(std::exchange(o.ptr_, nullptr)), bytes_(std::exchange(o.bytes_, 0)) {}

PinnedBuffer& PinnedBuffer::operator=(PinnedBuffer&& o) noexcept {
  if (this != &o) {
    if (ptr_) cudaFreeHost(ptr_);
    ptr_ = std::exchange(o.ptr_, nullptr);
    bytes_ = std::exchange(o.bytes_, 0);
  }
  return *this;
}

CudaGraph::~CudaGraph() {
  if (exec_) cudaGraphExecDestroy(exec_);
  if (graph_) cudaGraphDestroy(graph_);
}

void CudaGraph::beginCapture(cudaStream_t stream) {
  // Thread-local mode: other threads' CUDA calls (other execution contexts) do not invalidate this capture.
  checkCuda(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal), "cudaStreamBeginCapture");
}

bool CudaGraph::endCapture(cudaStream_t stream) {
  cudaGraph_t graph = nullptr;
  const cudaError_t status = cudaStreamEndCapture(stream, &graph);
  if (status != cudaSuccess || graph == nullptr) {
    cudaGetLastError();
    if (graph) cudaGraphDestroy(graph);
    return false;
  }
  cudaGraphExec_t exec = nullptr;
#if CUDART_VERSION >= 12000
  const cudaError_t made = cudaGraphInstantiate(&exec, graph, 0);
#else
  const cudaError_t made = cudaGraphInstantiate(&exec, graph, nullptr, nullptr, 0);
#endif
  if (made != cudaSuccess) {
    cudaGetLastError();
    cudaGraphDestroy(graph);
    return false;
  }
  graph_ = graph;
  exec_ = exec;
  return true;
}

void CudaGraph::launch(cudaStream_t stream) const { checkCuda(cudaGraphLaunch(exec_, stream), "cudaGraphLaunch"); }

}  // namespace tf::trt
