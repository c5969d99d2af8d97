// A bounded map that drops its least recently used entries: each entry is charged a cost (1 by
// default, or an estimate of its bytes) and the total stays within the budget given at
// construction. Every operation is O(1) but erase_if. Not thread-safe: the caches that use it keep
// it under their own mutex (or one per shard), so a check and an update can share one lock.
#pragma once
#include <cstddef>
#include <functional>
#include <list>
#include <unordered_map>
#include <utility>

namespace fav::util {

// put()'s default: nothing to do for an evicted entry.
struct ignore_evicted {
  template <class K, class V>
  void operator()(const K&, V&) const {}
};

template <class K, class V, class Hash = std::hash<K>, class Eq = std::equal_to<K>>
class lru_map {
 public:
  explicit lru_map(std::size_t budget = 0) : budget_(budget) {}

  // The value, now the most recently used; nullptr when absent. `Q` is `K`, or anything the
  // hash and equality accept when both are transparent.
  template <class Q>
  V* get(const Q& key) {
    auto it = map_.find(key);
    if (it == map_.end()) return nullptr;
    order_.splice(order_.begin(), order_, it->second.pos);
    return &it->second.value;
  }
  // The value, its recency unchanged.
  template <class Q>
  V* peek(const Q& key) {
    auto it = map_.find(key);
    return it == map_.end() ? nullptr : &it->second.value;
  }
  template <class Q>
  bool contains(const Q& key) const {
    return map_.find(key) != map_.end();
  }
  // Makes `key` the most recently used (nothing when absent).
  template <class Q>
  void touch(const Q& key) {
    get(key);
  }

  // Puts (or replaces) `key`'s value as the most recently used, charged `cost`, after evicting
  // least recently used entries until it fits; `on_evict(key, value)` sees each one evicted. A
  // value costing more than the whole budget is not kept (nor is the value it replaces): nullptr.
  template <class OnEvict = ignore_evicted>
  V* put(K key, V value, std::size_t cost = 1, OnEvict on_evict = {}) {
    erase(key);
    if (cost > budget_) return nullptr;
    while (cost_ + cost > budget_) {
      auto it = map_.find(*order_.back());
      on_evict(it->first, it->second.value);
      drop(it);
    }
    auto it = map_.emplace(std::move(key), slot{std::move(value), cost, {}}).first;
    order_.push_front(&it->first);
    it->second.pos = order_.begin();
    cost_ += cost;
    return &it->second.value;
  }

  template <class Q>
  bool erase(const Q& key) {
    auto it = map_.find(key);
    if (it == map_.end()) return false;
    drop(it);
    return true;
  }
  // Erases every entry for which `pred(key, value)` is true; O(size).
  template <class Pred>
  void erase_if(Pred pred) {
    for (auto it = map_.begin(); it != map_.end();) {
      auto next = std::next(it);
      if (pred(it->first, it->second.value)) drop(it);
      it = next;
    }
  }
  void clear() {
    map_.clear();
    order_.clear();
    cost_ = 0;
  }

  std::size_t size() const { return map_.size(); }
  std::size_t cost() const { return cost_; }  // the sum of the entries' costs
  std::size_t budget() const { return budget_; }

 private:
  // The recency list points at the map's keys (a node's address never changes), so each key is
  // held once.
  using order = std::list<const K*>;  // most recently used first
  struct slot {
    V value;
    std::size_t cost;
    typename order::iterator pos;
  };
  using map = std::unordered_map<K, slot, Hash, Eq>;

  void drop(typename map::iterator it) {
    cost_ -= it->second.cost;
    order_.erase(it->second.pos);
    map_.erase(it);
  }

  std::size_t budget_;
  std::size_t cost_ = 0;
  map map_;
  order order_;
};

}  // namespace fav::util
