#include "bucket_reducer.h"

#include <chrono>
#include <map>

#include "../core/errors.h"

namespace tf::dist {

namespace {
class Timer {
 public:
  explicit Timer(std::atomic<int64_t>& total) : total_(total), start_(std::chrono::steady_clock::now()) {}
  ~Timer() {
    total_ += std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start_).count();
  }

 private:
  std::atomic<int64_t>& total_;
  std::chrono::steady_clock::time_point start_;
};
}  // namespace

BucketReducer::BucketReducer(std::shared_ptr<ProcessGroup> group, const std::vector<at::Tensor>& params,
                             BucketOptions options)
    : group_(std::move(group)), paramCount_(params.size()) {
  if (!group_) throw TypeError("a process group is required");
  if (options.bucketBytes < 1 || options.firstBucketBytes < 1) throw RangeError("bucket sizes must be positive");
  // Parameters of one bucket share dtype and device; the list is walked last first.
  Bucket current;
  int64_t currentBytes = 0;
  at::ScalarType currentType = at::kFloat;
  at::Device currentDevice = at::kCPU;
  const auto close = [&] {
    if (current.members.empty()) return;
    int64_t numel = 0;
    for (auto i : current.members) numel += params[i].numel();
    current.flat = at::empty({numel}, params[current.members.front()].options().requires_grad(false));
    buckets_.push_back(std::move(current));
    current = Bucket{};
    currentBytes = 0;
  };
  for (size_t k = params.size(); k-- > 0;) {
    const auto& p = params[k];
    if (!at::isFloatingType(p.scalar_type())) throw TypeError("gradients to average must be floating point");
    if (!current.members.empty() && (p.scalar_type() != currentType || p.device() != currentDevice)) close();
    currentType = p.scalar_type();
    currentDevice = p.device();
    current.members.push_back(k);
    currentBytes += p.numel() * static_cast<int64_t>(p.element_size());
    if (currentBytes >= (buckets_.empty() ? options.firstBucketBytes : options.bucketBytes)) close();
  }
  close();
}

void BucketReducer::averageGradients(const std::vector<at::Tensor>& params) {
  Timer timer(nanos_);
  if (params.size() != paramCount_) {
    throw TypeError("the parameter list changed since the buckets were planned (" + std::to_string(paramCount_) +
                    " then, " + std::to_string(params.size()) + " now)");
  }
  std::vector<std::shared_ptr<ProcessGroup::Pending>> pending;
  pending.reserve(buckets_.size());
  for (auto& bucket : buckets_) {
    int64_t offset = 0;
    for (auto i : bucket.members) {
      const auto& p = params[i];
      auto slot = bucket.flat.narrow(0, offset, p.numel());
      const auto& g = p.grad();
      if (g.defined()) {
        slot.copy_(g.reshape({-1}));
      } else {
        slot.zero_();
      }
      offset += p.numel();
    }
    pending.push_back(group_->allReduceAsync(bucket.flat));
    bytes_ += bucket.flat.numel() * static_cast<int64_t>(bucket.flat.element_size());
  }
  const double scale = 1.0 / group_->worldSize();
  for (size_t b = 0; b < buckets_.size(); ++b) {
    group_->wait(pending[b]);
    auto& bucket = buckets_[b];
    bucket.flat.mul_(scale);
    int64_t offset = 0;
    for (auto i : bucket.members) {
      auto p = params[i];
      auto slot = bucket.flat.narrow(0, offset, p.numel()).view(p.sizes());
      if (p.grad().defined()) {
        p.mutable_grad().copy_(slot);
      } else {
        p.mutable_grad() = slot.clone();
      }
      offset += p.numel();
    }
  }
  sentBuckets_ += static_cast<int64_t>(buckets_.size());
  ++steps_;
}

bool BucketReducer::allFinite(bool localFinite) {
  Timer timer(nanos_);
  auto flag = at::full({1}, localFinite ? 0.0f : 1.0f, at::kFloat);
  group_->allReduce(flag, ReduceOp::Max);
  return flag.item<float>() == 0.0f;
}

std::vector<int64_t> BucketReducer::bucketSizes() const {
  std::vector<int64_t> out;
  for (const auto& b : buckets_) out.push_back(b.flat.numel() * static_cast<int64_t>(b.flat.element_size()));
  return out;
}

SyncStats BucketReducer::stats() const {
  SyncStats s;
  s.steps = steps_.load();
  s.buckets = sentBuckets_.load();
  s.bytes = bytes_.load();
  s.seconds = static_cast<double>(nanos_.load()) * 1e-9;
  return s;
}

void broadcastTensors(ProcessGroup& group, const std::vector<at::Tensor>& tensors, int root) {
  // One flat tensor per dtype (parameters are float, BatchNorm's counters int64).
  std::map<at::ScalarType, std::vector<at::Tensor>> byType;
  for (const auto& t : tensors) byType[t.scalar_type()].push_back(t);
  at::NoGradGuard noGrad;
  for (auto& [type, list] : byType) {
    std::vector<at::Tensor> flat;
    for (const auto& t : list) flat.push_back(t.detach().reshape({-1}).to(at::kCPU));
    auto all = at::cat(flat);
    group.broadcast(all, root);
    int64_t offset = 0;
    for (auto& t : list) {
      t.detach().copy_(all.narrow(0, offset, t.numel()).view(t.sizes()));
      offset += t.numel();
    }
  }
}

}  // namespace tf::dist
