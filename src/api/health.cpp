// /health, /health/ready and /metrics (contract §3 "Health and docs").
#include "api/handlers.hpp"
#include "app.hpp"

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
  const char* feed = a.feed.live() ? "ok" : "down";
  auto res =
      ok ? http::json(http::status::ok,
                      std::string(R"({"status":"ready","checks":{"database":"ok","change_feed":")") + feed + "\"}}")
         : http::json(http::status::service_unavailable,
                      std::string(R"({"status":"unavailable","checks":{"database":"unavailable","change_feed":")") +
                          feed + "\"}}");
  if (!ok) res.header("Retry-After", "1");
  res.header("Cache-Control", "no-store");
  co_return res;
}

net::awaitable<http::response> metrics(http::request&, app& a) {
  auto pool = a.db.usage();
  auto res = http::json(http::status::ok, a.metrics.render({{"fav_db_pool_in_use", pool.in_use},
                                                            {"fav_db_pool_waiting", pool.waiting},
                                                            {"fav_password_hash_queue_depth", a.hashes.queued()},
                                                            {"fav_password_hash_running", a.hashes.running()},
                                                            {"fav_background_tasks", a.background.active()},
                                                            {"fav_change_feed_up", a.feed.live() ? 1 : 0},
                                                            {"fav_change_feed_connects", a.feed.reconnects()},
                                                            {"fav_change_feed_notifications", a.feed.received()},
                                                            {"fav_token_cache_entries", a.tokens.size()}}));
  res.content_type = "text/plain; version=0.0.4; charset=utf-8";
  res.header("Cache-Control", "no-store");
  co_return res;
}

}  // namespace fav::api
