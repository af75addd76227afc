// One optimisation step over a triplet batch: cross-entropy on the queries plus a cosine-embedding loss that pulls
// (query, positive) together and pushes (query, negative) apart.
#pragma once

#include <torch/optim.h>

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "grad_scaler.h"
#include "grad_sync.h"
#include "torch_model.h"

namespace tf {

struct TrainerOptions {
  std::string optimizer = "adamw";  // adam | adamw | sgd
  double learningRate = 1e-3;
  double weightDecay = 0.0;
  double momentum = 0.9;           // sgd only
  double gradClipNorm = 0.0;       // 0 = no clipping
  double ceWeight = 1.0;           // weight of the classification loss
  double contrastiveWeight = 1.0;  // weight of the cosine-embedding loss
  double margin = 0.0;             // CosineEmbeddingLoss margin for negatives, in [-1, 1]
  double labelSmoothing = 0.0;     // of the cross-entropy, in [0, 0.99]
  bool amp = false;                // fp16 autocast (CUDA only)
  bool gradScaler = false;         // dynamic loss scaling (on by default with amp)
  bool channelsLast = false;       // 4-D weights and the image batch in channels-last (NHWC) order
  // Exponential moving average of the trainable weights, updated after every full (not head-only) optimizer step:
  // ema = d * ema + (1 - d) * w with d = min(emaDecay, (1 + n) / (10 + n)) after n updates. 0 = off; in [0, 1).
  double emaDecay = 0.0;
  // Layer-wise learning-rate decay: a parameter's rate is the scheduled rate times layerDecay^depth, depth counting
  // the backbone's feature blocks back from the head (layer_decay.h). In (0, 1]; 1 = off (one parameter group).
  double layerDecay = 1.0;
  GradScalerOptions scaler;
};

// The learning-rate factor of one trainable parameter: layerDecay^depth.
struct LearningRateScale {
  std::string name;
  int64_t depth = 0;
  double scale = 1;
};

// Images of one triplet batch, each [B, C, H, W] float32 (read in place), and B int labels of the queries.
// With `pooled`, each part is instead the backbone's pooled features [B, D] (TorchModel::pooledFeatures) and the step
// runs the model's head alone: only the head's parameters get gradients and are updated, on this rank only (no
// gradient averaging: the head phase runs the same on every rank).
struct TripletBatch {
  const float* query;
  const float* positive;
  const float* negative;
  std::vector<int64_t> shape;
  std::vector<int64_t> labels;
  bool pooled = false;
};

// Checks a pooled-features shape [B, D]; returns the element count. Throws TypeError / RangeError.
int64_t checkFeatureShape(const std::vector<int64_t>& shape, const std::string& what);

struct StepResult {
  double loss = 0;  // ceWeight * ce + contrastiveWeight * contrastive
  double ce = 0;
  double contrastive = 0;  // positive + negative parts
  double positiveLoss = 0;
  double negativeLoss = 0;
  int64_t correct = 0;  // queries whose argmax equals their label
  int64_t count = 0;
  double gradNorm = 0;        // total L2 norm before clipping (0 for evaluation)
  bool skipped = false;       // the scaler found inf/NaN gradients and skipped the update
  double scale = 1;           // loss scale after the step
  std::vector<float> logits;  // query logits (evaluation only)
};

class Trainer {
 public:
  // Throws RangeError/TypeError for invalid options.
  Trainer(std::shared_ptr<TorchModel> model, TrainerOptions options);

  // Forward + backward + optimizer step in train mode.
  StepResult step(const TripletBatch& batch);
  // The same losses in eval mode without gradients (validation); also returns the query logits.
  StepResult evaluate(const TripletBatch& batch);

  // The scheduled (base) rate: each parameter group runs at base * its layer-decay scale.
  void setLearningRate(double lr);
  double learningRate() const;
  // Each trainable parameter's depth and factor, in trainableParameters() order (all 1 without layerDecay).
  const std::vector<LearningRateScale>& learningRateScales() const { return scales_; }
  // The optimizer's parameter groups (one per distinct factor, deepest first; one without layerDecay).
  size_t parameterGroupCount() const { return groupScales_.size(); }

  // Exchanges the model's trainable weights with their moving average (options.emaDecay), so evaluation and saving
  // see the average; a second call swaps them back. No copy: the tensors' storages trade places. Returns false (and
  // does nothing) when there is no average yet (off, or no full step since construction). Steps and saveState are
  // refused while the average is in. On the model's thread.
  bool swapEma();
  bool emaSwappedIn() const { return emaSwapped_.load(); }
  int64_t emaUpdates() const { return emaUpdates_.load(); }
  int64_t stepCount() const { return steps_.load(); }

  // setLearningRate is safe while a step runs: the new rate applies from the next step.
  // Optimizer, scaler and step count, for exact resume. Atomic write; throws SaveError / ModelLoadError.
  void saveState(const std::string& path);
  void loadState(const std::string& path);

  // Data-parallel training: gradients go through sync during and after backward (null: this process alone). Takes
  // effect from the next step; set it between steps. The sync it replaces is detached.
  void setGradientSync(std::shared_ptr<GradientSync> sync);
  // The trainable parameters, in the model's order (what the optimizer updates and sync averages).
  const std::vector<at::Tensor>& trainableParameters() const { return params_; }

  const TrainerOptions& options() const { return options_; }
  const std::shared_ptr<TorchModel>& model() const { return model_; }

 private:
  StepResult run(const TripletBatch& batch, bool train);
  void updateEma();

  // Everything but the atomics is used only on the model's thread (TorchModel::onModelThread), which serialises the
  // trainer's calls with each other and with the model's own: no lock needed.
  std::shared_ptr<TorchModel> model_;
  TrainerOptions options_;
  std::vector<at::Tensor> params_;
  std::vector<LearningRateScale> scales_;  // parallel to params_
  std::unique_ptr<torch::optim::Optimizer> optimizer_;
  std::vector<double> groupScales_;  // parallel to optimizer_->param_groups()
  std::optional<GradScaler> scaler_;
  std::shared_ptr<GradientSync> sync_;
  // Read from the JS thread (stepCount, learningRate, setLearningRate) while a step runs.
  std::atomic<int64_t> steps_{0};
  std::atomic<double> lr_{0.0};
  std::atomic<bool> lrChanged_{false};
  // The moving average, one tensor per trainable parameter (empty until the first full step).
  std::vector<at::Tensor> ema_;
  std::atomic<int64_t> emaUpdates_{0};
  std::atomic<bool> emaSwapped_{false};
};

// Throws RangeError naming the first invalid option.
void validateTrainerOptions(const TrainerOptions& o);

}  // namespace tf
