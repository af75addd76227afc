#include "process_group.h"

#include <c10/core/DeviceGuard.h>

#include <algorithm>
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
  if (o.cudaDevice < 0) throw RangeError("cudaDevice must not be negative, received " + std::to_string(o.cudaDevice));
}

std::string where(const ProcessGroupOptions& o) {
  return "rank " + std::to_string(o.rank) + "/" + std::to_string(o.worldSize) + ", " + o.masterAddr + ":" +
         std::to_string(o.port);
}
std::string buildNote() {
#ifdef TF_DIST_NOTE
  return TF_DIST_NOTE;
#else
  return "";
#endif
}
}  // namespace

const char* backendName(Backend backend) { return backend == Backend::Nccl ? "nccl" : "gloo"; }

std::vector<std::string> distributedBackends() {
  std::vector<std::string> out;
#if defined(TF_WITH_DIST) && defined(USE_C10D_GLOO)
  out.push_back("gloo");
#endif
#if defined(TF_WITH_DIST) && defined(USE_C10D_NCCL)
  out.push_back("nccl");
#endif
  return out;
}

#ifdef TF_WITH_DIST

bool distributedCompiled() { return true; }
std::string distributedNote() { return buildNote(); }

struct ProcessGroup::Impl {
  c10::intrusive_ptr<::c10d::Store> store;  // the "default_pg" store, as Python's default group sees it
  compat::GroupPtr group;
  at::Device device = at::kCPU;
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

// Refuses a backend this build lacks, or NCCL without its CUDA device, before any rank waits in the rendezvous.
void checkBackend(const ProcessGroupOptions& o) {
  const auto compiled = distributedBackends();
  if (std::find(compiled.begin(), compiled.end(), backendName(o.backend)) == compiled.end()) {
    std::string have;
    for (const auto& b : compiled) have += (have.empty() ? "" : ", ") + b;
    throw DeviceUnavailableError(std::string("the ") + backendName(o.backend) +
                                 " backend is not compiled into this addon (it has: " + have + "; " + buildNote() +
                                 ")");
  }
#ifdef USE_C10D_NCCL
  if (o.backend == Backend::Nccl) {
    const auto devices = compat::cudaDeviceCount();
    if (o.cudaDevice >= devices) {
      throw DeviceUnavailableError("the nccl backend needs CUDA device " + std::to_string(o.cudaDevice) + " but " +
                                   std::to_string(devices) + " CUDA device(s) are visible (" + where(o) + ")");
    }
  }
#endif
}

// The group of the backend asked for (checkBackend said it is there), on the store.
compat::GroupPtr makeGroup(const compat::StorePtr& store, const ProcessGroupOptions& o) {
#ifdef USE_C10D_NCCL
  if (o.backend == Backend::Nccl) {
    at::DeviceGuard guard(at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(o.cudaDevice)));
    return compat::makeNcclGroup(store, o.rank, o.worldSize, o.timeout, o.cudaDevice);
  }
#endif
#ifdef USE_C10D_GLOO
  if (o.backend == Backend::Gloo) return compat::makeGlooGroup(store, o.rank, o.worldSize, o.timeout, o.interfaces);
#endif
  throw DeviceUnavailableError(std::string("the ") + backendName(o.backend) + " backend is not compiled in");
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
  checkBackend(options);
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
    if (options.backend == Backend::Nccl)
      impl->device = at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(options.cudaDevice));
    // Python names the default group "0" and prefixes its store with that name.
    impl->group = makeGroup(c10::make_intrusive<::c10d::PrefixStore>("0", impl->store), options);
    storeBarrier(*impl->store, options);
    compat::initSequenceNumber(*impl->group);
  } catch (const CodedError&) {
    throw;
  } catch (const std::exception& e) {
    throw DistributedError(std::string("cannot join the ") + backendName(options.backend) + " process group (" +
                           where(options) + "): " + e.what());
  }
  self->impl_ = std::move(impl);
  return self;
}

at::Device ProcessGroup::device() const { return impl()->device; }

namespace {
// The tensor a collective works on: tensor itself when it lives on the group's device, else a copy there (CPU
// values through NCCL), copied back by settle().
at::Tensor onDevice(const at::Tensor& tensor, const at::Device& device) {
  return tensor.device() == device ? tensor : tensor.to(device);
}
void settle(at::Tensor& tensor, const at::Tensor& used) {
  if (!used.is_same(tensor)) tensor.copy_(used);
}
}  // namespace

void ProcessGroup::allReduce(at::Tensor& tensor, ReduceOp op) {
  auto g = impl();
  at::DeviceGuard guard(g->device);
  std::vector<at::Tensor> tensors{onDevice(tensor, g->device)};
  ::c10d::AllreduceOptions ao;
  ao.reduceOp = toC10d(op);
  waitFor(g->group->allreduce(tensors, ao), options_, "all-reduce");
  settle(tensor, tensors[0]);
  if (op == ReduceOp::Avg) tensor.div_(options_.worldSize);
}

void ProcessGroup::broadcast(at::Tensor& tensor, int root) {
  if (root < 0 || root >= options_.worldSize) {
    throw RangeError("root must be between 0 and " + std::to_string(options_.worldSize - 1) + ", received " +
                     std::to_string(root));
  }
  auto g = impl();
  at::DeviceGuard guard(g->device);
  std::vector<at::Tensor> tensors{onDevice(tensor, g->device)};
  ::c10d::BroadcastOptions bo;
  bo.rootRank = root;
  waitFor(g->group->broadcast(tensors, bo), options_, "broadcast");
  settle(tensor, tensors[0]);
}

void ProcessGroup::barrier() {
  auto g = impl();
  at::DeviceGuard guard(g->device);
  waitFor(g->group->barrier(), options_, "barrier");
}

std::shared_ptr<ProcessGroup::Pending> ProcessGroup::allReduceAsync(at::Tensor& tensor) {
  auto g = impl();
  if (tensor.device() != g->device) {
    throw TypeError("an asynchronous all-reduce needs its tensor on " + g->device.str() + ", received one on " +
                    tensor.device().str());
  }
  at::DeviceGuard guard(g->device);
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
  const auto note = buildNote();
  return note.empty() ? "this build of the addon has no c10d (libtorch's distributed package with Gloo or NCCL)" : note;
}

struct ProcessGroup::Impl {};
class ProcessGroup::Pending {};

std::shared_ptr<ProcessGroup> ProcessGroup::join(const ProcessGroupOptions& options) {
  validate(options);
  throw DeviceUnavailableError("data-parallel training is not available: " + distributedNote() +
                               "; rebuild the addon after `apt-get install libgloo-dev` (npm run build:native), or "
                               "against a CUDA libtorch with NCCL");
}
at::Device ProcessGroup::device() const {
  impl();
  return at::kCPU;
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
