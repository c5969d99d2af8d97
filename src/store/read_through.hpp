// The read-through layer (README, "Running several instances"): the reads of the three hot GETs
// (GET /customers/{id}, GET .../favorites, GET .../favorites/{product_id}) answered from memory
// (read_cache) when they can, else read from the database and remembered; with the products_cache
// rows the pages show. The handlers of those routes call it; every other call goes to the store.
// A write's answer never comes from here (contract §9): the writes, and favoriting's has_favorite,
// ask the database.
//
// Coherence (contract §9) comes from subscribing to the change feed, and nothing else:
// - the store publishes each of this instance's writes once, when it returns (or throws), before
//   its caller answers: the next read on this instance reads the database ("at once");
// - other instances' writes arrive through PostgreSQL NOTIFY (within 1 s);
// - while the feed is not live nothing is answered from memory, and when it comes back
//   everything held is dropped (kind::all).
//
// Reads through a failover (contract §11): with a `standby` (DATABASE_READ_URL), a read the
// primary answered store::unavailable is asked again of the standbys (which may lag by their
// replay lag); their answers are not remembered. While the primary answers, every read is its
// own (read-your-writes), and a write never goes to the standbys. check_token fails over too,
// for the token checks in front of these reads.
#pragma once
#include <atomic>
#include <cstdint>
#include <optional>

#include "store/change_feed.hpp"
#include "store/read_cache.hpp"
#include "store/store.hpp"

namespace fav::store {

class read_through {
 public:
  // Subscribes to `feed`; `primary`, `feed` and `standby` (may be null) must outlive this object.
  // `budget_bytes` 0: every read goes to the database.
  read_through(store& primary, change_feed& feed, std::size_t budget_bytes, store* standby = nullptr);

  // The customer's record without its password hash (empty): what GET /customers/{id} shows.
  net::awaitable<std::optional<core::customer>> find_customer(core::customer_id id);
  net::awaitable<core::page<core::favorite>> list_favorites(core::customer_id customer_id, core::page_req p);
  net::awaitable<std::optional<core::favorite>> get_favorite(core::customer_id customer_id, std::int64_t product_id);
  // Never from memory (token_cache is the memory of its answers); fails over like the reads.
  net::awaitable<auth_state> check_token(core::customer_id customer_id, std::string jti, std::string sign_in_key);

  // What is held, for /metrics and tests.
  const read_cache& memory() const { return memory_; }
  // The favorites list's rendered pages are kept beside the data (README, "Rendered pages").
  read_cache& memory() { return memory_; }
  // Calls the standbys answered after the primary failed (tests).
  std::uint64_t standby_reads() const { return standby_reads_.load(std::memory_order_relaxed); }

 private:
  // Memory may answer only while the feed is live (and memory is on).
  bool trusted() const { return memory_.enabled() && feed_.live(); }
  // `call(s)` on the primary; when that throws unavailable and there are standbys, on them (whose
  // own failure then propagates: 503 as before). `from_standby` tells which answered.
  template <class T, class F>
  net::awaitable<T> either(F call, bool& from_standby);

  store& primary_;
  store* standby_;
  change_feed& feed_;
  read_cache memory_;
  std::atomic<std::uint64_t> standby_reads_{0};
};

}  // namespace fav::store
