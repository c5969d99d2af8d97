// Catalog admission rules (contract §8 "Catalog admission") as plain state machines: the time is
// always passed in, so they are unit-tested with plain numbers. Both are thread-safe and O(1).
#pragma once
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

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

// Per-customer shares of the catalog (contract §8 "Fair shares"): one customer's favoritings hold
// at most `per_customer` lookups at once; its other lookups wait, first come first served, for a
// share of its own and never for another customer's. An entry lives only while its customer holds
// or waits for a share: at most `max_customers` of them, and at most `max_waiting` waiters per
// customer (past either bound a lookup is refused at once). How a waiter waits (and until when) is
// the caller's: it is told by `wake`. Thread-safe; no clock needed.
class customer_shares {
 public:
  struct waiter {
    std::function<void()> wake;  // called once, outside the lock, when a share is handed over
    bool granted = false;        // under the lock: the share is this waiter's now
  };

  customer_shares(int per_customer, std::size_t max_customers, std::size_t max_waiting)
      : per_customer_(per_customer < 1 ? 1 : per_customer), max_customers_(max_customers), max_waiting_(max_waiting) {}

  enum class take_result { granted, waiting, refused };
  // granted: the caller holds a share now. waiting: `w` is queued; its `wake` runs when a share
  // is handed to it. refused: a bound was reached; nothing is held.
  take_result take(const std::string& customer, const std::shared_ptr<waiter>& w);
  // Gives a held share back: to the customer's oldest waiter if there is one, else the entry
  // shrinks (and goes when idle).
  void give_back(const std::string& customer);
  // A waiter gives up (its deadline came). true: it left the queue and holds nothing. false: a
  // share had been handed to it meanwhile; it holds it and must give it back.
  bool withdraw(const std::string& customer, const std::shared_ptr<waiter>& w);

  std::size_t customers() const;

 private:
  struct entry {
    int held = 0;
    std::deque<std::shared_ptr<waiter>> waiting;
  };
  mutable std::mutex mu_;
  int per_customer_;
  std::size_t max_customers_;
  std::size_t max_waiting_;
  std::unordered_map<std::string, entry> entries_;
};

}  // namespace fav::catalog
