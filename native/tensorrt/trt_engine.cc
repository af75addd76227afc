#include "trt_engine.h"

#include <NvInferRuntime.h>
#include <NvInferVersion.h>

#include <cstring>

#include "../core/errors.h"
#include "cuda_util.h"
#include "io.h"
#include "trt_log.h"
#include "trt_types.h"

namespace tf::trt {

// One execution context with everything it needs to run a batch on its own stream.
struct Slot {
  // Declared first so that it outlives the context that reports into it.
  std::unique_ptr<ErrorRecorder> recorder;
  std::unique_ptr<nvinfer1::IExecutionContext> context;
  std::unique_ptr<CudaStream> stream;
  DeviceBuffer input;
  DeviceBuffer logits;
  DeviceBuffer embedding;
  PinnedBuffer hostInput;
  PinnedBuffer hostLogits;
  PinnedBuffer hostEmbedding;
  int64_t batch = -1;  // the input shape set on the context
  std::map<int64_t, std::unique_ptr<CudaGraph>> graphs;
  bool graphsFailed = false;
};

std::shared_ptr<TrtEngine> TrtEngine::load(const std::string& path, int device, const EngineOptions& options) {
  if (options.maxContexts < 1 || options.maxContexts > 64) {
    throw RangeError("contexts must be between 1 and 64, received " + std::to_string(options.maxContexts));
  }
  DeviceGuard guard(device);
  const GpuInfo gpu = gpuInfo(device);
  std::shared_ptr<TrtEngine> self(new TrtEngine());
  EngineInfo& info = self->info_;
  info.path = path;
  info.device = device;
  info.gpuName = gpu.name;
  info.computeMajor = gpu.computeMajor;
  info.computeMinor = gpu.computeMinor;
  info.tensorrtVersion = libraryVersion();
  info.cudaGraph = options.cudaGraph;
  info.maxContexts = options.maxContexts;

  const std::vector<char> plan = readFileBytes(path, "TensorRT plan");
  info.planBytes = plan.size();
  std::vector<std::string> warnings;
  LogCapture capture([&warnings](int severity, const std::string& m) {
    if (severity == 2 && warnings.size() < 16) warnings.push_back(m);
  });
  self->recorder_ = std::make_unique<ErrorRecorder>();
  self->runtime_.reset(nvinfer1::createInferRuntime(logger()));
  if (!self->runtime_) throw DeviceUnavailableError("cannot create the TensorRT runtime: " + capture.errors());
  self->runtime_->setErrorRecorder(self->recorder_.get());
  self->engine_.reset(self->runtime_->deserializeCudaEngine(plan.data(), plan.size()));
  if (!self->engine_) {
    throw ModelLoadError(deserializeFailureMessage(path, joinMessages(self->recorder_->drain(), capture.errors()),
                                                   info.tensorrtVersion, gpu.name));
  }

  const std::string where = "TensorRT plan '" + path + "'";
  auto& engine = *self->engine_;
  TensorDesc input;
  std::vector<TensorDesc> outputs;
  int inputs = 0;
  for (int32_t i = 0; i < engine.getNbIOTensors(); ++i) {
    const char* name = engine.getIOTensorName(i);
    TensorDesc d;
    d.name = name;
    d.dims = dimsOf(engine.getTensorShape(name));
    d.isFloat32 = engine.getTensorDataType(name) == nvinfer1::DataType::kFLOAT;
    d.dataType = dataTypeName(engine.getTensorDataType(name));
    if (engine.getTensorIOMode(name) == nvinfer1::TensorIOMode::kINPUT) {
      input = d;
      ++inputs;
    } else {
      outputs.push_back(d);
    }
  }
  if (inputs != 1) {
    throw ModelLoadError(where + " has " + std::to_string(inputs) + " inputs; a trt-flowers classifier has one");
  }
  info.inputName = input.name;
  info.inputDims = input.dims;
  if (engine.getNbOptimizationProfiles() < 1) throw ModelLoadError(where + " has no optimisation profile");
  using Sel = nvinfer1::OptProfileSelector;
  const auto minDims = dimsOf(engine.getProfileShape(input.name.c_str(), 0, Sel::kMIN));
  const auto optDims = dimsOf(engine.getProfileShape(input.name.c_str(), 0, Sel::kOPT));
  const auto maxDims = dimsOf(engine.getProfileShape(input.name.c_str(), 0, Sel::kMAX));
  if (input.dims.size() == 4 && input.dims[0] >= 0) {
    info.minBatch = info.optBatch = info.maxBatch = input.dims[0];
  } else if (minDims.size() == 4 && maxDims.size() == 4 && optDims.size() == 4) {
    info.minBatch = minDims[0];
    info.optBatch = optDims[0];
    info.maxBatch = maxDims[0];
  } else {
    throw ModelLoadError(where + ": the profile of input '" + input.name + "' has no batch range");
  }
  TensorDesc checked = input;
  if (checked.dims.size() == 4 && checked.dims[0] < 0) checked.dims[0] = info.maxBatch;
  if (checked.dims.size() == 4 && maxDims.size() == 4) {
    if (checked.dims[2] < 0) checked.dims[2] = maxDims[2];
    if (checked.dims[3] < 0) checked.dims[3] = maxDims[3];
  }
  info.imageSize = checkClassifierIo(checked, outputs, where);
  const auto picked = pickOutputs(outputs);
  info.logitsName = outputs[picked.first].name;
  info.embeddingName = outputs[picked.second].name;
  info.numClasses = outputs[picked.first].dims[1];
  info.embeddingSize = outputs[picked.second].dims[1];
#if NV_TENSORRT_MAJOR > 10 || (NV_TENSORRT_MAJOR == 10 && NV_TENSORRT_MINOR >= 1)
  info.deviceMemoryBytes = engine.getDeviceMemorySizeV2();
#else
  info.deviceMemoryBytes = static_cast<int64_t>(engine.getDeviceMemorySize());
#endif

  // One context up front: a plan that cannot get its activation memory fails here, not at the first image.
  self->idle_.push_back(self->makeSlot());
  self->created_ = 1;
  info.warnings = std::move(warnings);
  return self;
}

TrtEngine::~TrtEngine() {
  // Free every CUDA object on the engine's device, contexts before the engine, the engine before the runtime.
  try {
    DeviceGuard guard(info_.device);
    idle_.clear();
    engine_.reset();
    runtime_.reset();
  } catch (...) {
    idle_.clear();
    engine_.reset();
    runtime_.reset();
  }
}

std::unique_ptr<Slot> TrtEngine::makeSlot() {
  auto slot = std::make_unique<Slot>();
  slot->recorder = std::make_unique<ErrorRecorder>();
  slot->context.reset(engine_->createExecutionContext());
  if (!slot->context) {
    throw RuntimeFailure("cannot create a TensorRT execution context (" + std::to_string(info_.deviceMemoryBytes) +
                         " bytes of GPU memory): " + recorder_->drain());
  }
  slot->context->setErrorRecorder(slot->recorder.get());
  slot->stream = std::make_unique<CudaStream>();
  const auto per = static_cast<size_t>(info_.imageSize * info_.imageSize * 3) * sizeof(float);
  const auto maxBatch = static_cast<size_t>(info_.maxBatch);
  slot->input = DeviceBuffer(per * maxBatch);
  slot->hostInput = PinnedBuffer(per * maxBatch);
  slot->logits = DeviceBuffer(static_cast<size_t>(info_.numClasses) * sizeof(float) * maxBatch);
  slot->hostLogits = PinnedBuffer(slot->logits.size());
  if (info_.embeddingName != info_.logitsName) {
    slot->embedding = DeviceBuffer(static_cast<size_t>(info_.embeddingSize) * sizeof(float) * maxBatch);
    slot->hostEmbedding = PinnedBuffer(slot->embedding.size());
  }
  // The buffers never move, so their addresses are set once.
  auto& ctx = *slot->context;
  bool ok = ctx.setTensorAddress(info_.inputName.c_str(), slot->input.get()) &&
            ctx.setTensorAddress(info_.logitsName.c_str(), slot->logits.get());
  if (info_.embeddingName != info_.logitsName) {
    ok = ok && ctx.setTensorAddress(info_.embeddingName.c_str(), slot->embedding.get());
  }
  if (!ok) throw RuntimeFailure("cannot bind the TensorRT I/O buffers: " + slot->recorder->drain());
  return slot;
}

std::unique_ptr<Slot> TrtEngine::acquire() {
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    if (!idle_.empty()) {
      auto slot = std::move(idle_.back());
      idle_.pop_back();
      return slot;
    }
    if (created_ < info_.maxContexts) {
      ++created_;
      lock.unlock();
      try {
        return makeSlot();
      } catch (...) {
        lock.lock();
        --created_;
        throw;
      }
    }
    freed_.wait(lock);
  }
}

