// Catalog admission rules (contract §8 "Catalog admission") as plain state machines: the time is
// always passed in, so they are unit-tested with plain numbers. Both are thread-safe and O(1).
#pragma once
#include <cstddef>
#include <cstdint>
#include <list>
#include <mutex>
#include <unordered_map>

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
  missing_products(std::int64_t ttl_us, std::size_t max_entries) : ttl_us_(ttl_us), max_(max_entries) {}

  void remember(std::int64_t id, std::int64_t now_us);
  // True while `id` is remembered as missing; an expired entry is dropped.
  bool contains(std::int64_t id, std::int64_t now_us);
  void forget(std::int64_t id);
  std::size_t size() const;

 private:
  struct entry {
    std::int64_t id;
    std::int64_t expires_us;
  };
  mutable std::mutex mu_;
  std::int64_t ttl_us_;
  std::size_t max_;
  std::list<entry> order_;  // oldest first; with one TTL, also soonest to expire first
  std::unordered_map<std::int64_t, std::list<entry>::iterator> by_id_;
};

}  // namespace fav::catalog
