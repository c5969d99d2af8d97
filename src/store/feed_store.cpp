// See feed_store.hpp.
#include "store/feed_store.hpp"

namespace fav::store {

net::awaitable<update_result> feed_store::update_customer(core::customer_id id, customer_patch patch, micros now) {
  auto r = co_await inner_->update_customer(id, std::move(patch), now);
  if (r == update_result::updated) feed_.publish({change::kind::customer, id.str()});
  co_return r;
}

net::awaitable<bool> feed_store::delete_customer(core::customer_id id) {
  bool deleted = co_await inner_->delete_customer(id);
  if (deleted) feed_.publish({change::kind::customer, id.str()});
  co_return deleted;
}

net::awaitable<void> feed_store::revoke_token(std::string jti, micros expires_at) {
  co_await inner_->revoke_token(jti, expires_at);
  feed_.publish({change::kind::signin, std::move(jti)});
}

net::awaitable<rotate_result> feed_store::rotate_refresh_token(std::string old_hash, core::refresh_token& next,
                                                               micros now) {
  auto r = co_await inner_->rotate_refresh_token(std::move(old_hash), next, now);
  // A reuse revoked the family; its id is not returned, and nothing cached depends on refresh
  // tokens today: subscribers that do learn it from the database's notification (PostgreSQL).
  co_return r;
}

net::awaitable<void> feed_store::revoke_refresh_family(std::string family_id, micros now) {
  co_await inner_->revoke_refresh_family(family_id, now);
  feed_.publish({change::kind::signin, std::move(family_id)});
}

net::awaitable<insert_result> feed_store::insert_favorite(core::customer_id customer_id, std::int64_t product_id,
                                                          micros now) {
  const insert_result r = co_await inner_->insert_favorite(customer_id, product_id, now);
  if (r == insert_result::added) feed_.publish({change::kind::favorites, customer_id.str()});
  co_return r;
}

net::awaitable<delete_result> feed_store::delete_favorite(core::customer_id customer_id, std::int64_t product_id) {
  const delete_result r = co_await inner_->delete_favorite(customer_id, product_id);
  if (r == delete_result::removed) feed_.publish({change::kind::favorites, customer_id.str()});
  co_return r;
}

}  // namespace fav::store
