// A bounded pool of PostgreSQL connections, safe from any thread: at most `size` connections,
// opened on demand; a bounded FIFO of waiters with a deadline; broken connections are dropped.
#pragma once
#include <atomic>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/experimental/concurrent_channel.hpp>
#include <chrono>
#include <cstddef>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "store/pg_canceller.hpp"
#include "store/pg_conn.hpp"

namespace fav::store {

// Every bound on waiting for the database.
struct pg_limits {
  pg_clock::duration connect_timeout = std::chrono::seconds(2);    // each host's (DATABASE_CONNECT_TIMEOUT_SECONDS)
  pg_clock::duration query_timeout = std::chrono::seconds(10);     // DATABASE_STATEMENT_TIMEOUT_SECONDS
  pg_clock::duration acquire_timeout = std::chrono::seconds(5);    // waiting for a free connection
  pg_clock::duration migrate_timeout = std::chrono::seconds(120);  // lock wait + DDL
  std::size_t max_waiters = 1000;
  bool transaction_pooler = false;  // DATABASE_POOL_MODE=transaction (see pg_connect_options)
  // While the database cannot be reached, the least time between two probe connects.
  pg_clock::duration probe_interval = std::chrono::milliseconds(200);
};

class pg_pool {
 public:
  // A connection on loan; going out of scope returns it, or drops it when it is not reusable
  // (broken, timed out, or left inside a transaction by an exception: closing rolls it back).
  class lease {
   public:
    lease(pg_pool* pool, std::unique_ptr<pg_conn> c) : pool_(pool), conn_(std::move(c)) {}
    lease(lease&& o) noexcept = default;
    lease& operator=(lease&&) = delete;
    ~lease() {
      if (conn_) pool_->release(std::move(conn_));
    }
    pg_conn* operator->() const { return conn_.get(); }
    pg_conn& operator*() const { return *conn_; }

   private:
    pg_pool* pool_;
    std::unique_ptr<pg_conn> conn_;
  };

  struct stats {
    int size = 0;                   // the bound
    int open = 0;                   // connected or connecting
    int idle = 0;                   // open and not on loan
    int waiting = 0;                // callers queued for a connection
    std::uint64_t round_trips = 0;  // exchanges with the server on the pool's connections so far
    std::uint64_t connects = 0;     // connection attempts so far (probes included)
    bool unreachable = false;       // the breaker is open
  };

  // Never throws for the database's sake: a connection string libpq cannot parse fails every
  // acquire() instead.
  pg_pool(net::any_io_executor ex, std::string conninfo, int size, pg_limits limits);
  // Every lease must have been returned; the io_context must still exist. Closing lets the
  // cancel requests already queued reach the server (bounded: pg_canceller::drain_limit), so it
  // blocks: for the process's last steps, never on an I/O thread.
  ~pg_pool();

  // A live connection: an idle one, a new one, or the next one released.
  // Throws unavailable when connecting fails, the queue is full, or the wait passes the limit,
  // and at once while the database is known to be unreachable (below).
  net::awaitable<lease> acquire();

  // Contract §11 "Outages answer fast", the database's breaker: a failed connect, or this call
  // (the change feed's heartbeat went unanswered), opens it. While open, acquire() throws at
  // once, the callers queued are failed, and the idle connections are dropped (a hung server
  // keeps their sockets open); one caller at a time, at most every probe_interval, connects
  // instead as the probe, and its success closes the breaker.
  void report_unreachable(const std::string& why);

  const pg_limits& limits() const { return limits_; }
  stats snapshot() const;

 private:
  // One queued caller; `granted` is decided under mu_, the channel only wakes it.
  struct waiter {
    explicit waiter(const net::any_io_executor& ex) : wake(ex, 1) {}
    net::experimental::concurrent_channel<void(boost::system::error_code)> wake;
    bool granted = false;
    bool refused = false;           // failed because the breaker opened
    std::unique_ptr<pg_conn> conn;  // null with granted: a free slot, connect a new one
  };

  // Returns a connection (or, with null / not reusable, its slot) to the next waiter or the
  // idle list. Never throws.
  void release(std::unique_ptr<pg_conn> c) noexcept;
  // Waits until `w` is granted a connection (or a slot), or `deadline` passes (unavailable).
  net::awaitable<std::unique_ptr<pg_conn>> wait_turn(std::shared_ptr<waiter> w, pg_clock::time_point deadline);
  // Opens the breaker (see report_unreachable); true when it was closed.
  bool trip(const std::string& why);
  // The probe's connect ended: success closes the breaker, failure spaces the next probe.
  void end_probe(bool connected);
  pg_connect_options connect_options();
  net::any_io_executor ex_;
  std::shared_ptr<pg_hosts> hosts_;
  std::string invalid_;  // why the connection string was refused (hosts_ is null)
  int size_;
  pg_limits limits_;

  // Declared before the connections: they count into it and send cancels through it until
  // they are gone.
  std::atomic<std::uint64_t> round_trips_{0};
  pg_canceller canceller_;
  std::atomic<std::uint64_t> connects_{0};
  mutable std::mutex mu_;  // guards everything below
  std::vector<std::unique_ptr<pg_conn>> idle_;
  int open_ = 0;
  std::deque<std::shared_ptr<waiter>> waiters_;
  bool breaker_open_ = false;
  bool probing_ = false;
  pg_clock::time_point next_probe_ = pg_clock::time_point::min();
};

}  // namespace fav::store
