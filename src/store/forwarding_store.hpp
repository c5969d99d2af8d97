// A store over another store that passes every call through unchanged: the base of the
// decorators (feed_store, cached_store), which override only the calls they add something to.
#pragma once
#include <memory>
#include <utility>

#include "store/store.hpp"

namespace fav::store {

class forwarding_store : public store {
 public:
  store& inner() { return *inner_; }

  net::awaitable<void> migrate() override { return inner_->migrate(); }
  net::awaitable<bool> ping() override { return inner_->ping(); }
  std::string backend() const override { return inner_->backend(); }
  pool_usage usage() const override { return inner_->usage(); }
  void close() override { inner_->close(); }

  net::awaitable<bool> insert_customer(const core::customer& c) override { return inner_->insert_customer(c); }
  net::awaitable<std::optional<core::customer>> find_customer(core::customer_id id) override {
    return inner_->find_customer(std::move(id));
  }
  net::awaitable<std::optional<core::customer>> find_customer_by_email(std::string email) override {
    return inner_->find_customer_by_email(std::move(email));
  }
  net::awaitable<core::page<core::customer>> list_customers(core::customer_filter f, core::page_req p) override {
    return inner_->list_customers(std::move(f), p);
  }
  net::awaitable<update_result> update_customer(core::customer_id id, customer_patch patch, micros now) override {
    return inner_->update_customer(std::move(id), std::move(patch), now);
  }
  net::awaitable<bool> delete_customer(core::customer_id id) override { return inner_->delete_customer(std::move(id)); }

  net::awaitable<auth_state> check_token(core::customer_id customer_id, std::string jti,
                                         std::string sign_in_key) override {
    return inner_->check_token(std::move(customer_id), std::move(jti), std::move(sign_in_key));
  }
  net::awaitable<void> revoke_token(std::string jti, micros expires_at) override {
    return inner_->revoke_token(std::move(jti), expires_at);
  }
  net::awaitable<std::vector<std::string>> start_sign_in(const core::sign_in& s, int max_live) override {
    return inner_->start_sign_in(s, max_live);
  }
  net::awaitable<rotate_result> refresh_sign_in(std::string id, std::int64_t generation, micros now,
                                                micros refresh_expires_at, micros expires_at,
                                                std::string& customer_id) override {
    return inner_->refresh_sign_in(std::move(id), generation, now, refresh_expires_at, expires_at, customer_id);
  }
  net::awaitable<void> end_sign_in(std::string id) override { return inner_->end_sign_in(std::move(id)); }
  net::awaitable<std::int64_t> sweep_sign_ins(micros now) override { return inner_->sweep_sign_ins(now); }

  net::awaitable<core::failure_counts> sign_in_failures(std::string email, std::string address) override {
    return inner_->sign_in_failures(std::move(email), std::move(address));
  }
  net::awaitable<core::failure_counts> count_sign_in_attempt(std::string email, std::string address, micros now,
                                                             micros window) override {
    return inner_->count_sign_in_attempt(std::move(email), std::move(address), now, window);
  }
  net::awaitable<void> uncount_sign_in_attempt(std::string email, std::string address,
                                               core::failure_counts counted) override {
    return inner_->uncount_sign_in_attempt(std::move(email), std::move(address), counted);
  }
  net::awaitable<void> clear_sign_in_failures(std::string email, std::string address) override {
    return inner_->clear_sign_in_failures(std::move(email), std::move(address));
  }

  net::awaitable<std::optional<core::product>> get_cached_product(std::int64_t id) override {
    return inner_->get_cached_product(id);
  }
  net::awaitable<void> upsert_products(std::vector<core::product> products) override {
    return inner_->upsert_products(std::move(products));
  }

  net::awaitable<insert_result> insert_favorite(core::customer_id customer_id, std::int64_t product_id,
                                                micros now) override {
    return inner_->insert_favorite(std::move(customer_id), product_id, now);
  }
  net::awaitable<delete_result> delete_favorite(core::customer_id customer_id, std::int64_t product_id) override {
    return inner_->delete_favorite(std::move(customer_id), product_id);
  }
  net::awaitable<bool> has_favorite(core::customer_id customer_id, std::int64_t product_id) override {
    return inner_->has_favorite(std::move(customer_id), product_id);
  }
  net::awaitable<favoriting_reads> read_for_favoriting(core::customer_id customer_id,
                                                       std::int64_t product_id) override {
    return inner_->read_for_favoriting(std::move(customer_id), product_id);
  }
  net::awaitable<insert_result> write_favoriting(core::customer_id customer_id, std::int64_t product_id, micros now,
                                                 std::optional<core::product> fetched) override {
    return inner_->write_favoriting(std::move(customer_id), product_id, now, std::move(fetched));
  }
  net::awaitable<core::page<core::favorite>> list_favorites(core::customer_id customer_id, core::page_req p) override {
    return inner_->list_favorites(std::move(customer_id), p);
  }
  net::awaitable<std::optional<core::favorite>> get_favorite(core::customer_id customer_id,
                                                             std::int64_t product_id) override {
    return inner_->get_favorite(std::move(customer_id), product_id);
  }
  net::awaitable<std::optional<core::customer>> find_customer_checked(token_check* check,
                                                                      core::customer_id id) override {
    return inner_->find_customer_checked(check, std::move(id));
  }
  net::awaitable<core::page<core::favorite>> list_favorites_checked(token_check* check, core::customer_id customer_id,
                                                                    core::page_req p) override {
    return inner_->list_favorites_checked(check, std::move(customer_id), p);
  }

 protected:
  explicit forwarding_store(std::unique_ptr<store> inner) : inner_(std::move(inner)) {}

  std::unique_ptr<store> inner_;
};

}  // namespace fav::store
