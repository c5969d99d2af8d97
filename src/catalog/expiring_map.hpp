// A small bounded map from product id to a value that expires `ttl_us` after it was put (at most
// `max_entries`, the oldest dropped first). Times are microseconds on the caller's clock, so the
// rules are unit-tested with plain numbers. Thread-safe; every operation is O(1).
#pragma once
#include <cstddef>
#include <cstdint>
#include <list>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <utility>

namespace fav::catalog {

template <class V>
class expiring_map {
 public:
  expiring_map(std::int64_t ttl_us, std::size_t max_entries) : ttl_us_(ttl_us), max_(max_entries) {}

  // Puts (or replaces) `id`'s value; nothing is kept when the ttl or the bound is 0.
  void put(std::int64_t id, V value, std::int64_t now_us) {
    if (ttl_us_ <= 0 || max_ == 0) return;
    std::lock_guard lk(mu_);
    drop(id);
    while (order_.size() >= max_) {
      by_id_.erase(order_.front().id);
      order_.pop_front();
    }
    order_.push_back({id, now_us + ttl_us_, std::move(value)});
    by_id_[id] = std::prev(order_.end());
  }
  // The value while it has not expired; an expired entry is dropped.
  std::optional<V> get(std::int64_t id, std::int64_t now_us) {
    std::lock_guard lk(mu_);
    auto it = by_id_.find(id);
    if (it == by_id_.end()) return std::nullopt;
    if (now_us < it->second->expires_us) return it->second->value;
    order_.erase(it->second);
    by_id_.erase(it);
    return std::nullopt;
  }
  void forget(std::int64_t id) {
    std::lock_guard lk(mu_);
    drop(id);
  }
  std::size_t size() const {
    std::lock_guard lk(mu_);
    return order_.size();
  }

 private:
  struct entry {
    std::int64_t id;
    std::int64_t expires_us;
    V value;
  };
  void drop(std::int64_t id) {
    if (auto it = by_id_.find(id); it != by_id_.end()) {
      order_.erase(it->second);
      by_id_.erase(it);
    }
  }

  mutable std::mutex mu_;
  std::int64_t ttl_us_;
  std::size_t max_;
  std::list<entry> order_;  // oldest first; with one TTL, also soonest to expire first
  std::unordered_map<std::int64_t, typename std::list<entry>::iterator> by_id_;
};

}  // namespace fav::catalog
