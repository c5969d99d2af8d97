// One PostgreSQL connection driven by libpq's non-blocking API on the Asio event loop: connect,
// lazily prepared named statements, a pipeline, notifications; every wait bounded by a deadline
// (util::with_deadline). One user at a time.
#pragma once
#include <libpq-fe.h>

#include <atomic>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_set>
#include <vector>

#include "store/pg_canceller.hpp"
#include "store/pg_hosts.hpp"
#include "store/pg_result.hpp"
#include "store/store.hpp"

namespace fav::store {

using pg_clock = std::chrono::steady_clock;

// How a connection is opened and used (contract §11).
struct pg_connect_options {
  // Each host's own connect deadline (DATABASE_CONNECT_TIMEOUT_SECONDS).
  pg_clock::duration host_timeout = std::chrono::seconds(2);
  // Positive: the session's `statement_timeout`, sent in the startup packet, so the server stops
  // a statement by itself even if a client-side cancel is lost. Not behind a pooler.
  pg_clock::duration server_statement_timeout{};
  // DATABASE_POOL_MODE=transaction: a transaction-pooling PgBouncer hands each transaction to any
  // server connection, so nothing may outlive one: no named prepared statements, no startup
  // `options` (PgBouncer refuses the parameter).
  bool transaction_pooler = false;
  // Sends the cancel request for a statement past its deadline (the pool's; it must outlive the
  // connection). Null: no client-side cancel, the server's statement_timeout alone stops it.
  pg_canceller* canceller = nullptr;
};

// SQL text with its name; the name is also the prepared-statement name on every connection.
struct pg_statement {
  const char* name;
  const char* text;
};

// A bound parameter in text form; nullopt is SQL NULL.
using pg_param = std::optional<std::string>;

// One statement of a pipeline (pg_conn::pipeline).
struct pg_call {
  const pg_statement* st;
  std::vector<pg_param> params;
};

class pg_conn {
 public:
  // Opens a connection (PQconnectStartParams/PQconnectPoll; a DNS host name is resolved
  // asynchronously first), trying `hosts` one at a time in their current order, each with its
  // own deadline (options.host_timeout); a host that fails is remembered (tried last for a few
  // seconds). Throws unavailable when no host gave a connection.
  static net::awaitable<std::unique_ptr<pg_conn>> connect(net::any_io_executor ex, pg_hosts& hosts,
                                                          pg_connect_options options);
  // The same for a connection string, `timeout` being each host's deadline.
  static net::awaitable<std::unique_ptr<pg_conn>> connect(net::any_io_executor ex, const std::string& conninfo,
                                                          pg_clock::duration timeout,
                                                          pg_clock::duration server_statement_timeout = {},
                                                          pg_canceller* canceller = nullptr);
  ~pg_conn();
  pg_conn(const pg_conn&) = delete;
  pg_conn& operator=(const pg_conn&) = delete;

  // Runs `st` with text parameters, preparing it first if this connection has not yet.
  // Throws unavailable (connection lost, timeout, server shutting down) or pg_error.
  // Past `timeout` the statement is cancelled in the database (the canceller's PQcancel) and
  // its outcome awaited for a short grace: a statement that answered "unavailable" was
  // cancelled (or the connection died with it), never left running to commit later. A
  // connection that needed a cancel is never reused.
  net::awaitable<pg_result> query(const pg_statement& st, std::vector<pg_param> params, pg_clock::duration timeout);
  // Runs parameterless SQL text, several statements allowed (migrations, BEGIN, COMMIT);
  // returns the last result. Throws like query().
  net::awaitable<pg_result> script(const char* sql, pg_clock::duration timeout);
  // Runs `calls` in one round trip (libpq pipeline mode): every statement, and the prepare of
  // any this connection has not prepared yet, is sent before the first answer is read. Results
  // in the order of `calls`. Throws like query(), for the first statement that fails (the
  // server skips the rest); a connection whose pipeline failed is not reused.
  net::awaitable<std::vector<pg_result>> pipeline(std::vector<pg_call> calls, pg_clock::duration timeout);

  // The change feed's heartbeat: `SELECT 1` answered within `timeout`, else unavailable and the
  // connection is broken. No cancel and no grace: a server that does not answer is what it
  // detects (contract §9).
  net::awaitable<void> heartbeat(pg_clock::duration timeout);

