#include "grad_scaler.h"

#include <ATen/Functions.h>

namespace tf {

GradScaler::GradScaler(GradScalerOptions options, const at::Device& device) : options_(options) {
  const auto f32 = at::TensorOptions().dtype(at::kFloat).device(device);
  scale_ = at::full({1}, options_.initScale, f32);
  growthTracker_ = at::zeros({1}, at::TensorOptions().dtype(at::kInt).device(device));
  foundInf_ = at::zeros({1}, f32);
}

at::Tensor GradScaler::scale(const at::Tensor& loss) const { return loss * scale_.to(loss.dtype()); }

bool GradScaler::unscale(const std::vector<at::Tensor>& params) {
  foundInf_.zero_();
  const auto invScale = scale_.to(at::kDouble).reciprocal().to(at::kFloat);
  std::vector<at::Tensor> grads;
  for (const auto& p : params) {
    if (p.grad().defined()) grads.push_back(p.grad());
  }
  if (scale_.is_cuda()) {
    at::_amp_foreach_non_finite_check_and_unscale_(grads, foundInf_, invScale);
  } else {
    for (auto& g : grads) {
      if (!at::isfinite(g).all().item<bool>()) foundInf_.fill_(1.0);
      g.mul_(invScale);
    }
  }
  return foundInf_.item<float>() == 0.0f;
}

void GradScaler::update() {
  if (scale_.is_cuda()) {
    at::_amp_update_scale_(scale_, growthTracker_, foundInf_, options_.growthFactor, options_.backoffFactor,
                           options_.growthInterval);
    return;
  }
  if (foundInf_.item<float>() != 0.0f) {
    scale_.mul_(options_.backoffFactor);
    growthTracker_.zero_();
    return;
  }
  growthTracker_.add_(1);
  if (growthTracker_.item<int>() >= options_.growthInterval) {
    scale_.mul_(options_.growthFactor);
    growthTracker_.zero_();
  }
}

double GradScaler::currentScale() const { return scale_.item<double>(); }

}  // namespace tf
