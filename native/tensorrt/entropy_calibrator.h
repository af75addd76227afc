// The legacy implicit-quantization path of TensorRT 10: an IInt8EntropyCalibrator2 fed with batches our own
// preprocessing wrote (raw float32 NCHW, `batchSize` images per batch, back to back in one file). It reads the
// calibration cache when one exists and writes the one TensorRT computes. TensorRT 10.1 deprecated this API and
// TensorRT 11 removed it: it is compiled only against TensorRT 10 headers.
#pragma once

#include <NvInfer.h>
#include <NvInferVersion.h>

#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

#include "cuda_util.h"

#if NV_TENSORRT_MAJOR < 11

namespace tf::trt {

struct CalibrationSource {
  std::string dataFile;   // raw float32 batches
  int64_t batchSize = 0;  // images per batch
  int64_t batches = 0;    // batches in the file
  std::string inputName;
  std::vector<int64_t> imageDims;  // [3, H, W]
  std::string cachePath;           // read when present (and readCache), written after calibration
  bool readCache = true;
};

// The class is deprecated in TensorRT 10.1+: silence that for its declaration and use only.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
class EntropyCalibrator : public nvinfer1::IInt8EntropyCalibrator2 {
 public:
  // Throws ModelLoadError when the data file is missing or shorter than batches x batchSize images.
  explicit EntropyCalibrator(CalibrationSource source);

  int32_t getBatchSize() const noexcept override;
  bool getBatch(void* bindings[], char const* names[], int32_t nbBindings) noexcept override;
  void const* readCalibrationCache(std::size_t& length) noexcept override;
  void writeCalibrationCache(void const* ptr, std::size_t length) noexcept override;

  int64_t batchesServed() const { return next_; }
  bool cacheRead() const { return cacheRead_; }
  bool cacheWritten() const { return cacheWritten_; }
  // The first I/O or CUDA error met inside a callback (callbacks cannot throw into TensorRT).
  const std::string& failure() const { return failure_; }

 private:
  CalibrationSource src_;
  size_t batchBytes_ = 0;
  std::ifstream data_;
  std::vector<char> host_;
  DeviceBuffer device_;
  std::vector<char> cache_;
  int64_t next_ = 0;
  bool cacheRead_ = false;
  bool cacheWritten_ = false;
  std::string failure_;
};
#pragma GCC diagnostic pop

}  // namespace tf::trt

#endif  // NV_TENSORRT_MAJOR < 11
