// The per-request token check (customer exists, token not revoked) with a short in-process
// memory of "ok" answers. Sign-out and delete on this instance forget at once; other instances
// sharing the database see a revocation within AUTH_CACHE_TTL_SECONDS (0 disables the cache).
#pragma once
#include <array>
#include <boost/asio/awaitable.hpp>
#include <mutex>
#include <string>
#include <unordered_map>

#include "store/store.hpp"

namespace fav::auth {

namespace net = boost::asio;

class token_cache {
 public:
  token_cache(store::store& db, double ttl_s) : db_(db), ttl_us_(static_cast<std::int64_t>(ttl_s * 1e6)) {}

  // The state of (customer, revocation key): ok, revoked or no_customer.
  net::awaitable<store::auth_state> check(const std::string& customer_id, const std::string& key);
  // Forget a revoked token / a deleted customer's tokens.
  void forget_token(const std::string& key);
  void forget_customer(const std::string& customer_id);

 private:
  struct entry {
    std::string customer_id;
    std::int64_t expires_us;
  };
  struct shard {
    std::mutex mu;
    std::unordered_map<std::string, entry> by_key;
  };
  shard& shard_for(const std::string& key) { return shards_[std::hash<std::string>{}(key) % shards_.size()]; }

  store::store& db_;
  std::int64_t ttl_us_;
  std::array<shard, 16> shards_;
};

}  // namespace fav::auth
