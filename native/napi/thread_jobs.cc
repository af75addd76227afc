#include "thread_jobs.h"

#include "common.h"

namespace tfn {

struct ThreadJobs::Pending {
  Pending(Napi::Env env, std::shared_ptr<ThreadJobs> owner, Job execute, Resolver resolve)
      : owner(std::move(owner)),
        deferred(Napi::Promise::Deferred::New(env)),
        execute(std::move(execute)),
        resolve(std::move(resolve)) {}

  // The environment is gone: nothing here may call into it, not even to drop a reference.
  void abandon() {
    for (auto& ref : keepAlive) ref.SuppressDestruct();
  }

  std::shared_ptr<ThreadJobs> owner;
  Napi::Promise::Deferred deferred;
  std::vector<Napi::Reference<Napi::Value>> keepAlive;
  Job execute;
  Resolver resolve;
  bool failed = false;
  JsErrorInfo error;
};

std::shared_ptr<ThreadJobs> ThreadJobs::create(Napi::Env env) {
  std::shared_ptr<ThreadJobs> jobs(new ThreadJobs());
  // Owned by the thread-safe function, dropped by finalize() when the environment closes it.
  auto* hold = new std::shared_ptr<ThreadJobs>(jobs);
  const napi_status status =
      napi_create_threadsafe_function(env, nullptr, nullptr, Napi::String::New(env, "trt-flowers:model-thread"), 0, 1,
                                      hold, &ThreadJobs::finalize, nullptr, &ThreadJobs::deliver, &jobs->tsfn_);
  if (status != napi_ok) {
    delete hold;
    throw Napi::Error::New(env, "cannot create the thread-safe function that settles native calls");
  }
  napi_unref_threadsafe_function(env, jobs->tsfn_);
  // Added after the thread-safe function's own hook, so it runs before that one closes the function.
  napi_add_env_cleanup_hook(env, &ThreadJobs::cleanup, new std::shared_ptr<ThreadJobs>(jobs));
  return jobs;
}

Napi::Promise ThreadJobs::run(Napi::Env env, tf::TorchModel& model, Job execute, Resolver resolve,
                              const std::vector<Napi::Value>& keepAlive) {
  return runWith(
      env, [&model](std::function<void()> job) { model.post(std::move(job)); }, std::move(execute), std::move(resolve),
      keepAlive);
}

Napi::Promise ThreadJobs::run(Napi::Env env, tf::SerialExecutor& executor, Job execute, Resolver resolve,
                              const std::vector<Napi::Value>& keepAlive) {
  return runWith(
      env, [&executor](std::function<void()> job) { executor.post(std::move(job)); }, std::move(execute),
      std::move(resolve), keepAlive);
}

Napi::Promise ThreadJobs::runWith(Napi::Env env, const std::function<void(std::function<void()>)>& post, Job execute,
                                  Resolver resolve, const std::vector<Napi::Value>& keepAlive) {
  napi_threadsafe_function tsfn;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    tsfn = tsfn_;
  }
  if (tsfn == nullptr) throw Napi::Error::New(env, "the environment is shutting down");
  auto pending = std::make_unique<Pending>(env, shared_from_this(), std::move(execute), std::move(resolve));
  for (const auto& v : keepAlive) pending->keepAlive.push_back(Napi::Persistent(v));
  auto promise = pending->deferred.Promise();
  Pending* job = pending.get();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    ++onThreads_;
  }
  try {
    post([job] { runOnModelThread(job); });
  } catch (...) {
    // Not queued: `pending` still owns the job.
    {
      std::lock_guard<std::mutex> lock(mutex_);
      --onThreads_;
    }
    rethrowAsJs(env);
  }
  pending.release();
  if (inFlight_++ == 0) napi_ref_threadsafe_function(env, tsfn);
  return promise;
}

void ThreadJobs::runOnModelThread(Pending* job) {
  // No N-API calls here but the thread-safe function's. Once handed over the job belongs to the JS thread, so keep
  // the owner alive through our own reference.
  const std::shared_ptr<ThreadJobs> owner = job->owner;
  bool closing;
  {
    std::lock_guard<std::mutex> lock(owner->mutex_);
    closing = owner->closing_;
  }
  if (closing) {
    job->failed = true;
    job->error = {JsErrorInfo::Kind::Error, "ERR_NATIVE", "the environment is shutting down"};
  } else {
    try {
      job->execute();
    } catch (...) {
      job->failed = true;
      job->error = currentException();
    }
  }
  bool handedOver = false;
  {
    std::lock_guard<std::mutex> lock(owner->mutex_);
    handedOver =
        owner->tsfn_ != nullptr && napi_call_threadsafe_function(owner->tsfn_, job, napi_tsfn_nonblocking) == napi_ok;
    --owner->onThreads_;
  }
  owner->drained_.notify_all();
  if (handedOver) return;
  // The environment is going or gone (a worker terminated while the job ran): there is no one left to tell.
  job->abandon();
  delete job;
}

void ThreadJobs::deliver(napi_env env, napi_value /*callback*/, void* /*context*/, void* data) {
  std::unique_ptr<Pending> job(static_cast<Pending*>(data));
  if (env == nullptr) {
    // Teardown empties the queue with no environment to settle in.
    job->abandon();
    return;
  }
  ThreadJobs& owner = *job->owner;
  if (--owner.inFlight_ == 0) {
    std::lock_guard<std::mutex> lock(owner.mutex_);
    if (owner.tsfn_ != nullptr) napi_unref_threadsafe_function(env, owner.tsfn_);
  }
  settlePromise(Napi::Env(env), job->deferred, job->failed ? &job->error : nullptr, job->resolve);
  // `job` goes here, on the JS thread: its references, and the model its execute holds.
}

void ThreadJobs::cleanup(void* data) {
  std::unique_ptr<std::shared_ptr<ThreadJobs>> hold(static_cast<std::shared_ptr<ThreadJobs>*>(data));
  ThreadJobs& jobs = **hold;
  std::unique_lock<std::mutex> lock(jobs.mutex_);
  jobs.closing_ = true;
  jobs.drained_.wait(lock, [&] { return jobs.onThreads_ == 0; });
}

void ThreadJobs::finalize(napi_env /*env*/, void* data, void* /*hint*/) {
  std::unique_ptr<std::shared_ptr<ThreadJobs>> hold(static_cast<std::shared_ptr<ThreadJobs>*>(data));
  std::lock_guard<std::mutex> lock((*hold)->mutex_);
  (*hold)->tsfn_ = nullptr;
}

}  // namespace tfn
