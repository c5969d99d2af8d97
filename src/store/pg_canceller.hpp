// Cancel requests for running statements, sent from one worker thread that the pool owns:
// PQcancel opens its own connection to the server and blocks until the server has taken the
// request, so it never runs on an I/O thread. The queue is bounded; past it the server's own
// statement_timeout (just past the client's deadline) stops the statement.
#pragma once
#include <libpq-fe.h>

#include <chrono>
#include <cstddef>
#include <memory>
#include <thread>

namespace fav::store {

class pg_canceller {
 public:
  explicit pg_canceller(std::size_t max_pending = 8);
  // close(drain_limit) if not closed yet. Blocks: for the owner's last steps, never on an I/O
  // thread.
  ~pg_canceller();
  pg_canceller(const pg_canceller&) = delete;
  pg_canceller& operator=(const pg_canceller&) = delete;

  // Queues a cancel request for the statement running on `conn` now (the worker starts with the
  // first one); false when none was queued (queue full, closed, or no cancel handle).
  bool request(PGconn* conn);

  // Takes no more requests and waits until the queued ones have reached the server, or `limit`
  // passes: false then, and the worker is left to finish them on its own (it owns only them).
  bool close(std::chrono::steady_clock::duration limit);

  // How long the destructor lets queued cancel requests reach the server.
  static constexpr std::chrono::steady_clock::duration drain_limit = std::chrono::seconds(3);

 private:
  struct queue;  // shared with the worker, which may outlive this object after a close timeout
  std::shared_ptr<queue> q_;
  std::thread worker_;
  bool closed_ = false;
};

}  // namespace fav::store
