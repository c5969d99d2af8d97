// The per-request token check (customer exists, token and its sign-in not revoked) with an
// in-process memory of "ok" answers: a bounded LRU, each answer trusted for up to
// AUTH_CACHE_TTL_SECONDS (0 disables the cache) and only while the change feed is live. It only
// subscribes to the feed, which drops an answer as soon as this instance's store writes a
// revocation or a customer change (at once) or another instance's does (contract §9: within 1 s
// everywhere); while the feed is down every request asks the database.
#pragma once
#include <array>
#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <cstddef>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "store/change_feed.hpp"
#include "store/read_through.hpp"
#include "store/store.hpp"
#include "util/config.hpp"
#include "util/lru_map.hpp"

namespace fav::auth {

namespace net = boost::asio;

class token_cache {
 public:
  // Subscribes to `feed` (both must outlive this cache's use). `capacity`: entries at most.
  // `db`: where a miss is asked (check_token, with the read failover).
  token_cache(store::read_through& db, store::change_feed& feed, util::duration ttl, std::size_t capacity = 100000);

  // The state of (customer, revocation key, sign-in): ok, revoked or no_customer. `sid` is the
  // token's sign-in (empty for tokens without one).
  net::awaitable<store::auth_state> check(const core::customer_id& customer, const std::string& key,
                                          const std::string& sid);

  std::size_t size() const;
  // Checks answered from memory / asked of the database since the start (for /metrics).
  std::uint64_t hits() const { return hits_.load(std::memory_order_relaxed); }
  std::uint64_t misses() const { return misses_.load(std::memory_order_relaxed); }

 private:
  // check() in two halves: lookup() answers from memory (hit) or says the database must be asked;
  // remember() keeps the database's "ok", unless an invalidation (or a feed outage) came after
  // the lookup.
  struct ticket {
    bool hit = false;
    bool trusted = false;     // the cache was on and the feed live at the lookup
    std::uint64_t epoch = 0;  // the feed's invalidation count at the lookup
  };
  ticket lookup(const core::customer_id& customer, const std::string& key, const std::string& sid);
  void remember(const core::customer_id& customer, const std::string& key, const std::string& sid, const ticket& t);
  // What the feed's news forgets: a revoked token (a "sid:..." key, see revocation.hpp, forgets its
  // whole sign-in) / every token of a revoked sign-in / a customer's tokens / everything.
  void forget_token(const std::string& key);
  void forget_sign_in(const std::string& sid);
  void forget_customer(const std::string& customer_id);
  void clear();

  struct entry {
    std::string customer_id;
    std::string sid;
    std::int64_t expires_us;
  };
  // Sharded by customer, so a customer's keys are all in one shard.
  struct shard {
    mutable std::mutex mu;
    util::lru_map<std::string, entry> by_key;                           // an entry costs 1
    std::unordered_map<std::string, std::vector<std::string>> keys_of;  // customer → keys
  };
  shard& shard_for(const std::string& customer_id) {
    return shards_[std::hash<std::string>{}(customer_id) % shards_.size()];
  }
  // Drops `key` from its customer's list (the caller erases or evicts the entry itself).
  static void unindex(shard& s, const std::string& key, const entry& e);
  static void erase_locked(shard& s, const std::string& key);  // unindexes and erases

  store::read_through& db_;
  store::change_feed& feed_;
  std::int64_t ttl_us_;
  std::size_t per_shard_;
  std::array<shard, 16> shards_;
  std::atomic<std::uint64_t> hits_{0};
  std::atomic<std::uint64_t> misses_{0};
};

}  // namespace fav::auth
