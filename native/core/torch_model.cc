#include "torch_model.h"

#include <filesystem>
#include <sstream>

#include "atomic_file.h"
#include "errors.h"
#include "runtime.h"

namespace tf {

int64_t checkImageShape(const std::vector<int64_t>& shape, const std::string& what) {
  if (shape.size() != 4) {
    throw TypeError(what + " must have shape [N, C, H, W], received " + std::to_string(shape.size()) + " dimension(s)");
  }
  int64_t count = 1;
  for (const auto d : shape) {
    if (d < 1 || d > (1 << 20)) {
      throw RangeError(what + " dimensions must be between 1 and 1048576, received " + std::to_string(d));
    }
    count *= d;
  }
  if (count > (int64_t{1} << 31)) throw RangeError(what + " is too large (" + std::to_string(count) + " elements)");
  return count;
}

TorchModel::TorchModel(torch::jit::Module module, torch::Device device, std::string path)
    : module_(std::move(module)), device_(device), path_(std::move(path)) {}

std::shared_ptr<TorchModel> TorchModel::load(const std::string& path, const std::string& device, bool inference) {
  const std::string dev = normalizeDevice(device);
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    throw ModelLoadError("cannot load TorchScript model '" + path + "': file not found");
  }
  applyThreadSettings();
  try {
    torch::Device d(dev);
    torch::jit::ExtraFilesMap extra{{kMetadataFile, ""}};
    auto module = torch::jit::load(path, d, extra);
    module.eval();
    if (!module.find_method("forward")) {
      throw ModelLoadError("cannot load TorchScript model '" + path + "': it has no forward() method");
    }
    auto model = std::shared_ptr<TorchModel>(new TorchModel(std::move(module), d, path));
    model->metadata_ = extra[kMetadataFile];
    for (const auto& p : model->module_.parameters()) model->parameterCount_ += p.numel();
    if (inference) {
      model->inferenceOnly_ = true;
      try {
        // pooled() survives freezing (the head phase extracts features with an inference copy of the backbone).
        std::vector<std::string> keep;
        if (model->module_.find_method("pooled")) keep.emplace_back("pooled");
        auto frozen = torch::jit::freeze(model->module_, keep.empty() ? c10::nullopt : c10::make_optional(keep));
        model->module_ = torch::jit::optimize_for_inference(frozen, keep);
        model->inferenceOptimized_ = true;
      } catch (const std::exception& e) {
        const std::string what = e.what();
        model->inferenceNote_ = "TorchScript inference passes failed, running the module as loaded: " +
                                what.substr(0, std::min<size_t>(what.find('\n'), 300));
      }
    }
    // After freezing, which turns the parameters into constants: a frozen model has none left to train.
    for (const auto& p : model->module_.named_parameters()) {
      model->parameterNames_.push_back(p.name);
      model->parameters_.push_back(p.value);
    }
    model->hasPooled_ = model->module_.find_method("pooled").has_value();
    model->hasHead_ = model->hasPooled_ && model->module_.find_method("head").has_value();
    return model;
  } catch (...) {
    rethrowAs<ModelLoadError>("cannot load TorchScript model '" + path + "'");
  }
}

std::pair<at::Tensor, at::Tensor> TorchModel::splitOutput(const c10::IValue& out) {
  auto asMatrix = [](const c10::IValue& v, const char* name) {
    if (!v.isTensor()) throw RuntimeFailure(std::string("model output '") + name + "' is not a tensor");
    auto t = v.toTensor();
    if (t.dim() != 2) {
      throw RuntimeFailure(std::string("model output '") + name + "' must be [N, K], got " + std::to_string(t.dim()) +
                           " dimension(s)");
    }
    return t;
  };
  if (out.isTensor()) {
    auto logits = asMatrix(out, "logits");
    return {logits, logits};
  }
  if (out.isTuple()) {
    const auto& elems = out.toTupleRef().elements();
    if (elems.size() >= 2) return {asMatrix(elems[0], "logits"), asMatrix(elems[1], "embedding")};
    if (elems.size() == 1) {
      auto logits = asMatrix(elems[0], "logits");
      return {logits, logits};
    }
  }
  throw RuntimeFailure("model must return a tensor of logits or a tuple (logits, embedding), got " + out.tagKind());
}

