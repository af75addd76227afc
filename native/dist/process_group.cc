#include "process_group.h"

#include <thread>

#include "../core/errors.h"
#include "compat.h"

namespace tf::dist {

namespace {
void validate(const ProcessGroupOptions& o) {
  if (o.worldSize < 1) throw RangeError("worldSize must be at least 1, received " + std::to_string(o.worldSize));
  if (o.rank < 0 || o.rank >= o.worldSize) {
    throw RangeError("rank must be between 0 and worldSize - 1 (" + std::to_string(o.worldSize - 1) + "), received " +
                     std::to_string(o.rank));
  }
  if (o.port < 1 || o.port > 65535)
    throw RangeError("port must be between 1 and 65535, received " + std::to_string(o.port));
  if (o.masterAddr.empty()) throw RangeError("masterAddr must not be empty");
  if (o.timeout.count() < 1) throw RangeError("timeout must be at least 1 ms");
  if (o.restartCount < 0) throw RangeError("restartCount must not be negative");
}

std::string where(const ProcessGroupOptions& o) {
  return "rank " + std::to_string(o.rank) + "/" + std::to_string(o.worldSize) + ", " + o.masterAddr + ":" +
         std::to_string(o.port);
}
}  // namespace

#ifdef TF_WITH_DIST

bool distributedCompiled() { return true; }
std::string distributedNote() { return ""; }

struct ProcessGroup::Impl {
  c10::intrusive_ptr<::c10d::Store> store;  // the "default_pg" store, as Python's default group sees it
  c10::intrusive_ptr<compat::GlooGroup> group;
};

class ProcessGroup::Pending {
 public:
  c10::intrusive_ptr<compat::Work> work;
};

namespace {
// Python's _store_based_barrier after init_process_group: every rank adds 1 to the key of group count 1, then waits
// until the count reaches the world size.
void storeBarrier(::c10d::Store& store, const ProcessGroupOptions& o) {
  const std::string key = "store_based_barrier_key:1";
  store.add(key, 1);
  const auto deadline = std::chrono::steady_clock::now() + o.timeout;
  for (;;) {
    const auto joined = store.add(key, 0);
    if (joined >= o.worldSize) return;
    if (std::chrono::steady_clock::now() > deadline) {
      throw DistributedError("timed out after " + std::to_string(o.timeout.count()) +
                             " ms waiting for the ranks to join (" + std::to_string(joined) + " of " +
                             std::to_string(o.worldSize) + " joined; " + where(o) + ")");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

::c10d::ReduceOp toC10d(ReduceOp op) {
  switch (op) {
    case ReduceOp::Max:
      return ::c10d::ReduceOp::MAX;
    case ReduceOp::Min:
      return ::c10d::ReduceOp::MIN;
    default:
      return ::c10d::ReduceOp::SUM;
  }
}

// Waits for work, turning c10d's failure into a DistributedError that says where and what.
void waitFor(const c10::intrusive_ptr<compat::Work>& work, const ProcessGroupOptions& o, const char* what) {
  try {
    work->wait();
  } catch (const std::exception& e) {
    throw DistributedError(std::string(what) + " failed (" + where(o) + "): " + e.what());
  }
}
}  // namespace

std::shared_ptr<ProcessGroup> ProcessGroup::join(const ProcessGroupOptions& options) {
  validate(options);
  std::shared_ptr<ProcessGroup> self(new ProcessGroup(options));
  auto impl = std::make_shared<Impl>();
  try {
    c10d::TCPStoreOptions so;
    so.port = static_cast<std::uint16_t>(options.port);
    so.timeout = options.timeout;
    c10::intrusive_ptr<::c10d::Store> base;
    if (options.useAgentStore) {
      so.isServer = false;
      so.waitWorkers = false;
      base = c10::make_intrusive<::c10d::PrefixStore>("/worker/attempt_" + std::to_string(options.restartCount),
                                                      c10::make_intrusive<::c10d::TCPStore>(options.masterAddr, so));
    } else {
      so.isServer = options.rank == 0;
      so.numWorkers = static_cast<std::size_t>(options.worldSize);
      so.waitWorkers = true;
      so.multiTenant = true;
      base = c10::make_intrusive<::c10d::TCPStore>(options.masterAddr, so);
    }
    base->setTimeout(options.timeout);
    impl->store = c10::make_intrusive<::c10d::PrefixStore>("default_pg", base);
    auto go = compat::GlooGroup::Options::create(options.timeout);
    for (const auto& name : options.interfaces)
      go->devices.push_back(compat::GlooGroup::createDeviceForInterface(name));
    if (go->devices.empty()) go->devices.push_back(compat::GlooGroup::createDefaultDevice());
    // Python names the default group "0" and prefixes its store with that name.
    impl->group = c10::make_intrusive<compat::GlooGroup>(c10::make_intrusive<::c10d::PrefixStore>("0", impl->store),
                                                         options.rank, options.worldSize, go);
    storeBarrier(*impl->store, options);
    impl->group->setSequenceNumberForGroup();
  } catch (const CodedError&) {
    throw;
  } catch (const std::exception& e) {
    throw DistributedError("cannot join the process group (" + where(options) + "): " + e.what());
  }
  self->impl_ = std::move(impl);
  return self;
}

void ProcessGroup::allReduce(at::Tensor& tensor, ReduceOp op) {
  auto g = impl();
  std::vector<at::Tensor> tensors{tensor};
  ::c10d::AllreduceOptions ao;
  ao.reduceOp = toC10d(op);
  waitFor(g->group->allreduce(tensors, ao), options_, "all-reduce");
  if (op == ReduceOp::Avg) tensor.div_(options_.worldSize);
}

void ProcessGroup::broadcast(at::Tensor& tensor, int root) {
  if (root < 0 || root >= options_.worldSize) {
    throw RangeError("root must be between 0 and " + std::to_string(options_.worldSize - 1) + ", received " +
                     std::to_string(root));
  }
  auto g = impl();
  std::vector<at::Tensor> tensors{tensor};
  ::c10d::BroadcastOptions bo;
  bo.rootRank = root;
  waitFor(g->group->broadcast(tensors, bo), options_, "broadcast");
}

void ProcessGroup::barrier() { waitFor(impl()->group->barrier(), options_, "barrier"); }

std::shared_ptr<ProcessGroup::Pending> ProcessGroup::allReduceAsync(at::Tensor& tensor) {
  auto g = impl();
  std::vector<at::Tensor> tensors{tensor};
  auto pending = std::make_shared<Pending>();
  pending->work = g->group->allreduce(tensors);
  return pending;
}

void ProcessGroup::wait(const std::shared_ptr<Pending>& pending) { waitFor(pending->work, options_, "all-reduce"); }

bool ProcessGroup::done(const std::shared_ptr<Pending>& pending) const {
  return pending && pending->work && pending->work->isCompleted();
}

#else  // no c10d in this build

bool distributedCompiled() { return false; }
std::string distributedNote() {
#ifdef TF_DIST_NOTE
  return TF_DIST_NOTE;
#else
  return "this build of the addon has no c10d (libtorch's distributed package with Gloo)";
#endif
}

struct ProcessGroup::Impl {};
class ProcessGroup::Pending {};

std::shared_ptr<ProcessGroup> ProcessGroup::join(const ProcessGroupOptions& options) {
  validate(options);
  throw DeviceUnavailableError("data-parallel training is not available: " + distributedNote() +
                               "; rebuild the addon after `apt-get install libgloo-dev` (npm run build:native)");
}
void ProcessGroup::allReduce(at::Tensor&, ReduceOp) { impl(); }
void ProcessGroup::broadcast(at::Tensor&, int) { impl(); }
void ProcessGroup::barrier() { impl(); }
std::shared_ptr<ProcessGroup::Pending> ProcessGroup::allReduceAsync(at::Tensor&) {
  impl();
  return nullptr;
}
void ProcessGroup::wait(const std::shared_ptr<Pending>&) {}
bool ProcessGroup::done(const std::shared_ptr<Pending>&) const { return true; }

#endif

ProcessGroup::ProcessGroup(ProcessGroupOptions options) : options_(std::move(options)) {}

ProcessGroup::~ProcessGroup() = default;

std::shared_ptr<ProcessGroup::Impl> ProcessGroup::impl() const {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!impl_) throw DistributedError("the process group has been destroyed");
  return impl_;
}

void ProcessGroup::destroy() {
  std::shared_ptr<Impl> gone;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    gone = std::move(impl_);
  }
}

}  // namespace tf::dist
