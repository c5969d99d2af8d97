// The PostgreSQL side of the change feed: one extra connection per instance that LISTENs on
// the feed's channel, on the event loop like every other connection. Other instances'
// notifications go to the feed's subscribers (this instance's own echoes are skipped: see
// change_feed::deliver); while the connection is down the feed is not live (caches answer nothing
// from memory), the listener reconnects with back-off, and when it is back the feed flushes.
#pragma once
#include <atomic>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <functional>
#include <memory>
#include <string>

#include "store/change_feed.hpp"
#include "store/pg_conn.hpp"

namespace fav::store {

// The channel every write notifies (pg_store's statements) and every listener listens on.
inline constexpr const char* feed_channel = "favorites_api_changes";

class pg_listener {
 public:
  // `conninfo`: DATABASE_LISTEN_URL (a direct connection: a transaction pooler does not keep a
  // LISTEN). `unresponsive` runs when a heartbeat goes unanswered (a hung server keeps its
  // sockets open): the pool then stops sending requests to it (pg_pool::report_unreachable).
  pg_listener(net::any_io_executor ex, std::string conninfo, change_feed& feed,
              pg_clock::duration connect_timeout = std::chrono::seconds(2),
              std::function<void(const std::string&)> unresponsive = {});
  // Starts the listening loop (detached on the executor).
  void start();
  // The loop ends at its next wake-up (within a second); nothing is logged for it.
  void stop() { stopping_ = true; }

 private:
  net::awaitable<void> run();
  net::awaitable<void> listen_once(bool& announced);

  net::any_io_executor ex_;
  std::string conninfo_;
  change_feed& feed_;
  pg_clock::duration connect_timeout_;
  std::unique_ptr<pg_hosts> hosts_;  // parsed at the first connect; remembers failed hosts
  std::function<void(const std::string&)> unresponsive_;
  std::atomic<bool> stopping_{false};
};

}  // namespace fav::store
