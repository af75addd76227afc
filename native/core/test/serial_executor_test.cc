// SerialExecutor: jobs run in order on one thread, run() rethrows, a throwing post() job does not end the thread,
// the destructor drains the queue, and an executor destroyed by its own last job neither deadlocks nor crashes.
#include "../serial_executor.h"

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "check.h"

namespace {

void ordering() {
  tf::SerialExecutor ex;
  std::vector<int> seen;  // touched only on the executor's thread until the final run() returns
  std::thread::id jobThread;
  std::atomic<bool> oneThread{true};
  for (int i = 0; i < 1000; ++i) {
    ex.post([&, i] {
      if (i == 0) jobThread = std::this_thread::get_id();
      if (std::this_thread::get_id() != jobThread) oneThread = false;
      seen.push_back(i);
    });
  }
  ex.run([] {});
  CHECK(seen.size() == 1000);
  bool inOrder = true;
  for (int i = 0; i < static_cast<int>(seen.size()); ++i) inOrder = inOrder && seen[i] == i;
  CHECK(inOrder);
  CHECK(oneThread.load());
  CHECK(jobThread != std::this_thread::get_id());
  CHECK(!ex.isCurrentThread());
  bool inside = false;
  ex.run([&] { inside = ex.isCurrentThread(); });
  CHECK(inside);
}

void postsFromManyThreads() {
  tf::SerialExecutor ex;
  constexpr int kThreads = 4, kEach = 250;
  std::vector<std::vector<int>> perThread(kThreads);
  std::vector<std::thread> posters;
  for (int t = 0; t < kThreads; ++t) {
    posters.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) ex.post([&, t, i] { perThread[t].push_back(i); });
    });
  }
  for (auto& p : posters) p.join();
  ex.run([] {});
  for (int t = 0; t < kThreads; ++t) {
    bool inOrder = static_cast<int>(perThread[t].size()) == kEach;
    for (int i = 0; inOrder && i < kEach; ++i) inOrder = perThread[t][i] == i;
    CHECK_MSG(inOrder, "poster " + std::to_string(t));
  }
}

void exceptions() {
  tf::SerialExecutor ex;
#ifndef TF_TSAN
  // Not under ThreadSanitizer: the exception object crosses threads in libstdc++'s exception_ptr, whose reference
  // count TSan cannot see (libstdc++ is not instrumented) and reports as a race.
  std::string caught;
  try {
    ex.run([] { throw std::out_of_range("too far"); });
  } catch (const std::out_of_range& e) {
    caught = e.what();
  } catch (...) {
    caught = "wrong type";
  }
  CHECK(caught == "too far");
#endif
  // A post() job that throws is stopped there; the thread goes on with the next.
  ex.post([] { throw std::runtime_error("lost"); });
  int after = 0;
  ex.run([&] { after = 1; });
  CHECK(after == 1);
  // run() inside a job runs at once instead of waiting for itself.
  int nested = 0;
  ex.run([&] { ex.run([&] { nested = 2; }); });
  CHECK(nested == 2);
}

void destructorDrains() {
  std::atomic<int> ran{0};
  {
    tf::SerialExecutor ex;
    for (int i = 0; i < 20; ++i) {
      ex.post([&] {
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
        ++ran;
      });
    }
  }
  CHECK(ran.load() == 20);
  // Never used: no thread to end.
  { tf::SerialExecutor unused; }
}

// The shape of a model whose last reference is dropped by a job on its own thread.
struct Owner {
  std::promise<void>* destroyed;
  tf::SerialExecutor executor;
  ~Owner() { destroyed->set_value(); }
};

void destroyedByItsOwnJob() {
  std::promise<void> destroyed;
  auto done = destroyed.get_future();
  std::atomic<int> ran{0};
  {
    auto owner = std::make_shared<Owner>();
    owner->destroyed = &destroyed;
    Owner* raw = owner.get();
    // The job holds the only reference once `owner` goes out of scope here.
    raw->executor.post([keep = std::move(owner), &ran]() mutable {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      ++ran;
    });
  }
  CHECK(done.wait_for(std::chrono::seconds(10)) == std::future_status::ready);
  CHECK(ran.load() == 1);
}

}  // namespace

int main() {
  ordering();
  postsFromManyThreads();
  exceptions();
  destructorDrains();
  destroyedByItsOwnJob();
  return tftest::finish("serial_executor_test");
}
