// libpq's asynchronous protocol on Asio: the socket is only waited on (never read or closed by
// us), libpq does the I/O; every wait races a deadline (util::with_deadline), so a dead server
// cannot hang a caller, and a caller's cancellation ends the wait.
#include "store/pg_conn.hpp"

#include <poll.h>

#include <algorithm>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "util/deadline.hpp"

namespace fav::store {

void pg_conn::fail(const char* what) {
  broken_ = true;
  throw unavailable(std::string("postgresql: ") + what + ": " + pg_message(PQerrorMessage(conn_)));
}

void pg_conn::timed_out() {
  // The connection is mid-protocol; it is dropped rather than reused.
  broken_ = true;
  const ConnStatusType st = PQstatus(conn_);
  if (st == CONNECTION_OK || st == CONNECTION_BAD) {
    throw unavailable("postgresql: query timed out");
  }
  // Which step of the connection sequence stalled (libpq's ConnStatusType).
  throw unavailable("postgresql: connect timed out (step " + std::to_string(static_cast<int>(st)) + ")");
}

net::awaitable<bool> pg_conn::ready(io what) {
  using sd = net::posix::stream_descriptor;
  if (what == io::read) {
    co_await sock_.async_wait(sd::wait_read, net::use_awaitable);
    co_return true;
  }
  if (what == io::write) {
    co_await sock_.async_wait(sd::wait_write, net::use_awaitable);
    co_return false;
  }
  // Rare (a send that filled the socket buffer): whichever direction is ready first; the other
  // wait is cancelled.
  using namespace net::experimental::awaitable_operators;
  const auto first = co_await (sock_.async_wait(sd::wait_read, net::use_awaitable) ||
                               sock_.async_wait(sd::wait_write, net::use_awaitable));
  co_return first.index() == 0;
}

net::awaitable<std::optional<bool>> pg_conn::wait_until(io what, pg_clock::time_point deadline) {
  if (pg_clock::now() >= deadline) co_return std::nullopt;
  std::optional<bool> readable;
  try {
    readable = co_await util::with_deadline(ready(what), deadline);
  } catch (const boost::system::system_error& e) {
    // The descriptor failed, or the caller was cancelled mid-protocol: not reusable either way.
    broken_ = true;
    throw unavailable("postgresql: socket wait failed: " + e.code().message());
  }
  co_return readable;
}

net::awaitable<bool> pg_conn::wait_statement(io what, pg_clock::time_point& deadline) {
  for (;;) {
    if (auto ready = co_await wait_until(what, deadline)) co_return *ready;
    if (!cancel_on_deadline_) timed_out();
    // Past the deadline: the statement must not go on to commit after we answer. Ask the
    // server to cancel it and wait a little for its answer (the error "canceling statement",
    // or the result if it finished first). Without a canceller the server's own
    // statement_timeout, just past this deadline, ends it within the same grace.
    if (cancel_requested_) timed_out();
    cancel_requested_ = true;
    request_cancel();
    deadline = pg_clock::now() + cancel_grace;
  }
}

bool pg_conn::request_cancel() {
  return canceller_ && canceller_->request(conn_);
}

net::awaitable<void> pg_conn::flush(pg_clock::time_point deadline) {
  // PQflush: 1 means "more to send": wait for either direction, since the server may be
  // waiting for us to read before it reads more.
  for (;;) {
    const int f = PQflush(conn_);
    if (f == 0) break;
    if (f < 0) fail("send");
    if (co_await wait_statement(io::either, deadline) && !PQconsumeInput(conn_)) fail("receive");
  }
  if (round_trips_) round_trips_->fetch_add(1, std::memory_order_relaxed);
}

net::awaitable<void> pg_conn::until_result(pg_clock::time_point deadline) {
  while (PQisBusy(conn_)) {
    co_await wait_statement(io::read, deadline);
    if (!PQconsumeInput(conn_)) fail("receive");
  }
}

void pg_conn::after_results(std::optional<pg_error>& error) {
  // A cancel that arrives after its statement ended could hit the next one: such a
  // connection is dropped, never reused.
  if (cancel_requested_) broken_ = true;
  if (PQstatus(conn_) == CONNECTION_BAD) fail("connection lost");
  if (unreplicated_) {
    // Contract §11: a commit PostgreSQL kept locally without the synchronous standby's
    // confirmation is never acknowledged (a failover now would lose it).
    broken_ = true;
    throw unavailable("postgresql: commit not confirmed by the synchronous standby (wait cancelled)");
  }
  if (error) {
    if (error->sqlstate == "25006") {
      mark_read_only();
      throw read_only_server("postgresql: 25006: " + std::string(error->what()));
    }
    if (pg_is_outage(error->sqlstate)) {
      throw unavailable("postgresql: " + error->sqlstate + ": " + error->what());
    }
    throw std::move(*error);
  }
}

net::awaitable<pg_result> pg_conn::collect(pg_clock::time_point deadline, std::optional<pg_error>& error) {
  pg_result last;
  for (;;) {
    co_await until_result(deadline);
    PGresult* r = PQgetResult(conn_);
    if (!r) break;
    pg_result res(r);
    if (auto e = pg_error_of(r)) {
      if (!error) error = std::move(e);
    } else {
      last = std::move(res);
    }
  }
  co_return last;
}

net::awaitable<pg_result> pg_conn::finish(pg_clock::time_point deadline) {
  co_await flush(deadline);
  std::optional<pg_error> error;
  pg_result last = co_await collect(deadline, error);
  after_results(error);
  co_return last;
}

net::awaitable<pg_result> pg_conn::query(const pg_statement& st, std::vector<pg_param> params,
                                         pg_clock::duration timeout) {
  const auto deadline = pg_clock::now() + timeout;
  unreplicated_ = false;
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const auto& p : params) values.push_back(p ? p->c_str() : nullptr);
  if (!named_) {
    // Behind a transaction pooler: the unnamed statement, parsed and run in one exchange.
    if (!PQsendQueryParams(conn_, st.text, static_cast<int>(values.size()), nullptr, values.data(), nullptr, nullptr,
                           0)) {
      fail("send");
    }
    co_return co_await finish(deadline);
  }
  if (!prepared_.contains(st.name)) {
    if (!PQsendPrepare(conn_, st.name, st.text, 0, nullptr)) fail("send");
    co_await finish(deadline);
    prepared_.insert(st.name);
    // The prepare itself outlived the deadline: the statement is not sent at all.
    if (cancel_requested_) throw unavailable("postgresql: query timed out");
  }
  if (!PQsendQueryPrepared(conn_, st.name, static_cast<int>(values.size()), values.data(), nullptr, nullptr, 0)) {
    fail("send");
  }
  co_return co_await finish(deadline);
}

