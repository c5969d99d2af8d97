// The one store interface; SQLite and PostgreSQL implement it and one test suite runs on both.
// Every call is awaited and never blocks an I/O thread. Infrastructure failures throw
// store::unavailable (answered 503 database_unavailable); expected outcomes are return values.
// It knows nothing of tokens being presented: authorization asks check_token, before any handler.
//
// The one invalidation path (contract §9): every write that can change what an in-process memory
// holds (read_through, token_cache) is published to the change feed the store is attached to
// (publish_to), exactly once, right after it returns, or throws (outcome unknown), before its
// caller answers. The public write calls below do that and call the backend's do_* override; the
// memories only subscribe. Other instances hear the same write through the database (pg_notify).
#pragma once
#include <boost/asio/awaitable.hpp>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "core/types.hpp"

namespace fav::store {

namespace net = boost::asio;
using core::micros;

// The database cannot be reached or failed for reasons outside the request.
struct unavailable : std::runtime_error {
  using std::runtime_error::runtime_error;
};

enum class update_result { updated, unchanged, not_found, email_taken };
// What insert_favorite / delete_favorite did, as the database decided it in the write itself:
// never from a cache (contract §9, "a write's answer never comes from a cache").
enum class insert_result { added, duplicate, no_customer };
enum class delete_result { removed, absent, no_customer };
enum class auth_state { ok, revoked, no_customer };

// What start_sign_in did: the sign-ins it ended past the cap, or no_customer when the customer
// does not exist (deleted meanwhile; answered like a deleted customer's token, contract §5).
struct sign_in_started {
  bool no_customer = false;
  std::vector<std::string> ended;
};
enum class rotate_result { rotated, reused, invalid };

// The revoked_tokens key that revokes every access token naming sign-in `sid` (no row per token;
// "sid:" never starts a jti or a signature key). The store writes it too, for the sign-ins that
// start_sign_in ends.
inline std::string sign_in_key(std::string_view sid) {
  return "sid:" + std::string(sid);
}

struct customer_patch {
  std::optional<std::string> name;
  std::optional<std::string> email;
};

class change_feed;

class store {
 public:
  virtual ~store() = default;

  // Every write from now on is published to `feed` (it must outlive this store). Before traffic.
  void publish_to(change_feed& feed) { feed_ = &feed; }

  // Applies pending numbered migrations (idempotent; safe when several instances start).
  virtual net::awaitable<void> migrate() = 0;
  // True when the database answers a trivial query.
  virtual net::awaitable<bool> ping() = 0;
  // Short name for logs and /health/ready: "sqlite" or "postgresql".
  virtual std::string backend() const = 0;
  // Connections in use and requests waiting for one, for /metrics.
  struct pool_usage {
    int in_use = 0;
    int waiting = 0;
    std::uint64_t round_trips = 0;  // exchanges with a database server (PostgreSQL; a pipeline is one)
    std::uint64_t connects = 0;     // connection attempts so far (PostgreSQL)
    bool unreachable = false;       // the database breaker is open (PostgreSQL, contract §11)
  };
  virtual pool_usage usage() const { return {}; }
  // Shutdown: finishes calls already running or queued and stops taking new ones (they fail
  // unavailable); no call's continuation runs on a thread of the store's afterwards.
  virtual void close() {}

  // Inserts a new customer; false when the email is taken (decided by the UNIQUE index).
  virtual net::awaitable<bool> insert_customer(const core::customer& c) = 0;
  virtual net::awaitable<std::optional<core::customer>> find_customer(core::customer_id id) = 0;
  virtual net::awaitable<std::optional<core::customer>> find_customer_by_email(std::string email) = 0;
  // Ordered by created_at, id.
  virtual net::awaitable<core::page<core::customer>> list_customers(core::customer_filter f, core::page_req p) = 0;
  // Sets the given fields; updated_at moves only when a value changes.
  net::awaitable<update_result> update_customer(core::customer_id id, customer_patch patch, micros now);
  // Deletes the customer, its favorites and sign-ins; false when absent.
  net::awaitable<bool> delete_customer(core::customer_id id);

  // One round trip for the per-request token check: does the customer exist, is `jti` or the
  // token's sign-in (`sign_in_key`, empty for tokens without one) revoked.
  virtual net::awaitable<auth_state> check_token(core::customer_id customer_id, std::string jti,
                                                 std::string sign_in_key) = 0;
  // Records `jti` (or a sign-in key) as revoked until `expires_at` (idempotent).
  net::awaitable<void> revoke_token(std::string jti, micros expires_at);

  // Sign-ins and their refresh tokens (contract §8 "Token rows"): one row per sign-in.
  // Inserts sign-in `s` at generation 0 and ends the customer's oldest live sign-ins (live: its
  // expires_at after s.created_at) beyond `max_live`, the new one counted and never ended, in one
  // transaction serialized per customer (racing sign-ins cannot pass the cap). An ended sign-in's
  // row goes, and its access tokens are revoked (revoked_tokens "sid:<id>" until its expires_at).
  // Returns the ended ids, or no_customer.
  net::awaitable<sign_in_started> start_sign_in(const core::sign_in& s, int max_live);
  // Presents generation `generation` of sign-in `id` at `now` (compare-and-set): the current one,
  // not past its refresh expiry → rotated, the row moves to generation + 1 with the given
  // expiries and `customer_id` is set; one below the current (a rotated token: reuse) → reused,
  // the row is deleted and `customer_id` set; anything else (unknown or ended sign-in, expired,
  // a generation ahead) → invalid. Of two concurrent calls with the current generation one
  // rotates and the other is reuse.
  virtual net::awaitable<rotate_result> refresh_sign_in(std::string id, std::int64_t generation, micros now,
                                                        micros refresh_expires_at, micros expires_at,
                                                        std::string& customer_id) = 0;
  // Ends sign-in `id` (sign-out, reuse): deletes its one row; its refresh tokens are then
  // invalid. Access tokens are revoked separately (revoke_token "sid:<id>"). Idempotent.
  net::awaitable<void> end_sign_in(std::string id);
  // Deletes the sign-ins whose every token has expired by `now` (expires_at <= now), and rows of
  // the earlier one-row-per-token table past their expiry. Returns the rows deleted.
  virtual net::awaitable<std::int64_t> sweep_sign_ins(micros now) = 0;

