// The c10d and autograd differences between libtorch 1.13 (Debian, CPU) and 2.x, next to the core's own
// (core/compat.h).
// Process groups: in 1.13 ProcessGroupGloo and ProcessGroupNCCL are ProcessGroups; in 2.x they are Backends that a
// ProcessGroup holds per device type (setBackend) and dispatches its collectives to. Either way native/dist holds a
// c10d::ProcessGroup made here (makeGlooGroup, makeNcclGroup) and calls the collectives, options and Work that both
// versions share on it. Backend options: Gloo's timeout and network devices, NCCL's timeout and (2.x) the bound
// CUDA device, which creates the communicator at once so a bad rendezvous fails in join().
// Autograd: a leaf's gradient accumulator (impl::grad_accumulator; a shared_ptr until 2.13, an intrusive_ptr in 2.14)
// and its post hooks (add_post_hook returning a key
// for del_post_hook, called with (grad_inputs, grad_outputs)) are the same in 1.13 and 2.x; DDP's Reducer uses them.
#pragma once

#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/function_hook.h>
#include <torch/csrc/autograd/variable.h>

#include <utility>

#ifdef TF_WITH_DIST
#include <torch/version.h>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroup.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <chrono>
#include <string>
#include <vector>
#ifdef USE_C10D_GLOO
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif
#ifdef USE_C10D_NCCL
#include <c10/cuda/CUDAFunctions.h>
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif
#endif

namespace tf::dist::compat {

#ifdef TF_WITH_DIST
using Group = ::c10d::ProcessGroup;
using Work = ::c10d::Work;
using GroupPtr = c10::intrusive_ptr<Group>;
using StorePtr = c10::intrusive_ptr<::c10d::Store>;

#if TORCH_VERSION_MAJOR >= 2
// 2.x: a ProcessGroup that dispatches device's tensors (and, for NCCL, CPU ones too: none here) to backend.
template <typename B>
GroupPtr wrap(const StorePtr& store, int rank, int size, c10::intrusive_ptr<B> backend,
              ::c10d::ProcessGroup::BackendType type, std::vector<c10::DeviceType> devices) {
  auto group = c10::make_intrusive<Group>(store, rank, size);
  for (auto d : devices) group->setBackend(d, type, c10::intrusive_ptr<::c10d::Backend>(backend));
  group->setDefaultBackend(type);
  return group;
}
#endif

#ifdef USE_C10D_GLOO
// Gloo over the given network interfaces (none: the host's default device), for CPU tensors.
inline GroupPtr makeGlooGroup(const StorePtr& store, int rank, int size, std::chrono::milliseconds timeout,
                              const std::vector<std::string>& interfaces) {
  using Gloo = ::c10d::ProcessGroupGloo;
  auto opts = Gloo::Options::create(timeout);
  for (const auto& name : interfaces) opts->devices.push_back(Gloo::createDeviceForInterface(name));
  if (opts->devices.empty()) opts->devices.push_back(Gloo::createDefaultDevice());
  auto gloo = c10::make_intrusive<Gloo>(store, rank, size, opts);
#if TORCH_VERSION_MAJOR >= 2
  return wrap(store, rank, size, gloo, ::c10d::ProcessGroup::BackendType::GLOO, {c10::DeviceType::CPU});
#else
  return gloo;
#endif
}
#endif

#ifdef USE_C10D_NCCL
inline int cudaDeviceCount() { return static_cast<int>(c10::cuda::device_count()); }

// NCCL on one CUDA device (the rank's: LOCAL_RANK), for that device's tensors.
inline GroupPtr makeNcclGroup(const StorePtr& store, int rank, int size, std::chrono::milliseconds timeout,
                              int cudaDevice) {
  using Nccl = ::c10d::ProcessGroupNCCL;
  auto opts = Nccl::Options::create();
  opts->timeout = timeout;
  const at::Device device(at::kCUDA, static_cast<c10::DeviceIndex>(cudaDevice));
#if TORCH_VERSION_MAJOR >= 2
  auto nccl = c10::make_intrusive<Nccl>(store, rank, size, opts);
  auto group = wrap(store, rank, size, nccl, ::c10d::ProcessGroup::BackendType::NCCL, {c10::DeviceType::CUDA});
  // Binding the device creates the communicator now (as init_process_group(device_id=...) does), not on first use.
  group->setBoundDeviceId(device);
  nccl->setBoundDeviceId(device);
  nccl->eagerConnectSingleDevice(device);
  return group;
#else
  (void)device;
  return c10::make_intrusive<Nccl>(store, rank, size, opts);
#endif
}
#endif

// After the ranks have met, as Python's init_process_group does: 1.13 agrees on the group's first sequence number
// through the store; in 2.x that is gone (a no-op).
inline void initSequenceNumber(Group& group) {
#if TORCH_VERSION_MAJOR < 2
  group.setSequenceNumberForGroup();
#else
  (void)group;
#endif
}
#endif

using AutogradNode = torch::autograd::Node;
using PostHook = torch::autograd::FunctionPostHook;
using GradList = torch::autograd::variable_list;

// 1.13-2.13 hold autograd nodes in std::shared_ptr, 2.14 in c10::intrusive_ptr.
using NodePtr = decltype(torch::autograd::impl::grad_accumulator(std::declval<const at::Tensor&>()));

// The node that accumulates a leaf's gradient into .grad (created on first use; the caller keeps it alive, or the
// next forward creates another one without the hooks).
inline NodePtr gradAccumulator(const at::Tensor& leaf) { return torch::autograd::impl::grad_accumulator(leaf); }

}  // namespace tf::dist::compat
