// The one drain idiom (CONTRIBUTING.md, "Deadlines and shutdown"), after Beast's awaitable
// servers: a group of spawned coroutines (connections, background work) that shutdown asks to
// stop and then awaits empty, without polling. Each task gets a cancellation slot; stop() emits a
// *total* cancellation, which only pause() lets through, so a loop sleeping between rounds wakes at
// once while a request or a refresh under way is finished, not cut.
//
//   tasks.spawn(util::new_strand(ex), refresh(id));   // tracked until it ends
//   while (co_await tasks.pause(interval)) co_await round();
//   tasks.stop(); co_await util::with_deadline(tasks.async_wait(net::use_awaitable), deadline);
#pragma once
#include <atomic>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/append.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/compose.hpp>
#include <boost/asio/consign.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <exception>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <utility>

#include "util/deadline.hpp"

namespace fav::util {

class task_group {
 public:
  // Called with what a task threw (never with nullptr).
  using on_exception = std::function<void(std::exception_ptr)>;

  // `ex` runs the wake-ups of async_wait.
  explicit task_group(boost::asio::any_io_executor ex)
      : idle_(std::move(ex), boost::asio::steady_timer::time_point::max()) {}
  task_group(const task_group&) = delete;
  task_group& operator=(const task_group&) = delete;

  // Runs `task` on `strand` as a member of the group until it ends (an exception it throws goes
  // to `failed`). `strand` must serialise the task (a strand, or a single-threaded context):
  // cancellations are delivered on it, so they never race the task's own steps.
  template <class Strand>
  void spawn(Strand strand, boost::asio::awaitable<void> task, on_exception failed = {}) {
    auto token = adapt(strand, [failed = std::move(failed)](std::exception_ptr ep) {
      if (ep && failed) failed(ep);
    });
    boost::asio::co_spawn(std::move(strand), std::move(task), std::move(token));
  }

  // Emits `type` to every task, each on its own executor. A task's coroutine lets through what
  // its cancellation state allows: by default terminal only (every pending operation ends).
  void emit(boost::asio::cancellation_type type) {
    std::lock_guard lk(mu_);
    for (auto& t : tasks_) boost::asio::post(t->ex, [t, type] { t->signal.emit(type); });
  }

  // Asks every task to stop: from now on stopping() is true, and a task waiting in pause() wakes.
  void stop() {
    stopping_.store(true);
    emit(boost::asio::cancellation_type::total);
  }
  bool stopping() const { return stopping_.load(); }

  // The tasks running now.
  std::size_t active() const {
    std::lock_guard lk(mu_);
    return tasks_.size();
  }

  // Completes (with no error) once the group is empty — at once if it is; with operation_aborted
  // when cancelled first (as util::with_deadline does at its deadline).
  template <class Token>
  auto async_wait(Token&& token) {
    return boost::asio::async_compose<Token, void(boost::system::error_code)>(
        [this, scheduled = false](auto& self, boost::system::error_code ec = {}) mutable {
          if (!scheduled) self.reset_cancellation_state(boost::asio::enable_total_cancellation());
          // `idle_` is cancelled both when the group empties and when this wait is cancelled.
          if (!self.cancelled() && ec == boost::asio::error::operation_aborted) ec = {};
          {
            std::lock_guard lk(mu_);
            if (!tasks_.empty() && !ec) {
              scheduled = true;
              idle_.async_wait(std::move(self));
              return;
            }
          }
          if (!std::exchange(scheduled, true)) {
            boost::asio::post(boost::asio::append(std::move(self), ec));  // never complete inline
            return;
          }
          self.complete(ec);
        },
        token, idle_);
  }

  // In a task of this group: waits `d` and answers true, or answers false as soon as the group
  // is stopping (at once if it already is). Only this wait lets stop()'s cancellation through.
  boost::asio::awaitable<bool> pause(std::chrono::steady_clock::duration d) {
    namespace net = boost::asio;
    if (stopping()) co_return false;
    // Checked and armed in one step on the task's strand: stop() sets the flag before it posts
    // the cancellation there, so the wake-up cannot fall between the check and the wait.
    net::steady_timer timer(co_await net::this_coro::executor, d);
    co_await net::this_coro::reset_cancellation_state(net::enable_total_cancellation());
    boost::system::error_code ignored;
    co_await timer.async_wait(net::redirect_error(net::use_awaitable, ignored));
    co_await net::this_coro::reset_cancellation_state();  // back to terminal only, the flag cleared
    co_return !stopping();
  }

 private:
  struct task {
    explicit task(boost::asio::any_io_executor e) : ex(std::move(e)) {}
    boost::asio::any_io_executor ex;  // where the task runs: the signal is emitted there
    boost::asio::cancellation_signal signal;
  };
  using task_list = std::list<std::shared_ptr<task>>;

  // Leaves the group when the task's completion handler is done with (run or destroyed).
  class leaver {
   public:
    leaver(task_group* g, task_list::iterator it) : g_(g), it_(it) {}
    leaver(leaver&& o) noexcept : g_(std::exchange(o.g_, nullptr)), it_(o.it_) {}
    leaver(const leaver&) = delete;
    leaver& operator=(const leaver&) = delete;
    leaver& operator=(leaver&&) = delete;
    ~leaver() {
      if (!g_) return;
      std::lock_guard lk(g_->mu_);
      g_->tasks_.erase(it_);
      if (g_->tasks_.empty()) g_->idle_.cancel();  // wakes every async_wait
    }

   private:
    task_group* g_;
    task_list::iterator it_;
  };

  // `handler` bound to a new task's cancellation slot, carrying its leaver. The handler has no
  // associated executor of its own, so co_spawn forwards an emission inline: emit() has already
  // moved it onto the task's strand. The signal is shared with pending emissions, so a task that
  // ends while one is queued leaves nothing dangling.
  template <class Handler>
  auto adapt(boost::asio::any_io_executor ex, Handler handler) {
    std::lock_guard lk(mu_);
    auto it = tasks_.insert(tasks_.end(), std::make_shared<task>(std::move(ex)));
    return boost::asio::bind_cancellation_slot((*it)->signal.slot(),
                                               boost::asio::consign(std::move(handler), leaver(this, it)));
  }

  mutable std::mutex mu_;
  task_list tasks_;
  boost::asio::steady_timer idle_;  // never expires: cancelled to wake async_wait
  std::atomic<bool> stopping_{false};
};

}  // namespace fav::util