net::awaitable<std::vector<pg_result>> pg_conn::pipeline(std::vector<pg_call> calls, pg_clock::duration timeout) {
  const auto deadline = pg_clock::now() + timeout;
  unreplicated_ = false;
  if (PQenterPipelineMode(conn_) != 1) fail("pipeline");
  // Until the pipeline is read to its end and left, the connection is unusable for anything
  // else: an exception on the way leaves it broken (the pool drops it).
  broken_ = true;
  // For each command sent, the index of its call, or -1 for a prepare.
  std::vector<int> commands;
  std::vector<const char*> preparing;
  std::vector<const char*> values;
  for (std::size_t i = 0; i < calls.size(); ++i) {
    const pg_statement& st = *calls[i].st;
    values.clear();
    for (const auto& p : calls[i].params) values.push_back(p ? p->c_str() : nullptr);
    if (!named_) {
      if (!PQsendQueryParams(conn_, st.text, static_cast<int>(values.size()), nullptr, values.data(), nullptr, nullptr,
                             0)) {
        fail("send");
      }
      commands.push_back(static_cast<int>(i));
      continue;
    }
    if (!prepared_.contains(st.name) && std::find(preparing.begin(), preparing.end(), st.name) == preparing.end()) {
      if (!PQsendPrepare(conn_, st.name, st.text, 0, nullptr)) fail("send");
      commands.push_back(-1);
      preparing.push_back(st.name);
    }
    if (!PQsendQueryPrepared(conn_, st.name, static_cast<int>(values.size()), values.data(), nullptr, nullptr, 0)) {
      fail("send");
    }
    commands.push_back(static_cast<int>(i));
  }
  if (PQpipelineSync(conn_) != 1) fail("send");
  co_await flush(deadline);

  std::vector<pg_result> out(calls.size());
  std::optional<pg_error> error;
  for (const int call : commands) {
    // After a failed command the server skips the rest, which report PGRES_PIPELINE_ABORTED
    // (and the call throws the first error below).
    pg_result r = co_await collect(deadline, error);
    if (call >= 0) out[static_cast<std::size_t>(call)] = std::move(r);
  }
  // Then the sync point, which is not followed by a null.
  for (;;) {
    co_await until_result(deadline);
    PGresult* r = PQgetResult(conn_);
    if (!r) fail("pipeline");  // nothing more where the sync was due: the protocol is lost
    const pg_result res(r);
    if (PQresultStatus(r) == PGRES_PIPELINE_SYNC) break;
  }
  if (PQexitPipelineMode(conn_) != 1) fail("pipeline");
  // A failed command may have come after a prepare that succeeded or not: rather than track
  // which, such a connection is dropped (a failing read is a bug or an outage, not routine).
  broken_ = error.has_value();
  if (!error) prepared_.insert(preparing.begin(), preparing.end());
  after_results(error);
  co_return out;
}

