// RAII over the CUDA runtime objects the TensorRT code uses (streams, device and pinned buffers, graphs) and the
// device facts reported to JS. Every failing CUDA call throws: RuntimeFailure, or DeviceUnavailableError when
// there is no usable device.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <string>
#include <vector>

namespace tf::trt {

// Throws RuntimeFailure "<what>: <CUDA error name>: <message>" unless status is cudaSuccess.
void checkCuda(cudaError_t status, const char* what);

struct GpuInfo {
  int index = 0;
  std::string name;
  int computeMajor = 0;
  int computeMinor = 0;
  size_t totalMemory = 0;
  int multiprocessors = 0;
};

// Every visible CUDA device; empty (never throws) when there is none or no driver. `error` gets the reason.
std::vector<GpuInfo> listGpus(std::string* error = nullptr);

// Parses "cuda" / "cuda:N" (also "auto": device 0) into a device index that exists. Throws RangeError for other
// strings and DeviceUnavailableError when no CUDA device is visible or N does not exist.
int cudaDeviceIndex(const std::string& device);

GpuInfo gpuInfo(int index);

// Versions of the CUDA runtime linked in and of the driver (e.g. "13.0"); "" when unknown.
std::string cudaRuntimeVersion();
std::string cudaDriverVersion();

// Makes `index` the current device of the calling thread for the guard's lifetime.
class DeviceGuard {
 public:
  explicit DeviceGuard(int index);
  ~DeviceGuard();
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int previous_ = -1;
};

class CudaStream {
 public:
  CudaStream();  // non-blocking stream on the current device
  ~CudaStream();
  CudaStream(const CudaStream&) = delete;
  CudaStream& operator=(const CudaStream&) = delete;
  cudaStream_t get() const { return stream_; }
  void synchronize(const char* what) const;

 private:
  cudaStream_t stream_ = nullptr;
};

// Device memory on the current device.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(size_t bytes);
  ~DeviceBuffer();
  DeviceBuffer(DeviceBuffer&& o) noexcept;
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  void* get() const { return ptr_; }
  size_t size() const { return bytes_; }

 private:
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
};

// Page-locked host memory: asynchronous copies from and to it, and copies a CUDA graph can capture.
class PinnedBuffer {
 public:
  PinnedBuffer() = default;
  explicit PinnedBuffer(size_t bytes);
  ~PinnedBuffer();
  PinnedBuffer(PinnedBuffer&& o) noexcept;
  PinnedBuffer& operator=(PinnedBuffer&& o) noexcept;
  PinnedBuffer(const PinnedBuffer&) = delete;
  PinnedBuffer& operator=(const PinnedBuffer&) = delete;
  void* get() const { return ptr_; }
  size_t size() const { return bytes_; }

 private:
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
};

// A captured, instantiated CUDA graph.
class CudaGraph {
 public:
  CudaGraph() = default;
  ~CudaGraph();
  CudaGraph(const CudaGraph&) = delete;
  CudaGraph& operator=(const CudaGraph&) = delete;

  // Starts capturing the work queued on `stream` by this thread.
  void beginCapture(cudaStream_t stream);
  // Ends the capture and instantiates the graph. Returns false (and leaves the graph empty) when the captured work
  // cannot be replayed (an operation that is not capturable); the stream is usable again either way.
  bool endCapture(cudaStream_t stream);
  void launch(cudaStream_t stream) const;
  bool ready() const { return exec_ != nullptr; }

 private:
  cudaGraph_t graph_ = nullptr;
  cudaGraphExec_t exec_ = nullptr;
};

}  // namespace tf::trt
