// favorites-api: read config, open the store, migrate, build `app`, run the I/O threads, and
// drain on SIGTERM/SIGINT. Subcommands: serve (default), migrate, check-config, healthcheck.
#include <sys/resource.h>
#include <CLI/CLI.hpp>
#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <functional>
#include <iostream>
#include <optional>
#include <thread>

#include "api/errors.hpp"
#include "app.hpp"
#include "auth/password.hpp"
#include "auth/sign_in_sweep.hpp"
#include "core/json_text.hpp"
#include "http/middleware.hpp"
#include "http/server.hpp"
#include "routes.hpp"
#include "store/pg_listener.hpp"
#include "store/pg_store.hpp"
#include "store/read_through.hpp"
#include "store/sqlite_store.hpp"
#include "util/deadline.hpp"
#include "util/log.hpp"
#include "util/task_group.hpp"
#include "util/time.hpp"

#ifndef FAV_VERSION
#define FAV_VERSION "0.0.0"
#endif

namespace net = boost::asio;
using namespace fav;

namespace {

// An io_context whose suspended work (request coroutines that the drain did not wait for) can
// be destroyed on demand, while everything those coroutines reference still exists. The plain
// io_context only does it in its destructor, after the store, pools and catalog are gone.
class service_context : public net::io_context {
 public:
  using net::io_context::io_context;
  // Call with no thread running the context: destroys every pending handler and coroutine.
  void destroy_pending_work() { shutdown(); }
};

// The PostgreSQL pools' deadlines and mode, the same for the primary's and the standbys'.
store::pg_limits pg_limits_of(const util::config& cfg) {
  store::pg_limits limits;
  limits.query_timeout = cfg.db_statement_timeout;
  limits.connect_timeout = cfg.db_connect_timeout;
  limits.transaction_pooler = cfg.db_transaction_pooler;
  return limits;
}

// `pg`, when given, is pointed at the PostgreSQL store (the change feed's heartbeat reports to it).
std::unique_ptr<store::store> open_store(const util::config& cfg, net::any_io_executor ex,
                                         store::pg_store** pg = nullptr) {
  const auto timeout = cfg.db_statement_timeout;
  if (cfg.database_is_postgres) {
    auto s = store::make_pg_store(ex, cfg.database_url, cfg.db_pool_size, pg_limits_of(cfg));
    if (pg) *pg = s.get();
    return s;
  }
  std::string path = cfg.database_url.substr(std::string("sqlite:").size());
  // One SQLite worker per core at most: more threads only add context switches (measured on
  // 2 cores: 5 workers served GET favorites at 11k req/s, 2 workers at 15k).
  int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  return store::make_sqlite_store(ex, path, std::clamp(cfg.db_pool_size, 1, cores), timeout);
}

// The configuration, or exit 2 after one line per bad variable: plain for check-config (a person
// reads it), else one JSON line each on stderr (a log collector reads it). Variables that look like
// ours but are unknown (a typo such as API_PROT) are warned about, never fatal.
util::config load_or_exit(bool human) {
  auto env = util::read_environment(".env");
  for (auto& u : util::unknown_variables(env)) {
    std::string hint = u.suggestion.empty() ? "" : " (did you mean " + u.suggestion + "?)";
    if (human)
      std::cerr << "warning: unknown variable " << u.name << " ignored" << hint << std::endl;
    else
      util::log(util::log_level::warning, "unknown configuration variable ignored",
                {{"variable", u.name}, {"did_you_mean", u.suggestion}});
  }
  try {
    return util::load_config(env);
  } catch (const util::config_error& e) {
    for (auto& p : e.problems) {
      if (human) {
        std::cerr << p.message << std::endl;
      } else {
        std::string line;
        core::json_writer w(line);
        w.begin_object();
        w.key("time").str(util::format_rfc3339(util::now_micros()));
        w.key("level").str("critical");
        w.key("message").str("invalid configuration");
        w.key("variable").str(p.variable);
        w.key("error").str(p.message);
        w.end_object();
        std::cerr << line << std::endl;
      }
    }
    std::exit(2);
  }
}

// A one-line reason for a start-up failure: Boost's system_error::what() appends the source file
// and function it came from ("... [system:98 at /usr/include/boost/asio/...]"), which tells an
// operator nothing; its code's message is the cause.
std::string reason(const std::exception& e) {
  if (auto* se = dynamic_cast<const boost::system::system_error*>(&e)) return se->code().message();
  return e.what();
}

// Runs `aw` to completion on `ioc` (already running on other threads) from the main thread.
template <class T>
T run_sync(net::io_context& ioc, net::awaitable<T> aw) {
  return net::co_spawn(ioc, std::move(aw), net::use_future).get();
}

int migrate_only(const util::config& cfg) {
  net::io_context ioc;
  auto guard = net::make_work_guard(ioc);
  std::thread t([&] { ioc.run(); });
  int rc = 0;
  try {
    auto db = open_store(cfg, ioc.get_executor());
    net::co_spawn(ioc, db->migrate(), net::use_future).get();
    util::log(util::log_level::info, "migrations applied", {{"backend", db->backend()}});
  } catch (const std::exception& e) {
    util::log(util::log_level::error, "migration failed", {{"error", reason(e)}});
    rc = 1;
  }
  guard.reset();
  ioc.stop();
  t.join();
  return rc;
}

// GET /health/ready on a running instance: exit 0 when it answers 200 within `timeout` (container
// probes); 1 otherwise — refused, an error status, or no complete answer in time.
int healthcheck(const std::string& host, int port,
                std::chrono::steady_clock::duration timeout = std::chrono::seconds(5)) {
  net::io_context ioc;
  std::string resp, error = "no answer within the timeout";
  bool done = false;
  net::co_spawn(
      ioc,
      [&]() -> net::awaitable<void> {
        net::ip::tcp::resolver resolver(ioc);
        net::ip::tcp::socket sock(ioc);
        auto endpoints = co_await resolver.async_resolve(host, std::to_string(port), net::use_awaitable);
        co_await net::async_connect(sock, endpoints, net::use_awaitable);
        std::string req = "GET /health/ready HTTP/1.1\r\nHost: " + host + "\r\nConnection: close\r\n\r\n";
        co_await net::async_write(sock, net::buffer(req), net::use_awaitable);
        boost::system::error_code ec;  // EOF ends the answer (Connection: close)
        co_await net::async_read(sock, net::dynamic_buffer(resp, 64 * 1024),
                                 net::redirect_error(net::use_awaitable, ec));
        done = true;
      },
      [&](std::exception_ptr ep) {
        if (!ep) return;
        try {
          std::rethrow_exception(ep);
        } catch (const boost::system::system_error& e) {
          error = e.code().message();
        } catch (const std::exception& e) {
          error = e.what();
        }
      });
  ioc.run_for(timeout);  // returns at the deadline even if the instance never answers
  bool ok = done && resp.rfind("HTTP/1.1 200", 0) == 0;
  std::cout << (ok ? "healthy" : "unhealthy: " + (done ? resp.substr(0, resp.find('\r')) : error)) << std::endl;
  return ok ? 0 : 1;
}

// Contract §8: the descriptor limit's soft value raised to the hard one, and the connection cap
// lowered to fit it, leaving room for the database, the catalog and the process's own files.
int connection_cap(const util::config& cfg) {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0) return cfg.max_connections;
  if (lim.rlim_cur < lim.rlim_max) {
    rlimit raised = lim;
    raised.rlim_cur = lim.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0) lim = raised;
  }
  if (lim.rlim_cur == RLIM_INFINITY) return cfg.max_connections;
  auto fds = static_cast<std::int64_t>(lim.rlim_cur);
  std::int64_t reserve = 32 + cfg.db_pool_size * (cfg.database_read_url.empty() ? 1 : 2) + cfg.catalog_max_concurrency;
  std::int64_t fit = fds > 2 * reserve ? fds - reserve : std::max<std::int64_t>(1, fds / 2);
  return static_cast<int>(std::min<std::int64_t>(cfg.max_connections, fit));
}

