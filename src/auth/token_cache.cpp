// See token_cache.hpp.
#include "auth/token_cache.hpp"

#include <algorithm>

#include "auth/revocation.hpp"
#include "util/time.hpp"

namespace fav::auth {

token_cache::token_cache(store::read_through& db, store::change_feed& feed, util::duration ttl, std::size_t capacity)
    : db_(db), feed_(feed), ttl_us_(util::to_micros(ttl)), per_shard_(std::max<std::size_t>(1, capacity / 16)) {
  for (auto& s : shards_) s.by_key = util::lru_map<std::string, entry>(per_shard_);
  feed_.subscribe([this](const store::change& c) {
    switch (c.what) {
      case store::change::kind::customer: forget_customer(c.id); break;
      case store::change::kind::signin: forget_token(c.id); break;
      case store::change::kind::all: clear(); break;
      case store::change::kind::favorites:
      case store::change::kind::product: break;
    }
  });
}

void token_cache::unindex(shard& s, const std::string& key, const entry& e) {
  auto k = s.keys_of.find(e.customer_id);
  if (k != s.keys_of.end()) {
    std::erase(k->second, key);
    if (k->second.empty()) s.keys_of.erase(k);
  }
}

void token_cache::erase_locked(shard& s, const std::string& key) {
  if (const entry* e = s.by_key.peek(key)) {
    unindex(s, key, *e);
    s.by_key.erase(key);
  }
}

token_cache::ticket token_cache::lookup(const core::customer_id& customer, const std::string& key,
                                        const std::string& sid) {
  ticket t;
  t.trusted = ttl_us_ > 0 && feed_.live();
  if (!t.trusted) return t;
  t.epoch = feed_.auth_epoch();
  const std::string& customer_id = customer.str();
  auto& s = shard_for(customer_id);
  const auto now = util::now_micros();
  std::lock_guard lk(s.mu);
  const entry* e = s.by_key.peek(key);
  if (e && e->customer_id == customer_id && e->sid == sid) {
    if (e->expires_us > now) {
      s.by_key.touch(key);
      t.hit = true;
      return t;
    }
    erase_locked(s, key);
  }
  return t;
}

void token_cache::remember(const core::customer_id& customer, const std::string& key, const std::string& sid,
                           const ticket& t) {
  if (!t.trusted) return;
  // Kept only if no invalidation (or feed outage) happened while the database answered: an
  // answer read before a revocation must not outlive the revocation's notification.
  // The epoch is compared under the shard's lock: an invalidation bumps it before it takes the
  // lock to forget, so either we see the bump or it sees our entry.
  const std::string& customer_id = customer.str();
  auto& s = shard_for(customer_id);
  std::lock_guard lk(s.mu);
  if (!feed_.live() || feed_.auth_epoch() != t.epoch || s.by_key.contains(key)) return;
  s.by_key.put(key, entry{customer_id, sid, util::now_micros() + ttl_us_}, 1,
               [&s](const std::string& k, const entry& e) { unindex(s, k, e); });
  s.keys_of[customer_id].push_back(key);
}

net::awaitable<store::auth_state> token_cache::check(const core::customer_id& customer, const std::string& key,
                                                     const std::string& sid) {
  const ticket t = lookup(customer, key, sid);
  if (t.hit) {
    hits_.fetch_add(1, std::memory_order_relaxed);
    co_return store::auth_state::ok;
  }
  misses_.fetch_add(1, std::memory_order_relaxed);
  std::string revoked_sign_in = sid.empty() ? std::string() : sign_in_key(sid);  // named: see policy.cpp
  auto state = co_await db_.check_token(customer, key, std::move(revoked_sign_in));
  if (state == store::auth_state::ok) remember(customer, key, sid, t);
  co_return state;
}

void token_cache::forget_token(const std::string& key) {
  if (key.starts_with("sid:")) {  // a whole sign-in was revoked (revocation.hpp)
    forget_sign_in(key.substr(4));
    return;
  }
  // Only the key is known (a revocation notice): look in every shard.
  for (auto& s : shards_) {
    std::lock_guard lk(s.mu);
    erase_locked(s, key);
  }
}

void token_cache::forget_sign_in(const std::string& sid) {
  if (sid.empty()) return;
  for (auto& s : shards_) {
    std::lock_guard lk(s.mu);
    s.by_key.erase_if([&](const std::string& key, const entry& e) {
      if (e.sid != sid) return false;
      unindex(s, key, e);
      return true;
    });
  }
}

void token_cache::forget_customer(const std::string& customer_id) {
  auto& s = shard_for(customer_id);
  std::lock_guard lk(s.mu);
  auto k = s.keys_of.find(customer_id);
  if (k == s.keys_of.end()) return;
  const std::vector<std::string> keys = std::move(k->second);
  s.keys_of.erase(k);
  for (const auto& key : keys) s.by_key.erase(key);
}

void token_cache::clear() {
  for (auto& s : shards_) {
    std::lock_guard lk(s.mu);
    s.by_key.clear();
    s.keys_of.clear();
  }
}

std::size_t token_cache::size() const {
  std::size_t n = 0;
  for (const auto& s : shards_) {
    std::lock_guard lk(s.mu);
    n += s.by_key.size();
  }
  return n;
}

}  // namespace fav::auth
