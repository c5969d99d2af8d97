// See pg_listener.hpp. A ping every second also catches a connection that died silently, so a
// lost feed is noticed (and caches bypassed) within about a second.
#include "store/pg_listener.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "util/log.hpp"

namespace fav::store {

namespace {
constexpr auto ping_interval = std::chrono::seconds(1);
constexpr auto ping_timeout = std::chrono::seconds(2);
constexpr auto connect_timeout = std::chrono::milliseconds(2500);
constexpr auto min_backoff = std::chrono::milliseconds(100);
constexpr auto max_backoff = std::chrono::seconds(5);
}  // namespace

pg_listener::pg_listener(net::any_io_executor ex, std::string conninfo, change_feed& feed)
    : ex_(std::move(ex)), conninfo_(std::move(conninfo)), feed_(feed) {}

void pg_listener::start() {
  net::co_spawn(ex_, run(), net::detached);
}

net::awaitable<void> pg_listener::listen_once(bool& announced) {
  auto c = co_await pg_conn::connect(ex_, conninfo_, connect_timeout);
  // Named so that an operator (or a test) can find this connection in pg_stat_activity.
  co_await c->script((std::string("SET application_name = 'favorites_api_feed'; LISTEN ") + feed_channel).c_str(),
                     ping_timeout);
  // From here on every commit that notifies reaches us: flush what was cached meanwhile.
  feed_.set_up();
  util::log(util::log_level::info, "change feed listening", {{"channel", feed_channel}});
  announced = true;
  auto next_ping = pg_clock::now() + ping_interval;
  auto deliver = [&](const std::vector<std::string>& payloads) {
    for (const auto& p : payloads) {
      feed_.count_received();
      if (auto ch = change::decode(p)) feed_.publish(*ch);
    }
  };
  while (!stopping_) {
    deliver(co_await c->notifications(next_ping));
    if (pg_clock::now() >= next_ping) {
      co_await c->script("SELECT 1", ping_timeout);  // notifications that came meanwhile wait in libpq
      next_ping = pg_clock::now() + ping_interval;
    }
  }
}

net::awaitable<void> pg_listener::run() {
  pg_clock::duration backoff = min_backoff;
  net::steady_timer timer(ex_);
  while (!stopping_) {
    bool announced = false;
    try {
      co_await listen_once(announced);
    } catch (const std::exception& e) {
      if (!stopping_) {
        util::log(util::log_level::warning, "change feed down; checking the database on every request",
                  {{"error", e.what()}});
      }
    }
    feed_.set_down();
    if (announced) backoff = min_backoff;
    if (stopping_) break;
    timer.expires_after(backoff);
    co_await timer.async_wait(net::use_awaitable);
    backoff = std::min<pg_clock::duration>(backoff * 2, max_backoff);
  }
}

}  // namespace fav::store
