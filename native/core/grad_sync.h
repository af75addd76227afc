// The hook through which data-parallel training (native/dist) takes part in a training step, so that the trainer
// knows nothing of c10d: after backward the gradients are averaged over the ranks, and the gradient scaler's
// found-inf verdict is agreed, so a step skipped on one rank is skipped on all.
#pragma once

#include <ATen/ATen.h>

#include <vector>

namespace tf {

class GradientSync {
 public:
  virtual ~GradientSync() = default;
  // Called on the model's thread right after backward: every parameter's gradient becomes its mean over the ranks
  // (an undefined gradient counts as zeros and is defined afterwards). Throws DistributedError.
  virtual void averageGradients(const std::vector<at::Tensor>& params) = 0;
  // True when the gradients were finite on every rank. Throws DistributedError.
  virtual bool allFinite(bool localFinite) = 0;
};

}  // namespace tf