  // For a connection that ran LISTEN: the payloads of the notifications that arrived, waiting
  // for the first one until `deadline` (then an empty list). Throws unavailable when the
  // connection is lost.
  net::awaitable<std::vector<std::string>> notifications(pg_clock::time_point deadline);

  // Counts this connection's exchanges with the server in `counter` from now on (the pool's
  // count, for /metrics and the tests): a statement sent and its answer read is one, and so is a
  // pipeline of several. The counter must outlive the connection.
  void count_round_trips_in(std::atomic<std::uint64_t>* counter) { round_trips_ = counter; }

  // Checked when taken from the pool: still connected, nothing arrived while idle that says
  // otherwise (a server shutting down sends an error, then closes).
  bool alive();
  // May go back to the pool: healthy, idle, outside any transaction.
  bool reusable() const;
  // It found itself on a read-only server (SQLSTATE 25006, or a ping that saw it): the pool
  // drops it and the idle connections opened beside it.
  bool found_read_only() const { return read_only_; }
  void mark_read_only() {
    read_only_ = true;
    broken_ = true;
  }

 private:
  enum class io { read, write, either };

  explicit pg_conn(net::any_io_executor ex);
  // One host, one deadline; `timed_out` tells whether it was the deadline that ended it.
  static net::awaitable<std::unique_ptr<pg_conn>> connect_one(net::any_io_executor ex, pg_params params,
                                                              pg_clock::time_point deadline, bool& timed_out);
  // libpq's notice receiver: notes a commit whose synchronous-replication wait was cancelled.
  static void on_notice(void* self, const PGresult* notice);
  void bind_socket();
  // One wait until the socket is ready for `what`; true when readable. Ends with the caller's
  // cancellation (the descriptor's wait takes the cancellation slot).
  net::awaitable<bool> ready(io what);
  // ready() raced against `deadline` (util::with_deadline): nullopt at the deadline. Throws
  // unavailable when the wait fails or is cancelled from outside (the connection is broken).
  net::awaitable<std::optional<bool>> wait_until(io what, pg_clock::time_point deadline);
  // wait_until() for a running statement: at the deadline, requests a cancel and waits
  // `cancel_grace` more for the server's answer; throws when that passes too.
  net::awaitable<bool> wait_statement(io what, pg_clock::time_point& deadline);
  // Hands the running statement's cancel request to the canceller; false when it took none.
  bool request_cancel();
  // Sends everything libpq has queued (PQflush until done).
  net::awaitable<void> flush(pg_clock::time_point deadline);
  // Waits until PQgetResult will not block.
  net::awaitable<void> until_result(pg_clock::time_point deadline);
  // Reads one command's results (PQgetResult until null): the last one, and the first error
  // the server reported into `error`.
  net::awaitable<pg_result> collect(pg_clock::time_point deadline, std::optional<pg_error>& error);
  // Flushes the sent command and collects its results (PQgetResult until null).
  net::awaitable<pg_result> finish(pg_clock::time_point deadline);
  // After a command's results are read: drops a connection that needed a cancel or was lost,
  // and throws the first error the server reported (unavailable for an outage, else pg_error).
  void after_results(std::optional<pg_error>& error);
  [[noreturn]] void fail(const char* what);
  [[noreturn]] void timed_out();

  PGconn* conn_ = nullptr;
  net::posix::stream_descriptor sock_;
  std::unordered_set<std::string> prepared_;
  pg_canceller* canceller_ = nullptr;
  bool broken_ = false;
  std::atomic<std::uint64_t>* round_trips_ = nullptr;
  bool cancel_requested_ = false;   // for the statement being collected
  bool cancel_on_deadline_ = true;  // false for the heartbeat: its deadline ends it at once
  bool named_ = true;               // named prepared statements (not behind a transaction pooler)
  bool read_only_ = false;
  // The server said the commit was kept locally but might not have been replicated (its wait
  // for the synchronous standby was cancelled): the command is answered unavailable.
  bool unreplicated_ = false;
};

// How long a cancelled statement's answer is awaited before the connection is dropped.
inline constexpr pg_clock::duration cancel_grace = std::chrono::seconds(2);
// The server's own statement_timeout is the client deadline plus this.
inline constexpr pg_clock::duration server_timeout_margin = std::chrono::milliseconds(500);

}  // namespace fav::store