ForwardResult TorchModel::forward(const float* data, const std::vector<int64_t>& shape) {
  if (!onModelThreadNow()) return onModelThread([&] { return forward(data, shape); });
  checkImageShape(shape, "input");
  applyThreadSettings();
  try {
    c10::InferenceMode guard;
    auto input = torch::from_blob(const_cast<float*>(data), shape, torch::kFloat32);
    if (!device_.is_cpu()) input = input.to(device_, /*non_blocking=*/false);
    const auto out = module_.forward({input});
    auto [logits, embedding] = splitOutput(out);
    if (logits.size(0) != shape[0] || embedding.size(0) != shape[0]) {
      throw RuntimeFailure("model returned " + std::to_string(logits.size(0)) + " rows for a batch of " +
                           std::to_string(shape[0]));
    }
    return {logits.to(torch::kCPU, torch::kFloat32).contiguous(),
            embedding.to(torch::kCPU, torch::kFloat32).contiguous()};
  } catch (...) {
    rethrowAs<RuntimeFailure>("forward failed for input [" + std::to_string(shape[0]) + ", " +
                              std::to_string(shape[1]) + ", " + std::to_string(shape[2]) + ", " +
                              std::to_string(shape[3]) + "]");
  }
}

std::pair<at::Tensor, at::Tensor> TorchModel::forwardTrain(const at::Tensor& input) {
  if (inferenceOnly_)
    throw RangeError("this model was loaded for inference only; load it without `inference` to train");
  return splitOutput(module_.forward({input}));
}

bool TorchModel::hasHead() const { return hasHead_; }

void TorchModel::requireHead() const {
  if (inferenceOnly_) {
    throw RangeError("this model was loaded for inference only; load it without `inference` to train its head");
  }
  if (!hasHead()) throw noHeadError();
}

RangeError TorchModel::noHeadError() const {
  return RangeError("the model '" + path_ +
                    "' has no pooled() and head() methods, which training the head on cached features needs; "
                    "export the backbone again with this version of trt-flowers export-backbone, or set "
                    "model.head_epochs=0");
}

at::Tensor TorchModel::pooledFeatures(const float* data, const std::vector<int64_t>& shape) {
  if (!onModelThreadNow()) return onModelThread([&] { return pooledFeatures(data, shape); });
  checkImageShape(shape, "input");
  if (!hasPooled_) throw noHeadError();
  applyThreadSettings();
  const bool wasTraining = training_.load();
  try {
    if (wasTraining) module_.eval();
    c10::InferenceMode guard;
    auto input = torch::from_blob(const_cast<float*>(data), shape, torch::kFloat32);
    if (!device_.is_cpu()) input = input.to(device_, /*non_blocking=*/false);
    const auto out = module_.run_method("pooled", input);
    if (!out.isTensor() || out.toTensor().dim() != 2 || out.toTensor().size(0) != shape[0]) {
      throw RuntimeFailure("the model's pooled() must return [N, D] for a batch of " + std::to_string(shape[0]));
    }
    auto features = out.toTensor().to(torch::kCPU, torch::kFloat32).contiguous();
    if (wasTraining) module_.train();
    return features;
  } catch (...) {
    if (wasTraining) module_.train();
    rethrowAs<RuntimeFailure>("pooled features failed for input [" + std::to_string(shape[0]) + ", " +
                              std::to_string(shape[1]) + ", " + std::to_string(shape[2]) + ", " +
                              std::to_string(shape[3]) + "]");
  }
}

std::pair<at::Tensor, at::Tensor> TorchModel::forwardHead(const at::Tensor& pooled) {
  requireHead();
  return splitOutput(module_.run_method("head", pooled));
}

void TorchModel::setTraining(bool training) {
  if (!onModelThreadNow()) return onModelThread([&] { setTraining(training); });
  if (training && inferenceOnly_) {
    throw RangeError("this model was loaded for inference only; load it without `inference` to train");
  }
  training_.store(training);
  if (training) {
    module_.train();
  } else {
    module_.eval();
  }
}

bool TorchModel::training() const { return training_.load(); }

void TorchModel::save(const std::string& path) {
  if (!onModelThreadNow()) return onModelThread([&] { save(path); });
  if (inferenceOnly_) {
    throw RangeError("this model was loaded for inference only (frozen); save the checkpoint it was loaded from");
  }
  writeAtomically(path, [&](const std::string& tmp) {
    try {
      torch::jit::ExtraFilesMap extra;
      const auto meta = metadata();
      if (!meta.empty()) extra[kMetadataFile] = meta;
      module_.save(tmp, extra);
    } catch (...) {
      rethrowAs<SaveError>("TorchScript save failed");
    }
  });
}

std::string TorchModel::metadata() const {
  std::lock_guard<std::mutex> lock(metadataMutex_);
  return metadata_;
}

void TorchModel::setMetadata(std::string metadata) {
  std::lock_guard<std::mutex> lock(metadataMutex_);
  metadata_ = std::move(metadata);
}

int64_t TorchModel::parameterCount() const { return parameterCount_; }

std::vector<at::Tensor> TorchModel::buffers() const {
  std::vector<at::Tensor> out;
  for (const auto& b : module_.buffers()) out.push_back(b);
  return out;
}

}  // namespace tf
