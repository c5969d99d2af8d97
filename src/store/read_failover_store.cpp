// See read_failover_store.hpp.
#include "store/read_failover_store.hpp"

namespace fav::store {

read_failover_store::read_failover_store(std::unique_ptr<store> primary, std::unique_ptr<store> standby)
    : forwarding_store(std::move(primary)), standby_(std::move(standby)) {}

void read_failover_store::close() {
  inner_->close();
  standby_->close();
}

template <class T, class F>
net::awaitable<T> read_failover_store::either(F call) {
  try {
    co_return co_await call(*inner_);
  } catch (const unavailable&) {
    // Falls through: no co_await inside a handler.
  }
  standby_reads_.fetch_add(1, std::memory_order_relaxed);
  co_return co_await call(*standby_);
}

net::awaitable<std::optional<core::customer>> read_failover_store::find_customer(core::customer_id id) {
  return either<std::optional<core::customer>>([id](store& s) { return s.find_customer(id); });
}

net::awaitable<std::optional<core::customer>> read_failover_store::find_customer_checked(token_check* check,
                                                                                         core::customer_id id) {
  // A check the primary did not settle (check->passed still false) is made again by the standby.
  return either<std::optional<core::customer>>([check, id](store& s) { return s.find_customer_checked(check, id); });
}

net::awaitable<core::page<core::favorite>> read_failover_store::list_favorites(core::customer_id customer_id,
                                                                               core::page_req p) {
  return either<core::page<core::favorite>>([customer_id, p](store& s) { return s.list_favorites(customer_id, p); });
}

net::awaitable<core::page<core::favorite>> read_failover_store::list_favorites_checked(token_check* check,
                                                                                       core::customer_id customer_id,
                                                                                       core::page_req p) {
  return either<core::page<core::favorite>>(
      [check, customer_id, p](store& s) { return s.list_favorites_checked(check, customer_id, p); });
}

net::awaitable<std::optional<core::favorite>> read_failover_store::get_favorite(core::customer_id customer_id,
                                                                                std::int64_t product_id) {
  return either<std::optional<core::favorite>>(
      [customer_id, product_id](store& s) { return s.get_favorite(customer_id, product_id); });
}

net::awaitable<auth_state> read_failover_store::check_token(core::customer_id customer_id, std::string jti,
                                                            std::string sign_in_key) {
  return either<auth_state>([customer_id, jti = std::move(jti), sign_in_key = std::move(sign_in_key)](store& s) {
    return s.check_token(customer_id, jti, sign_in_key);
  });
}

}  // namespace fav::store