// --- Composition: what the service is made of, built from the configuration. ---

// The stores, migrated. Throws when the database cannot be opened or migrated.
struct stores {
  std::unique_ptr<store::store> db;       // the primary: migrations, writes, every read
  std::unique_ptr<store::store> standby;  // DATABASE_READ_URL: the hot reads while the primary is down
  store::pg_store* pg = nullptr;          // the primary on PostgreSQL: the listener reports to it
};

stores open_stores(const util::config& cfg, service_context& ioc, store::change_feed& feed) {
  stores s;
  s.db = open_store(cfg, ioc.get_executor(), &s.pg);
  // Every write is published to the feed once (the one invalidation path); on PostgreSQL its
  // notification names this instance, whose listener then skips the echo.
  s.db->publish_to(feed);
  if (s.pg) s.pg->set_notify_origin(feed.instance());
  // The standbys for reads while the primary cannot be reached (contract §11). Never migrated
  // (a standby refuses writes); its connections open on first use.
  if (!cfg.database_read_url.empty())
    s.standby = store::make_pg_store(ioc.get_executor(), cfg.database_read_url, cfg.db_pool_size, pg_limits_of(cfg));
  run_sync(ioc, s.db->migrate());
  return s;
}

catalog::client_options catalog_options_of(const util::config& cfg) {
  auto opts = catalog::options_from(cfg);
  opts.log = [](std::string_view m, const catalog::log_context& ctx) {
    if (ctx.correlation_id.empty())
      util::log(util::log_level::warning, m);
    else if (ctx.trace_id.empty())
      util::log(util::log_level::warning, m, {{"correlation_id", ctx.correlation_id}});
    else
      util::log(util::log_level::warning, m, {{"correlation_id", ctx.correlation_id}, {"trace_id", ctx.trace_id}});
  };
  return opts;
}

