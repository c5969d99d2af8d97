// The pool's state lives under one mutex and is never held across an await; a waiter is woken
// through its own channel, and what it was given is read under the mutex, so a wake-up that
// races the deadline can neither lose a connection nor hand one out twice.
#include "store/pg_pool.hpp"

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "util/log.hpp"

namespace fav::store {

pg_pool::pg_pool(net::any_io_executor ex, std::string conninfo, int size, pg_limits limits)
    : ex_(std::move(ex)), size_(std::max(size, 1)), limits_(limits), deadlines_(ex_) {
  idle_.reserve(static_cast<std::size_t>(size_));  // so release() never allocates
  guard_->pool = this;
  try {
    hosts_ = std::make_shared<pg_hosts>(conninfo);
  } catch (const unavailable& e) {
    invalid_ = e.what();
  }
}

pg_pool::~pg_pool() {
  // Waits for a sweep that is running; one still queued then finds no pool.
  std::lock_guard gl(guard_->mu);
  guard_->pool = nullptr;
}

pg_pool::stats pg_pool::snapshot() const {
  std::lock_guard lk(mu_);
  return {size_,
          open_,
          static_cast<int>(idle_.size()),
          static_cast<int>(waiters_.size()),
          round_trips_.load(std::memory_order_relaxed),
          connects_.load(std::memory_order_relaxed),
          breaker_open_};
}

pg_connect_options pg_pool::connect_options() const {
  pg_connect_options o;
  o.host_timeout = limits_.connect_timeout;
  o.server_statement_timeout = limits_.query_timeout + server_timeout_margin;
  o.transaction_pooler = limits_.transaction_pooler;
  return o;
}

void pg_pool::report_unreachable(const std::string& why) {
  trip(why);
}

void pg_pool::end_probe(bool connected) {
  {
    std::lock_guard lk(mu_);
    probing_ = false;
    if (!connected) {
      next_probe_ = pg_clock::now() + limits_.probe_interval;
      return;
    }
    breaker_open_ = false;
  }
  util::log(util::log_level::info, "database reachable again", {});
}

bool pg_pool::trip(const std::string& why) {
  std::deque<std::shared_ptr<waiter>> refused;
  std::vector<std::unique_ptr<pg_conn>> dropped;  // closed after unlocking
  {
    std::lock_guard lk(mu_);
    if (breaker_open_) return false;
    breaker_open_ = true;
    next_probe_ = pg_clock::now();  // the next caller probes at once
    dropped = std::move(idle_);
    idle_.clear();
    idle_.reserve(static_cast<std::size_t>(size_));
    open_ -= static_cast<int>(dropped.size());
    refused.swap(waiters_);
    for (auto& w : refused) w->refused = true;
    disarm_locked();
  }
  for (auto& w : refused) w->wake.try_send(boost::system::error_code{});
  util::log(util::log_level::warning, "database unreachable; answering 503 until a probe connects", {{"error", why}});
  return true;
}

net::awaitable<pg_pool::lease> pg_pool::acquire() {
  if (!hosts_) throw unavailable(invalid_);
  const auto deadline = pg_clock::now() + limits_.acquire_timeout;
  for (;;) {
    std::unique_ptr<pg_conn> conn;
    std::shared_ptr<waiter> w;
    bool probe = false;
    {
      std::lock_guard lk(mu_);
      if (breaker_open_) {
        // Half open: one caller at a time, at most every probe_interval, connects as the probe;
        // every other caller is answered at once.
        if (probing_ || pg_clock::now() < next_probe_ || open_ >= size_) {
          throw unavailable("postgresql: the database cannot be reached (answering at once until a probe connects)");
        }
        probing_ = true;
        probe = true;
        ++open_;
      } else if (!idle_.empty()) {
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
    connects_.fetch_add(1, std::memory_order_relaxed);
    try {
      conn = co_await pg_conn::connect(ex_, *hosts_, connect_options());
    } catch (const unavailable& e) {
      if (probe) end_probe(false);
      release(nullptr);
      trip(e.what());
      throw;
    } catch (...) {
      if (probe) end_probe(false);
      release(nullptr);
      throw;
    }
    if (probe) end_probe(true);
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
  if (w->refused) throw unavailable("postgresql: the database cannot be reached");
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
    if (c && c->found_read_only()) {
      // The server was demoted: the idle connections beside this one are on it too (and the
      // next connect goes through target_session_attrs to the new primary).
      open_ -= static_cast<int>(idle_.size());
      idle_.clear();
    }
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
