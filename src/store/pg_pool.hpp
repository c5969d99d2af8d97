// A bounded pool of PostgreSQL connections, safe from any thread: at most `size` connections,
// opened on demand; a bounded FIFO of waiters with a deadline; broken connections are dropped.
#pragma once
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

#include "store/pg_conn.hpp"

namespace fav::store {

// Every bound on waiting for the database.
struct pg_limits {
  pg_clock::duration connect_timeout = std::chrono::milliseconds(2500);
  pg_clock::duration query_timeout = std::chrono::seconds(10);     // DATABASE_STATEMENT_TIMEOUT_SECONDS
  pg_clock::duration acquire_timeout = std::chrono::seconds(5);    // waiting for a free connection
  pg_clock::duration migrate_timeout = std::chrono::seconds(120);  // lock wait + DDL
  std::size_t max_waiters = 1000;
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
    int size = 0;     // the bound
    int open = 0;     // connected or connecting
    int idle = 0;     // open and not on loan
    int waiting = 0;  // callers queued for a connection
  };

  pg_pool(net::any_io_executor ex, std::string conninfo, int size, pg_limits limits);
  // Every lease must have been returned; the io_context must still exist.
  ~pg_pool();

  // A live connection: an idle one, a new one, or the next one released.
  // Throws unavailable when connecting fails, the queue is full, or the wait passes the limit.
  net::awaitable<lease> acquire();

  const pg_limits& limits() const { return limits_; }
  stats snapshot() const;

 private:
  // One queued caller; `granted` is decided under mu_, the channel only wakes it.
  struct waiter {
    explicit waiter(const net::any_io_executor& ex) : wake(ex, 1) {}
    net::experimental::concurrent_channel<void(boost::system::error_code)> wake;
    bool granted = false;
    std::unique_ptr<pg_conn> conn;  // null with granted: a free slot, connect a new one
  };

  // Returns a connection (or, with null / not reusable, its slot) to the next waiter or the
  // idle list. Never throws.
  void release(std::unique_ptr<pg_conn> c) noexcept;
  net::awaitable<std::unique_ptr<pg_conn>> wait_turn(std::shared_ptr<waiter> w, pg_clock::time_point deadline);

  net::any_io_executor ex_;
  std::string conninfo_;
  int size_;
  pg_limits limits_;

  mutable std::mutex mu_;  // guards everything below
  std::vector<std::unique_ptr<pg_conn>> idle_;
  int open_ = 0;
  std::deque<std::shared_ptr<waiter>> waiters_;
};

}  // namespace fav::store
