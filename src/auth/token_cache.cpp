// See token_cache.hpp.
#include "auth/token_cache.hpp"

#include "util/time.hpp"

namespace fav::auth {

net::awaitable<store::auth_state> token_cache::check(const std::string& customer_id, const std::string& key) {
  auto now = util::now_micros();
  if (ttl_us_ > 0) {
    auto& s = shard_for(key);
    std::lock_guard lk(s.mu);
    auto it = s.by_key.find(key);
    if (it != s.by_key.end() && it->second.customer_id == customer_id && it->second.expires_us > now)
      co_return store::auth_state::ok;
  }
  auto state = co_await db_.check_token(customer_id, key);
  if (state == store::auth_state::ok && ttl_us_ > 0) {
    auto& s = shard_for(key);
    std::lock_guard lk(s.mu);
    // Bounded memory: a full shard starts over rather than growing without limit.
    if (s.by_key.size() > 50000) s.by_key.clear();
    s.by_key[key] = entry{customer_id, now + ttl_us_};
  }
  co_return state;
}

void token_cache::forget_token(const std::string& key) {
  auto& s = shard_for(key);
  std::lock_guard lk(s.mu);
  s.by_key.erase(key);
}

void token_cache::forget_customer(const std::string& customer_id) {
  for (auto& s : shards_) {
    std::lock_guard lk(s.mu);
    std::erase_if(s.by_key, [&](auto& kv) { return kv.second.customer_id == customer_id; });
  }
}

}  // namespace fav::auth
