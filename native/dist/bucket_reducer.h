// Gradient averaging for data-parallel training, as DistributedDataParallel's Reducer does it: the trainable
// parameters, last first (the order backward produces their gradients), are packed into flat buckets of about
// bucketBytes (the first one smaller, so communication starts early). A post hook on each parameter's gradient
// accumulator copies the gradient into its bucket as soon as backward has produced it, and a bucket whose gradients
// are all in starts its sum all-reduce at once, travelling while backward goes on. Buckets start in the same order on
// every rank (a complete bucket waits for the ones before it), as c10d's collectives must be called. After backward
// the rest (gradients that never arrived: parameters the loss does not reach count as zeros) are sent, all are
// awaited, divided by the world size and copied back into .grad.
#pragma once

#include <atomic>
#include <exception>
#include <memory>
#include <mutex>
#include <vector>

#include "../core/grad_sync.h"
#include "compat.h"
#include "process_group.h"

namespace tf::dist {

struct BucketOptions {
  int64_t bucketBytes = 25 << 20;      // DDP's bucket_cap_mb = 25
  int64_t firstBucketBytes = 1 << 20;  // DDP's first bucket: 1 MiB
};

// Time and bytes spent in gradient communication, for the step's communication share.
struct SyncStats {
  int64_t steps = 0;
  int64_t buckets = 0;  // all-reduces of gradient buckets started
  int64_t bytes = 0;
  // Buckets whose all-reduce started before backward returned, and those of them already finished by then (the
  // communication backward hid completely).
  int64_t bucketsInBackward = 0;
  int64_t bucketsDoneInBackward = 0;
  int64_t collectives = 0;       // every collective the reducer issued (buckets and found-inf agreements)
  double seconds = 0;            // time the step spent averaging: the hooks, afterBackward and allFinite
  double inBackwardSeconds = 0;  // the hooks' part of it (packing gradients, starting all-reduces during backward)
};

class BucketReducer : public GradientSync, public std::enable_shared_from_this<BucketReducer> {
 public:
  // Plans the buckets over params (CPU or CUDA leaf tensors of floating type), on the group's device (the CPU for
  // Gloo, the rank's GPU for NCCL). Throws RangeError for bad options.
  // Owned by a shared_ptr its hooks send gradients during backward; otherwise everything waits for afterBackward.
  BucketReducer(std::shared_ptr<ProcessGroup> group, const std::vector<at::Tensor>& params, BucketOptions options);
  ~BucketReducer() override;

  // Hooks the gradient accumulators (first call), finds the parameters root's graph does not reach, arms the hooks.
  void beforeBackward(const at::Tensor& root) override;
  void afterBackward(const std::vector<at::Tensor>& params) override;
  // Right after afterBackward every rank holds the same averaged gradients (one all-reduce result, sent to all), and
  // any rank's inf or NaN is in the sum: the local verdict over them is every rank's, so no collective is needed.
  // Otherwise one max all-reduce of the flag.
  bool allFinite(bool localFinite) override;
  // Removes the hooks (on the model's thread, between steps).
  void detach() override;

  // Bucket sizes in bytes, in the order they are sent.
  std::vector<int64_t> bucketSizes() const;
  SyncStats stats() const;

 private:
  struct Bucket {
    std::vector<size_t> members;  // indices into the parameter list
    at::Tensor flat;
  };
  struct Place {
    size_t bucket = 0;
    int64_t offset = 0;
  };
  class ReadyHook;

  void addHooks();
  void removeHooks();
  void resetStep();
  // Called by a hook when backward has accumulated parameter i's gradient. Never throws: a failure is kept for
  // afterBackward.
  void gradientReady(size_t i);
  void pack(size_t i);
  void markReady(size_t i);
  void startReadyBuckets(bool inBackward);

  std::shared_ptr<ProcessGroup> group_;
  std::vector<at::Tensor> params_;
  std::vector<Bucket> buckets_;
  std::vector<Place> places_;  // per parameter
  // The parameters' gradient accumulators, kept alive so their hooks stay, and the hooks' keys.
  std::vector<compat::NodePtr> accumulators_;
  std::vector<uintptr_t> hookKeys_;

  // One step's state, on the model's thread (and autograd's device threads, hence the lock).
  std::mutex mutex_;
  bool armed_ = false;     // between beforeBackward and afterBackward
  bool averaged_ = false;  // afterBackward finished and allFinite not yet asked
  std::vector<char> ready_;
  std::vector<size_t> missing_;  // per bucket: gradients not yet packed
  size_t next_ = 0;              // the next bucket to start
  std::vector<std::shared_ptr<ProcessGroup::Pending>> pending_;
  std::exception_ptr failure_;

  // Written on the model thread, read from the JS thread.
  std::atomic<int64_t> steps_{0}, bytes_{0}, sentBuckets_{0}, inBackward_{0}, doneInBackward_{0}, collectives_{0},
      nanos_{0}, hookNanos_{0};
};

// Copies rank root's values of every tensor into the others' (parameters and buffers at the start of training), one
// flat broadcast per dtype on the group's device. Throws DistributedError.
void broadcastTensors(ProcessGroup& group, const std::vector<at::Tensor>& tensors, int root = 0);

}  // namespace tf::dist