void TrtEngine::release(std::unique_ptr<Slot> slot) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (slot) {
      idle_.push_back(std::move(slot));
    } else {
      --created_;  // a slot that failed is dropped; a new one replaces it when needed
    }
  }
  freed_.notify_one();
}

InferResult TrtEngine::infer(const float* data, const std::vector<int64_t>& shape) {
  const int64_t s = info_.imageSize;
  if (shape.size() != 4 || shape[1] != 3 || shape[2] != s || shape[3] != s) {
    throw TypeError("input shape " + formatDims(shape) + " does not match the engine's [N, 3, " + std::to_string(s) +
                    ", " + std::to_string(s) + "]");
  }
  const int64_t batch = shape[0];
  if (batch < info_.minBatch || batch > info_.maxBatch) {
    throw RangeError("this TensorRT engine runs batches of " + std::to_string(info_.minBatch) + " to " +
                     std::to_string(info_.maxBatch) + " images, received " + std::to_string(batch) +
                     " (rebuild it with a larger --max-batch)");
  }
  DeviceGuard guard(info_.device);
  InferResult out;
  std::unique_ptr<Slot> slot = acquire();
  try {
    run(*slot, data, batch, out);
  } catch (...) {
    release(nullptr);
    throw;
  }
  release(std::move(slot));
  return out;
}

