// A store that tells this instance's change feed about every write it makes, after the write
// succeeded: the instance's own caches forget at once (contract §9: "by reads on the same
// instance at once"). Other instances learn through the database (pg_notify in the write's own
// transaction, see pg_store), which on SQLite has no other instance to tell. Every other call
// passes through (forwarding_store).
#pragma once
#include "store/change_feed.hpp"
#include "store/forwarding_store.hpp"

namespace fav::store {

class feed_store final : public forwarding_store {
 public:
  feed_store(std::unique_ptr<store> inner, change_feed& feed) : forwarding_store(std::move(inner)), feed_(feed) {}

  net::awaitable<update_result> update_customer(core::customer_id id, customer_patch patch, micros now) override;
  net::awaitable<bool> delete_customer(core::customer_id id) override;
  net::awaitable<void> revoke_token(std::string jti, micros expires_at) override;
  net::awaitable<std::vector<std::string>> start_sign_in(const core::sign_in& s, int max_live) override;
  net::awaitable<void> end_sign_in(std::string id) override;
  net::awaitable<insert_result> insert_favorite(core::customer_id customer_id, std::int64_t product_id,
                                                micros now) override;
  net::awaitable<insert_result> write_favoriting(core::customer_id customer_id, std::int64_t product_id, micros now,
                                                 std::optional<core::product> fetched) override;
  net::awaitable<delete_result> delete_favorite(core::customer_id customer_id, std::int64_t product_id) override;

 private:
  change_feed& feed_;
};

}  // namespace fav::store
