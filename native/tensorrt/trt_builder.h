// Builds a serialized TensorRT plan from an ONNX model: nvonnxparser into an explicit-batch network, one
// optimisation profile over the batch dimension, a workspace limit, a timing cache file shared between builds, the
// precision switches the caller chose (see rules.h) and, on TensorRT 10, the legacy entropy calibrator.
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "rules.h"
#include "trt_log.h"

namespace tf::trt {

struct LegacyCalibration {
  std::string dataFile;  // raw float32 batches from our preprocessing
  int64_t batchSize = 8;
  int64_t batches = 0;
  std::string cachePath;  // TensorRT calibration cache, read when present and readCache
  bool readCache = true;
};

struct BuildRequest {
  std::string onnxPath;
  std::string planPath;
  int device = 0;
  BatchProfile batch;
  int64_t imageSize = 0;        // H = W when the ONNX input's are dynamic (0: take them from the model)
  uint64_t workspaceBytes = 0;  // 0: TensorRT's default (the device's memory)
  std::string timingCachePath;  // "" for none; read when present, written after the build
  int optimizationLevel = -1;   // builder optimisation level 0..5 (-1: TensorRT's default, 3)
  PrecisionSwitches precision;
  std::optional<LegacyCalibration> calibration;  // requires precision.legacyCalibrator (TensorRT 10)
  LogSink log;                                   // every message up to logSeverity
  int logSeverity = 2;
  const int32_t* cancel = nullptr;  // non-zero: stop at the next builder step
};

struct BuildResult {
  std::string planPath;
  uint64_t planBytes = 0;
  std::string tensorrtVersion;  // of the library that built the plan
  std::string gpuName;
  int computeMajor = 0;
  int computeMinor = 0;
  std::string inputName;
  std::vector<int64_t> inputDims;  // as the network declares them (-1: dynamic)
  std::vector<std::string> outputNames;
  bool timingCacheLoaded = false;
  bool timingCacheSaved = false;
  bool calibrationCacheRead = false;
  bool calibrationCacheWritten = false;
  int64_t calibrationBatches = 0;
  uint32_t networkLayers = 0;
  double seconds = 0;
};

// Runs the whole build on the calling thread (minutes for a large network). Throws ModelLoadError (unreadable or
// unparsable ONNX, wrong I/O), RangeError (switches this TensorRT lacks, bad profile), DeviceUnavailableError,
// RuntimeFailure (TensorRT could not build; message from its error recorder and logger; "cancelled" when the
// cancel flag was raised), SaveError.
BuildResult buildPlan(const BuildRequest& request);

}  // namespace tf::trt
