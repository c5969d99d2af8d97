// See pg_listener.hpp. A heartbeat every 250 ms, answered within 750 ms, proves the connection
// alive (contract §9): one that stops answering with its socket still open counts as down within
// a second, and caches are bypassed from then on.
#include "store/pg_listener.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "util/log.hpp"

namespace fav::store {

namespace {
constexpr auto ping_interval = std::chrono::milliseconds(250);
constexpr auto ping_timeout = std::chrono::milliseconds(750);
constexpr auto setup_timeout = std::chrono::seconds(2);
constexpr auto min_backoff = std::chrono::milliseconds(100);
constexpr auto max_backoff = std::chrono::seconds(5);
}  // namespace

pg_listener::pg_listener(net::any_io_executor ex, std::string conninfo, change_feed& feed,
                         pg_clock::duration connect_timeout, std::function<void(const std::string&)> unresponsive)
    : ex_(std::move(ex)),
      conninfo_(std::move(conninfo)),
      feed_(feed),
      connect_timeout_(connect_timeout),
      unresponsive_(std::move(unresponsive)) {}

void pg_listener::start() {
  net::co_spawn(ex_, run(), net::detached);
}

net::awaitable<void> pg_listener::listen_once(bool& announced) {
  if (!hosts_) hosts_ = std::make_unique<pg_hosts>(conninfo_);
  pg_connect_options options;
  options.host_timeout = connect_timeout_;
  auto c = co_await pg_conn::connect(ex_, *hosts_, options);
  // Named so that an operator (or a test) can find this connection in pg_stat_activity.
  co_await c->script((std::string("SET application_name = 'favorites_api_feed'; LISTEN ") + feed_channel).c_str(),
                     setup_timeout);
  // From here on every commit that notifies reaches us: flush what was cached meanwhile.
  feed_.set_up();
  util::log(util::log_level::info, "change feed listening", {{"channel", feed_channel}});
  announced = true;
  auto next_ping = pg_clock::now() + ping_interval;
  auto deliver = [&](const std::vector<std::string>& payloads) {
    for (const auto& p : payloads) {
      if (auto ch = change::decode(p)) feed_.deliver(*ch);
    }
  };
  while (!stopping_) {
    deliver(co_await c->notifications(next_ping));
    if (pg_clock::now() >= next_ping) {
      try {
        co_await c->heartbeat(ping_timeout);  // notifications that came meanwhile wait in libpq
      } catch (const unavailable& e) {
        feed_.set_down();  // before anything else: caches stop answering from memory now
        if (unresponsive_) unresponsive_(std::string("change feed heartbeat: ") + e.what());
        throw;
      }
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
