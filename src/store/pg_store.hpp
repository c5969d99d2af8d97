// The PostgreSQL backend of the store: named, lazily prepared statements over a bounded pool of
// asynchronous libpq connections; no thread ever blocks on a query.
#pragma once
#include <atomic>
#include <boost/asio/any_io_executor.hpp>
#include <memory>
#include <string>

#include "store/pg_pool.hpp"
#include "store/pg_write_batch.hpp"
#include "store/store.hpp"

namespace fav::store {

class pg_store final : public store {
 public:
  // `conninfo` is a libpq URI or key=value string; connections open on first use, so
  // construction never fails for an unreachable server. Destroy before the io_context.
  pg_store(net::any_io_executor ex, std::string conninfo, int pool_size, pg_limits limits = {});

  net::awaitable<void> migrate() override;
  // True when a connection answers and the server accepts writes (a primary, not read-only).
  net::awaitable<bool> ping() override;
  std::string backend() const override { return "postgresql"; }
  pool_usage usage() const override;
  // The change feed's heartbeat went unanswered: see pg_pool::report_unreachable.
  void report_unreachable(const std::string& why) { pool_.report_unreachable(why); }
  // The instance id (change_feed::instance) the writes' notifications name as their origin, so
  // this instance's listener skips their echoes. Before traffic; without it they name none.
  void set_notify_origin(const std::string& instance) { notify_prefix_ = instance.empty() ? "" : instance + "/"; }

  net::awaitable<bool> insert_customer(const core::customer& c) override;
  net::awaitable<std::optional<core::customer>> find_customer(core::customer_id id) override;
  net::awaitable<std::optional<core::customer>> find_customer_by_email(std::string email) override;
  net::awaitable<core::page<core::customer>> list_customers(core::customer_filter f, core::page_req p) override;

  net::awaitable<auth_state> check_token(core::customer_id customer_id, std::string jti,
                                         std::string sign_in_key) override;

  net::awaitable<rotate_result> refresh_sign_in(std::string id, std::int64_t generation, micros now,
                                                micros refresh_expires_at, micros expires_at,
                                                std::string& customer_id) override;
  net::awaitable<std::int64_t> sweep_sign_ins(micros now) override;

  net::awaitable<core::failure_counts> sign_in_failures(std::string email, std::string address) override;
  net::awaitable<core::failure_counts> count_sign_in_attempt(std::string email, std::string address, micros now,
                                                             micros window) override;
  net::awaitable<void> uncount_sign_in_attempt(std::string email, std::string address,
                                               core::failure_counts counted) override;
  net::awaitable<void> clear_sign_in_failures(std::string email, std::string address) override;

  net::awaitable<std::optional<core::product>> get_cached_product(std::int64_t id) override;

  net::awaitable<bool> has_favorite(core::customer_id customer_id, std::int64_t product_id) override;
  // has_favorite and get_cached_product pipelined; then upsert_products and insert_favorite
  // pipelined (one transaction), or insert_favorite alone.
  net::awaitable<favoriting_reads> read_for_favoriting(core::customer_id customer_id, std::int64_t product_id) override;
  net::awaitable<core::page<core::favorite>> list_favorites(core::customer_id customer_id, core::page_req p) override;
  net::awaitable<std::optional<core::favorite>> get_favorite(core::customer_id customer_id,
                                                             std::int64_t product_id) override;

 protected:
  net::awaitable<update_result> do_update_customer(core::customer_id id, customer_patch patch, micros now) override;
  net::awaitable<bool> do_delete_customer(core::customer_id id) override;
  net::awaitable<void> do_revoke_token(std::string jti, micros expires_at) override;
  net::awaitable<sign_in_started> do_start_sign_in(const core::sign_in& s, int max_live) override;
  net::awaitable<void> do_end_sign_in(std::string id) override;
  // Titles longer than the column (255 characters) are truncated rather than rejected.
  net::awaitable<void> do_upsert_products(std::vector<core::product> products) override;
  // Both in the next group commit (favorite_writes_).
  net::awaitable<insert_result> do_insert_favorite(core::customer_id customer_id, std::int64_t product_id,
                                                   micros now) override;
  net::awaitable<delete_result> do_delete_favorite(core::customer_id customer_id, std::int64_t product_id) override;
  net::awaitable<insert_result> do_write_favoriting(core::customer_id customer_id, std::int64_t product_id, micros now,
                                                    std::optional<core::product> fetched) override;

 private:
  // Runs one statement on a pooled connection; each parameter converts to pg_param.
  template <class... A>
  net::awaitable<pg_result> run(const pg_statement& st, A... params);
  // The same in the next group commit of favorite_writes_, ordered in it by `lock_order`.
  template <class... A>
  net::awaitable<pg_result> run_batched(const pg_statement& st, std::string lock_order, A... params);
  pg_pool pool_;
  // Adding and removing a favorite, the hot writes, commit in groups (pg_write_batch.hpp).
  pg_write_batch favorite_writes_;
  std::string notify_prefix_;  // "<instance>/" or empty: the start of every notification payload
  std::atomic<std::uint64_t> revocations_{0};
  std::atomic<std::uint64_t> failures_recorded_{0};
};

// The factory main uses for DATABASE_URL=postgresql://...; `statement_timeout` bounds every
// statement (DATABASE_STATEMENT_TIMEOUT_SECONDS).
std::unique_ptr<store> make_pg_store(net::any_io_executor ex, std::string conninfo, int pool_size,
                                     pg_clock::duration statement_timeout = std::chrono::seconds(10));
std::unique_ptr<pg_store> make_pg_store(net::any_io_executor ex, std::string conninfo, int pool_size, pg_limits limits);

}  // namespace fav::store
