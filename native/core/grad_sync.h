// The hook through which data-parallel training (native/dist) takes part in a training step, so that the trainer
// knows nothing of c10d: the gradients are averaged over the ranks while and after backward runs, and the gradient
// scaler's found-inf verdict is agreed, so a step skipped on one rank is skipped on all.
#pragma once

#include <ATen/ATen.h>

#include <vector>

namespace tf {

class GradientSync {
 public:
  virtual ~GradientSync() = default;
  // Called on the model's thread right before root.backward() (root: the loss as it is differentiated, scaled or
  // not): from here until afterBackward the sync may send gradients as backward produces them.
  virtual void beforeBackward(const at::Tensor& root) = 0;
  // Called on the model's thread right after backward: every parameter's gradient becomes its mean over the ranks
  // (an undefined gradient counts as zeros and is defined afterwards). Throws DistributedError.
  virtual void afterBackward(const std::vector<at::Tensor>& params) = 0;
  // True when the gradients were finite on every rank. Throws DistributedError.
  virtual bool allFinite(bool localFinite) = 0;
  // Called on the model's thread when the trainer stops using this sync (another one, or none, is set): it takes no
  // part in later backward passes.
  virtual void detach() {}
};

}  // namespace tf
