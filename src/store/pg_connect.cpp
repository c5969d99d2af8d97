// Opening a connection: host by host (pg_hosts), each with its own deadline, through libpq's
// asynchronous connect on the event loop.
#include <string_view>

#include "store/pg_conn.hpp"
#include "store/pg_conninfo.hpp"

namespace fav::store {

namespace {

bool contains(const char* text, std::string_view part) {
  return text && std::string_view(text).find(part) != std::string_view::npos;
}

}  // namespace

pg_conn::pg_conn(net::any_io_executor ex) : sock_(std::move(ex)) {}

pg_conn::~pg_conn() {
  // Closed with a statement still running (a request destroyed at shutdown, an abandoned
  // wait): closing the socket alone would not stop it, so it is cancelled as well.
  if (conn_ && !cancel_requested_ && PQstatus(conn_) == CONNECTION_OK && PQtransactionStatus(conn_) == PQTRANS_ACTIVE)
    request_cancel();
  // libpq owns the descriptor: stop watching it, then let PQfinish close it.
  if (sock_.is_open()) sock_.release();
  if (conn_) PQfinish(conn_);
}

void pg_conn::bind_socket() {
  // While connecting libpq may close its socket and open another (next address, SSL or GSS
  // fallback), possibly with the same number, so the descriptor is taken again every time.
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
  co_await pg_resolve_host(ex, params);
  const pg_keywords kw(params);
  std::unique_ptr<pg_conn> c(new pg_conn(std::move(ex)));
  c->conn_ = PQconnectStartParams(kw.keys.data(), kw.values.data(), 0);
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
        pg_add_statement_timeout(params, options.server_statement_timeout);
      }
      bool timed_out = false;
      try {
        auto c = co_await connect_one(ex, std::move(params), pg_clock::now() + options.host_timeout, timed_out);
        c->named_ = !options.transaction_pooler;
        c->canceller_ = options.canceller;
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
                                                          pg_clock::duration server_statement_timeout,
                                                          pg_canceller* canceller) {
  pg_hosts hosts(conninfo);
  pg_connect_options options;
  options.host_timeout = timeout;
  options.server_statement_timeout = server_statement_timeout;
  options.canceller = canceller;
  co_return co_await connect(std::move(ex), hosts, options);
}

}  // namespace fav::store
