// One dedicated thread that runs jobs one after the other. Every libtorch call of a model goes through its own
// executor, so all of them run on the same thread: with the OpenMP backend each calling thread gets its own team of
// intra-op threads, and jobs that hop between thread-pool threads leave idle teams spinning on the same cores.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

namespace tf {

class SerialExecutor {
 public:
  SerialExecutor() = default;
  SerialExecutor(const SerialExecutor&) = delete;
  SerialExecutor& operator=(const SerialExecutor&) = delete;
  // Lets the queued jobs run, then ends the thread. Called on the executor's own thread (its last job dropped the
  // owner), it cannot join itself: the thread then finishes the queue and ends on its own.
  ~SerialExecutor();

  // Queues job and returns at once; jobs run in the order they were posted. A job reports its own outcome: one that
  // throws is stopped there and the next runs. Throws (std::system_error, std::bad_alloc) only when the job could
  // not be queued, and then it never runs.
  void post(std::function<void()> job);

  // Runs fn on the executor's thread and waits for it; rethrows what fn threw. Called from the executor's own thread,
  // runs fn at once.
  void run(const std::function<void()>& fn);

  // True on the executor's own thread.
  bool isCurrentThread() const;

 private:
  // Shared with the thread, so that a thread left to finish on its own never touches a destroyed executor.
  struct State {
    std::mutex mutex;
    std::condition_variable ready;
    std::deque<std::function<void()>> queue;
    bool stopping = false;
    std::atomic<std::thread::id> threadId{};
  };
  static void loop(std::shared_ptr<State> state);

  std::shared_ptr<State> state_ = std::make_shared<State>();
  std::thread thread_;  // started by the first post(); guarded by state_->mutex
};

}  // namespace tf