http::server_options server_options_of(const util::config& cfg) {
  http::server_options opts;
  opts.host = cfg.host;
  opts.port = static_cast<unsigned short>(cfg.api_port);
  opts.body_limit = cfg.body_limit;
  opts.header_timeout = cfg.header_timeout;
  opts.request_timeout = cfg.request_timeout;
  opts.idle_timeout = cfg.idle_timeout;
  opts.max_connections = connection_cap(cfg);
  opts.max_connections_per_client = cfg.max_connections_per_client;
  opts.cors_origins = cfg.cors_origins;
  opts.rate_per_second = cfg.rate_limit_per_second;
  opts.rate_burst = cfg.rate_limit_burst;
  opts.trusted_proxies = cfg.trusted_proxies;
  opts.rate_limit_exempt = {"/health", "/health/ready", "/metrics"};
  return opts;
}

// Everything serving needs, in dependency order: members are built top to bottom and destroyed
// bottom to top, so nothing outlives what it points at.
struct service {
  store::change_feed& feed;
  stores st;
  store::read_through read_through;
  util::metrics metrics;
  util::task_group background;
  auth::jwt_codec jwt;
  auth::hash_pool hashes;
  auth::token_cache tokens;
  std::optional<store::pg_listener> listener;
  catalog::client catalog_client;
  catalog::product_cache products;
  app a;
  api_router router;
  http::server srv;

  service(const util::config& cfg, service_context& ioc, store::change_feed& f, stores opened)
      : feed(f),
        st(std::move(opened)),
        read_through(*st.db, feed, static_cast<std::size_t>(cfg.read_cache_bytes), st.standby.get()),
        background(ioc.get_executor()),
        jwt(cfg.jwt_secret),
        hashes(cfg.hash_workers, cfg.hash_queue_limit, cfg.hash_queue_per_client),
        tokens(read_through, feed, cfg.auth_cache_ttl),
        catalog_client(ioc.get_executor(), catalog_options_of(cfg), metrics),
        products(
            *st.db, catalog_client, cfg, metrics, background, ioc.get_executor(), [] { return util::now_micros(); },
            [](std::string_view m) { util::log(util::log_level::warning, m); }, &feed),
        a{cfg, *st.db, jwt, hashes, tokens, products, metrics, background, feed, read_through},
        router(a),
        srv(
            ioc, server_options_of(cfg), [this](http::request& r) { return router(r); },
            [](http::failure f) { return api::fail(f); },
            [this](const http::request& r, int code, double s) {
              // Labels from fixed sets only (§8): odd methods count as `other`, unknown paths as `unmatched`.
              metrics.observe_request(r.route, r.raw ? http::method_label(*r.raw) : "other", code, s);
            }) {
    if (cfg.database_is_postgres) {
      // A heartbeat unanswered means a hung server: the pool's breaker opens (contract §11).
      listener.emplace(ioc.get_executor(), cfg.database_listen_url, feed, cfg.db_connect_timeout,
                       [pg = st.pg](const std::string& why) {
                         if (pg) pg->report_unreachable(why);
                       });
      listener->start();
    }
  }
};

