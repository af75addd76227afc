// The c10d and autograd differences between libtorch 1.13 (Debian, CPU) and 2.x, next to the core's own
// (core/compat.h).
// 1.13: ProcessGroupGloo is a ProcessGroup. 2.x: it is a Backend that a ProcessGroup wraps (setBackend); both have
// the collectives, options and sequence numbers used here, so native/dist calls them on the Gloo group directly.
// Autograd: a leaf's gradient accumulator (impl::grad_accumulator) and its post hooks (add_post_hook returning a key
// for del_post_hook, called with (grad_inputs, grad_outputs)) are the same in 1.13 and 2.x; DDP's Reducer uses them.
#pragma once

#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/function_hook.h>
#include <torch/csrc/autograd/variable.h>

#ifdef TF_WITH_DIST
#include <torch/version.h>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#endif

namespace tf::dist::compat {

#ifdef TF_WITH_DIST
using GlooGroup = ::c10d::ProcessGroupGloo;
using Work = ::c10d::Work;
#endif

using AutogradNode = torch::autograd::Node;
using PostHook = torch::autograd::FunctionPostHook;
using GradList = torch::autograd::variable_list;

// The node that accumulates a leaf's gradient into .grad (created on first use; the caller keeps it alive, or the
// next forward creates another one without the hooks).
inline std::shared_ptr<AutogradNode> gradAccumulator(const at::Tensor& leaf) {
  return torch::autograd::impl::grad_accumulator(leaf);
}

}  // namespace tf::dist::compat
