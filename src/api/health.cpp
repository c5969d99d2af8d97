// /health, /health/ready and /metrics (contract §3 "Health and docs").
#include <vector>

#include "api/handlers.hpp"
#include "app.hpp"
#include "core/json_text.hpp"

namespace fav::api {

net::awaitable<http::response> health(http::request&, app&) {
  co_return http::json(http::status::ok, R"({"status":"healthy"})");
}

net::awaitable<http::response> health_ready(http::request&, app& a) {
  bool ok = false;
  try {
    ok = co_await a.db.ping();
  } catch (const std::exception&) {
    ok = false;  // unreachable database: that is exactly what this endpoint reports
  }
  // The change feed does not decide readiness: while it is down the instance still answers
  // correctly, checking the database on every request (contract §9).
  std::string body;
  core::json_writer w(body);
  w.begin_object();
  w.key("status").str(ok ? "ready" : "unavailable");
  w.key("checks").begin_object();
  w.key("database").str(ok ? "ok" : "unavailable");
  w.key("change_feed").str(a.feed.live() ? "ok" : "down");
  w.end_object();
  w.end_object();
  auto res = http::json(ok ? http::status::ok : http::status::service_unavailable, std::move(body));
  if (!ok) res.header("Retry-After", "1");
  res.header("Cache-Control", "no-store");
  co_return res;
}

net::awaitable<http::response> metrics(http::request&, app& a) {
  auto pool = a.db.usage();
  std::vector<util::metrics::gauge> gauges{
      {"fav_db_pool_in_use", "Database connections (SQLite: workers) busy with a statement.", double(pool.in_use)},
      {"fav_db_pool_waiting", "Statements waiting for a database connection.", double(pool.waiting)},
      {"fav_db_round_trips_total",
       "Exchanges with PostgreSQL on the pool's connections since the start (a pipeline counts once; 0 on SQLite).",
       double(pool.round_trips)},
      {"fav_db_connect_attempts_total",
       "PostgreSQL connection attempts since the start (while unreachable: one probe at a time; 0 on SQLite).",
       double(pool.connects)},
      {"fav_db_unreachable",
       "1 while the database is known unreachable and requests that need it answer 503 at once, else 0.",
       pool.unreachable ? 1.0 : 0.0},
      {"fav_password_hash_queue_depth", "Password hashes waiting for a worker.", double(a.hashes.queued())},
      {"fav_password_hash_running", "Password hashes being computed now.", double(a.hashes.running())},
      {"fav_background_tasks", "Background tasks (product refreshes, warm-ups) in flight.",
       double(a.background.active())},
      {"fav_change_feed_up", "1 while the PostgreSQL change feed (LISTEN) is connected, else 0.",
       a.feed.live() ? 1.0 : 0.0},
      {"fav_change_feed_connects_total", "Times the change feed connected (first connection and reconnections).",
       double(a.feed.reconnects())},
      {"fav_change_feed_notifications_total", "Change notifications received from other instances.",
       double(a.feed.received())},
      {"fav_change_feed_echoes_total",
       "Notifications of this instance's own writes, skipped (published in-process when the write returned).",
       double(a.feed.echoes())},
      {"fav_token_cache_entries", "Entries in the in-process token-check cache.", double(a.tokens.size())},
      {"fav_token_cache_hits_total", "Token checks answered by the token cache since the start.",
       double(a.tokens.hits())},
      {"fav_token_cache_misses_total", "Token checks asked of the database since the start.",
       double(a.tokens.misses())},
  };
  const store::read_cache& reads = a.read_through.memory();
  gauges.push_back(
      {"fav_read_cache_bytes", "Bytes held by the read cache (READ_CACHE_BYTES at most).", double(reads.bytes())});
  gauges.push_back({"fav_read_cache_entries", "Entries in the read cache (customers, favorites pages, products).",
                    double(reads.entries())});
  gauges.push_back(
      {"fav_read_cache_hits_total", "Reads answered by the read cache since the start.", double(reads.hits())});
  gauges.push_back({"fav_read_cache_misses_total", "Reads the read cache could not answer since the start.",
                    double(reads.misses())});
  auto res = http::json(http::status::ok, a.metrics.render(gauges));
  res.content_type = "text/plain; version=0.0.4; charset=utf-8";
  res.header("Cache-Control", "no-store");
  co_return res;
}

}  // namespace fav::api
