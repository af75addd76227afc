// Gradient averaging for data-parallel training, as DistributedDataParallel buckets it: the trainable parameters,
// last first (the order backward produces their gradients), are packed into flat buckets of about bucketBytes (the
// first one smaller, so communication starts early), and each bucket's sum all-reduce starts as soon as it is
// packed, travelling while the next ones are packed; then all are awaited, divided by the world size and copied back.
#pragma once

#include <atomic>
#include <memory>
#include <vector>

#include "../core/grad_sync.h"
#include "process_group.h"

namespace tf::dist {

struct BucketOptions {
  int64_t bucketBytes = 25 << 20;      // DDP's bucket_cap_mb = 25
  int64_t firstBucketBytes = 1 << 20;  // DDP's first bucket: 1 MiB
};

// Time and bytes spent in gradient communication, for the step's communication share.
struct SyncStats {
  int64_t steps = 0;
  int64_t buckets = 0;
  int64_t bytes = 0;
  double seconds = 0;  // wall time inside averageGradients + allFinite
};

class BucketReducer : public GradientSync {
 public:
  // Plans the buckets over params (CPU or CUDA tensors of floating type). Throws RangeError for bad options.
  BucketReducer(std::shared_ptr<ProcessGroup> group, const std::vector<at::Tensor>& params, BucketOptions options);

  void averageGradients(const std::vector<at::Tensor>& params) override;
  bool allFinite(bool localFinite) override;

  // Bucket sizes in bytes, in the order they are sent.
  std::vector<int64_t> bucketSizes() const;
  SyncStats stats() const;

 private:
  struct Bucket {
    std::vector<size_t> members;  // indices into the parameter list
    at::Tensor flat;
  };
  std::shared_ptr<ProcessGroup> group_;
  std::vector<Bucket> buckets_;
  size_t paramCount_ = 0;
  // Written on the model thread, read from the JS thread.
  std::atomic<int64_t> steps_{0}, bytes_{0}, sentBuckets_{0}, nanos_{0};
};

// Copies rank root's values of every tensor into the others' (parameters and buffers at the start of training), one
// flat broadcast per dtype. Throws DistributedError.
void broadcastTensors(ProcessGroup& group, const std::vector<at::Tensor>& tensors, int root = 0);

}  // namespace tf::dist
