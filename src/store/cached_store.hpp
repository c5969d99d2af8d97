// A store that answers the hot reads from memory (read_cache): find_customer (GET /customers/me),
// list_favorites (GET .../favorites) and get_favorite (GET .../favorites/{product_id}), with the
// products_cache rows they show. A write's answer never comes from here (contract §9): favoriting
// asks has_favorite, which passes through to the database, and the writes decide in their own
// statement.
// Coherence (contract §9):
// - every write through this store forgets what it touched when it returns (or throws), before
//   its caller answers: the next read on this instance reads the database ("at once");
// - the change feed tells about every instance's writes (PostgreSQL NOTIFY, within 1 s) and
//   forgets those too;
// - while the feed is not live nothing is answered from memory, and when it comes back
//   everything held is dropped (kind::all).
// Everything else is passed through unchanged (forwarding_store).
#pragma once
#include <memory>

#include "store/change_feed.hpp"
#include "store/forwarding_store.hpp"
#include "store/read_cache.hpp"

namespace fav::store {

class cached_store final : public forwarding_store {
 public:
  // Subscribes to `feed` (it must outlive this store). `budget_bytes` 0: every read goes through.
  cached_store(std::unique_ptr<store> inner, change_feed& feed, std::size_t budget_bytes);

  net::awaitable<std::optional<core::customer>> find_customer(core::customer_id id) override;
  // From memory when it can; a pending token check then still goes to the database, alone.
  net::awaitable<std::optional<core::customer>> find_customer_checked(token_check* check,
                                                                      core::customer_id id) override;
  net::awaitable<update_result> update_customer(core::customer_id id, customer_patch patch, micros now) override;
  net::awaitable<bool> delete_customer(core::customer_id id) override;
  net::awaitable<void> upsert_products(std::vector<core::product> products) override;
  // Writes decide in the database (never here) and forget what they touched.
  net::awaitable<insert_result> insert_favorite(core::customer_id customer_id, std::int64_t product_id,
                                                micros now) override;
  net::awaitable<insert_result> write_favoriting(core::customer_id customer_id, std::int64_t product_id, micros now,
                                                 std::optional<core::product> fetched) override;
  net::awaitable<delete_result> delete_favorite(core::customer_id customer_id, std::int64_t product_id) override;
  net::awaitable<core::page<core::favorite>> list_favorites(core::customer_id customer_id, core::page_req p) override;
  net::awaitable<core::page<core::favorite>> list_favorites_checked(token_check* check, core::customer_id customer_id,
                                                                    core::page_req p) override;
  net::awaitable<std::optional<core::favorite>> get_favorite(core::customer_id customer_id,
                                                             std::int64_t product_id) override;

  const read_cache& cache() const { return cache_; }
  // For the favorites list's rendered pages (api/favorites.cpp), kept beside the data they show.
  read_cache& cache() { return cache_; }

 private:
  // The cache may answer (and be filled) only while it is on and the feed is live.
  bool trusted() const { return cache_.enabled() && feed_.live(); }

  change_feed& feed_;
  read_cache cache_;
};

}  // namespace fav::store
