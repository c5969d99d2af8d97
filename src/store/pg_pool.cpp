// The pool's state lives under one mutex and is never held across an await; a waiter is woken
// through its own channel, raced against its deadline (util::with_deadline), and what it was
// given is read under the mutex, so a wake-up that races the deadline can neither lose a
// connection nor hand one out twice.
#include "store/pg_pool.hpp"

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "util/deadline.hpp"
#include "util/log.hpp"

namespace fav::store {

pg_pool::pg_pool(net::any_io_executor ex, std::string conninfo, int size, pg_limits limits)
    : ex_(std::move(ex)), size_(std::max(size, 1)), limits_(limits) {
  idle_.reserve(static_cast<std::size_t>(size_));  // so release() never allocates
  try {
    hosts_ = std::make_shared<pg_hosts>(conninfo);
  } catch (const unavailable& e) {
    invalid_ = e.what();
  }
}

pg_pool::~pg_pool() {
  // The idle connections close first (members go in reverse order), so the canceller, which
  // they may still use, drains last in its own destructor.
  idle_.clear();
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

pg_connect_options pg_pool::connect_options() {
  pg_connect_options o;
  o.host_timeout = limits_.connect_timeout;
  o.server_statement_timeout = limits_.query_timeout + server_timeout_margin;
  o.transaction_pooler = limits_.transaction_pooler;
  o.canceller = &canceller_;
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
        w = std::make_shared<waiter>(ex_);
        waiters_.push_back(w);
      }
    }
    if (w) conn = co_await wait_turn(std::move(w), deadline);
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

net::awaitable<std::unique_ptr<pg_conn>> pg_pool::wait_turn(std::shared_ptr<waiter> w, pg_clock::time_point deadline) {
  // Woken by release() (granted) or trip() (refused); the deadline, or the caller's
  // cancellation, ends the wait without either.
  (void)co_await util::with_deadline(w->wake.async_receive(net::as_tuple(net::use_awaitable)), deadline);
  std::lock_guard lk(mu_);
  // Granted, even at the very deadline: the connection is ours and must not be lost.
  if (w->granted) co_return std::move(w->conn);
  if (w->refused) throw unavailable("postgresql: the database cannot be reached");
  if (auto it = std::find(waiters_.begin(), waiters_.end(), w); it != waiters_.end()) waiters_.erase(it);
  throw unavailable("postgresql: timed out waiting for a free connection");
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
    } else if (c) {
      idle_.push_back(std::move(c));
    } else {
      --open_;
    }
  }
  if (next) next->wake.try_send(boost::system::error_code{});
}

}  // namespace fav::store
