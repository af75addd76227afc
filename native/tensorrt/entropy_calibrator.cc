#include "entropy_calibrator.h"

#if NV_TENSORRT_MAJOR < 11

#include <cstring>
#include <filesystem>

#include "../core/errors.h"
#include "io.h"
#include "rules.h"

namespace tf::trt {

EntropyCalibrator::EntropyCalibrator(CalibrationSource source) : src_(std::move(source)) {
  if (src_.batchSize < 1 || src_.batches < 1 || src_.imageDims.size() != 3) {
    throw RangeError("calibration needs at least one batch of at least one [3, H, W] image");
  }
  size_t perImage = sizeof(float);
  for (const int64_t d : src_.imageDims) perImage *= static_cast<size_t>(d);
  batchBytes_ = perImage * static_cast<size_t>(src_.batchSize);
  std::error_code ec;
  const auto size = std::filesystem::file_size(src_.dataFile, ec);
  if (ec) throw ModelLoadError("calibration data '" + src_.dataFile + "' not found");
  if (size < batchBytes_ * static_cast<size_t>(src_.batches)) {
    throw ModelLoadError("calibration data '" + src_.dataFile + "' holds " + std::to_string(size) +
                         " bytes, less than " + std::to_string(src_.batches) + " batches of " +
                         std::to_string(src_.batchSize) + " images " + formatDims(src_.imageDims));
  }
  data_.open(src_.dataFile, std::ios::binary);
  if (!data_) throw ModelLoadError("cannot open calibration data '" + src_.dataFile + "'");
  host_.resize(batchBytes_);
  device_ = DeviceBuffer(batchBytes_);
}

int32_t EntropyCalibrator::getBatchSize() const noexcept { return static_cast<int32_t>(src_.batchSize); }

bool EntropyCalibrator::getBatch(void* bindings[], char const* names[], int32_t nbBindings) noexcept {
  if (next_ >= src_.batches || !failure_.empty()) return false;
  try {
    data_.seekg(static_cast<std::streamoff>(batchBytes_ * static_cast<size_t>(next_)));
    if (!data_.read(host_.data(), static_cast<std::streamsize>(batchBytes_))) {
      failure_ = "cannot read calibration batch " + std::to_string(next_) + " from '" + src_.dataFile + "'";
      return false;
    }
    checkCuda(cudaMemcpy(device_.get(), host_.data(), batchBytes_, cudaMemcpyHostToDevice), "calibration upload");
    bool bound = false;
    for (int32_t i = 0; i < nbBindings; ++i) {
      if (names[i] && src_.inputName == names[i]) {
        bindings[i] = device_.get();
        bound = true;
      }
    }
    if (!bound && nbBindings == 1) {
      bindings[0] = device_.get();
      bound = true;
    }
    if (!bound) {
      failure_ = "TensorRT asked for calibration inputs without '" + src_.inputName + "'";
      return false;
    }
    ++next_;
    return true;
  } catch (const std::exception& e) {
    failure_ = e.what();
    return false;
  }
}

void const* EntropyCalibrator::readCalibrationCache(std::size_t& length) noexcept {
  length = 0;
  if (!src_.readCache || src_.cachePath.empty() || !fileExists(src_.cachePath)) return nullptr;
  try {
    cache_ = readFileBytes(src_.cachePath, "calibration cache");
  } catch (...) {
    return nullptr;
  }
  if (cache_.empty()) return nullptr;
  cacheRead_ = true;
  length = cache_.size();
  return cache_.data();
}

void EntropyCalibrator::writeCalibrationCache(void const* ptr, std::size_t length) noexcept {
  if (src_.cachePath.empty() || ptr == nullptr || length == 0) return;
  try {
    writeFileBytes(src_.cachePath, ptr, length);
    cacheWritten_ = true;
  } catch (const std::exception& e) {
    if (failure_.empty()) failure_ = e.what();
  }
}

}  // namespace tf::trt

#endif  // NV_TENSORRT_MAJOR < 11
