// One process's membership of a data-parallel group: c10d's TCPStore rendezvous and a Gloo process group, laid out
// in the store exactly as Python's torch.distributed.init_process_group("gloo", init_method="env://") lays it out,
// so Node and Python ranks can share one group. Plain C++ (no napi.h); compiled to a stub that throws
// DeviceUnavailableError when the build has no c10d (TF_WITH_DIST unset).
#pragma once

#include <ATen/ATen.h>

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace tf::dist {

struct ProcessGroupOptions {
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
// Why distributed training is not compiled in (empty when it is).
std::string distributedNote();

enum class ReduceOp { Sum, Avg, Max, Min };

class ProcessGroup {
 public:
  // Joins the group: blocks until every rank has joined or the timeout passed. Throws RangeError for bad options,
  // DistributedError when the rendezvous fails or times out, DeviceUnavailableError without c10d in the build.
  static std::shared_ptr<ProcessGroup> join(const ProcessGroupOptions& options);
  ~ProcessGroup();

  int rank() const { return options_.rank; }
  int worldSize() const { return options_.worldSize; }

  // Blocking collectives on CPU float tensors, in place. Every rank must make the same calls in the same order.
  // Throw DistributedError (a peer failed or timed out) or DisposedError after destroy().
  void allReduce(at::Tensor& tensor, ReduceOp op = ReduceOp::Sum);
  void broadcast(at::Tensor& tensor, int root);
  void barrier();

  // Starts a sum all-reduce and returns a handle; wait(handle) blocks until it is done and throws what it failed
  // with. Lets several buckets travel while the caller prepares the next one.
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
