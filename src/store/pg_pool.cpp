// The pool's state lives under one mutex and is never held across an await; a waiter is woken
// through its own channel, and what it was given is read under the mutex, so a wake-up that
// races the deadline can neither lose a connection nor hand one out twice.
#include "store/pg_pool.hpp"

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace fav::store {

pg_pool::pg_pool(net::any_io_executor ex, std::string conninfo, int size, pg_limits limits)
    : ex_(std::move(ex)), conninfo_(std::move(conninfo)), size_(std::max(size, 1)), limits_(limits), deadlines_(ex_) {
  idle_.reserve(static_cast<std::size_t>(size_));  // so release() never allocates
  guard_->pool = this;
}

pg_pool::~pg_pool() {
  // Waits for a sweep that is running; one still queued then finds no pool.
  std::lock_guard gl(guard_->mu);
  guard_->pool = nullptr;
}

pg_pool::stats pg_pool::snapshot() const {
  std::lock_guard lk(mu_);
  return {size_, open_, static_cast<int>(idle_.size()), static_cast<int>(waiters_.size()),
          round_trips_.load(std::memory_order_relaxed)};
}

net::awaitable<pg_pool::lease> pg_pool::acquire() {
  const auto deadline = pg_clock::now() + limits_.acquire_timeout;
  for (;;) {
    std::unique_ptr<pg_conn> conn;
    std::shared_ptr<waiter> w;
    {
      std::lock_guard lk(mu_);
      if (!idle_.empty()) {
        conn = std::move(idle_.back());  // most recently used: least likely to have gone stale
        idle_.pop_back();
      } else if (open_ < size_) {
        ++open_;  // our slot; connected below
      } else if (waiters_.size() >= limits_.max_waiters) {
        throw unavailable("postgresql: too many requests waiting for a connection");
      } else {
        w = std::make_shared<waiter>(ex_, deadline);
        waiters_.push_back(w);
        if (!armed_ || deadline < armed_for_) arm_locked(deadline);
      }
    }
    if (w) conn = co_await wait_turn(std::move(w));
    if (conn) {
      // An idle connection may have died with a restarted server: drop it and go round again.
      if (conn->alive()) co_return lease(this, std::move(conn));
      release(std::move(conn));
      continue;
    }
    // We hold a free slot: connect, or give the slot back (to a waiter, if any) on failure.
    try {
      conn = co_await pg_conn::connect(ex_, conninfo_, limits_.connect_timeout,
                                       limits_.query_timeout + server_timeout_margin);
    } catch (...) {
      release(nullptr);
      throw;
    }
    conn->count_round_trips_in(&round_trips_);
    co_return lease(this, std::move(conn));
  }
}

net::awaitable<std::unique_ptr<pg_conn>> pg_pool::wait_turn(std::shared_ptr<waiter> w) {
  // Woken by release() (granted) or by sweep() at the deadline; ends early only if cancelled.
  co_await w->wake.async_receive(net::as_tuple(net::use_awaitable));
  std::lock_guard lk(mu_);
  if (w->granted) co_return std::move(w->conn);
  // Still queued when cancelled; sweep() has already taken it off at its deadline.
  if (auto it = std::find(waiters_.begin(), waiters_.end(), w); it != waiters_.end()) waiters_.erase(it);
  if (waiters_.empty()) disarm_locked();
  throw unavailable("postgresql: timed out waiting for a free connection");
}

void pg_pool::arm_locked(pg_clock::time_point at) {
  armed_ = true;
  armed_for_ = at;
  deadlines_.expires_at(at);  // an earlier arming's wait ends with operation_aborted
  deadlines_.async_wait([g = guard_](boost::system::error_code ec) {
    if (ec) return;  // re-armed, or the pool is closing
    std::lock_guard gl(g->mu);
    if (g->pool) g->pool->sweep();
  });
}

void pg_pool::disarm_locked() {
  // A pending timer is outstanding work: left armed with nobody waiting, it would keep an
  // io_context running (and its shutdown waiting) until the old deadline.
  if (!armed_) return;
  armed_ = false;
  deadlines_.cancel();
}

void pg_pool::sweep() {
  std::vector<std::shared_ptr<waiter>> expired;
  {
    std::lock_guard lk(mu_);
    armed_ = false;
    const auto now = pg_clock::now();
    std::optional<pg_clock::time_point> next;
    for (auto it = waiters_.begin(); it != waiters_.end();) {
      if ((*it)->deadline <= now) {
        expired.push_back(std::move(*it));
        it = waiters_.erase(it);
      } else {
        if (!next || (*it)->deadline < *next) next = (*it)->deadline;
        ++it;
      }
    }
    // Armed again for the next deadline, or stopped: a handler that was already queued when the
    // timer was re-armed may be this one, so the timer is set either way, never left as it is.
    if (next) {
      arm_locked(*next);
    } else {
      deadlines_.cancel();
    }
  }
  for (auto& w : expired) w->wake.try_send(boost::system::error_code{});
}

void pg_pool::release(std::unique_ptr<pg_conn> c) noexcept {
  std::unique_ptr<pg_conn> drop;  // closed after unlocking
  std::shared_ptr<waiter> next;
  {
    std::lock_guard lk(mu_);
    if (c && !c->reusable()) drop = std::move(c);
    if (!waiters_.empty()) {
      // The slot passes on: with a connection, or empty for the waiter to connect itself.
      next = std::move(waiters_.front());
      waiters_.pop_front();
      next->granted = true;
      next->conn = std::move(c);
      if (waiters_.empty()) disarm_locked();
    } else if (c) {
      idle_.push_back(std::move(c));
    } else {
      --open_;
    }
  }
  if (next) next->wake.try_send(boost::system::error_code{});
}

}  // namespace fav::store