void TrtEngine::run(Slot& slot, const float* data, int64_t batch, InferResult& out) {
  LogCapture capture;
  const auto fail = [&](const std::string& what) {
    return RuntimeFailure("TensorRT: " + joinMessages(what, joinMessages(slot.recorder->drain(), capture.errors())));
  };
  auto& ctx = *slot.context;
  cudaStream_t stream = slot.stream->get();
  const size_t inBytes = static_cast<size_t>(batch * 3 * info_.imageSize * info_.imageSize) * sizeof(float);
  const size_t logitBytes = static_cast<size_t>(batch * info_.numClasses) * sizeof(float);
  const bool twoOutputs = info_.embeddingName != info_.logitsName;
  const size_t embBytes = static_cast<size_t>(batch * info_.embeddingSize) * sizeof(float);

  // A graph replays kernels captured for one input shape: it is used only while the context keeps that shape,
  // and a shape change runs once normally first.
  const bool shapeChanged = slot.batch != batch;
  if (shapeChanged) {
    nvinfer1::Dims dims{};
    dims.nbDims = 4;
    dims.d[0] = batch;
    dims.d[1] = 3;
    dims.d[2] = info_.imageSize;
    dims.d[3] = info_.imageSize;
    if (!ctx.setInputShape(info_.inputName.c_str(), dims)) {
      throw fail("setInputShape " + formatDims({batch, 3, info_.imageSize, info_.imageSize}) + " failed");
    }
    const auto l = dimsOf(ctx.getTensorShape(info_.logitsName.c_str()));
    if (l.size() != 2 || l[0] != batch || l[1] != info_.numClasses) {
      throw fail("output '" + info_.logitsName + "' has shape " + formatDims(l) + " for a batch of " +
                 std::to_string(batch));
    }
    slot.batch = batch;
  }
  std::memcpy(slot.hostInput.get(), data, inBytes);

  const auto enqueue = [&] {
    checkCuda(cudaMemcpyAsync(slot.input.get(), slot.hostInput.get(), inBytes, cudaMemcpyHostToDevice, stream),
              "input upload");
    if (!ctx.enqueueV3(stream)) return false;
    checkCuda(cudaMemcpyAsync(slot.hostLogits.get(), slot.logits.get(), logitBytes, cudaMemcpyDeviceToHost, stream),
              "logits download");
    if (twoOutputs) {
      checkCuda(
          cudaMemcpyAsync(slot.hostEmbedding.get(), slot.embedding.get(), embBytes, cudaMemcpyDeviceToHost, stream),
          "embedding download");
    }
    return true;
  };

  auto graph = slot.graphs.find(batch);
  if (info_.cudaGraph && !slot.graphsFailed && !shapeChanged && graph != slot.graphs.end()) {
    graph->second->launch(stream);
  } else {
    if (!enqueue()) throw fail("enqueueV3 failed");
    if (info_.cudaGraph && !slot.graphsFailed && graph == slot.graphs.end()) {
      // The run above lets TensorRT finish its shape-dependent setup, which must not be captured; from the next
      // batch of this size on, the copies and the network replay as one graph.
      slot.stream->synchronize("TensorRT inference");
      auto captured = std::make_unique<CudaGraph>();
      captured->beginCapture(stream);
      bool enqueued = false;
      try {
        enqueued = enqueue();
      } catch (...) {
        enqueued = false;  // the capture must still be ended to give the stream back
      }
      if (captured->endCapture(stream) && enqueued) {
        slot.graphs.emplace(batch, std::move(captured));
      } else {
        // Something in the plan is not capturable: this slot runs without graphs from now on.
        slot.graphsFailed = true;
        graphFallbacks_.fetch_add(1);
        slot.recorder->clear();
      }
    }
  }
  slot.stream->synchronize("TensorRT inference");

  const auto* logits = static_cast<const float*>(slot.hostLogits.get());
  out.logits.assign(logits, logits + batch * info_.numClasses);
  if (twoOutputs) {
    const auto* emb = static_cast<const float*>(slot.hostEmbedding.get());
    out.embedding.assign(emb, emb + batch * info_.embeddingSize);
  } else {
    out.embedding = out.logits;
  }
  out.batchSize = batch;
  out.numClasses = info_.numClasses;
  out.embeddingSize = info_.embeddingSize;
}

}  // namespace tf::trt
