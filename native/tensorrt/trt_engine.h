// A deserialized TensorRT plan ready to run classifier batches. Each concurrent run takes an execution slot: its
// own IExecutionContext, CUDA stream, device buffers sized for the profile's largest batch, page-locked staging
// buffers and, optionally, one CUDA graph per batch size. Slots are created on demand up to `maxContexts` and
// reused; runs beyond that wait for a free slot.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "rules.h"

namespace nvinfer1 {
class IRuntime;
class ICudaEngine;
}  // namespace nvinfer1

namespace tf::trt {

class ErrorRecorder;
struct Slot;

struct EngineOptions {
  bool cudaGraph = false;  // replay each batch size's copies + enqueueV3 as a CUDA graph
  int maxContexts = 2;     // execution contexts (and streams) that may run at once
};

struct EngineInfo {
  std::string path;
  int device = 0;
  std::string gpuName;
  int computeMajor = 0;
  int computeMinor = 0;
  std::string tensorrtVersion;
  std::string inputName;
  std::vector<int64_t> inputDims;  // as built (-1: dynamic)
  int64_t minBatch = 1;
  int64_t optBatch = 1;
  int64_t maxBatch = 1;
  int64_t imageSize = 0;
  std::string logitsName;
  std::string embeddingName;  // == logitsName when the plan has one output
  int64_t numClasses = 0;
  int64_t embeddingSize = 0;
  int64_t deviceMemoryBytes = 0;  // activation memory of one execution context
  uint64_t planBytes = 0;
  bool cudaGraph = false;
  int maxContexts = 0;
  std::vector<std::string> warnings;  // TensorRT's warnings while loading
};

struct InferResult {
  std::vector<float> logits;     // [N, numClasses]
  std::vector<float> embedding;  // [N, embeddingSize]
  int64_t batchSize = 0;
  int64_t numClasses = 0;
  int64_t embeddingSize = 0;
};

class TrtEngine {
 public:
  // Reads and deserializes the plan on `device`. Throws ModelLoadError (missing file, a plan from another TensorRT
  // version or GPU, wrong I/O), DeviceUnavailableError, RangeError.
  static std::shared_ptr<TrtEngine> load(const std::string& path, int device, const EngineOptions& options);
  ~TrtEngine();
  TrtEngine(const TrtEngine&) = delete;
  TrtEngine& operator=(const TrtEngine&) = delete;

  // Runs one float32 NCHW batch (blocking; call it off the event loop). Thread-safe. Throws TypeError (wrong shape),
  // RangeError (batch outside the profile), RuntimeFailure (TensorRT or CUDA failed).
  InferResult infer(const float* data, const std::vector<int64_t>& shape);

  const EngineInfo& info() const { return info_; }
  // Execution contexts that gave up on CUDA graphs because capturing the plan failed.
  int graphFallbacks() const { return graphFallbacks_.load(); }

 private:
  TrtEngine() = default;
  std::unique_ptr<Slot> makeSlot();
  std::unique_ptr<Slot> acquire();
  void release(std::unique_ptr<Slot> slot);
  void run(Slot& slot, const float* data, int64_t batch, InferResult& out);

  EngineInfo info_;
  std::unique_ptr<ErrorRecorder> recorder_;
  std::unique_ptr<nvinfer1::IRuntime> runtime_;
  std::unique_ptr<nvinfer1::ICudaEngine> engine_;
  std::mutex mutex_;
  std::condition_variable freed_;
  std::vector<std::unique_ptr<Slot>> idle_;
  int created_ = 0;
  std::atomic<int> graphFallbacks_{0};
};

}  // namespace tf::trt
