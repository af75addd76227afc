// One process's membership of a data-parallel group: c10d's TCPStore rendezvous and a Gloo (CPU) or NCCL (CUDA)
// process group, laid out in the store exactly as Python's torch.distributed.init_process_group(backend,
// init_method="env://") lays it out, so Node and Python ranks can share one group. Plain C++ (no napi.h); compiled
// to a stub that throws DeviceUnavailableError when the build has no c10d (TF_WITH_DIST unset).
#pragma once

#include <ATen/ATen.h>

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace tf::dist {

enum class Backend { Gloo, Nccl };

struct ProcessGroupOptions {
  // Gloo: collectives on CPU tensors. NCCL: on cudaDevice (the rank's GPU, LOCAL_RANK under torchrun).
  Backend backend = Backend::Gloo;
  int cudaDevice = 0;
  std::string masterAddr = "127.0.0.1";
  int port = 29500;
  int rank = 0;
  int worldSize = 1;
  // Bounds the rendezvous, every store read and every collective: a rank that dies, hangs or never joins ends the
  // others' calls with an error after this long.
  std::chrono::milliseconds timeout{std::chrono::minutes(5)};
  // torchrun's agent runs the store (TORCHELASTIC_USE_AGENT_STORE=True): connect as a client, under the prefix
  // "/worker/attempt_<restartCount>" as torchrun's Python workers do.
  bool useAgentStore = false;
  int restartCount = 0;
  // Network interfaces for Gloo's transport (GLOO_SOCKET_IFNAME's list); empty: the address this host's name
  // resolves to, else loopback.
  std::vector<std::string> interfaces;
};

// What this build supports, for the runtime report.
bool distributedCompiled();
// Why distributed training, or one of its backends, is not compiled in (empty when both are).
std::string distributedNote();
// The backends compiled in: "gloo", "nccl".
std::vector<std::string> distributedBackends();
const char* backendName(Backend backend);

enum class ReduceOp { Sum, Avg, Max, Min };

class ProcessGroup {
 public:
  // Joins the group: blocks until every rank has joined or the timeout passed. Throws RangeError for bad options,
  // DistributedError when the rendezvous fails or times out, DeviceUnavailableError without c10d or the backend in
  // the build, or (NCCL) without the CUDA device.
  static std::shared_ptr<ProcessGroup> join(const ProcessGroupOptions& options);
  ~ProcessGroup();

  int rank() const { return options_.rank; }
  int worldSize() const { return options_.worldSize; }
  Backend backend() const { return options_.backend; }
  // Where the collectives' tensors live: the CPU (Gloo) or the rank's CUDA device (NCCL).
  at::Device device() const;

  // Blocking collectives, in place; a tensor elsewhere than device() travels through a copy there. Every rank must
  // make the same calls in the same order.
  // Throw DistributedError (a peer failed or timed out) or DisposedError after destroy().
  void allReduce(at::Tensor& tensor, ReduceOp op = ReduceOp::Sum);
  void broadcast(at::Tensor& tensor, int root);
  void barrier();

  // Starts a sum all-reduce of a tensor on device() and returns a handle; wait(handle) blocks until it is done and
  // throws what it failed with. Lets several buckets travel while the caller prepares the next one.
  class Pending;
  std::shared_ptr<Pending> allReduceAsync(at::Tensor& tensor);
  void wait(const std::shared_ptr<Pending>& pending);
  // True when the all-reduce has finished (without waiting; failed counts as finished).
  bool done(const std::shared_ptr<Pending>& pending) const;

  // Leaves the group: later calls throw DisposedError. Idempotent.
  void destroy();

 private:
  struct Impl;
  explicit ProcessGroup(ProcessGroupOptions options);
  std::shared_ptr<Impl> impl() const;

  ProcessGroupOptions options_;
  mutable std::mutex mutex_;
  std::shared_ptr<Impl> impl_;  // null once destroyed
};

}  // namespace tf::dist