net::awaitable<pg_result> pg_conn::script(const char* sql, pg_clock::duration timeout) {
  const auto deadline = pg_clock::now() + timeout;
  unreplicated_ = false;
  if (!PQsendQuery(conn_, sql)) fail("send");
  co_return co_await finish(deadline);
}

net::awaitable<void> pg_conn::heartbeat(pg_clock::duration timeout) {
  const auto deadline = pg_clock::now() + timeout;
  if (!PQsendQuery(conn_, "SELECT 1")) fail("send");
  cancel_on_deadline_ = false;  // a timeout breaks the connection, so this is never reset late
  co_await finish(deadline);
  cancel_on_deadline_ = true;
}

net::awaitable<std::vector<std::string>> pg_conn::notifications(pg_clock::time_point deadline) {
  std::vector<std::string> out;
  auto drain = [&] {
    while (PGnotify* n = PQnotifies(conn_)) {
      out.emplace_back(n->extra ? n->extra : "");
      PQfreemem(n);
    }
  };
  drain();
  if (!out.empty()) co_return out;
  if (!co_await wait_until(io::read, deadline)) co_return out;
  if (!PQconsumeInput(conn_)) fail("receive");
  if (PQstatus(conn_) == CONNECTION_BAD) fail("connection lost");
  drain();
  co_return out;
}

bool pg_conn::alive() {
  if (broken_ || PQstatus(conn_) != CONNECTION_OK) return false;
  // An idle connection has nothing to read unless the server closed it or sent a notice: one
  // poll() tells, instead of two reads that usually answer EAGAIN.
  pollfd pfd{PQsocket(conn_), POLLIN, 0};
  if (::poll(&pfd, 1, 0) == 0) return reusable();
  // Twice: the first read may return the shutdown message, the second the end of stream.
  for (int i = 0; i < 2; ++i) {
    if (!PQconsumeInput(conn_)) return false;
  }
  return reusable();
}

bool pg_conn::reusable() const {
  return !broken_ && PQstatus(conn_) == CONNECTION_OK && PQtransactionStatus(conn_) == PQTRANS_IDLE;
}

}  // namespace fav::store
