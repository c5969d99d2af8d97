// Awaitable synchronisation for coroutines running on a multi-threaded io_context: a counting
// semaphore (the catalog's concurrency cap) and a one-shot event (single-flight, fan-in).
// Internal to src/catalog; a waiter is resumed by a post to its own executor, never inline.
#pragma once
#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <deque>
#include <mutex>
#include <utility>
#include <vector>

namespace fav::catalog::detail {

namespace net = boost::asio;

// A suspended coroutine and the executor it must be resumed on. Only ever move-constructed:
// Boost 1.81's any_completion_handler move assignment recurses forever.
struct waiter {
  net::any_io_executor ex;
  net::any_completion_handler<void(bool)> handler;

  void resume(bool value) && {
    // post (not dispatch): the waker may hold a lock's worth of state on its stack.
    net::post(ex, [h = std::move(handler), value]() mutable { std::move(h)(value); });
  }
};

// Suspends the calling coroutine and hands it to `park(waiter&&)`, which stores or resumes it.
template <class Park>
net::awaitable<bool> suspend(Park park) {
  return net::async_initiate<const net::use_awaitable_t<>&, void(bool)>(
      [park = std::move(park)](auto handler) mutable {
        auto ex = net::get_associated_executor(handler);
        park(waiter{std::move(ex), std::move(handler)});
      },
      net::use_awaitable);
}

class async_semaphore {
 public:
  explicit async_semaphore(int slots) : free_(slots > 0 ? slots : 1) {}

  // Waits for a slot; false once close() was called (no slot is held then).
  net::awaitable<bool> acquire() {
    {
      std::lock_guard lk(mu_);
      if (closed_) co_return false;
      if (free_ > 0) {
        --free_;
        co_return true;
      }
    }
    co_return co_await suspend([this](waiter&& w) {
      std::unique_lock lk(mu_);
      if (closed_) {
        lk.unlock();
        std::move(w).resume(false);
      } else if (free_ > 0) {  // a slot came back between the fast path and here
        --free_;
        lk.unlock();
        std::move(w).resume(true);
      } else {
        waiters_.push_back(std::move(w));
      }
    });
  }

  // Returns a slot, handing it straight to the oldest waiter if there is one.
  void release() {
    std::unique_lock lk(mu_);
    if (waiters_.empty()) {
      ++free_;
      return;
    }
    waiter w = std::move(waiters_.front());
    waiters_.pop_front();
    lk.unlock();
    std::move(w).resume(true);
  }

  // Wakes every waiter with false and refuses new acquisitions (shutdown).
  void close() {
    std::deque<waiter> woken;
    {
      std::lock_guard lk(mu_);
      closed_ = true;
      woken.swap(waiters_);
    }
    for (auto& w : woken) std::move(w).resume(false);
  }

 private:
  std::mutex mu_;
  int free_;
  bool closed_ = false;
  std::deque<waiter> waiters_;
};

// Releases a held semaphore slot on scope exit.
class permit {
 public:
  explicit permit(async_semaphore& s) : s_(&s) {}
  permit(const permit&) = delete;
  permit& operator=(const permit&) = delete;
  ~permit() { s_->release(); }

 private:
  async_semaphore* s_;
};

// Set once; every waiter (earlier or later) then continues. Data written before set() is
// visible after wait() returns (both take the mutex).
class async_event {
 public:
  // Returns once set() has been called (at once if it already was).
  net::awaitable<void> wait() {
    {
      std::lock_guard lk(mu_);
      if (set_) co_return;
    }
    co_await suspend([this](waiter&& w) {
      std::unique_lock lk(mu_);
      if (set_) {
        lk.unlock();
        std::move(w).resume(true);
      } else {
        waiters_.push_back(std::move(w));
      }
    });
  }

  // Wakes all waiters; later calls do nothing.
  void set() {
    std::vector<waiter> woken;
    {
      std::lock_guard lk(mu_);
      if (set_) return;
      set_ = true;
      woken.swap(waiters_);
    }
    for (auto& w : woken) std::move(w).resume(true);
  }

 private:
  std::mutex mu_;
  bool set_ = false;
  std::vector<waiter> waiters_;
};

}  // namespace fav::catalog::detail
