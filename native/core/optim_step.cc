#include "optim_step.h"

#include <ATen/ATen.h>

#include <cmath>
#include <sstream>
#include <type_traits>

namespace tf {

namespace {

// The key torch::optim uses for a parameter's state: the TensorImpl pointer, as a string in libtorch 1.x and as
// void* in later versions.
template <typename Map>
typename Map::key_type stateKey(const Map&, const at::Tensor& p) {
  using Key = typename Map::key_type;
  if constexpr (std::is_same_v<Key, std::string>) {
    std::ostringstream s;
    s << p.unsafeGetTensorImpl();
    return s.str();
  } else {
    return static_cast<Key>(p.unsafeGetTensorImpl());
  }
}

struct Group {
  torch::optim::OptimizerParamGroup* group = nullptr;
  std::vector<at::Tensor> params, grads, first, second;  // first/second: exp_avg/exp_avg_sq or momentum buffers
  std::vector<torch::optim::OptimizerParamState*> states;
};

template <typename State>
bool collectAdam(torch::optim::Optimizer& opt, Group& g) {
  auto& state = opt.state();
  int64_t step = -1;
  for (auto& p : g.group->params()) {
    if (!p.grad().defined()) continue;
    auto it = state.find(stateKey(state, p));
    if (it == state.end()) return false;
    auto& s = static_cast<State&>(*it->second);
    if (step >= 0 && s.step() != step) return false;  // parameters at different steps: leave it to torch::optim
    step = s.step();
    g.params.push_back(p);
    g.grads.push_back(p.grad());
    g.first.push_back(s.exp_avg());
    g.second.push_back(s.exp_avg_sq());
    g.states.push_back(&s);
  }
  return true;
}

// exp_avg = beta1 * exp_avg + (1 - beta1) * grad; exp_avg_sq = beta2 * exp_avg_sq + (1 - beta2) * grad^2;
// param -= lr / bc1 * exp_avg / (sqrt(exp_avg_sq) / sqrt(bc2) + eps), as torch::optim::Adam(W)::step.
template <typename State>
void adamUpdate(Group& g, const std::vector<at::Tensor>& grads, double lr, double beta1, double beta2, double eps) {
  if (g.params.empty()) return;
  int64_t step = 0;
  for (auto* s : g.states) {
    auto& st = static_cast<State&>(*s);
    st.step(st.step() + 1);
    step = st.step();
  }
  const double bc1 = 1 - std::pow(beta1, static_cast<double>(step));
  const double bc2 = 1 - std::pow(beta2, static_cast<double>(step));
  at::_foreach_mul_(g.first, beta1);
  at::_foreach_add_(g.first, grads, 1 - beta1);
  at::_foreach_mul_(g.second, beta2);
  at::_foreach_addcmul_(g.second, grads, grads, 1 - beta2);
  auto denom = at::_foreach_sqrt(g.second);
  at::_foreach_div_(denom, std::sqrt(bc2));
  at::_foreach_add_(denom, eps);
  at::_foreach_addcdiv_(g.params, g.first, denom, -lr / bc1);
}

}  // namespace

bool multiTensorStep(torch::optim::Optimizer& opt, const std::string& kind) {
  torch::NoGradGuard noGrad;
  const auto fallback = [&opt] {
    opt.step();
    return false;
  };
  std::vector<Group> groups;
  // First find every state: if one is missing nothing has been changed yet and torch::optim takes the step.
  for (auto& group : opt.param_groups()) {
    Group g;
    g.group = &group;
    if (kind == "adamw") {
      const auto& o = static_cast<const torch::optim::AdamWOptions&>(group.options());
      if (o.amsgrad() || !collectAdam<torch::optim::AdamWParamState>(opt, g)) return fallback();
    } else if (kind == "adam") {
      const auto& o = static_cast<const torch::optim::AdamOptions&>(group.options());
      if (o.amsgrad() || !collectAdam<torch::optim::AdamParamState>(opt, g)) return fallback();
    } else if (kind == "sgd") {
      const auto& o = static_cast<const torch::optim::SGDOptions&>(group.options());
      if (o.nesterov()) return fallback();
      auto& state = opt.state();
      for (auto& p : group.params()) {
        if (!p.grad().defined()) continue;
        if (o.momentum() != 0) {
          auto it = state.find(stateKey(state, p));
          if (it == state.end()) return fallback();
          g.first.push_back(static_cast<torch::optim::SGDParamState&>(*it->second).momentum_buffer());
        }
        g.params.push_back(p);
        g.grads.push_back(p.grad());
      }
    } else {
      return fallback();
    }
    groups.push_back(std::move(g));
  }
  for (auto& g : groups) {
    if (g.params.empty()) continue;
    if (kind == "adamw") {
      const auto& o = static_cast<const torch::optim::AdamWOptions&>(g.group->options());
      if (o.weight_decay() != 0) at::_foreach_mul_(g.params, 1 - o.lr() * o.weight_decay());
      adamUpdate<torch::optim::AdamWParamState>(g, g.grads, o.lr(), std::get<0>(o.betas()), std::get<1>(o.betas()),
                                                o.eps());
    } else if (kind == "adam") {
      const auto& o = static_cast<const torch::optim::AdamOptions&>(g.group->options());
      const auto grads = o.weight_decay() != 0 ? at::_foreach_add(g.grads, g.params, o.weight_decay()) : g.grads;
      adamUpdate<torch::optim::AdamParamState>(g, grads, o.lr(), std::get<0>(o.betas()), std::get<1>(o.betas()),
                                               o.eps());
    } else {
      const auto& o = static_cast<const torch::optim::SGDOptions&>(g.group->options());
      auto d = o.weight_decay() != 0 ? at::_foreach_add(g.grads, g.params, o.weight_decay()) : g.grads;
      if (o.momentum() != 0) {
        at::_foreach_mul_(g.first, o.momentum());
        at::_foreach_add_(g.first, d, 1 - o.dampening());
        d = g.first;
      }
      at::_foreach_add_(g.params, d, -o.lr());
    }
  }
  return true;
}

double gradNormAndClip(const std::vector<at::Tensor>& params, double maxNorm) {
  torch::NoGradGuard noGrad;
  std::vector<at::Tensor> grads;
  grads.reserve(params.size());
  for (const auto& p : params) {
    if (p.grad().defined()) grads.push_back(p.grad());
  }
  if (grads.empty()) return 0.0;
  const auto norms = at::_foreach_norm(grads, 2);
  const auto total = norms.size() == 1 ? norms[0] : at::stack(norms).norm(2);
  const double norm = total.item<double>();
  if (maxNorm > 0 && std::isfinite(norm)) {
    const double coef = maxNorm / (norm + 1e-6);
    if (coef < 1) at::_foreach_mul_(grads, coef);
  }
  return norm;
}

}  // namespace tf