// --- Run: serve until SIGTERM/SIGINT, then drain and take the service down. ---

// Every connection closed, then every background task ended.
net::awaitable<void> all_ended(http::server& srv, util::task_group& background) {
  co_await srv.sessions().async_wait(net::use_awaitable);
  co_await background.async_wait(net::use_awaitable);
}

// After the server stopped accepting: waits (bounded by DRAIN_TIMEOUT) for the connections with
// requests in flight and for background work.
net::awaitable<void> drain(http::server& srv, util::task_group& background, util::duration drain_timeout) {
  const auto deadline = std::chrono::steady_clock::now() + drain_timeout;
  // A grace for kept-alive connections (a load balancer's pool): a request arriving on one is
  // still served, with `Connection: close`, instead of meeting a closed socket that a balancer
  // may not retry (contract §9, rolling restart). Then the idle ones are closed.
  const auto grace = std::min(std::chrono::steady_clock::now() + std::chrono::seconds(1), deadline);
  // Named, not temporaries inside co_await (CONTRIBUTING.md, "Compiler notes").
  auto closed = srv.sessions().async_wait(net::use_awaitable);
  co_await util::with_deadline(std::move(closed), grace);
  srv.close_idle();
  auto ended = all_ended(srv, background);
  if (!co_await util::with_deadline(std::move(ended), deadline))
    util::log(util::log_level::warning, "drain timeout; exiting with work in flight",
              {{"requests", srv.active_requests()}, {"background", static_cast<std::int64_t>(background.active())}});
}

void announce(const util::config& cfg, unsigned short port, const service& s) {
  if (!cfg.default_secrets.empty()) {
    std::string names;
    for (auto& n : cfg.default_secrets) names += (names.empty() ? "" : ", ") + n;
    util::log_always(util::log_level::warning,
                     "development default secrets in use; set them before exposing the service",
                     {{"defaults", names}, {"host", cfg.host}});
  }
  // Announced only now: a SIGTERM sent as soon as "listening" appears finds its handler.
  util::log_always(util::log_level::info, "listening",
                   {{"port", static_cast<int>(port)},
                    {"host", cfg.host},
                    {"backend", s.st.db->backend()},
                    {"threads", cfg.api_threads},
                    {"max_connections", s.srv.options().max_connections},
                    {"version", FAV_VERSION}});
  util::log_flush();
}

// SIGTERM/SIGINT: stop accepting, let in-flight requests and background work finish (bounded).
net::awaitable<void> serve_until_signal(const util::config& cfg, service& s, net::signal_set& signals) {
  const auto [ec, sig] = co_await signals.async_wait(net::as_tuple(net::use_awaitable));
  if (ec) co_return;
  util::log(util::log_level::info, "shutting down", {{"signal", sig}});
  s.srv.begin_shutdown();
  s.background.stop();
  if (s.listener) s.listener->stop();
  co_await drain(s.srv, s.background, cfg.drain_timeout);
}

