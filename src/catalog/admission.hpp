// Catalog admission rules (contract §8 "Catalog admission") as plain state machines: the time is
// always passed in, so they are unit-tested with plain numbers. Both are thread-safe and O(1).
#pragma once
#include <cstddef>
#include <cstdint>
#include <mutex>

#include "catalog/expiring_map.hpp"

namespace fav::catalog {

// The circuit breaker: after `failures_to_open` consecutive failed lookups (after their
// retries) the catalog counts as down for `open_s` seconds; lookups are refused at once, with
// the time left. Then one probe is let through: its success closes the breaker, its failure
// opens it again for `open_s`. failures_to_open == 0 turns the breaker off.
class breaker {
 public:
  breaker(int failures_to_open, double open_s) : threshold_(failures_to_open), open_s_(open_s) {}

  struct decision {
    bool allowed = true;
    bool probe = false;        // this lookup is the one probe; report how it ended
    double retry_after_s = 0;  // when refused: seconds until a lookup may be tried again
  };

  // Before a lookup that needs the catalog.
  decision admit(double now_s);
  // The catalog answered (a product, or "no such product").
  void on_success();
  // The lookup failed after its retries.
  void on_failure(double now_s);
  // An admitted probe ended without asking the catalog (e.g. its deadline passed in the queue):
  // the next lookup may probe instead.
  void on_abandoned(const decision& d);

  bool open(double now_s) const;

 private:
  enum class state { closed, open, half_open };
  mutable std::mutex mu_;
  int threshold_;
  double open_s_;
  state state_ = state::closed;
  int failures_ = 0;
  double open_until_s_ = 0;
};

// Products the catalog said do not exist, remembered for `ttl_us` (at most `max_entries`, the
// oldest dropped first). Times are microseconds on the caller's clock.
class missing_products {
 public:
  missing_products(std::int64_t ttl_us, std::size_t max_entries) : ids_(ttl_us, max_entries) {}

  void remember(std::int64_t id, std::int64_t now_us) { ids_.put(id, {}, now_us); }
  // True while `id` is remembered as missing; an expired entry is dropped.
  bool contains(std::int64_t id, std::int64_t now_us) { return ids_.get(id, now_us).has_value(); }
  void forget(std::int64_t id) { ids_.forget(id); }
  std::size_t size() const { return ids_.size(); }

 private:
  struct none {};
  expiring_map<none> ids_;
};

}  // namespace fav::catalog
