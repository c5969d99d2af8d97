// PostgreSQL statements and the store methods over them. Times travel as int8 microseconds and
// are converted in SQL (exactly: interval arithmetic, not float seconds); money as int8 cents.
#include "store/pg_store.hpp"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <map>

#include "store/pg_migrations.hpp"
#include "util/random.hpp"
#include "util/time.hpp"

namespace fav::store {

namespace {

namespace sql {

// Readiness: a connection, and a server that takes writes (contract §11: /health/ready is 503
// while the pool cannot write, e.g. on a demoted primary).
constexpr pg_statement ping{"ping",
                            "SELECT NOT pg_is_in_recovery() AND current_setting('transaction_read_only') = 'off'"};

constexpr pg_statement insert_customer{"insert_customer", R"sql(
INSERT INTO customers (id, name, email, password_hash, created_at, updated_at)
VALUES ($1::uuid, $2, $3, $4,
        fav_ts($5::int8),
        fav_ts($6::int8))
ON CONFLICT DO NOTHING)sql"};

constexpr pg_statement find_customer{"find_customer", R"sql(
SELECT id::text, name, email, password_hash,
       fav_us(created_at),
       fav_us(updated_at)
FROM customers WHERE id = $1::uuid)sql"};

constexpr pg_statement find_customer_by_email{"find_customer_by_email", R"sql(
SELECT id::text, name, email, password_hash,
       fav_us(created_at),
       fav_us(updated_at)
FROM customers WHERE email = $1)sql"};

// One round trip for page and total: the filtered set is inlined twice (count and page), and
// the page hangs off a single row so an empty page still carries the total.
// position() matches literally: '%' and '_' in a filter are plain characters.
constexpr pg_statement list_customers{"list_customers", R"sql(
WITH f AS NOT MATERIALIZED (
  SELECT id, name, email, password_hash, created_at, updated_at FROM customers
  WHERE ($1::text IS NULL OR position(lower($1::text) IN lower(name)) > 0)
    AND ($2::text IS NULL OR position(lower($2::text) IN lower(email)) > 0)
    AND ($3::int8 IS NULL OR created_at >= fav_ts($3::int8))
    AND ($4::int8 IS NULL OR created_at <= fav_ts($4::int8)))
SELECT (SELECT count(*) FROM f), p.id::text, p.name, p.email, p.password_hash,
       fav_us(p.created_at),
       fav_us(p.updated_at)
FROM (SELECT 1) AS one
LEFT JOIN LATERAL (SELECT * FROM f ORDER BY created_at, id LIMIT $5::int8 OFFSET $6::int8) AS p ON true
ORDER BY p.created_at, p.id)sql"};

// found / email taken by another customer / a value changed (and only then updated_at moves).
// A racing insert of the same email still trips the UNIQUE constraint: see update_customer.
constexpr pg_statement update_customer{"update_customer", R"sql(
WITH cur AS (SELECT 1 FROM customers WHERE id = $1::uuid),
taken AS (SELECT 1 FROM customers WHERE $3::text IS NOT NULL AND email = $3::text AND id <> $1::uuid),
upd AS (
  UPDATE customers c
  SET name = coalesce($2::text, c.name), email = coalesce($3::text, c.email),
      updated_at = fav_ts($4::int8)
  WHERE c.id = $1::uuid AND NOT EXISTS (SELECT 1 FROM taken)
    AND (c.name <> coalesce($2::text, c.name) OR c.email <> coalesce($3::text, c.email))
  RETURNING pg_notify('favorites_api_changes', 'c:' || c.id::text))
SELECT EXISTS (SELECT 1 FROM cur), EXISTS (SELECT 1 FROM taken), EXISTS (SELECT 1 FROM upd))sql"};

// Favorites and refresh tokens go with it (ON DELETE CASCADE).
constexpr pg_statement delete_customer{"delete_customer", R"sql(
DELETE FROM customers WHERE id = $1::uuid
RETURNING pg_notify('favorites_api_changes', 'c:' || id::text))sql"};

constexpr pg_statement check_token{"check_token", R"sql(
SELECT EXISTS (SELECT 1 FROM customers WHERE id = $1::uuid),
       EXISTS (SELECT 1 FROM revoked_tokens WHERE jti = $2 OR jti = $3))sql"};

constexpr pg_statement revoke_token{"revoke_token", R"sql(
INSERT INTO revoked_tokens (jti, expires_at)
VALUES ($1, fav_ts($2::int8))
ON CONFLICT DO NOTHING
RETURNING pg_notify('favorites_api_changes', 's:' || jti))sql"};

// Revocations matter only until the token would have expired anyway.
constexpr pg_statement prune_revoked_tokens{"prune_revoked_tokens", R"sql(
DELETE FROM revoked_tokens
WHERE expires_at < fav_ts($1::int8))sql"};

// Sign-in guard: scope is the client address, or '*' for every address.
constexpr pg_statement sign_in_failures{"sign_in_failures", R"sql(
SELECT scope, failures, window_start_us FROM sign_in_failures WHERE email = $1 AND scope IN ($2, '*'))sql"};

// Both scopes in one statement; a count whose window began at or before $4 starts over.
constexpr pg_statement record_sign_in_failure{"record_sign_in_failure", R"sql(
INSERT INTO sign_in_failures AS f (email, scope, failures, window_start_us)
VALUES ($1::text, $2::text, 1, $3::int8), ($1::text, '*', 1, $3::int8)
ON CONFLICT (email, scope) DO UPDATE SET
  failures = CASE WHEN f.window_start_us <= $4::int8 THEN 1 ELSE f.failures + 1 END,
  window_start_us = CASE WHEN f.window_start_us <= $4::int8 THEN $3::int8 ELSE f.window_start_us END)sql"};

constexpr pg_statement clear_sign_in_failures{"clear_sign_in_failures",
                                              "DELETE FROM sign_in_failures WHERE email = $1 AND scope = $2"};

constexpr pg_statement prune_sign_in_failures{"prune_sign_in_failures",
                                              "DELETE FROM sign_in_failures WHERE window_start_us <= $1::int8"};

constexpr pg_statement insert_refresh_token{"insert_refresh_token", R"sql(
INSERT INTO refresh_tokens (token_hash, family_id, customer_id, created_at, expires_at)
VALUES ($1, $2, $3::uuid,
        fav_ts($4::int8),
        fav_ts($5::int8)))sql"};

// Locks the old token's row (FOR UPDATE), so of two concurrent rotations the second waits and
// then sees the first one's used_at; rotates only an active token of a family with no revoked
// token (closing the window where a reuse revokes the family while a rotation commits), the
// new row inheriting family and owner. Returns the old row's owner, family, used, revoked,
// and whether it was rotated now; no row when the token is unknown.
constexpr pg_statement rotate_refresh_token{"rotate_refresh_token", R"sql(
WITH old AS MATERIALIZED (
  SELECT t.token_hash, t.family_id, t.customer_id, t.used_at, t.expires_at,
         t.revoked_at IS NOT NULL OR EXISTS (
           SELECT 1 FROM refresh_tokens f
           WHERE f.family_id = t.family_id AND f.revoked_at IS NOT NULL) AS revoked
  FROM refresh_tokens t WHERE t.token_hash = $1 FOR UPDATE OF t),
rotated AS (
  UPDATE refresh_tokens r SET used_at = fav_ts($2::int8)
  FROM old
  WHERE r.token_hash = old.token_hash AND old.used_at IS NULL AND NOT old.revoked
    AND old.expires_at > fav_ts($2::int8)
  RETURNING r.family_id, r.customer_id),
inserted AS (
  INSERT INTO refresh_tokens (token_hash, family_id, customer_id, created_at, expires_at)
  SELECT $3, family_id, customer_id,
         fav_ts($4::int8),
         fav_ts($5::int8)
  FROM rotated
  RETURNING 1)
SELECT old.customer_id::text, old.family_id, old.used_at IS NOT NULL, old.revoked,
       EXISTS (SELECT 1 FROM inserted)
FROM old)sql"};

constexpr pg_statement revoke_refresh_family{"revoke_refresh_family", R"sql(
UPDATE refresh_tokens SET revoked_at = fav_ts($2::int8)
WHERE family_id = $1 AND revoked_at IS NULL
RETURNING pg_notify('favorites_api_changes', 's:' || family_id))sql"};

constexpr pg_statement get_cached_product{"get_cached_product", R"sql(
SELECT id, title, image_url, round(price * 100)::int8, round(review_rate * 100)::int8,
       review_count, fav_us(fetched_at)
FROM products_cache WHERE id = $1::int8)sql"};

// All rows in one statement from a JSON array; sorted by id so concurrent batches lock rows in
// the same order. Each row written tells the other instances' read caches (one notification per
// product; PostgreSQL folds duplicates within a transaction).
constexpr pg_statement upsert_products{"upsert_products", R"sql(
INSERT INTO products_cache (id, title, image_url, price, review_rate, review_count, fetched_at)
SELECT p.id, left(p.title, 255), p.image_url, p.price_cents / 100.0, p.rate_cents / 100.0,
       p.review_count, fav_ts(p.fetched_at)
FROM json_to_recordset($1::json) AS p(id int8, title text, image_url text, price_cents int8,
                                      rate_cents int8, review_count int8, fetched_at int8)
ORDER BY p.id
ON CONFLICT (id) DO UPDATE SET
  title = excluded.title, image_url = excluded.image_url, price = excluded.price,
  review_rate = excluded.review_rate, review_count = excluded.review_count,
  fetched_at = excluded.fetched_at
RETURNING pg_notify('favorites_api_changes', 'p:' || id::text))sql"};

// One row: (the customer exists, the favorite was added). Added only for an existing customer;
// ON CONFLICT decides duplicates (one winner among concurrent ones). A customer deleted by a
// transaction that commits after this statement's snapshot still trips the foreign key (23503).
constexpr pg_statement insert_favorite{"insert_favorite", R"sql(
WITH c AS (SELECT id FROM customers WHERE id = $1::uuid),
added AS (
  INSERT INTO customer_favorite_products (customer_id, product_id, favorited_at)
  SELECT id, $2::int8, fav_ts($3::int8) FROM c
  ON CONFLICT DO NOTHING
  RETURNING pg_notify('favorites_api_changes', 'f:' || customer_id::text))
SELECT EXISTS (SELECT 1 FROM c), EXISTS (SELECT 1 FROM added))sql"};

// One row: (the customer exists, the favorite was removed).
constexpr pg_statement delete_favorite{"delete_favorite", R"sql(
WITH removed AS (
  DELETE FROM customer_favorite_products WHERE customer_id = $1::uuid AND product_id = $2::int8
  RETURNING pg_notify('favorites_api_changes', 'f:' || customer_id::text))
SELECT EXISTS (SELECT 1 FROM customers WHERE id = $1::uuid), EXISTS (SELECT 1 FROM removed))sql"};

constexpr pg_statement has_favorite{"has_favorite", R"sql(
SELECT EXISTS (SELECT 1 FROM customer_favorite_products WHERE customer_id = $1::uuid AND product_id = $2::int8))sql"};

// Columns 0..8 as read by read_favorite().
constexpr pg_statement get_favorite{"get_favorite", R"sql(
SELECT f.product_id, fav_us(f.favorited_at),
       c.id IS NOT NULL, c.title, c.image_url, round(c.price * 100)::int8,
       round(c.review_rate * 100)::int8, c.review_count,
       fav_us(c.fetched_at)
FROM customer_favorite_products f LEFT JOIN products_cache c ON c.id = f.product_id
WHERE f.customer_id = $1::uuid AND f.product_id = $2::int8)sql"};

// Same shape as list_customers: column 0 is the total, then get_favorite's columns.
constexpr pg_statement list_favorites{"list_favorites", R"sql(
WITH f AS NOT MATERIALIZED (
  SELECT product_id, favorited_at FROM customer_favorite_products WHERE customer_id = $1::uuid)
SELECT (SELECT count(*) FROM f), p.product_id,
       fav_us(p.favorited_at),
       c.id IS NOT NULL, c.title, c.image_url, round(c.price * 100)::int8,
       round(c.review_rate * 100)::int8, c.review_count,
       fav_us(c.fetched_at)
FROM (SELECT 1) AS one
LEFT JOIN LATERAL (SELECT * FROM f ORDER BY favorited_at DESC, product_id DESC
                   LIMIT $2::int8 OFFSET $3::int8) AS p ON true
LEFT JOIN products_cache c ON c.id = p.product_id
ORDER BY p.favorited_at DESC, p.product_id DESC)sql"};

}  // namespace sql

std::string num(std::int64_t v) {
  return std::to_string(v);
}

pg_param opt_num(const std::optional<std::int64_t>& v) {
  return v ? pg_param(num(*v)) : std::nullopt;
}

// check_token's one row: the customer exists, the token or its sign-in is revoked.
auth_state read_auth_state(const pg_result& r) {
  if (!r.boolean(0, 0)) return auth_state::no_customer;
  return r.boolean(0, 1) ? auth_state::revoked : auth_state::ok;
}

// Columns c..c+5 of a customer row.
core::customer read_customer(const pg_result& r, int row, int c) {
  return {r.text(row, c),     r.text(row, c + 1),  r.text(row, c + 2),
          r.text(row, c + 3), r.int64(row, c + 4), r.int64(row, c + 5)};
}

// Columns c..c+8 of a favorite row (see sql::get_favorite).
core::favorite read_favorite(const pg_result& r, int row, int c) {
  core::favorite f{r.int64(row, c), r.int64(row, c + 1), std::nullopt};
  if (r.boolean(row, c + 2)) {
    f.cached = core::product{f.product_id,        r.text(row, c + 3),      r.text(row, c + 4),
                             r.int64(row, c + 5), r.opt_int64(row, c + 6), r.opt_int64(row, c + 7),
                             r.int64(row, c + 8)};
  }
  return f;
}

// list_favorites' rows: the total in column 0, then a favorite (null on an empty page).
core::page<core::favorite> read_favorites_page(const pg_result& r) {
  core::page<core::favorite> out;
  out.total = r.rows() > 0 ? r.int64(0, 0) : 0;
  for (int i = 0; i < r.rows(); ++i) {
    if (!r.is_null(i, 1)) out.items.push_back(read_favorite(r, i, 1));
  }
  return out;
}

}  // namespace

pg_store::pg_store(net::any_io_executor ex, std::string conninfo, int pool_size, pg_limits limits)
    : pool_(std::move(ex), std::move(conninfo), pool_size, limits) {}

store::pool_usage pg_store::usage() const {
  const pg_pool::stats s = pool_.snapshot();
  return {s.open - s.idle, s.waiting, s.round_trips, s.connects, s.unreachable};
}

template <class... A>
net::awaitable<pg_result> pg_store::run(const pg_statement& st, A... params) {
  // Parameters travel as a pack, not a braced list: GCC 12 rejects an initializer_list
  // inside a co_await expression.
  std::vector<pg_param> ps;
  ps.reserve(sizeof...(A));
  (ps.emplace_back(std::move(params)), ...);
  auto c = co_await pool_.acquire();
  try {
    co_return co_await c->query(st, std::move(ps), pool_.limits().query_timeout);
  } catch (const pg_error& e) {
    // Every foreign key points at customers: the request's customer is gone (contract §5).
    if (e.sqlstate == "23503") throw customer_gone("postgresql: " + std::string(e.what()));
    throw;
  }
}

net::awaitable<void> pg_store::migrate() {
  auto c = co_await pool_.acquire();
  co_await run_pg_migrations(*c, pool_.limits().migrate_timeout);
}

net::awaitable<bool> pg_store::ping() {
  try {
    auto c = co_await pool_.acquire();
    const pg_result r = co_await c->query(sql::ping, std::vector<pg_param>(), pool_.limits().query_timeout);
    if (r.boolean(0, 0)) co_return true;
    c->mark_read_only();  // dropped with the idle ones: the next connect looks for the primary
    co_return false;
  } catch (const std::exception&) {
    co_return false;
  }
}

net::awaitable<bool> pg_store::insert_customer(const core::customer& c) {
  const pg_result r =
      co_await run(sql::insert_customer, c.id, c.name, c.email, c.password_hash, num(c.created_at), num(c.updated_at));
  co_return r.affected() == 1;
}

net::awaitable<std::optional<core::customer>> pg_store::find_customer(core::customer_id id) {
  const pg_result r = co_await run(sql::find_customer, id.str());
  if (r.rows() == 0) co_return std::nullopt;
  co_return read_customer(r, 0, 0);
}

net::awaitable<std::optional<core::customer>> pg_store::find_customer_by_email(std::string email) {
  const pg_result r = co_await run(sql::find_customer_by_email, std::move(email));
  if (r.rows() == 0) co_return std::nullopt;
  co_return read_customer(r, 0, 0);
}

net::awaitable<core::page<core::customer>> pg_store::list_customers(core::customer_filter f, core::page_req p) {
  const pg_result r = co_await run(sql::list_customers, std::move(f.name), std::move(f.email), opt_num(f.created_from),
                                   opt_num(f.created_to), num(p.per_page), num(p.offset()));
  core::page<core::customer> out;
  out.total = r.rows() > 0 ? r.int64(0, 0) : 0;
  for (int i = 0; i < r.rows(); ++i) {
    if (!r.is_null(i, 1)) out.items.push_back(read_customer(r, i, 1));  // null: empty page
  }
  co_return out;
}

net::awaitable<update_result> pg_store::update_customer(core::customer_id id, customer_patch patch, micros now) {
  try {
    const pg_result r =
        co_await run(sql::update_customer, id.str(), std::move(patch.name), std::move(patch.email), num(now));
    if (!r.boolean(0, 0)) co_return update_result::not_found;
    if (r.boolean(0, 1)) co_return update_result::email_taken;
    co_return r.boolean(0, 2) ? update_result::updated : update_result::unchanged;
  } catch (const pg_error& e) {
    // The one caught constraint error: the statement already refuses an email it can see
    // taken, but one committed by a racing sign-up or update only shows up here, as the
    // UNIQUE constraint deciding. An UPDATE cannot do ON CONFLICT.
    if (e.sqlstate == "23505") co_return update_result::email_taken;
    throw;
  }
}

net::awaitable<bool> pg_store::delete_customer(core::customer_id id) {
  const pg_result r = co_await run(sql::delete_customer, id.str());
  co_return r.affected() > 0;
}

net::awaitable<auth_state> pg_store::check_token(core::customer_id customer_id, std::string jti,
                                                 std::string sign_in_key) {
  if (sign_in_key.empty()) sign_in_key = jti;
  const pg_result r = co_await run(sql::check_token, customer_id.str(), std::move(jti), std::move(sign_in_key));
  co_return read_auth_state(r);
}

net::awaitable<pg_result> pg_store::run_checked(token_check& check, pg_call read) {
  std::vector<pg_call> calls(2);
  calls[0].st = &sql::check_token;
  calls[0].params.emplace_back(check.customer.str());
  calls[0].params.emplace_back(check.key);
  // As check_token: without a sign-in the token's own key stands in (matches nothing more).
  calls[0].params.emplace_back(check.sign_in_key.empty() ? check.key : check.sign_in_key);
  calls[1] = std::move(read);
  auto c = co_await pool_.acquire();
  std::vector<pg_result> results = co_await c->pipeline(std::move(calls), pool_.limits().query_timeout);
  const auth_state state = read_auth_state(results[0]);
  if (state != auth_state::ok) throw token_refused(state);
  check.passed = true;
  co_return std::move(results[1]);
}

net::awaitable<std::optional<core::customer>> pg_store::find_customer_checked(token_check* check,
                                                                              core::customer_id id) {
  if (!check) co_return co_await find_customer(std::move(id));
  pg_call read{&sql::find_customer, {}};
  read.params.emplace_back(id.str());
  const pg_result r = co_await run_checked(*check, std::move(read));
  if (r.rows() == 0) co_return std::nullopt;
  co_return read_customer(r, 0, 0);
}

net::awaitable<void> pg_store::revoke_token(std::string jti, micros expires_at) {
  co_await run(sql::revoke_token, std::move(jti), num(expires_at));
  if (revocations_.fetch_add(1, std::memory_order_relaxed) % 64 == 63) {
    co_await run(sql::prune_revoked_tokens, num(util::now_micros()));
  }
}

net::awaitable<void> pg_store::insert_refresh_token(const core::refresh_token& t) {
  co_await run(sql::insert_refresh_token, t.token_hash, t.family_id, t.customer_id, num(t.created_at),
               num(t.expires_at));
}

net::awaitable<rotate_result> pg_store::rotate_refresh_token(std::string old_hash, core::refresh_token& next,
                                                             micros now) {
  const pg_result r = co_await run(sql::rotate_refresh_token, std::move(old_hash), num(now), next.token_hash,
                                   num(next.created_at), num(next.expires_at));
  if (r.rows() == 0) co_return rotate_result::invalid;
  if (r.boolean(0, 4)) {
    next.customer_id = r.text(0, 0);
    next.family_id = r.text(0, 1);
    co_return rotate_result::rotated;
  }
  if (r.boolean(0, 3)) co_return rotate_result::invalid;  // its sign-in already ended
  if (r.boolean(0, 2)) {
    // A separate statement on purpose: its fresh snapshot also sees a token that a racing
    // rotation of the same old token committed while we waited for the row lock.
    co_await run(sql::revoke_refresh_family, r.text(0, 1), num(now));
    next.customer_id = r.text(0, 0);
    next.family_id = r.text(0, 1);
    co_return rotate_result::reused;
  }
  co_return rotate_result::invalid;  // expired
}

net::awaitable<void> pg_store::revoke_refresh_family(std::string family_id, micros now) {
  co_await run(sql::revoke_refresh_family, std::move(family_id), num(now));
}

net::awaitable<core::failure_counts> pg_store::sign_in_failures(std::string email, std::string address) {
  const pg_result r = co_await run(sql::sign_in_failures, std::move(email), std::move(address));
  core::failure_counts counts;
  for (int i = 0; i < r.rows(); ++i) {
    auto& slot = r.text(i, 0) == "*" ? counts.by_email : counts.by_address;
    slot = core::failure_count{r.int64(i, 1), r.int64(i, 2)};
  }
  co_return counts;
}

net::awaitable<void> pg_store::record_sign_in_failure(std::string email, std::string address, micros now,
                                                      micros window) {
  co_await run(sql::record_sign_in_failure, std::move(email), std::move(address), num(now), num(now - window));
  // Counts past their window mean nothing: drop them now and then.
  if (failures_recorded_.fetch_add(1, std::memory_order_relaxed) % 64 == 63)
    co_await run(sql::prune_sign_in_failures, num(now - window));
}

net::awaitable<void> pg_store::clear_sign_in_failures(std::string email, std::string address) {
  co_await run(sql::clear_sign_in_failures, std::move(email), std::move(address));
}

net::awaitable<std::optional<core::product>> pg_store::get_cached_product(std::int64_t id) {
  const pg_result r = co_await run(sql::get_cached_product, num(id));
  if (r.rows() == 0) co_return std::nullopt;
  co_return core::product{r.int64(0, 0),     r.text(0, 1),      r.text(0, 2), r.int64(0, 3),
                          r.opt_int64(0, 4), r.opt_int64(0, 5), r.int64(0, 6)};
}

net::awaitable<void> pg_store::upsert_products(std::vector<core::product> products) {
  // One row per id (the last wins): ON CONFLICT DO UPDATE cannot touch a row twice.
  std::map<std::int64_t, const core::product*> by_id;
  for (const auto& p : products) by_id[p.id] = &p;
  if (by_id.empty()) co_return;
  boost::json::array rows;
  rows.reserve(by_id.size());
  for (const auto& [id, p] : by_id) {
    boost::json::object o;
    o["id"] = id;
    o["title"] = p->title;
    o["image_url"] = p->image_url;
    o["price_cents"] = p->price_cents;
    o["rate_cents"] = p->review_rate_cents ? boost::json::value(*p->review_rate_cents) : nullptr;
    o["review_count"] = p->review_count ? boost::json::value(*p->review_count) : nullptr;
    o["fetched_at"] = p->fetched_at;
    rows.push_back(std::move(o));
  }
  co_await run(sql::upsert_products, boost::json::serialize(rows));
}

net::awaitable<insert_result> pg_store::insert_favorite(core::customer_id customer_id, std::int64_t product_id,
                                                        micros now) {
  bool gone = false;
  try {
    const pg_result r = co_await run(sql::insert_favorite, customer_id.str(), num(product_id), num(now));
    if (r.boolean(0, 1)) co_return insert_result::added;
    gone = !r.boolean(0, 0);
  } catch (const customer_gone&) {
    gone = true;  // deleted by a transaction that committed while this one ran
  }
  co_return gone ? insert_result::no_customer : insert_result::duplicate;
}

net::awaitable<delete_result> pg_store::delete_favorite(core::customer_id customer_id, std::int64_t product_id) {
  const pg_result r = co_await run(sql::delete_favorite, customer_id.str(), num(product_id));
  if (r.boolean(0, 1)) co_return delete_result::removed;
  co_return r.boolean(0, 0) ? delete_result::absent : delete_result::no_customer;
}

net::awaitable<bool> pg_store::has_favorite(core::customer_id customer_id, std::int64_t product_id) {
  const pg_result r = co_await run(sql::has_favorite, customer_id.str(), num(product_id));
  co_return r.boolean(0, 0);
}

net::awaitable<core::page<core::favorite>> pg_store::list_favorites(core::customer_id customer_id, core::page_req p) {
  const pg_result r = co_await run(sql::list_favorites, customer_id.str(), num(p.per_page), num(p.offset()));
  co_return read_favorites_page(r);
}

net::awaitable<core::page<core::favorite>> pg_store::list_favorites_checked(token_check* check,
                                                                            core::customer_id customer_id,
                                                                            core::page_req p) {
  if (!check) co_return co_await list_favorites(std::move(customer_id), p);
  pg_call read{&sql::list_favorites, {}};
  read.params.emplace_back(customer_id.str());
  read.params.emplace_back(num(p.per_page));
  read.params.emplace_back(num(p.offset()));
  const pg_result r = co_await run_checked(*check, std::move(read));
  co_return read_favorites_page(r);
}

net::awaitable<std::optional<core::favorite>> pg_store::get_favorite(core::customer_id customer_id,
                                                                     std::int64_t product_id) {
  const pg_result r = co_await run(sql::get_favorite, customer_id.str(), num(product_id));
  if (r.rows() == 0) co_return std::nullopt;
  co_return read_favorite(r, 0, 0);
}

std::unique_ptr<store> make_pg_store(net::any_io_executor ex, std::string conninfo, int pool_size,
                                     pg_clock::duration statement_timeout) {
  pg_limits limits;
  limits.query_timeout = statement_timeout;
  return std::make_unique<pg_store>(std::move(ex), std::move(conninfo), pool_size, limits);
}

std::unique_ptr<pg_store> make_pg_store(net::any_io_executor ex, std::string conninfo, int pool_size,
                                        pg_limits limits) {
  return std::make_unique<pg_store>(std::move(ex), std::move(conninfo), pool_size, limits);
}

}  // namespace fav::store
