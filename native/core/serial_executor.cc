#include "serial_executor.h"

#include <exception>
#include <future>

namespace tf {

SerialExecutor::~SerialExecutor() {
  {
    std::lock_guard<std::mutex> lock(state_->mutex);
    state_->stopping = true;
  }
  state_->ready.notify_all();
  if (!thread_.joinable()) return;
  if (isCurrentThread()) {
    thread_.detach();
  } else {
    thread_.join();
  }
}

bool SerialExecutor::isCurrentThread() const { return std::this_thread::get_id() == state_->threadId.load(); }

void SerialExecutor::post(std::function<void()> job) {
  // Once the job is queued it may drop the executor's last owner before this returns: touch only our own
  // reference to the state from then on.
  const std::shared_ptr<State> state = state_;
  {
    std::lock_guard<std::mutex> lock(state->mutex);
    if (!thread_.joinable()) thread_ = std::thread(&SerialExecutor::loop, state);
    state->queue.push_back(std::move(job));
  }
  state->ready.notify_one();
}

void SerialExecutor::run(const std::function<void()>& fn) {
  if (isCurrentThread()) {
    fn();
    return;
  }
  std::promise<void> done;
  auto finished = done.get_future();
  post([&fn, &done] {
    try {
      fn();
      done.set_value();
    } catch (...) {
      done.set_exception(std::current_exception());
    }
  });
  finished.get();
}

void SerialExecutor::loop(std::shared_ptr<State> state) {
  state->threadId.store(std::this_thread::get_id());
  for (;;) {
    std::function<void()> job;
    {
      std::unique_lock<std::mutex> lock(state->mutex);
      state->ready.wait(lock, [&] { return state->stopping || !state->queue.empty(); });
      if (state->queue.empty()) return;
      job = std::move(state->queue.front());
      state->queue.pop_front();
    }
    try {
      job();
    } catch (...) {
      // post() jobs settle their own outcome; one that throws anyway must not end the thread.
    }
    // Destroyed here, still on this thread and outside the lock: it may hold the last reference to the executor's
    // owner.
    job = nullptr;
  }
}

}  // namespace tf
