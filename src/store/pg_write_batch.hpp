// Group commit for PostgreSQL's favorite writes (issue 24, point 4). Every favorite written
// notifies the change feed (pg_notify), and PostgreSQL serialises the commits of notifying
// transactions (one global lock from before the commit until its WAL is flushed), so one
// transaction per request caps the writes at one commit at a time. Here the writes that arrive
// while others are running wait and go together: one pipeline, one transaction, one commit.
//
// No thread and no background task: the caller that finds fewer than `max_leaders` batches
// running leads one itself (takes a connection, then what is queued); the others queue, and a
// leader that finishes hands the lead to the first of them. A statement whose batch failed with
// an error of its own (a constraint, a deadlock) is run again alone, so no write answers for
// another's error; a batch that failed for the database's sake (unavailable) fails every write
// in it, as it would have failed each alone (contract §11: never applied, or outcome unknown).
#pragma once
#include <boost/asio/awaitable.hpp>
#include <boost/asio/experimental/concurrent_channel.hpp>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "store/pg_pool.hpp"
#include "store/pg_result.hpp"

namespace fav::store {

class pg_write_batch {
 public:
  // At most `max_leaders` batches run at once, each of at most `max_batch` statements; at most
  // `max_queued` statements wait for one (then unavailable at once).
  pg_write_batch(pg_pool& pool, int max_leaders, std::size_t max_batch = 64, std::size_t max_queued = 1000);

  // Runs `st` with `params` in the next batch and returns its result, or throws what running it
  // alone would have thrown. `lock_order` orders the statements inside a batch (the customer and
  // product they touch): every batch takes its row locks in the same order, so two batches never
  // wait for each other in a cycle.
  net::awaitable<pg_result> run(const pg_statement& st, std::vector<pg_param> params, std::string lock_order);

  // Writes waiting for a batch now.
  std::size_t queued() const;
  // Since start: batches committed, and the statements they carried.
  std::uint64_t batches() const;
  std::uint64_t statements() const;

 private:
  enum class state { queued, promoted, in_flight, done };
  enum class outcome { none, result, error, alone };
  struct item {
    item(const net::any_io_executor& ex, const pg_statement& s, std::vector<pg_param> p, std::string order)
        : wake(ex, 1), st(&s), params(std::move(p)), lock_order(std::move(order)) {}
    net::experimental::concurrent_channel<void(boost::system::error_code)> wake;
    const pg_statement* st;
    std::vector<pg_param> params;
    std::string lock_order;
    // Under mu_ once queued.
    state at = state::queued;
    outcome how = outcome::none;
    pg_result result;
    std::exception_ptr error;
  };

  // Runs one batch led by `own` (taken off the queue or never queued), answers every item in
  // it, and hands the lead on. Never throws.
  net::awaitable<void> lead(std::shared_ptr<item> own);
  // Under mu_: the first queued item leads next (returned, to be woken), or one leader fewer.
  std::shared_ptr<item> pass_lead();

  pg_pool& pool_;
  const int max_leaders_;
  const std::size_t max_batch_;
  const std::size_t max_queued_;
  mutable std::mutex mu_;  // guards everything below and every queued or running item's state
  std::deque<std::shared_ptr<item>> queue_;
  int leaders_ = 0;
  std::uint64_t batches_ = 0;
  std::uint64_t statements_ = 0;
};

}  // namespace fav::store
