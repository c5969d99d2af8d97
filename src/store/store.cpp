// See store.hpp: the default checked reads, for backends with no round trip to save.
#include "store/store.hpp"

namespace fav::store {

net::awaitable<void> store::run_token_check(token_check* check) {
  if (!check) co_return;
  const auth_state state = co_await check_token(check->customer, check->key, check->sign_in_key);
  if (state != auth_state::ok) throw token_refused(state);
  check->passed = true;
}

net::awaitable<std::optional<core::customer>> store::find_customer_checked(token_check* check, core::customer_id id) {
  co_await run_token_check(check);
  co_return co_await find_customer(std::move(id));
}

net::awaitable<core::page<core::favorite>> store::list_favorites_checked(token_check* check,
                                                                         core::customer_id customer_id,
                                                                         core::page_req p) {
  co_await run_token_check(check);
  co_return co_await list_favorites(std::move(customer_id), p);
}

}  // namespace fav::store
