// The one store interface; SQLite and PostgreSQL implement it and one test suite runs on both.
// Every call is awaited and never blocks an I/O thread. Infrastructure failures throw
// store::unavailable (answered 503 database_unavailable); expected outcomes are return values.
#pragma once
#include <boost/asio/awaitable.hpp>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/types.hpp"

namespace fav::store {

namespace net = boost::asio;
using core::micros;

// The database cannot be reached or failed for reasons outside the request.
struct unavailable : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// A write for a customer that no longer exists (deleted while the request ran): the foreign
// key decided. Answered like a deleted customer's token: 401 invalid_token (contract §5).
struct customer_gone : std::runtime_error {
  using std::runtime_error::runtime_error;
};

enum class update_result { updated, unchanged, not_found, email_taken };
// What insert_favorite / delete_favorite did, as the database decided it in the write itself:
// never from a cache (contract §9, "a write's answer never comes from a cache").
enum class insert_result { added, duplicate, no_customer };
enum class delete_result { removed, absent, no_customer };
enum class auth_state { ok, revoked, no_customer };

// A request's token check that authorization left to the request's first read (a read-only
// route, on a token-cache miss): the store sends it with the read, in the same round trip on
// PostgreSQL (pipeline mode), and sets `passed` when it answered ok.
struct token_check {
  core::customer_id customer;
  std::string key;          // the token's revocation key
  std::string sign_in_key;  // its sign-in's revocation key (auth::sign_in_key), empty without one
  bool passed = false;
};

// A checked read whose token check did not answer ok (revoked, or no such customer): the read's
// answer is discarded and the request answered 401 invalid_token, as by the check itself.
struct token_refused : std::runtime_error {
  explicit token_refused(auth_state s) : std::runtime_error("token check refused"), state(s) {}
  auth_state state;
};
enum class rotate_result { rotated, reused, invalid };

struct customer_patch {
  std::optional<std::string> name;
  std::optional<std::string> email;
};

class store {
 public:
  virtual ~store() = default;

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
  virtual net::awaitable<update_result> update_customer(core::customer_id id, customer_patch patch, micros now) = 0;
  // Deletes the customer, its favorites and refresh tokens; false when absent.
  virtual net::awaitable<bool> delete_customer(core::customer_id id) = 0;

  // One round trip for the per-request token check: does the customer exist, is `jti` or the
  // token's sign-in (`sign_in_key`, empty for tokens without one) revoked.
  virtual net::awaitable<auth_state> check_token(core::customer_id customer_id, std::string jti,
                                                 std::string sign_in_key) = 0;
  // Records `jti` (or a sign-in key) as revoked until `expires_at` (idempotent).
  virtual net::awaitable<void> revoke_token(std::string jti, micros expires_at) = 0;

  virtual net::awaitable<void> insert_refresh_token(const core::refresh_token& t) = 0;
  // Atomically: an active `old_hash` is marked used and `next` stored in the same family
  // (rotated; `next.family_id` and `next.customer_id` are then filled from the old row); a used
  // one revokes its whole family (reused; `next.family_id` then names it); unknown, expired or
  // revoked → invalid.
  virtual net::awaitable<rotate_result> rotate_refresh_token(std::string old_hash, core::refresh_token& next,
                                                             micros now) = 0;
  // Revokes every refresh token of a sign-in (sign-out).
  virtual net::awaitable<void> revoke_refresh_family(std::string family_id, micros now) = 0;

  // Sign-in guard (contract §8): the failed sign-ins counted for `email` from `address` and from
  // every address ("*").
  virtual net::awaitable<core::failure_counts> sign_in_failures(std::string email, std::string address) = 0;
  // Counts one failure in both scopes; a count whose window (which starts at its first failure)
  // began at or before `now - window` starts over at 1.
  virtual net::awaitable<void> record_sign_in_failure(std::string email, std::string address, micros now,
                                                      micros window) = 0;
  // A successful sign-in clears its email-and-address count (the per-email count stays).
  virtual net::awaitable<void> clear_sign_in_failures(std::string email, std::string address) = 0;

  virtual net::awaitable<std::optional<core::product>> get_cached_product(std::int64_t id) = 0;
  // Inserts or replaces cache rows (fetched_at taken from each product).
  virtual net::awaitable<void> upsert_products(std::vector<core::product> products) = 0;

  // Adds a favorite in one statement: added; duplicate when it is already there (ON CONFLICT DO
  // NOTHING, so concurrent duplicates have one winner); no_customer when the customer does not
  // exist (deleted meanwhile), never customer_gone.
  virtual net::awaitable<insert_result> insert_favorite(core::customer_id customer_id, std::int64_t product_id,
                                                        micros now) = 0;
  // Removes a favorite in one statement: removed; absent when it was not a favorite; no_customer
  // when the customer does not exist.
  virtual net::awaitable<delete_result> delete_favorite(core::customer_id customer_id, std::int64_t product_id) = 0;
  // Whether it is a favorite, asked of the database itself: no decorator answers it from memory
  // (favoriting's "already there?" before the catalog is asked; contract §9).
  virtual net::awaitable<bool> has_favorite(core::customer_id customer_id, std::int64_t product_id) = 0;
  // Newest first: favorited_at DESC, product_id DESC; items joined with products_cache.
  virtual net::awaitable<core::page<core::favorite>> list_favorites(core::customer_id customer_id,
                                                                    core::page_req p) = 0;
  virtual net::awaitable<std::optional<core::favorite>> get_favorite(core::customer_id customer_id,
                                                                     std::int64_t product_id) = 0;

  // The reads of GET /customers/{id} and GET /customers/{id}/favorites with the request's
  // pending token check, if any (null: already checked): it is made first, in the same round trip
  // where the backend can (PostgreSQL), and sets `check->passed`; throws token_refused when it
  // does not pass. These defaults make the check, then the read (SQLite: no network between).
  virtual net::awaitable<std::optional<core::customer>> find_customer_checked(token_check* check, core::customer_id id);
  virtual net::awaitable<core::page<core::favorite>> list_favorites_checked(token_check* check,
                                                                            core::customer_id customer_id,
                                                                            core::page_req p);

 protected:
  // Makes `check` (when not null) with check_token; sets passed or throws token_refused.
  net::awaitable<void> settle(token_check* check);
};

}  // namespace fav::store
