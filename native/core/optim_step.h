// Multi-tensor optimizer steps and gradient norms. torch::optim's C++ optimizers update one parameter after the
// other (about ten small kernels each); with a few hundred parameters on a GPU the step is bound by kernel launches.
// These run the same arithmetic, in the same order, with ATen's _foreach_ kernels over all parameters of a group at
// once (what PyTorch's Python optimizers do by default on CUDA), on the optimizer's own state, so save/load and
// resume are unchanged.
#pragma once

#include <torch/optim.h>

#include <string>
#include <vector>

namespace tf {

// One step of `optimizer` (kind: "adam", "adamw" or "sgd", as constructed by the Trainer). Falls back to
// optimizer.step() where the per-parameter state does not exist yet (the first step creates it), and for options
// the multi-tensor path does not cover (amsgrad, nesterov). Returns true when the multi-tensor path ran.
bool multiTensorStep(torch::optim::Optimizer& optimizer, const std::string& kind);

// Total L2 norm of the gradients of `params` (parameters without a gradient are skipped). When maxNorm > 0 and the
// norm is finite and above it, the gradients are scaled by maxNorm / (norm + 1e-6). One host sync.
double gradNormAndClip(const std::vector<at::Tensor>& params, double maxNorm);

}  // namespace tf