// Listens, serves until a stop signal and its drain, then stops the threads (`stop_threads`)
// and takes the parts down in an order where nothing still pending points at something gone.
int run(const util::config& cfg, service_context& ioc, service& s, const std::function<void()>& stop_threads) {
  unsigned short port = 0;
  try {
    port = s.srv.listen();
  } catch (const std::exception& e) {
    util::log(util::log_level::critical, "cannot listen",
              {{"error", reason(e)}, {"host", cfg.host}, {"port", cfg.api_port}});
    stop_threads();
    return 1;
  }
  s.srv.start();
  if (cfg.catalog_warm_interval >= util::duration::zero()) s.products.start_warmup();
  auth::start_sign_in_sweep(ioc.get_executor(), *s.st.db, s.background, cfg.sign_in_sweep_interval);

  // Installed before "listening" is announced: a SIGTERM sent as soon as it appears is caught.
  net::signal_set signals(ioc, SIGINT, SIGTERM);
  announce(cfg, port, s);
  run_sync(ioc, serve_until_signal(cfg, s, signals));
  s.catalog_client.shutdown();
  stop_threads();
  // Requests still in flight past the drain deadline: their worker-pool jobs finish (or are
  // dropped) first, so every continuation sits in the stopped io_context; destroying those then
  // runs their destructors (connection leases, guards) while the pools, store, catalog and
  // metrics they point at still exist. A statement still running is cancelled in the database
  // as its connection closes.
  s.hashes.stop();
  s.st.db->close();
  if (s.st.standby) s.st.standby->close();
  ioc.destroy_pending_work();
  // Closing the PostgreSQL pool lets the statement cancels sent just now reach the server.
  s.st.db.reset();
  s.st.standby.reset();
  util::log(util::log_level::info, "stopped", {});
  return 0;
}

int serve(const util::config& cfg) {
  service_context ioc(cfg.api_threads);
  auto guard = net::make_work_guard(ioc);
  std::vector<std::thread> threads;
  for (int i = 0; i < cfg.api_threads; ++i) threads.emplace_back([&] { ioc.run(); });
  auto stop_threads = [&] {
    guard.reset();
    ioc.stop();
    for (auto& t : threads) t.join();
  };

  // The change feed (contract §9): live at once on SQLite (this process sees every write); on
  // PostgreSQL once the listener's LISTEN is in place.
  store::change_feed feed(!cfg.database_is_postgres);
  stores opened;
  try {
    opened = open_stores(cfg, ioc, feed);
  } catch (const std::exception& e) {
    util::log(util::log_level::critical, "cannot open the database", {{"error", reason(e)}});
    stop_threads();
    return 1;
  }
  service s(cfg, ioc, feed, std::move(opened));
  return run(cfg, ioc, s, stop_threads);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App cli{"favorites-api: the Favorites API service. Configured through the environment and .env."};
  cli.set_version_flag("-V,--version", FAV_VERSION);
  cli.require_subcommand(0, 1);
  auto* serve_cmd = cli.add_subcommand("serve", "Run the HTTP service (the default).");
  auto* migrate_cmd = cli.add_subcommand("migrate", "Apply database migrations and exit.");
  auto* check_cmd =
      cli.add_subcommand("check-config", "Validate the configuration and exit (non-zero with the reason).");
  auto* health_cmd =
      cli.add_subcommand("healthcheck", "Exit 0 when a running instance answers GET /health/ready with 200.");
  auto* version_cmd = cli.add_subcommand("version", "Print the version and exit.");
  auto* help_cmd = cli.add_subcommand("help", "Print this help and exit.");
  std::string hc_host = "127.0.0.1";
  int hc_port = 0;
  health_cmd->add_option("--host", hc_host, "Host of the running instance.");
  health_cmd->add_option("--port", hc_port, "Port (default: API_PORT).");
  CLI11_PARSE(cli, argc, argv);
  // Neither reads the configuration: they work whatever the environment holds.
  if (*version_cmd) {
    std::cout << FAV_VERSION << std::endl;
    return 0;
  }
  if (*help_cmd) {
    // The whole program's help (cli.help() would describe the `help` subcommand itself).
    std::cout << cli.get_formatter()->make_help(&cli, "", CLI::AppFormatMode::Normal);
    return 0;
  }

  auto cfg = load_or_exit(check_cmd->parsed());
  util::log_init(cfg.log_level);
  auth::init_crypto();
  int rc = 0;
  if (*check_cmd) {
    std::cout << "configuration ok (env=" << cfg.env
              << ", backend=" << (cfg.database_is_postgres ? "postgresql" : "sqlite") << ")" << std::endl;
  } else if (*migrate_cmd) {
    rc = migrate_only(cfg);
  } else if (*health_cmd) {
    rc = healthcheck(hc_host, hc_port ? hc_port : cfg.api_port);
  } else {
    (void)serve_cmd;
    rc = serve(cfg);
  }
  util::log_shutdown();
  return rc;
}
