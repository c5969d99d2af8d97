// libpq's asynchronous protocol on Asio: the socket is only waited on (never read or closed by
// us), libpq does the I/O; every wait races a deadline, so a dead server cannot hang a caller.
#include "store/pg_conn.hpp"

#include <poll.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/append.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <charconv>
#include <thread>

namespace fav::store {

namespace {

// libpq's messages end with a newline; a log line should not.
std::string trimmed(const char* msg) {
  std::string s = msg ? msg : "";
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// SQLSTATE classes that mean "the database is not serving", not "this request is wrong":
// connection exceptions, insufficient resources, operator intervention (shutdown,
// cancel), system errors, and transaction rollbacks (serialization failure, deadlock).
bool is_outage(std::string_view state) {
  const std::string_view cls = state.substr(0, 2);
  return cls == "08" || cls == "53" || cls == "57" || cls == "58" || cls == "40";
}

// libpq resolves host names with a blocking getaddrinfo inside PQconnectPoll, so a single
// DNS host name is resolved here, off the I/O threads (Asio's resolver thread), and handed
// over as `hostaddr`: every address, in order, so libpq still falls back from one to the next.
// IP literals, socket directories and multi-host lists are left to libpq.
net::awaitable<void> resolve_host(net::any_io_executor ex, pg_params& p) {
  std::string* host = p.find("host");
  if (!host || p.find("hostaddr") || host->empty() || host->front() == '/' || host->front() == '@' ||
      host->find(',') != std::string::npos) {
    co_return;
  }
  boost::system::error_code ec;
  (void)net::ip::make_address(*host, ec);
  if (!ec) co_return;  // already numeric
  const std::string name = *host;
  net::ip::tcp::resolver resolver(ex);
  auto [rec, results] = co_await resolver.async_resolve(name, "5432", net::as_tuple(net::use_awaitable));
  if (rec || results.empty()) {
    throw unavailable("postgresql: cannot resolve host " + name + ": " + rec.message());
  }
  std::string hosts, addrs;
  std::vector<net::ip::address> seen;  // one per address, not per socket type
  for (const auto& entry : results) {
    const net::ip::address a = entry.endpoint().address();
    if (std::find(seen.begin(), seen.end(), a) != seen.end()) continue;
    seen.push_back(a);
    hosts += (hosts.empty() ? "" : ",") + name;
    addrs += (addrs.empty() ? "" : ",") + a.to_string();
  }
  *p.find("host") = hosts;  // `host` stays a name: SSL verification and Kerberos use it
  p.keys.emplace_back("hostaddr");
  p.values.push_back(addrs);
}

bool contains(const char* text, std::string_view part) {
  return text && std::string_view(text).find(part) != std::string_view::npos;
}

}  // namespace

pg_error::pg_error(std::string state, const std::string& message)
    : std::runtime_error(message), sqlstate(std::move(state)) {}

std::int64_t pg_result::affected() const {
  if (!r_) return 0;
  const char* n = PQcmdTuples(r_.get());
  std::int64_t v = 0;
  std::from_chars(n, n + std::char_traits<char>::length(n), v);
  return v;
}

std::string pg_result::text(int r, int c) const {
  return std::string(PQgetvalue(r_.get(), r, c), static_cast<std::size_t>(PQgetlength(r_.get(), r, c)));
}

std::int64_t pg_result::int64(int r, int c) const {
  const char* v = PQgetvalue(r_.get(), r, c);
  const char* end = v + PQgetlength(r_.get(), r, c);
  std::int64_t out = 0;
  if (std::from_chars(v, end, out).ec != std::errc{}) {
    throw std::runtime_error("postgresql: not an integer: " + std::string(v, end));
  }
  return out;
}

std::optional<std::int64_t> pg_result::opt_int64(int r, int c) const {
  if (is_null(r, c)) return std::nullopt;
  return int64(r, c);
}

bool pg_result::boolean(int r, int c) const {
  return PQgetvalue(r_.get(), r, c)[0] == 't';
}

pg_conn::pg_conn(net::any_io_executor ex) : sock_(ex), timer_(std::move(ex)) {
  watch_->sock = &sock_;
}

pg_conn::~pg_conn() {
  {
    // A deadline handler already queued must not touch the socket any more.
    std::lock_guard lk(watch_->mu);
    watch_->sock = nullptr;
  }
  timer_.cancel();
  // Closed with a statement still running (a request destroyed at shutdown, an abandoned
  // wait): closing the socket alone would not stop it, so it is cancelled as well.
  if (conn_ && !cancel_requested_ && PQstatus(conn_) == CONNECTION_OK && PQtransactionStatus(conn_) == PQTRANS_ACTIVE)
    request_cancel();
  // libpq owns the descriptor: stop watching it, then let PQfinish close it.
  if (sock_.is_open()) sock_.release();
  if (conn_) PQfinish(conn_);
}

void pg_conn::fail(const char* what) {
  broken_ = true;
  throw unavailable(std::string("postgresql: ") + what + ": " + trimmed(PQerrorMessage(conn_)));
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

void pg_conn::bind_socket() {
  // While connecting libpq may close its socket and open another (next address, SSL or GSS
  // fallback), possibly with the same number, so the watch is renewed every time. Under the
  // deadline watch's mutex: its handler may be cancelling the socket's waits at this moment.
  std::lock_guard lk(watch_->mu);
  if (sock_.is_open()) sock_.release();
  const int fd = PQsocket(conn_);
  if (fd >= 0) sock_.assign(fd);
}

void pg_conn::on_notice(void* self, const PGresult* notice) {
  // Other notices ("relation already exists, skipping") are dropped: on stderr they would break
  // the one-JSON-object-per-line log. The synchronous-replication warning is recognised by the
  // server source file that raises it (language-independent), or by its English text.
  const char* file = PQresultErrorField(notice, PG_DIAG_SOURCE_FILE);
  if ((file && std::string_view(file) == "syncrep.c") ||
      contains(PQresultErrorField(notice, PG_DIAG_MESSAGE_DETAIL), "might not have been replicated") ||
      contains(PQresultErrorField(notice, PG_DIAG_MESSAGE_PRIMARY), "synchronous replication")) {
    static_cast<pg_conn*>(self)->unreplicated_ = true;
  }
}

net::awaitable<std::unique_ptr<pg_conn>> pg_conn::connect_one(net::any_io_executor ex, pg_params params,
                                                              pg_clock::time_point deadline, bool& timed_out) {
  timed_out = false;
  co_await resolve_host(ex, params);
  std::vector<const char*> keys, values;
  for (std::size_t i = 0; i < params.keys.size(); ++i) {
    keys.push_back(params.keys[i].c_str());
    values.push_back(params.values[i].c_str());
  }
  keys.push_back(nullptr);
  values.push_back(nullptr);
  std::unique_ptr<pg_conn> c(new pg_conn(std::move(ex)));
  const disarm_at_exit disarm{*c};
  c->conn_ = PQconnectStartParams(keys.data(), values.data(), 0);
  if (!c->conn_) throw unavailable("postgresql: connect: out of memory");
  if (PQstatus(c->conn_) == CONNECTION_BAD) c->fail("connect");
  PQsetNoticeReceiver(c->conn_, &pg_conn::on_notice, c.get());
  // libpq's protocol: start as if PQconnectPoll had asked for writability.
  PostgresPollingStatusType st = PGRES_POLLING_WRITING;
  while (st != PGRES_POLLING_OK) {
    if (st == PGRES_POLLING_FAILED) c->fail("connect");
    c->bind_socket();
    if (!c->sock_.is_open()) c->fail("connect");
    const auto ready = co_await c->wait_until(st == PGRES_POLLING_READING ? io::read : io::write, deadline);
    if (!ready) {
      timed_out = true;
      c->timed_out();
    }
    st = PQconnectPoll(c->conn_);
  }
  if (PQsetnonblocking(c->conn_, 1) != 0) c->fail("connect");
  c->bind_socket();
  co_return c;
}

net::awaitable<std::unique_ptr<pg_conn>> pg_conn::connect(net::any_io_executor ex, pg_hosts& hosts,
                                                          pg_connect_options options) {
  // prefer-standby over several hosts: a standby anywhere in the list first, then any host that
  // answered (libpq's own two passes, which a host-by-host connect must redo itself).
  std::vector<std::string> passes{""};
  if (hosts.size() > 1 && hosts.session_attrs() == "prefer-standby") passes = {"standby", "any"};
  std::vector<bool> unreachable(hosts.size(), false);
  std::string last_error = "postgresql: connect: no host to try";
  for (const std::string& attrs : passes) {
    for (const std::size_t i : hosts.order(pg_clock::now())) {
      if (unreachable[i]) continue;
      pg_params params = hosts.params_for(i);
      if (!attrs.empty()) params.set("target_session_attrs", attrs);
      if (options.server_statement_timeout > pg_clock::duration::zero() && !options.transaction_pooler) {
        // Sent in the startup packet (no extra round trip); appended to any options already given.
        const auto ms = std::chrono::ceil<std::chrono::milliseconds>(options.server_statement_timeout).count();
        const std::string opt = "-c statement_timeout=" + std::to_string(ms);
        if (std::string* o = params.find("options")) {
          *o += " " + opt;
        } else {
          params.set("options", opt);
        }
      }
      bool timed_out = false;
      try {
        auto c = co_await connect_one(ex, std::move(params), pg_clock::now() + options.host_timeout, timed_out);
        c->named_ = !options.transaction_pooler;
        hosts.succeeded(i);
        co_return c;
      } catch (const unavailable& e) {
        hosts.failed(i, pg_clock::now());
        unreachable[i] = timed_out;
        last_error = e.what();
        if (hosts.size() > 1) last_error += " (host " + hosts.label(i) + ")";
      }
    }
  }
  throw unavailable(last_error);
}

net::awaitable<std::unique_ptr<pg_conn>> pg_conn::connect(net::any_io_executor ex, const std::string& conninfo,
                                                          pg_clock::duration timeout,
                                                          pg_clock::duration server_statement_timeout) {
  pg_hosts hosts(conninfo);
  pg_connect_options options;
  options.host_timeout = timeout;
  options.server_statement_timeout = server_statement_timeout;
  co_return co_await connect(std::move(ex), hosts, options);
}

net::awaitable<bool> pg_conn::wait(io what, pg_clock::time_point deadline) {
  const std::optional<bool> ready = co_await wait_until(what, deadline);
  if (!ready) timed_out();
  co_return *ready;
}

void pg_conn::arm(pg_clock::time_point deadline) {
  armed_ = deadline;
  std::uint64_t generation;
  {
    std::lock_guard lk(watch_->mu);
    generation = ++watch_->generation;  // from now on an earlier arming's expiry is ignored
  }
  timer_.expires_at(deadline);  // an earlier arming's pending wait ends with operation_aborted
  timer_.async_wait([w = watch_, generation](boost::system::error_code ec) {
    if (ec) return;  // re-armed, or the connection is closing
    std::lock_guard lk(w->mu);
    if (w->generation != generation || !w->sock) return;
    boost::system::error_code ignored;
    w->sock->cancel(ignored);  // the socket waits in progress end with operation_aborted
  });
}

void pg_conn::disarm() {
  // An earlier arming's handler that is already queued finds the generation moved on by the next
  // arm(), which always comes before the next wait; until then there is no wait to cancel.
  timer_.cancel();
  armed_ = pg_clock::time_point::min();
}

net::awaitable<std::optional<bool>> pg_conn::wait_until(io what, pg_clock::time_point deadline) {
  if (deadline != armed_) arm(deadline);
  constexpr auto tok = net::as_tuple(net::use_awaitable);
  using sd = net::posix::stream_descriptor;
  auto [ec, readable] = co_await net::async_initiate<decltype(tok), void(boost::system::error_code, bool)>(
      [this, what](auto handler) {
        // Runs on the coroutine's side once it is suspended. Under the watch's mutex: either
        // the deadline has passed (the timer may have fired while no wait was pending), or
        // the waits start before the timer's handler can cancel them.
        std::unique_lock lk(watch_->mu);
        if (pg_clock::now() >= armed_) {
          lk.unlock();
          const auto ex = net::get_associated_executor(handler, sock_.get_executor());
          net::post(ex, net::append(std::move(handler), boost::system::error_code(net::error::operation_aborted),
                                    what == io::read));
          return;
        }
        if (what != io::either) {
          // net::append keeps the handler's executor, so the coroutine resumes where it ran.
          sock_.async_wait(what == io::read ? sd::wait_read : sd::wait_write,
                           net::append(std::move(handler), what == io::read));
          return;
        }
        // Rare (a send that filled the socket buffer): whichever direction is ready first. The
        // first to complete cancels the other before the coroutine resumes; the other's
        // completion touches only this shared state, never the connection.
        using handler_t = decltype(handler);
        struct either_state {
          // A constructor, not an aggregate: clang 14 (the sanitizer builds) has no
          // parenthesized aggregate initialization for make_shared.
          either_state(handler_t h, std::shared_ptr<deadline_watch> w) : handler(std::move(h)), watch(std::move(w)) {}
          handler_t handler;
          std::shared_ptr<deadline_watch> watch;
          std::atomic<bool> done{false};
          void complete(boost::system::error_code e, bool r) {
            if (done.exchange(true)) return;
            {
              std::lock_guard l(watch->mu);
              boost::system::error_code ignored;
              if (watch->sock) watch->sock->cancel(ignored);
            }
            std::move(handler)(e, r);
          }
        };
        const auto ex = net::get_associated_executor(handler, sock_.get_executor());
        auto st = std::make_shared<either_state>(std::move(handler), watch_);
        sock_.async_wait(sd::wait_read,
                         net::bind_executor(ex, [st](boost::system::error_code e) { st->complete(e, true); }));
        sock_.async_wait(sd::wait_write,
                         net::bind_executor(ex, [st](boost::system::error_code e) { st->complete(e, false); }));
      },
      tok);
  if (!ec) co_return readable;
  // Cancelled by the deadline (or failed after it): the caller's timeout.
  if (pg_clock::now() >= deadline) co_return std::nullopt;
  broken_ = true;
  throw unavailable("postgresql: socket wait failed: " + ec.message());
}

net::awaitable<bool> pg_conn::wait_statement(io what, pg_clock::time_point& deadline) {
  for (;;) {
    if (auto ready = co_await wait_until(what, deadline)) co_return *ready;
    if (!cancel_on_deadline_) timed_out();
    // Past the deadline: the statement must not go on to commit after we answer. Ask the
    // server to cancel it and wait a little for its answer (the error "canceling statement",
    // or the result if it finished first). Without a cancel thread the server's own
    // statement_timeout, just past this deadline, ends it within the same grace.
    if (cancel_requested_) timed_out();
    cancel_requested_ = true;
    request_cancel();
    deadline = pg_clock::now() + cancel_grace;
  }
}

namespace {
std::atomic<int> cancels_running{0};

// The server's error in `r`, if it reports one.
std::optional<pg_error> error_of(PGresult* r) {
  const ExecStatusType st = PQresultStatus(r);
  if (st != PGRES_FATAL_ERROR && st != PGRES_BAD_RESPONSE && st != PGRES_NONFATAL_ERROR) return std::nullopt;
  const char* state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
  return pg_error(state ? state : "", trimmed(PQresultErrorMessage(r)));
}
}  // namespace

bool pg_wait_for_cancels(pg_clock::duration limit) {
  const auto deadline = pg_clock::now() + limit;
  while (cancels_running.load() > 0) {
    if (pg_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

bool pg_conn::request_cancel() {
  PGcancel* cancel = PQgetCancel(conn_);
  if (!cancel) return false;
  if (cancels_running.fetch_add(1) >= max_concurrent_cancels) {
    cancels_running.fetch_sub(1);
    PQfreeCancel(cancel);
    return false;
  }
  try {
    // PQcancel opens its own connection and blocks until the server has taken the request;
    // the thread owns `cancel` only, so it may outlive this connection and even the pool.
    std::thread([cancel] {
      char err[256];
      (void)PQcancel(cancel, err, sizeof err);
      PQfreeCancel(cancel);
      cancels_running.fetch_sub(1);
    }).detach();
  } catch (const std::system_error&) {
    cancels_running.fetch_sub(1);
    PQfreeCancel(cancel);
    return false;
  }
  return true;
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
    if (is_outage(error->sqlstate)) {
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
    if (auto e = error_of(r)) {
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
  const disarm_at_exit disarm{*this};
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
  const disarm_at_exit disarm{*this};
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
  const disarm_at_exit disarm{*this};
  unreplicated_ = false;
  if (!PQsendQuery(conn_, sql)) fail("send");
  co_return co_await finish(deadline);
}

net::awaitable<void> pg_conn::heartbeat(pg_clock::duration timeout) {
  const auto deadline = pg_clock::now() + timeout;
  const disarm_at_exit disarm{*this};
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
  const disarm_at_exit disarm{*this};
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
