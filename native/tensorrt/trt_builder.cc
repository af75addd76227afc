#include "trt_builder.h"

#include <NvInfer.h>
#include <NvInferVersion.h>
#include <NvOnnxParser.h>

#include <chrono>
#include <memory>

#include "../core/errors.h"
#include "cuda_util.h"
#include "entropy_calibrator.h"
#include "io.h"
#include "trt_types.h"

namespace tf::trt {

namespace {

// Logs the top-level build phases and stops the build when the cancel flag is raised.
class ProgressMonitor : public nvinfer1::IProgressMonitor {
 public:
  ProgressMonitor(const LogSink& log, const int32_t* cancel) : log_(log), cancel_(cancel) {}

  void phaseStart(char const* phaseName, char const* parentPhase, int32_t nbSteps) noexcept override {
    if (parentPhase == nullptr && log_) {
      try {
        log_(3, std::string("phase: ") + phaseName + " (" + std::to_string(nbSteps) + " steps)");
      } catch (...) {
      }
    }
  }
  bool stepComplete(char const* phaseName, int32_t step) noexcept override { return !cancelled(); }
  void phaseFinish(char const* phaseName) noexcept override {}

  bool cancelled() const { return cancel_ && __atomic_load_n(cancel_, __ATOMIC_RELAXED) != 0; }

