// The change feed (contract §9): "customer X changed", "sign-in S revoked", "favorites of X
// changed", "product P refreshed". The store publishes each of this instance's writes once
// (store::publish_to), and on PostgreSQL pg_listener delivers what other instances committed
// (their pg_notify payloads name the sending instance, so this one skips its own echoes). The
// in-process memories (read_through, token_cache) only subscribe. While the feed is not live,
// they must not answer from memory.
#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/types.hpp"

namespace fav::store {

struct change {
  enum class kind : std::uint8_t {
    customer,   // a customer was deleted or changed (email, name): id = customer id
    signin,     // a token or a sign-in's refresh chain was revoked: id = its revocation key / family
    favorites,  // a customer's favorites changed: id = customer id
    product,    // a products_cache row was written (a catalog refresh): id = product id
    all,        // anything may have changed (the feed was down): forget everything
  };
  kind what;
  std::string id;
  // The instance that made the write (a notification's sender); empty when not known.
  std::string origin{};
  // In-process only, for a product this instance wrote: the row as written (valid during the
  // publish), so memories keep it rather than forget it.
  const core::product* row = nullptr;

  // Wire form of a notification payload: "<origin>/c:<id>", or without a known origin "c:<id>"
  // (likewise "s:", "f:", "p:", "a:"). The origin is the sender's instance id (hex).
  std::string encode() const;
  static std::optional<change> decode(std::string_view payload);
};

class change_feed {
 public:
  using handler = std::function<void(const change&)>;

  // `live`: whether changes committed elsewhere reach this feed right away (SQLite: true;
  // PostgreSQL: false until the listening connection is up).
  explicit change_feed(bool live);

  // This instance's id (random at start, hex): the origin of the notifications its writes send.
  const std::string& instance() const { return instance_; }

  // Subscribe before traffic starts; handlers run on any thread, must be quick and not throw.
  void subscribe(handler h);
  // Delivers to every subscriber, at once, on the calling thread.
  void publish(const change& c);

  // True while caches may answer from memory.
  bool live() const { return live_.load(std::memory_order_acquire); }
  // The listener lost its connection: caches stop answering from memory at once.
  void set_down();
  // The listener is back (LISTEN done): everything cached may be stale, so subscribers get
  // kind::all first, then caches may answer from memory again.
  void set_up();

  // Bumped by every customer/signin/all change and by every state change: a cache entry read
  // from the database is stored only if this did not move meanwhile (no stale re-insert after
  // a concurrent invalidation).
  std::uint64_t auth_epoch() const { return auth_epoch_.load(std::memory_order_acquire); }

  // For /metrics.
  std::uint64_t received() const { return received_.load(std::memory_order_relaxed); }
  std::uint64_t reconnects() const { return reconnects_.load(std::memory_order_relaxed); }
  std::uint64_t echoes() const { return echoes_.load(std::memory_order_relaxed); }
  // A notification from the database: delivered unless it is the echo of this instance's own
  // write (already published when the write returned).
  void deliver(const change& c);

 private:
  std::mutex mu_;  // guards handlers_ (written only before traffic, read on every publish)
  std::vector<handler> handlers_;
  std::string instance_;
  std::atomic<bool> live_;
  std::atomic<std::uint64_t> auth_epoch_{0};
  std::atomic<std::uint64_t> received_{0};
  std::atomic<std::uint64_t> echoes_{0};
  std::atomic<std::uint64_t> reconnects_{0};
};

}  // namespace fav::store
