// Dynamic loss scaling for mixed-precision training (libtorch 1.13's C++ API has no GradScaler).
// On CUDA it uses the same fused kernels as torch.cuda.amp.GradScaler; on CPU plain tensor ops, so the logic is
// testable without a GPU.
#pragma once

#include <ATen/ATen.h>

#include <vector>

namespace tf {

struct GradScalerOptions {
  double initScale = 65536.0;
  double growthFactor = 2.0;
  double backoffFactor = 0.5;
  int64_t growthInterval = 2000;
};

class GradScaler {
 public:
  GradScaler(GradScalerOptions options, const at::Device& device);

  at::Tensor scale(const at::Tensor& loss) const;

  // Divides every gradient by the scale in place; returns true when all of them are finite.
  bool unscale(const std::vector<at::Tensor>& params);

  // Grows the scale after growthInterval finite steps, backs it off after an overflow.
  void update();

  double currentScale() const;
  at::Tensor& scaleTensor() { return scale_; }
  at::Tensor& growthTracker() { return growthTracker_; }

 private:
  GradScalerOptions options_;
  at::Tensor scale_;          // [1] float32
  at::Tensor growthTracker_;  // [1] int32
  at::Tensor foundInf_;       // [1] float32
};

}  // namespace tf
