// The one SQLite writer of a process, with group commit: writes queue to it (bounded); its
// thread takes everything queued, runs each write in its own savepoint inside one transaction,
// commits once (one fsync for the batch, synchronous=FULL), then answers each caller with its
// own result. A write that fails rolls back only its savepoint. No two connections of the
// process ever compete for SQLite's write lock.
#pragma once
#include <atomic>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "store/sqlite_conn.hpp"
#include "store/store.hpp"

namespace fav::store::sqlite {

class writer {
 public:
  // Opens the writing connection to `path` (throws unavailable when it cannot) and starts the
  // thread. At most `queue_limit` writes wait; a batch holds at most `max_batch` of them. Once
  // `*closing` (may be null) is set, a lock wait or running statement ends at once and writes
  // not yet run fail with unavailable (never applied).
  writer(const std::string& path, int queue_limit, int max_batch = 1000, const std::atomic<bool>* closing = nullptr);
  ~writer() { stop(); }
  writer(const writer&) = delete;
  writer& operator=(const writer&) = delete;

  using clock = std::chrono::steady_clock;

  // Runs `f(connection&)` -> R as one atomic write of the next batch; resumes the caller on its
  // own executor once the batch is durable. `deadline` bounds the wait for its turn, the lock
  // wait and `f`'s statements (contract §5). Throws unavailable when the queue is full, when
  // `deadline` passed before or while it ran (it is then never applied), when the batch could
  // not commit, or what `f` threw (then nothing of `f` was applied).
  template <class R, class F>
  net::awaitable<R> write(F f, clock::time_point deadline = clock::time_point::max());

  // Applies what is queued, then joins the thread (idempotent); later writes are refused.
  void stop();

  int queued() const { return queued_.load(); }
  int running() const { return running_.load(); }
  // Since start: batches committed and writes answered successfully in them.
  std::uint64_t commits() const { return commits_.load(); }
  std::uint64_t writes() const { return writes_.load(); }

  // A queued write; run() may be called again when SQLite rolled the whole batch back.
  struct job {
    virtual ~job() = default;
    virtual void run(connection& c) = 0;
    virtual void finish(std::exception_ptr error) = 0;
    clock::time_point deadline = clock::time_point::max();
    std::exception_ptr error;
  };
  // Takes `j` and returns true, or leaves it and returns false (queue full, or stopping).
  bool submit(std::unique_ptr<job>& j);

 private:
  void loop();
  void run_batch(std::vector<std::unique_ptr<job>>& batch);

  const std::atomic<bool>* closing_;
  connection conn_;  // touched by the writer thread only once it runs
  const std::size_t queue_limit_;
  const std::size_t max_batch_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::unique_ptr<job>> queue_;
  bool stopping_ = false;
  std::atomic<int> queued_{0};
  std::atomic<int> running_{0};
  std::atomic<std::uint64_t> commits_{0};
  std::atomic<std::uint64_t> writes_{0};
  std::thread thread_;
};

template <class R, class F>
net::awaitable<R> writer::write(F f, clock::time_point deadline) {
  auto r = co_await net::async_initiate<decltype(net::use_awaitable), void(std::exception_ptr, std::optional<R>)>(
      [this, deadline](auto handler, F fn) {
        using handler_t = decltype(handler);
        struct impl final : job {
          impl(F f, handler_t h) : fn(std::move(f)), h(std::move(h)) {}
          void run(connection& c) override {
            result.reset();
            result.emplace(fn(c));
          }
          void finish(std::exception_ptr ep) override {
            auto ex = net::get_associated_executor(h);
            std::optional<R> r;
            if (!ep) r = std::move(result);
            net::dispatch(ex, [h = std::move(h), ep, r = std::move(r)]() mutable { std::move(h)(ep, std::move(r)); });
          }
          F fn;
          handler_t h;
          std::optional<R> result;
        };
        std::unique_ptr<job> j = std::make_unique<impl>(std::move(fn), std::move(handler));
        j->deadline = deadline;
        if (!submit(j)) j->finish(nullptr);  // no error and no result: refused
      },
      net::use_awaitable, std::move(f));
  if (!r) throw unavailable("sqlite write queue full");
  co_return std::move(*r);
}

}  // namespace fav::store::sqlite
