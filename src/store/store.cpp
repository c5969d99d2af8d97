// See store.hpp: the public writes, each published to the change feed once, whatever its outcome.
#include "store/store.hpp"

#include <optional>

#include "store/change_feed.hpp"
#include "util/scope_exit.hpp"

namespace fav::store {

namespace {
// Tells `feed` (when attached). Subscribers are quick and never throw: safe in a destructor.
void tell(change_feed* feed, change::kind what, std::string id, const core::product* row = nullptr) {
  if (feed) feed->publish(change{what, std::move(id), {}, row});
}
}  // namespace

net::awaitable<update_result> store::update_customer(core::customer_id id, customer_patch patch, micros now) {
  std::optional<update_result> r;  // empty: it threw
  util::scope_exit publish([&] {
    if (!r || *r == update_result::updated || *r == update_result::not_found)
      tell(feed_, change::kind::customer, id.str());
  });
  r = co_await do_update_customer(id, std::move(patch), now);
  co_return *r;
}

net::awaitable<bool> store::delete_customer(core::customer_id id) {
  // Deleted now or before: either way nothing of it may be answered from memory.
  util::scope_exit publish([&] { tell(feed_, change::kind::customer, id.str()); });
  co_return co_await do_delete_customer(id);
}

net::awaitable<void> store::revoke_token(std::string jti, micros expires_at) {
  util::scope_exit publish([&] { tell(feed_, change::kind::signin, jti); });
  co_await do_revoke_token(jti, expires_at);
}

net::awaitable<sign_in_started> store::start_sign_in(const core::sign_in& s, int max_live) {
  std::optional<sign_in_started> r;
  util::scope_exit publish([&] {
    // Unknown which sign-ins a failed call ended, or the customer is gone: all its tokens.
    if (!r || r->no_customer) return tell(feed_, change::kind::customer, s.customer_id);
    // The ended sign-ins had their access tokens revoked: the key revoke_token publishes.
    for (const auto& id : r->ended) tell(feed_, change::kind::signin, sign_in_key(id));
  });
  r = co_await do_start_sign_in(s, max_live);
  co_return *r;
}

net::awaitable<void> store::end_sign_in(std::string id) {
  util::scope_exit publish([&] { tell(feed_, change::kind::signin, id); });
  co_await do_end_sign_in(id);
}

net::awaitable<void> store::upsert_products(std::vector<core::product> products) {
  bool written = false;
  util::scope_exit publish([&] {
    // Written: this instance's copies follow the rows; unknown: they are forgotten.
    for (const auto& p : products) tell(feed_, change::kind::product, std::to_string(p.id), written ? &p : nullptr);
  });
  co_await do_upsert_products(products);
  written = true;
}

net::awaitable<insert_result> store::insert_favorite(core::customer_id customer_id, std::int64_t product_id,
                                                     micros now) {
  std::optional<insert_result> r;
  util::scope_exit publish([&] {
    tell(feed_, r == insert_result::no_customer ? change::kind::customer : change::kind::favorites, customer_id.str());
  });
  r = co_await do_insert_favorite(customer_id, product_id, now);
  co_return *r;
}

net::awaitable<insert_result> store::write_favoriting(core::customer_id customer_id, std::int64_t product_id,
                                                      micros now, std::optional<core::product> fetched) {
  std::optional<insert_result> r;
  util::scope_exit publish([&] {
    // The product row went with the favorite (as upsert_products: this instance's copies follow
    // it; unknown outcome: forgotten), then the favorites, or the customer when it is gone.
    if (fetched) {
      const bool written = r && *r != insert_result::no_customer;
      tell(feed_, change::kind::product, std::to_string(fetched->id), written ? &*fetched : nullptr);
    }
    tell(feed_, r == insert_result::no_customer ? change::kind::customer : change::kind::favorites, customer_id.str());
  });
  r = co_await do_write_favoriting(customer_id, product_id, now, fetched);
  co_return *r;
}

net::awaitable<delete_result> store::delete_favorite(core::customer_id customer_id, std::int64_t product_id) {
  std::optional<delete_result> r;
  util::scope_exit publish([&] {
    tell(feed_, r == delete_result::no_customer ? change::kind::customer : change::kind::favorites, customer_id.str());
  });
  r = co_await do_delete_favorite(customer_id, product_id);
  co_return *r;
}

}  // namespace fav::store