 private:
  const LogSink& log_;
  const int32_t* cancel_;
};

TensorDesc describe(nvinfer1::ITensor* t) {
  TensorDesc d;
  d.name = t->getName();
  d.dims = dimsOf(t->getDimensions());
  d.isFloat32 = t->getType() == nvinfer1::DataType::kFLOAT;
  d.dataType = dataTypeName(t->getType());
  return d;
}

std::string parserErrors(const nvonnxparser::IParser& parser) {
  std::string out;
  const int32_t n = parser.getNbErrors();
  for (int32_t i = 0; i < n && i < 8; ++i) {
    const auto* e = parser.getError(i);
    if (!e) continue;
    std::string line = e->desc() ? e->desc() : "unknown error";
    const char* op = e->nodeOperator();
    const char* name = e->nodeName();
    if (e->node() >= 0) {
      line += " (node " + std::to_string(e->node());
      if (name && *name) line += std::string(" '") + name + "'";
      if (op && *op) line += std::string(", ") + op;
      line += ")";
    }
    out = joinMessages(out, line);
  }
  return out;
}

nvinfer1::Dims profileDims(const std::vector<int64_t>& networkDims, int64_t batch, int64_t imageSize) {
  nvinfer1::Dims d{};
  d.nbDims = static_cast<int32_t>(networkDims.size());
  for (size_t i = 0; i < networkDims.size(); ++i) {
    int64_t v = networkDims[i];
    if (i == 0) v = batch;
    if (v < 0 && (i == 2 || i == 3)) v = imageSize;
    d.d[i] = static_cast<decltype(d.d[0])>(v);
  }
  return d;
}

}  // namespace

BuildResult buildPlan(const BuildRequest& request) {
  const auto started = std::chrono::steady_clock::now();
  checkBatchProfile(request.batch);
  checkPrecisionSwitches(request.precision, NV_TENSORRT_MAJOR);
  if (request.calibration.has_value() != request.precision.legacyCalibrator) {
    throw RangeError("the legacy INT8 calibrator needs calibration batches, and calibration batches need it");
  }
  if (request.optimizationLevel > 5) throw RangeError("the builder optimisation level must be between 0 and 5");
  if (!fileExists(request.onnxPath)) throw ModelLoadError("ONNX model '" + request.onnxPath + "' not found");

  DeviceGuard device(request.device);
  const GpuInfo gpu = gpuInfo(request.device);
  LogCapture capture(request.log, request.logSeverity);
  ErrorRecorder recorder;
  const auto failure = [&](const std::string& what) {
    return joinMessages(what, joinMessages(recorder.drain(), capture.errors()));
  };

  std::unique_ptr<nvinfer1::IBuilder> builder(nvinfer1::createInferBuilder(logger()));
  if (!builder) throw RuntimeFailure(failure("cannot create the TensorRT builder"));
  builder->setErrorRecorder(&recorder);

  // Explicit batch is the only mode in TensorRT 10 and 11; the flag asks for a strongly typed network (TensorRT 10;
  // 11 types every network strongly and ignores it).
  nvinfer1::NetworkDefinitionCreationFlags flags = 0;
#if NV_TENSORRT_MAJOR < 11
  if (request.precision.stronglyTyped) {
    flags |= 1U << static_cast<uint32_t>(nvinfer1::NetworkDefinitionCreationFlag::kSTRONGLY_TYPED);
  }
#endif
  std::unique_ptr<nvinfer1::INetworkDefinition> network(builder->createNetworkV2(flags));
  if (!network) throw RuntimeFailure(failure("cannot create the network definition"));
  std::unique_ptr<nvonnxparser::IParser> parser(nvonnxparser::createParser(*network, logger()));
  if (!parser) throw RuntimeFailure(failure("cannot create the ONNX parser"));
  if (!parser->parseFromFile(request.onnxPath.c_str(), static_cast<int>(nvinfer1::ILogger::Severity::kWARNING))) {
    throw ModelLoadError(
        failure("TensorRT cannot parse '" + request.onnxPath + "': " + joinMessages(parserErrors(*parser), "")));
  }

  if (network->getNbInputs() != 1) {
    throw ModelLoadError("'" + request.onnxPath + "' has " + std::to_string(network->getNbInputs()) +
                         " inputs; a trt-flowers classifier has one image input");
  }
  nvinfer1::ITensor* input = network->getInput(0);
  std::vector<TensorDesc> outputs;
  for (int32_t i = 0; i < network->getNbOutputs(); ++i) outputs.push_back(describe(network->getOutput(i)));
  TensorDesc in = describe(input);
  if (in.dims.size() == 4 && request.imageSize > 0) {
    if (in.dims[2] < 0) in.dims[2] = request.imageSize;
    if (in.dims[3] < 0) in.dims[3] = request.imageSize;
  }
  if (in.dims.size() == 4 && in.dims[0] < 0) in.dims[0] = 1;  // checked as [N, 3, S, S]
  checkClassifierIo(in, outputs, "'" + request.onnxPath + "'");
  const std::vector<int64_t> declared = dimsOf(input->getDimensions());
  if (declared[0] >= 0 && (request.batch.min != declared[0] || request.batch.max != declared[0])) {
    throw RangeError("'" + request.onnxPath + "' was exported with a static batch of " + std::to_string(declared[0]) +
                     ": build it with --batch " + std::to_string(declared[0]) + " --max-batch " +
                     std::to_string(declared[0]) + ", or re-export it with a dynamic batch");
  }

  std::unique_ptr<nvinfer1::IBuilderConfig> config(builder->createBuilderConfig());
  if (!config) throw RuntimeFailure(failure("cannot create the builder configuration"));
  if (request.workspaceBytes > 0) {
    config->setMemoryPoolLimit(nvinfer1::MemoryPoolType::kWORKSPACE, static_cast<size_t>(request.workspaceBytes));
  }
  if (request.optimizationLevel >= 0) config->setBuilderOptimizationLevel(request.optimizationLevel);
  ProgressMonitor monitor(request.log, request.cancel);
  config->setProgressMonitor(&monitor);

  nvinfer1::IOptimizationProfile* profile = builder->createOptimizationProfile();
  const char* inputName = input->getName();
  using Sel = nvinfer1::OptProfileSelector;
  if (!profile || !profile->setDimensions(inputName, Sel::kMIN, profileDims(declared, request.batch.min, in.dims[2])) ||
      !profile->setDimensions(inputName, Sel::kOPT, profileDims(declared, request.batch.opt, in.dims[2])) ||
      !profile->setDimensions(inputName, Sel::kMAX, profileDims(declared, request.batch.max, in.dims[2])) ||
      config->addOptimizationProfile(profile) < 0) {
    throw RuntimeFailure(failure("cannot set the optimisation profile (batch " + std::to_string(request.batch.min) +
                                 ".." + std::to_string(request.batch.max) + ")"));
  }

#if NV_TENSORRT_MAJOR < 11
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
  // TensorRT 10's weak typing: precision flags (deprecated in 10.1, removed in 11).
  if (request.precision.fp16Flag) config->setFlag(nvinfer1::BuilderFlag::kFP16);
  if (request.precision.int8Flag) config->setFlag(nvinfer1::BuilderFlag::kINT8);
  std::unique_ptr<EntropyCalibrator> calibrator;
  if (request.calibration) {
    const auto& c = *request.calibration;
    CalibrationSource source;
    source.dataFile = c.dataFile;
    source.batchSize = c.batchSize;
    source.batches = c.batches;
    source.inputName = inputName;
    source.imageDims = {in.dims[1], in.dims[2], in.dims[3]};
    source.cachePath = c.cachePath;
    source.readCache = c.readCache;
    calibrator = std::make_unique<EntropyCalibrator>(std::move(source));
    // Calibration runs at one fixed shape: the calibration batch.
    nvinfer1::IOptimizationProfile* calib = builder->createOptimizationProfile();
    const auto fixed = profileDims(declared, c.batchSize, in.dims[2]);
    if (!calib || !calib->setDimensions(inputName, Sel::kMIN, fixed) ||
        !calib->setDimensions(inputName, Sel::kOPT, fixed) || !calib->setDimensions(inputName, Sel::kMAX, fixed) ||
        !config->setCalibrationProfile(calib)) {
      throw RuntimeFailure(failure("cannot set the calibration profile (batch " + std::to_string(c.batchSize) + ")"));
    }
    config->setInt8Calibrator(calibrator.get());
  }
#pragma GCC diagnostic pop
#endif

  BuildResult result;
  std::unique_ptr<nvinfer1::ITimingCache> timingCache;
  if (!request.timingCachePath.empty()) {
    std::vector<char> blob;
    if (fileExists(request.timingCachePath)) {
      try {
        blob = readFileBytes(request.timingCachePath, "timing cache");
      } catch (...) {
        blob.clear();
      }
    }
    timingCache.reset(config->createTimingCache(blob.empty() ? nullptr : blob.data(), blob.size()));
    bool usable = timingCache && config->setTimingCache(*timingCache, false);
    if (!usable && !blob.empty()) {
      // A cache from another TensorRT version or GPU: start a new one rather than fail the build.
      capture.add(
          2, ("the timing cache '" + request.timingCachePath + "' is not usable here; starting a new one").c_str());
      recorder.clear();
      capture.clearErrors();
      blob.clear();
      timingCache.reset(config->createTimingCache(nullptr, 0));
      usable = timingCache && config->setTimingCache(*timingCache, false);
    }
    if (!usable) throw RuntimeFailure(failure("cannot use a timing cache"));
    result.timingCacheLoaded = !blob.empty();
  }

  std::unique_ptr<nvinfer1::IHostMemory> plan(builder->buildSerializedNetwork(*network, *config));
#if NV_TENSORRT_MAJOR < 11
  if (calibrator) {
    if (!calibrator->failure().empty()) throw RuntimeFailure(failure("calibration failed: " + calibrator->failure()));
    result.calibrationCacheRead = calibrator->cacheRead();
    result.calibrationCacheWritten = calibrator->cacheWritten();
    result.calibrationBatches = calibrator->batchesServed();
  }
#endif
  if (monitor.cancelled()) throw RuntimeFailure("the TensorRT build was cancelled");
  if (!plan || plan->size() == 0) {
    throw RuntimeFailure(failure("TensorRT could not build an engine from '" + request.onnxPath + "'"));
  }

  if (timingCache) {
    const nvinfer1::ITimingCache* used = config->getTimingCache();
    std::unique_ptr<nvinfer1::IHostMemory> blob(used ? used->serialize() : nullptr);
    if (blob && blob->size() > 0) {
      writeFileBytes(request.timingCachePath, blob->data(), blob->size());
      result.timingCacheSaved = true;
    }
  }
  writeFileBytes(request.planPath, plan->data(), plan->size());

  result.planPath = request.planPath;
  result.planBytes = plan->size();
  result.tensorrtVersion = libraryVersion();
  result.gpuName = gpu.name;
  result.computeMajor = gpu.computeMajor;
  result.computeMinor = gpu.computeMinor;
  result.inputName = inputName;
  result.inputDims = declared;
  for (const auto& o : outputs) result.outputNames.push_back(o.name);
  result.networkLayers = static_cast<uint32_t>(network->getNbLayers());
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return result;
}

}  // namespace tf::trt
