// Promises settled by the model's own thread. A job is queued on the model's executor straight from the JS thread
// (no libuv thread waits while libtorch works) and, when it is done, the model thread hands it back through one
// thread-safe function per environment, whose callback resolves or rejects the Promise on the JS thread.
#pragma once

#include <napi.h>

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "../core/torch_model.h"

namespace tfn {

class ThreadJobs : public std::enable_shared_from_this<ThreadJobs> {
 public:
  using Job = std::function<void()>;
  using Resolver = std::function<Napi::Value(Napi::Env)>;

  // One per environment (AddonData). The thread-safe function is referenced only while jobs are in flight, so an
  // idle process can exit; the environment's teardown closes it. Teardown (a worker terminated) first waits for the
  // jobs running now, which read JS memory that goes with the environment, and skips those not started.
  static std::shared_ptr<ThreadJobs> create(Napi::Env env);

  // Queues `execute` on model's thread and returns a Promise: resolved with resolve(env) (called on the JS thread)
  // or rejected with the mapped error (ERR_* code) when execute or resolve throws. The `keepAlive` values (the
  // owner, input arrays read in place) stay referenced until the Promise settles. execute may hold the model: it is
  // destroyed on the JS thread after settling. Throws a JS Error when the job cannot be queued.
  Napi::Promise run(Napi::Env env, tf::TorchModel& model, Job execute, Resolver resolve,
                    const std::vector<Napi::Value>& keepAlive);
  // The same on another serial executor (a process group's thread, whose collectives block).
  Napi::Promise run(Napi::Env env, tf::SerialExecutor& executor, Job execute, Resolver resolve,
                    const std::vector<Napi::Value>& keepAlive);

 private:
  struct Pending;
  ThreadJobs() = default;
  Napi::Promise runWith(Napi::Env env, const std::function<void(std::function<void()>)>& post, Job execute,
                        Resolver resolve, const std::vector<Napi::Value>& keepAlive);
  static void runOnModelThread(Pending* job);
  static void deliver(napi_env env, napi_value callback, void* context, void* data);
  static void finalize(napi_env env, void* data, void* hint);
  static void cleanup(void* data);

  // Model threads hand jobs over under this lock; the environment's teardown clears tsfn_ under it, so a job that
  // ends later never calls into a freed thread-safe function.
  std::mutex mutex_;
  std::condition_variable drained_;
  napi_threadsafe_function tsfn_ = nullptr;
  size_t onThreads_ = 0;  // queued on or running on model threads, not yet handed back
  bool closing_ = false;  // the environment is being torn down: jobs not started are skipped
  size_t inFlight_ = 0;   // JS thread only: jobs whose Promise is not settled yet
};

}  // namespace tfn
