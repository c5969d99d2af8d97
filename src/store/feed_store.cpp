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

net::awaitable<std::vector<std::string>> feed_store::start_sign_in(const core::sign_in& s, int max_live) {
  auto ended = co_await inner_->start_sign_in(s, max_live);
  // The sign-ins it ended had their access tokens revoked: the same key revoke_token publishes.
  for (const auto& id : ended) feed_.publish({change::kind::signin, sign_in_key(id)});
  co_return ended;
}

net::awaitable<void> feed_store::end_sign_in(std::string id) {
  co_await inner_->end_sign_in(id);
  feed_.publish({change::kind::signin, std::move(id)});
}

net::awaitable<insert_result> feed_store::insert_favorite(core::customer_id customer_id, std::int64_t product_id,
                                                          micros now) {
  const insert_result r = co_await inner_->insert_favorite(customer_id, product_id, now);
  if (r == insert_result::added) feed_.publish({change::kind::favorites, customer_id.str()});
  co_return r;
}

net::awaitable<insert_result> feed_store::write_favoriting(core::customer_id customer_id, std::int64_t product_id,
                                                           micros now, std::optional<core::product> fetched) {
  const insert_result r = co_await inner_->write_favoriting(customer_id, product_id, now, std::move(fetched));
  if (r == insert_result::added) feed_.publish({change::kind::favorites, customer_id.str()});
  co_return r;
}

net::awaitable<delete_result> feed_store::delete_favorite(core::customer_id customer_id, std::int64_t product_id) {
  const delete_result r = co_await inner_->delete_favorite(customer_id, product_id);
  if (r == delete_result::removed) feed_.publish({change::kind::favorites, customer_id.str()});
  co_return r;
}

}  // namespace fav::store
