#include "bucket_reducer.h"

#include <chrono>
#include <map>
#include <unordered_set>

#include "../core/errors.h"
#include "compat.h"

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

// The autograd nodes backward from root will run (root's graph, walked once before backward).
std::unordered_set<const compat::AutogradNode*> reachable(const at::Tensor& root) {
  std::unordered_set<const compat::AutogradNode*> seen;
  if (!root.defined() || !root.grad_fn()) return seen;
  std::vector<compat::AutogradNode*> todo{root.grad_fn().get()};
  seen.insert(todo.back());
  while (!todo.empty()) {
    auto* node = todo.back();
    todo.pop_back();
    for (const auto& edge : node->next_edges()) {
      auto* next = edge.function.get();
      if (next && seen.insert(next).second) todo.push_back(next);
    }
  }
  return seen;
}
}  // namespace

// Runs after backward has accumulated one parameter's gradient. Holds the reducer weakly: a hook that outlives it
// (not removed) does nothing.
class BucketReducer::ReadyHook : public compat::PostHook {
 public:
  ReadyHook(std::weak_ptr<BucketReducer> owner, size_t index) : owner_(std::move(owner)), index_(index) {}
  compat::GradList operator()(const compat::GradList& outputs, const compat::GradList&) override {
    if (auto owner = owner_.lock()) owner->gradientReady(index_);
    return outputs;
  }

 private:
  std::weak_ptr<BucketReducer> owner_;
  size_t index_;
};

