// Threads for blocking work (argon2, SQLite) kept off the I/O threads, with a bounded queue.
// `offload` awaits a job: the coroutine resumes on its own executor when the job is done.
#pragma once
#include <atomic>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <condition_variable>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace fav::util {

namespace net = boost::asio;

class worker_pool {
 public:
  // `on_start(i)` runs first on worker i (e.g. to open its connection).
  worker_pool(int workers, int queue_limit, std::function<void(int)> on_start = {});
  ~worker_pool();
  worker_pool(const worker_pool&) = delete;
  worker_pool& operator=(const worker_pool&) = delete;

  // Queues `job`; false when more than `queue_limit` jobs already wait, or when stopping.
  bool submit(std::function<void()> job);
  // Joins the threads (idempotent); queued jobs run first unless `run_queued` is false (their
  // awaiting coroutines are then never resumed: for process exit only).
  void stop(bool run_queued = true);

  int queued() const { return queued_.load(); }
  int running() const { return running_.load(); }
  int size() const { return static_cast<int>(threads_.size()); }
  // Index of the calling worker thread, or -1 off the pool.
  static int current_index();

 private:
  void work(int index, const std::function<void(int)>& on_start);

  int queue_limit_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  bool stopping_ = false;
  std::atomic<int> queued_{0};
  std::atomic<int> running_{0};
  std::vector<std::thread> threads_;
};

// Hands `f`, wrapped as a job, to `submit` (a callable taking std::function<void()> and returning
// false when it refuses the job) and awaits it: the coroutine resumes on its own executor when the
// job is done; nullopt when `submit` refused it. Exceptions propagate. The one idiom for leaving
// the I/O threads: `offload` below, and the password-hash pool's fair queue.
template <class R, class Submit, class F>
net::awaitable<std::optional<R>> offload_with(Submit submit, F f) {
  return net::async_initiate<decltype(net::use_awaitable), void(std::exception_ptr, std::optional<R>)>(
      [](auto handler, Submit give, F fn) {
        auto h = std::make_shared<decltype(handler)>(std::move(handler));
        auto finish = [h](std::exception_ptr ep, std::optional<R> r) {
          auto ex = net::get_associated_executor(*h);
          net::dispatch(ex, [h, ep, r = std::move(r)]() mutable { std::move (*h)(ep, std::move(r)); });
        };
        auto job = [finish, fn = std::make_shared<F>(std::move(fn))]() mutable {
          std::optional<R> r;
          try {
            r.emplace((*fn)());
          } catch (...) {
            finish(std::current_exception(), std::nullopt);
            return;
          }
          finish(nullptr, std::move(r));
        };
        if (!give(std::function<void()>(std::move(job)))) finish(nullptr, std::nullopt);
      },
      net::use_awaitable, std::move(submit), std::move(f));
}

// Runs `f` on `pool`; nullopt when the pool refused it (queue full). Exceptions propagate.
template <class R, class F>
net::awaitable<std::optional<R>> offload(worker_pool& pool, F f) {
  return offload_with<R>([&pool](std::function<void()> job) { return pool.submit(std::move(job)); }, std::move(f));
}

}  // namespace fav::util
