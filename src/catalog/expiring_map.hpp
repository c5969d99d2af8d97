// A small bounded map from product id to a value that expires `ttl_us` after it was put (at most
// `max_entries`, the oldest dropped first). Times are microseconds on the caller's clock, so the
// rules are unit-tested with plain numbers. Thread-safe; every operation is O(1).
#pragma once
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <utility>

#include "util/lru_map.hpp"

namespace fav::catalog {

template <class V>
class expiring_map {
 public:
  expiring_map(std::int64_t ttl_us, std::size_t max_entries) : ttl_us_(ttl_us), map_(max_entries) {}

  // Puts (or replaces) `id`'s value; nothing is kept when the ttl or the bound is 0.
  void put(std::int64_t id, V value, std::int64_t now_us) {
    if (ttl_us_ <= 0 || map_.budget() == 0) return;
    std::lock_guard lk(mu_);
    map_.put(id, entry{now_us + ttl_us_, std::move(value)});
  }
  // The value while it has not expired; an expired entry is dropped. Reading does not refresh an
  // entry (peek), so the order stays the order of puts: with one TTL, soonest to expire first.
  std::optional<V> get(std::int64_t id, std::int64_t now_us) {
    std::lock_guard lk(mu_);
    const entry* e = map_.peek(id);
    if (!e) return std::nullopt;
    if (now_us < e->expires_us) return e->value;
    map_.erase(id);
    return std::nullopt;
  }
  void forget(std::int64_t id) {
    std::lock_guard lk(mu_);
    map_.erase(id);
  }
  std::size_t size() const {
    std::lock_guard lk(mu_);
    return map_.size();
  }

 private:
  struct entry {
    std::int64_t expires_us;
    V value;
  };

  mutable std::mutex mu_;
  std::int64_t ttl_us_;
  util::lru_map<std::int64_t, entry> map_;  // oldest put first out
};

}  // namespace fav::catalog