  // Sign-in guard (contract §8): the failed sign-ins counted for `email` from `address` and from
  // every address ("*").
  virtual net::awaitable<core::failure_counts> sign_in_failures(std::string email, std::string address) = 0;
  // Counts one sign-in attempt in both scopes before it is checked, and returns the counts with it:
  // one atomic increment per scope, so concurrent attempts each get their own number and none
  // passes the limit unseen. A count whose window (which starts at its first attempt) began at or
  // before `now - window` starts over at 1.
  virtual net::awaitable<core::failure_counts> count_sign_in_attempt(std::string email, std::string address, micros now,
                                                                     micros window) = 0;
  // Takes back an attempt count_sign_in_attempt counted (`counted`, what it returned) that was
  // never a failure: answered while locked, refused by a full hash queue, or a success. Each
  // scope only while its window is still the one the attempt was counted in.
  virtual net::awaitable<void> uncount_sign_in_attempt(std::string email, std::string address,
                                                       core::failure_counts counted) = 0;
  // A successful sign-in clears its email-and-address count (the per-email count stays).
  virtual net::awaitable<void> clear_sign_in_failures(std::string email, std::string address) = 0;

  virtual net::awaitable<std::optional<core::product>> get_cached_product(std::int64_t id) = 0;
  // Inserts or replaces cache rows (fetched_at taken from each product).
  net::awaitable<void> upsert_products(std::vector<core::product> products);

  // Adds a favorite in one statement: added; duplicate when it is already there (ON CONFLICT DO
  // NOTHING, so concurrent duplicates have one winner); no_customer when the customer does not
  // exist (deleted meanwhile).
  net::awaitable<insert_result> insert_favorite(core::customer_id customer_id, std::int64_t product_id, micros now);
  // Removes a favorite in one statement: removed; absent when it was not a favorite; no_customer
  // when the customer does not exist.
  net::awaitable<delete_result> delete_favorite(core::customer_id customer_id, std::int64_t product_id);
  // Whether it is a favorite, asked of the database itself: no decorator answers it from memory
  // (favoriting's "already there?" before the catalog is asked; contract §9).
  virtual net::awaitable<bool> has_favorite(core::customer_id customer_id, std::int64_t product_id) = 0;

  // A favoriting (POST .../favorites/{product_id}) in at most two round trips on PostgreSQL: its
  // reads together, then its write (see catalog::product_cache::favorite).
  struct favoriting_reads {
    bool already = false;                 // a favorite already, as has_favorite answers it
    std::optional<core::product> cached;  // the product's products_cache row, as get_cached_product
  };
  // has_favorite and get_cached_product in one round trip (a pipeline on PostgreSQL), both asked
  // of the database itself (contract §9).
  virtual net::awaitable<favoriting_reads> read_for_favoriting(core::customer_id customer_id,
                                                               std::int64_t product_id) = 0;
  // insert_favorite, storing `fetched` in products_cache first (when given, as upsert_products)
  // in the same transaction and round trip: the outcome is the database's, decided by the insert.
  net::awaitable<insert_result> write_favoriting(core::customer_id customer_id, std::int64_t product_id, micros now,
                                                 std::optional<core::product> fetched);
  // Newest first: favorited_at DESC, product_id DESC; items joined with products_cache.
  virtual net::awaitable<core::page<core::favorite>> list_favorites(core::customer_id customer_id,
                                                                    core::page_req p) = 0;
  virtual net::awaitable<std::optional<core::favorite>> get_favorite(core::customer_id customer_id,
                                                                     std::int64_t product_id) = 0;

 protected:
  // The backend's writes, called by the public ones above (which publish them).
  virtual net::awaitable<update_result> do_update_customer(core::customer_id id, customer_patch patch, micros now) = 0;
  virtual net::awaitable<bool> do_delete_customer(core::customer_id id) = 0;
  virtual net::awaitable<void> do_revoke_token(std::string jti, micros expires_at) = 0;
  virtual net::awaitable<sign_in_started> do_start_sign_in(const core::sign_in& s, int max_live) = 0;
  virtual net::awaitable<void> do_end_sign_in(std::string id) = 0;
  virtual net::awaitable<void> do_upsert_products(std::vector<core::product> products) = 0;
  virtual net::awaitable<insert_result> do_insert_favorite(core::customer_id customer_id, std::int64_t product_id,
                                                           micros now) = 0;
  virtual net::awaitable<delete_result> do_delete_favorite(core::customer_id customer_id, std::int64_t product_id) = 0;
  virtual net::awaitable<insert_result> do_write_favoriting(core::customer_id customer_id, std::int64_t product_id,
                                                            micros now, std::optional<core::product> fetched) = 0;

 private:
  change_feed* feed_ = nullptr;
};

}  // namespace fav::store
