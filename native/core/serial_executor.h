// One dedicated thread that runs jobs one after the other. Every libtorch call of a model goes through its own
// executor, so all of them run on the same thread: with the OpenMP backend each calling thread gets its own team of
// intra-op threads, and jobs that hop between thread-pool threads leave idle teams spinning on the same cores.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

namespace tf {

class SerialExecutor {
 public:
  SerialExecutor() = default;
  SerialExecutor(const SerialExecutor&) = delete;
  SerialExecutor& operator=(const SerialExecutor&) = delete;
  // Waits for the queued jobs, then ends the thread.
  ~SerialExecutor();

  // Runs fn on the executor's thread (started on first use) and waits for it; rethrows what fn threw. Called from
  // the executor's own thread, runs fn at once.
  void run(const std::function<void()>& fn);

  // True on the executor's own thread.
  bool isCurrentThread() const { return std::this_thread::get_id() == threadId_.load(); }

 private:
  void loop();

  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<std::function<void()>> queue_;
  bool stopping_ = false;
  std::thread thread_;
  std::atomic<std::thread::id> threadId_{};
};

}  // namespace tf
