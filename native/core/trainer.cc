#include "trainer.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/serialize.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <functional>
#include <sstream>

#include "atomic_file.h"
#include "compat.h"
#include "errors.h"
#include "layer_decay.h"
#include "loss.h"
#include "optim_step.h"
#include "runtime.h"

namespace tf {

void validateTrainerOptions(const TrainerOptions& o) {
  if (o.optimizer != "adam" && o.optimizer != "adamw" && o.optimizer != "sgd") {
    throw RangeError("optimizer must be one of 'adam', 'adamw', 'sgd', received '" + o.optimizer + "'");
  }
  requireFinite(o.learningRate, "learningRate", 0.0, 10.0);
  if (o.learningRate <= 0) throw RangeError("learningRate must be greater than 0, received 0");
  requireFinite(o.weightDecay, "weightDecay", 0.0, 1.0);
  requireFinite(o.momentum, "momentum", 0.0, 1.0);
  requireFinite(o.gradClipNorm, "gradClipNorm", 0.0, 1e6);
  validateLossWeights({o.ceWeight, o.contrastiveWeight, o.margin, o.labelSmoothing});
  requireFinite(o.scaler.initScale, "initScale", 1.0, 3.4e38);
  requireFinite(o.scaler.growthFactor, "growthFactor", 1.0, 1e3);
  requireFinite(o.scaler.backoffFactor, "backoffFactor", 1e-6, 1.0);
  if (o.scaler.growthInterval < 1) throw RangeError("growthInterval must be at least 1");
  requireFinite(o.emaDecay, "emaDecay", 0.0, 1.0);
  if (o.emaDecay >= 1) throw RangeError("emaDecay must be below 1 (0 turns the average off), received 1");
  requireFinite(o.layerDecay, "layerDecay", 0.0, 1.0);
  if (o.layerDecay <= 0) throw RangeError("layerDecay must be greater than 0 (1 turns it off), received 0");
}

namespace {

std::string shortNumber(double v) {
  std::ostringstream s;
  s << v;
  return s.str();
}

// One optimizer over the groups, group i at the rate base * scales[i]; a single group of factor 1 is the plain
// optimizer over all the parameters.
template <typename Optimizer, typename Options>
std::unique_ptr<torch::optim::Optimizer> makeOptimizer(std::vector<std::vector<at::Tensor>> groups,
                                                       const std::vector<double>& scales, const Options& defaults) {
  if (groups.size() == 1 && scales.front() == 1.0) return std::make_unique<Optimizer>(groups.front(), defaults);
  std::vector<torch::optim::OptimizerParamGroup> paramGroups;
  for (size_t i = 0; i < groups.size(); ++i) {
    auto options = std::make_unique<Options>(defaults);
    options->lr(defaults.lr() * scales[i]);
    paramGroups.emplace_back(std::move(groups[i]), std::move(options));
  }
  return std::make_unique<Optimizer>(std::move(paramGroups), defaults);
}

}  // namespace

Trainer::Trainer(std::shared_ptr<TorchModel> model, TrainerOptions options)
    : model_(std::move(model)), options_(std::move(options)) {
  if (!model_) throw TypeError("model is required");
  validateTrainerOptions(options_);
  if (options_.amp && !model_->device().is_cuda()) {
    throw RangeError("amp (fp16 autocast) needs a CUDA model; the model is on " + model_->device().str());
  }
  const auto& all = model_->parameters();
  const auto& names = model_->parameterNames();
  // Depths follow the module's structure, frozen parameters included, so freezing a block moves no other's depth.
  const auto depths =
      options_.layerDecay < 1 && !names.empty() ? layerDepths(names) : std::vector<int64_t>(all.size(), 0);
  for (size_t i = 0; i < all.size(); ++i) {
    if (!all[i].requires_grad()) continue;
    params_.push_back(all[i]);
    scales_.push_back({names[i], depths[i], std::pow(options_.layerDecay, static_cast<double>(depths[i]))});
  }
  if (params_.empty()) throw RangeError("the model has no trainable parameters");
  if (options_.channelsLast) {
    // Convolutions in NHWC order (oneDNN's layout on the CPU): the 4-D weights move once, here, the step's batch
    // is laid out so, and the gradients and optimizer state follow the weights.
    model_->onModelThread([&] {
      torch::NoGradGuard noGrad;
      for (auto& p : model_->parameters()) {
        if (p.dim() == 4) p.set_data(p.contiguous(at::MemoryFormat::ChannelsLast));
      }
    });
  }
  // One parameter group per depth, deepest first (the head, factor 1, last).
  std::vector<int64_t> groupDepths;
  for (const auto& s : scales_) groupDepths.push_back(s.depth);
  std::sort(groupDepths.begin(), groupDepths.end(), std::greater<>());
  groupDepths.erase(std::unique(groupDepths.begin(), groupDepths.end()), groupDepths.end());
  std::vector<std::vector<at::Tensor>> groups(groupDepths.size());
  for (size_t i = 0; i < params_.size(); ++i) {
    const auto g = std::find(groupDepths.begin(), groupDepths.end(), scales_[i].depth) - groupDepths.begin();
    groups[g].push_back(params_[i]);
  }
  for (const auto d : groupDepths) groupScales_.push_back(std::pow(options_.layerDecay, static_cast<double>(d)));
  if (options_.optimizer == "adam") {
    optimizer_ = makeOptimizer<torch::optim::Adam>(
        std::move(groups), groupScales_,
        torch::optim::AdamOptions(options_.learningRate).weight_decay(options_.weightDecay));
  } else if (options_.optimizer == "adamw") {
    optimizer_ = makeOptimizer<torch::optim::AdamW>(
        std::move(groups), groupScales_,
        torch::optim::AdamWOptions(options_.learningRate).weight_decay(options_.weightDecay));
  } else {
    optimizer_ = makeOptimizer<torch::optim::SGD>(
        std::move(groups), groupScales_,
        torch::optim::SGDOptions(options_.learningRate).momentum(options_.momentum).weight_decay(options_.weightDecay));
  }
  lr_.store(options_.learningRate);
  if (options_.amp || options_.gradScaler) scaler_.emplace(options_.scaler, model_->device());
}

StepResult Trainer::step(const TripletBatch& batch) {
  return model_->onModelThread([&] { return run(batch, true); });
}
StepResult Trainer::evaluate(const TripletBatch& batch) {
  return model_->onModelThread([&] { return run(batch, false); });
}

int64_t checkFeatureShape(const std::vector<int64_t>& shape, const std::string& what) {
  if (shape.size() != 2) {
    throw TypeError(what + " must have shape [N, D] (pooled features), received " + std::to_string(shape.size()) +
                    " dimension(s)");
  }
  for (const auto d : shape) {
    if (d < 1 || d > (1 << 20)) {
      throw RangeError(what + " dimensions must be between 1 and 1048576, received " + std::to_string(d));
    }
  }
  if (shape[0] * shape[1] > (int64_t{1} << 31)) throw RangeError(what + " is too large");
  return shape[0] * shape[1];
}

StepResult Trainer::run(const TripletBatch& batch, bool train) {
  if (train && emaSwapped_.load()) {
    throw RangeError("the weights' moving average is swapped in (swapEma): swap it back before training");
  }
  if (batch.pooled) {
    checkFeatureShape(batch.shape, "batch");
    model_->requireHead();
  } else {
    checkImageShape(batch.shape, "batch");
  }
  const int64_t b = batch.shape[0];
  if (static_cast<int64_t>(batch.labels.size()) != b) {
    throw TypeError("labels must have one entry per query (" + std::to_string(b) + "), received " +
                    std::to_string(batch.labels.size()));
  }
  applyThreadSettings();
  if (lrChanged_.exchange(false)) {
    const double lr = lr_.load();
    auto& groups = optimizer_->param_groups();
    for (size_t i = 0; i < groups.size(); ++i) groups[i].options().set_lr(lr * groupScales_[i]);
  }
  const auto device = model_->device();
  StepResult r;
  r.count = b;
  try {
    std::optional<torch::NoGradGuard> noGrad;
    if (!train) noGrad.emplace();
    // One forward over the concatenated triplet: BatchNorm sees all three parts, and it is one big call.
    // Each part is copied straight into its slice of the device batch (no concatenated copy on the host first).
    std::vector<int64_t> all = batch.shape;
    all[0] = 3 * b;
    const bool nhwc = options_.channelsLast && all.size() == 4;
    auto images = torch::empty(all, torch::TensorOptions().dtype(torch::kFloat32).device(device),
                               nhwc ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous);
    const float* sources[] = {batch.query, batch.positive, batch.negative};
    for (int64_t i = 0; i < 3; ++i) {
      images.narrow(0, i * b, b).copy_(torch::from_blob(const_cast<float*>(sources[i]), batch.shape, torch::kFloat32));
    }
    auto labels = torch::tensor(batch.labels, torch::kLong);
    const auto numClasses = [&](const at::Tensor& logits) { return logits.size(1); };
    const bool autocast = options_.amp && train;
    const bool wasTraining = model_->training();
    model_->setTraining(train);
    if (autocast) compat::setCudaAutocast(true);
    auto [logits, embedding] = batch.pooled ? model_->forwardHead(images) : model_->forwardTrain(images);
    if (autocast) {
      compat::setCudaAutocast(false);
      compat::clearAutocastCache();
    }
    if (!train && wasTraining) model_->setTraining(true);
    logits = logits.to(torch::kFloat32);
    embedding = embedding.to(torch::kFloat32);
    checkLabels(labels, numClasses(logits));
    labels = labels.to(device);
    auto parts = logits.split(b);
    auto emb = embedding.split(b);
    const auto qLogits = parts[0];
    auto terms = tripletLoss(qLogits, labels, emb[0], emb[1], emb[0], emb[2],
                             {options_.ceWeight, options_.contrastiveWeight, options_.margin, options_.labelSmoothing});
    auto& loss = terms.loss;
    auto& ce = terms.ce;
    auto& contrastive = terms.contrastive;
    auto& pos = terms.positive;
    auto& neg = terms.negative;
    {
      // One device-to-host copy (one sync) for all the numbers the step reports.
      const auto correct = qLogits.argmax(1).eq(labels).sum();
      const auto values = torch::stack({loss.detach().to(torch::kFloat64), ce.detach().to(torch::kFloat64),
                                        contrastive.detach().to(torch::kFloat64), pos.detach().to(torch::kFloat64),
                                        neg.detach().to(torch::kFloat64), correct.to(torch::kFloat64)})
                              .to(torch::kCPU);
      const double* v = values.data_ptr<double>();
      r.loss = v[0];
      r.ce = v[1];
      r.contrastive = v[2];
      r.positiveLoss = v[3];
      r.negativeLoss = v[4];
      r.correct = static_cast<int64_t>(v[5]);
    }
    if (!train) {
      auto cpu = qLogits.detach().to(torch::kCPU).contiguous();
      r.logits.assign(cpu.data_ptr<float>(), cpu.data_ptr<float>() + cpu.numel());
      r.scale = scaler_ ? scaler_->currentScale() : 1.0;
      return r;
    }
    if (!std::isfinite(r.loss) && !scaler_) {
      throw RuntimeFailure("the loss is not finite (" + std::to_string(r.loss) +
                           "); lower the learning rate or enable gradient clipping");
    }
    // The head phase runs on each rank alone: its gradients are not averaged.
    GradientSync* sync = batch.pooled ? nullptr : sync_.get();
    if (batch.pooled) {
      // No gradient at all before backward, so only the head's parameters get one and only they are updated (an
      // optimizer skips a parameter without one: no weight decay or momentum reaches the backbone).
      for (auto& p : params_) p.mutable_grad() = at::Tensor();
    } else {
      optimizer_->zero_grad();
    }
    if (scaler_) {
      auto scaled = scaler_->scale(loss);
      if (sync) sync->beforeBackward(scaled);
      scaled.backward();
      if (sync) sync->afterBackward(params_);
      bool finite = scaler_->unscale(params_);
      if (sync) finite = sync->allFinite(finite);
      r.gradNorm = gradNormAndClip(params_, options_.gradClipNorm);
      if (finite) {
        multiTensorStep(*optimizer_, options_.optimizer);
      } else {
        r.skipped = true;
      }
      scaler_->update();
      r.scale = scaler_->currentScale();
    } else {
      if (sync) sync->beforeBackward(loss);
      loss.backward();
      if (sync) sync->afterBackward(params_);
      r.gradNorm = gradNormAndClip(params_, options_.gradClipNorm);
      multiTensorStep(*optimizer_, options_.optimizer);
    }
    // The average follows the fine-tune: a head-only step (before it) moves no backbone weight, and the average then
    // starts from the weights the head phase left.
    if (!batch.pooled && !r.skipped && options_.emaDecay > 0) updateEma();
    ++steps_;
    return r;
  } catch (...) {
    if (options_.amp) compat::setCudaAutocast(false);
    rethrowAs<RuntimeFailure>(train ? "training step failed" : "evaluation failed");
  }
}

void Trainer::updateEma() {
  torch::NoGradGuard noGrad;
  if (ema_.empty()) {
    ema_.reserve(params_.size());
    for (const auto& p : params_) ema_.push_back(p.detach().clone());
  }
  const auto n = static_cast<double>(emaUpdates_.load() + 1);
  // The warm-up of the decay keeps the first averages close to the current weights (as timm's ModelEmaV2 does).
  const double decay = std::min(options_.emaDecay, (1.0 + n) / (10.0 + n));
  for (size_t i = 0; i < params_.size(); ++i) ema_[i].lerp_(params_[i].detach(), 1.0 - decay);
  ++emaUpdates_;
}

bool Trainer::swapEma() {
  if (!model_->onModelThreadNow()) return model_->onModelThread([&] { return swapEma(); });
  if (ema_.empty()) return false;
  torch::NoGradGuard noGrad;
  for (size_t i = 0; i < params_.size(); ++i) {
    // set_data keeps the parameter object (the module's slot and the optimizer's key) and trades its storage.
    at::Tensor current = params_[i].data();
    params_[i].set_data(ema_[i]);
    ema_[i] = current;
  }
  emaSwapped_.store(!emaSwapped_.load());
  return true;
}

void Trainer::setGradientSync(std::shared_ptr<GradientSync> sync) {
  if (sync && options_.channelsLast) {
    throw RangeError(
        "channels-last training does not run data-parallel yet (the gradient buckets and the start-up broadcast take "
        "contiguous tensors): use trainer.memory_format=contiguous with several ranks");
  }
  model_->onModelThread([&] {
    if (sync_ && sync_ != sync) sync_->detach();
    sync_ = std::move(sync);
  });
}

void Trainer::setLearningRate(double lr) {
  requireFinite(lr, "learningRate", 0.0, 10.0);
  lr_.store(lr);
  lrChanged_.store(true);
}

double Trainer::learningRate() const { return lr_.load(); }

void Trainer::saveState(const std::string& path) {
  if (!model_->onModelThreadNow()) return model_->onModelThread([&] { saveState(path); });
  if (emaSwapped_.load()) {
    throw RangeError("the weights' moving average is swapped in (swapEma): swap it back before saving the state");
  }
  writeAtomically(path, [&](const std::string& tmp) {
    torch::serialize::OutputArchive archive;
    torch::serialize::OutputArchive opt;
    optimizer_->save(opt);
    archive.write("optimizer", opt);
    archive.write("optimizer_name", c10::IValue(options_.optimizer));
    archive.write("steps", c10::IValue(steps_.load()));
    archive.write("param_count", c10::IValue(static_cast<int64_t>(params_.size())));
    archive.write("layer_decay", c10::IValue(options_.layerDecay));
    // Random state (dropout, augmentation on the native side) so a resumed run continues exactly.
    archive.write("rng_cpu", at::detail::getDefaultCPUGenerator().get_state(), /*is_buffer=*/true);
    if (scaler_) {
      archive.write("scaler_scale", scaler_->scaleTensor().cpu(), /*is_buffer=*/true);
      archive.write("scaler_growth", scaler_->growthTracker().cpu(), /*is_buffer=*/true);
    }
    if (!ema_.empty()) {
      archive.write("ema_updates", c10::IValue(emaUpdates_.load()));
      for (size_t i = 0; i < ema_.size(); ++i) {
        archive.write("ema_" + std::to_string(i), ema_[i].cpu().contiguous(), /*is_buffer=*/true);
      }
    }
    try {
      archive.save_to(tmp);
    } catch (...) {
      rethrowAs<SaveError>("trainer state save failed");
    }
  });
}

void Trainer::loadState(const std::string& path) {
  if (!model_->onModelThreadNow()) return model_->onModelThread([&] { loadState(path); });
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    throw ModelLoadError("cannot load trainer state '" + path + "': file not found");
  }
  try {
    torch::serialize::InputArchive archive;
    archive.load_from(path, model_->device());
    c10::IValue name, steps, count;
    archive.read("optimizer_name", name);
    archive.read("steps", steps);
    archive.read("param_count", count);
    if (name.toStringRef() != options_.optimizer) {
      throw ModelLoadError("cannot load trainer state '" + path + "': it was saved with optimizer '" +
                           name.toStringRef() + "', this trainer uses '" + options_.optimizer + "'");
    }
    if (count.toInt() != static_cast<int64_t>(params_.size())) {
      throw ModelLoadError("cannot load trainer state '" + path + "': it holds " + std::to_string(count.toInt()) +
                           " parameter tensors, the model has " + std::to_string(params_.size()));
    }
    // The parameter groups follow from the decay: another decay would pair the saved groups with the wrong ones.
    c10::IValue decay;
    const double savedDecay = archive.try_read("layer_decay", decay) ? decay.toDouble() : 1.0;
    if (savedDecay != options_.layerDecay) {
      throw ModelLoadError("cannot load trainer state '" + path + "': it was saved with layerDecay " +
                           shortNumber(savedDecay) + ", this trainer uses " + shortNumber(options_.layerDecay));
    }
    torch::serialize::InputArchive opt;
    archive.read("optimizer", opt);
    optimizer_->load(opt);
    // The base rate, from the head's group (factor 1 when the head is trainable, so the division is exact).
    lr_.store(optimizer_->param_groups().back().options().get_lr() / groupScales_.back());
    lrChanged_.store(false);
    steps_.store(steps.toInt());
    at::Tensor rng;
    if (archive.try_read("rng_cpu", rng, true)) {
      auto gen = at::detail::getDefaultCPUGenerator();
      gen.set_state(rng.to(torch::kCPU));
    }
    if (scaler_) {
      at::Tensor s, g;
      if (archive.try_read("scaler_scale", s, true) && archive.try_read("scaler_growth", g, true)) {
        scaler_->scaleTensor().copy_(s);
        scaler_->growthTracker().copy_(g);
      }
    }
    // The moving average, when the state has one and this trainer keeps one (else it starts at the next step).
    ema_.clear();
    emaUpdates_.store(0);
    c10::IValue emaUpdates;
    if (options_.emaDecay > 0 && archive.try_read("ema_updates", emaUpdates)) {
      std::vector<at::Tensor> loaded;
      for (size_t i = 0; i < params_.size(); ++i) {
        at::Tensor t;
        if (!archive.try_read("ema_" + std::to_string(i), t, true) || !t.sizes().equals(params_[i].sizes())) {
          throw ModelLoadError("cannot load trainer state '" + path + "': its weight average does not match the model");
        }
        loaded.push_back(t.to(params_[i].device()).contiguous(params_[i].suggest_memory_format()));
      }
      ema_ = std::move(loaded);
      emaUpdates_.store(emaUpdates.toInt());
    }
  } catch (...) {
    rethrowAs<ModelLoadError>("cannot load trainer state '" + path + "' (not a trainer state file?)");
  }
}

}  // namespace tf