BucketReducer::BucketReducer(std::shared_ptr<ProcessGroup> group, const std::vector<at::Tensor>& params,
                             BucketOptions options)
    : group_(std::move(group)), params_(params), places_(params.size()) {
  if (!group_) throw TypeError("a process group is required");
  if (options.bucketBytes < 1 || options.firstBucketBytes < 1) throw RangeError("bucket sizes must be positive");
  const at::Device device = group_->device();
  // Parameters of one bucket share dtype and device; the list is walked last first.
  Bucket current;
  int64_t currentBytes = 0;
  at::ScalarType currentType = at::kFloat;
  at::Device currentDevice = at::kCPU;
  const auto close = [&] {
    if (current.members.empty()) return;
    int64_t numel = 0;
    for (auto i : current.members) {
      places_[i] = {buckets_.size(), numel};
      numel += params[i].numel();
    }
    // On the group's device (the rank's GPU under NCCL, the CPU under Gloo): backward's hooks copy into it.
    current.flat = at::empty({numel}, params[current.members.front()].options().device(device).requires_grad(false));
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
  resetStep();
}

BucketReducer::~BucketReducer() { removeHooks(); }

void BucketReducer::addHooks() {
  const auto self = weak_from_this();
  if (self.expired()) return;  // not owned by a shared_ptr: afterBackward does it all
  accumulators_.reserve(params_.size());
  for (size_t i = 0; i < params_.size(); ++i) {
    const auto& p = params_[i];
    if (!p.requires_grad() || !p.is_leaf()) {
      throw TypeError("parameter " + std::to_string(i) + " is not a leaf that requires grad");
    }
    auto acc = compat::gradAccumulator(p);
    hookKeys_.push_back(acc->add_post_hook(std::make_unique<ReadyHook>(self, i)));
    accumulators_.push_back(std::move(acc));
  }
}

void BucketReducer::removeHooks() {
  for (size_t i = 0; i < hookKeys_.size(); ++i) accumulators_[i]->del_post_hook(hookKeys_[i]);
  hookKeys_.clear();
  accumulators_.clear();
}

void BucketReducer::detach() {
  std::lock_guard<std::mutex> lock(mutex_);
  armed_ = false;
  removeHooks();
}

void BucketReducer::resetStep() {
  ready_.assign(params_.size(), 0);
  missing_.clear();
  for (const auto& b : buckets_) missing_.push_back(b.members.size());
  next_ = 0;
  pending_.assign(buckets_.size(), nullptr);
  failure_ = nullptr;
  averaged_ = false;
}

void BucketReducer::beforeBackward(const at::Tensor& root) {
  Timer timer(nanos_);
  Timer inBackward(hookNanos_);
  std::lock_guard<std::mutex> lock(mutex_);
  if (accumulators_.empty()) addHooks();
  resetStep();
  armed_ = true;
  if (accumulators_.empty()) return;
  // A parameter the loss does not reach gets no gradient this step: it counts now (its .grad, zeros when undefined),
  // so its bucket does not wait for the end of backward (what DDP's find_unused_parameters does).
  const auto nodes = reachable(root);
  for (size_t i = 0; i < params_.size(); ++i) {
    if (!nodes.count(accumulators_[i].get())) markReady(i);
  }
  startReadyBuckets(true);
}

void BucketReducer::gradientReady(size_t i) {
  Timer timer(nanos_);
  Timer inBackward(hookNanos_);
  std::lock_guard<std::mutex> lock(mutex_);
  if (!armed_ || failure_) return;
  try {
    if (ready_[i]) {
      // A second gradient in one backward (a graph that reaches the parameter twice is summed before this hook, so
      // only another backward pass within the step does this): fine while its bucket has not left.
      if (places_[i].bucket < next_) {
        throw DistributedError("parameter " + std::to_string(i) +
                               " received a gradient after its bucket was sent; one backward per step");
      }
      pack(i);
      return;
    }
    markReady(i);
    startReadyBuckets(true);
  } catch (...) {
    failure_ = std::current_exception();
  }
}

void BucketReducer::pack(size_t i) {
  const auto& p = params_[i];
  auto slot = buckets_[places_[i].bucket].flat.narrow(0, places_[i].offset, p.numel()).view(p.sizes());
  const auto& g = p.grad();
  if (g.defined()) {
    slot.copy_(g);
  } else {
    slot.zero_();
  }
}

void BucketReducer::markReady(size_t i) {
  pack(i);
  ready_[i] = 1;
  --missing_[places_[i].bucket];
}

void BucketReducer::startReadyBuckets(bool inBackward) {
  while (next_ < buckets_.size() && missing_[next_] == 0) {
    auto& flat = buckets_[next_].flat;
    pending_[next_] = group_->allReduceAsync(flat);
    bytes_ += flat.numel() * static_cast<int64_t>(flat.element_size());
    ++sentBuckets_;
    ++collectives_;
    if (inBackward) ++inBackward_;
    ++next_;
  }
}

void BucketReducer::afterBackward(const std::vector<at::Tensor>& params) {
  Timer timer(nanos_);
  if (params.size() != params_.size()) {
    throw TypeError("the parameter list changed since the buckets were planned (" + std::to_string(params_.size()) +
                    " then, " + std::to_string(params.size()) + " now)");
  }
  std::lock_guard<std::mutex> lock(mutex_);
  if (!armed_) resetStep();  // beforeBackward was not called: everything is sent from here
  armed_ = false;
  if (failure_) {
    auto failure = failure_;
    resetStep();
    std::rethrow_exception(failure);
  }
  for (size_t b = 0; b < next_; ++b) {
    if (group_->done(pending_[b])) ++doneInBackward_;
  }
  // Gradients that did not arrive during backward: what .grad holds, zeros when undefined.
  for (size_t i = 0; i < params_.size(); ++i) {
    if (!ready_[i]) markReady(i);
  }
  startReadyBuckets(false);
  const double scale = 1.0 / group_->worldSize();
  for (size_t b = 0; b < buckets_.size(); ++b) {
    group_->wait(pending_[b]);
    auto& bucket = buckets_[b];
    bucket.flat.mul_(scale);
    for (auto i : bucket.members) {
      auto p = params_[i];
      auto slot = bucket.flat.narrow(0, places_[i].offset, p.numel()).view(p.sizes());
      if (p.grad().defined()) {
        p.mutable_grad().copy_(slot);
      } else {
        p.mutable_grad() = slot.to(p.device(), /*non_blocking=*/false, /*copy=*/true);
      }
    }
  }
  resetStep();
  averaged_ = true;
  ++steps_;
}

bool BucketReducer::allFinite(bool localFinite) {
  Timer timer(nanos_);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (averaged_) {
      averaged_ = false;
      return localFinite;
    }
  }
  auto flag = at::full({1}, localFinite ? 0.0f : 1.0f, at::TensorOptions().dtype(at::kFloat).device(group_->device()));
  group_->allReduce(flag, ReduceOp::Max);
  ++collectives_;
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
  s.bucketsInBackward = inBackward_.load();
  s.bucketsDoneInBackward = doneInBackward_.load();
  s.collectives = collectives_.load();
  s.seconds = static_cast<double>(nanos_.load()) * 1e-9;
  s.inBackwardSeconds = static_cast<double>(hookNanos_.load()) * 1e-9;
  return s;
}

void broadcastTensors(ProcessGroup& group, const std::vector<at::Tensor>& tensors, int root) {
  // One flat tensor per dtype (parameters are float, BatchNorm's counters int64).
  std::map<at::ScalarType, std::vector<at::Tensor>> byType;
  for (const auto& t : tensors) byType[t.scalar_type()].push_back(t);
  at::NoGradGuard noGrad;
  for (auto& [type, list] : byType) {
    std::vector<at::Tensor> flat;
    for (const auto& t : list) flat.push_back(t.detach().reshape({-1}).to(group.device()));
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
