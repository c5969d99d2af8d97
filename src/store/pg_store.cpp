// PostgreSQL statements and the store methods over them. Times travel as int8 microseconds and
// are converted in SQL (exactly: interval arithmetic, not float seconds); money as int8 cents.
#include "store/pg_store.hpp"

#include <algorithm>
#include <map>

#include "core/json_text.hpp"
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
  RETURNING pg_notify('favorites_api_changes', $5::text || 'c:' || c.id::text))
SELECT EXISTS (SELECT 1 FROM cur), EXISTS (SELECT 1 FROM taken), EXISTS (SELECT 1 FROM upd))sql"};

// Favorites and refresh tokens go with it (ON DELETE CASCADE).
constexpr pg_statement delete_customer{"delete_customer", R"sql(
DELETE FROM customers WHERE id = $1::uuid
RETURNING pg_notify('favorites_api_changes', $2::text || 'c:' || id::text))sql"};

constexpr pg_statement check_token{"check_token", R"sql(
SELECT EXISTS (SELECT 1 FROM customers WHERE id = $1::uuid),
       EXISTS (SELECT 1 FROM revoked_tokens WHERE jti = $2 OR jti = $3))sql"};

constexpr pg_statement revoke_token{"revoke_token", R"sql(
INSERT INTO revoked_tokens (jti, expires_at)
VALUES ($1, fav_ts($2::int8))
ON CONFLICT DO NOTHING
RETURNING pg_notify('favorites_api_changes', $3::text || 's:' || jti))sql"};

// Revocations matter only until the token would have expired anyway.
constexpr pg_statement prune_revoked_tokens{"prune_revoked_tokens", R"sql(
DELETE FROM revoked_tokens
WHERE expires_at < fav_ts($1::int8))sql"};

// Sign-in guard: scope is the client address, or '*' for every address.
constexpr pg_statement sign_in_failures{"sign_in_failures", R"sql(
SELECT scope, failures, window_start_us FROM sign_in_failures WHERE email = $1 AND scope IN ($2, '*'))sql"};

// Both scopes in one statement, each an atomic increment that returns its count; a count whose
// window began at or before $4 starts over. Rows are locked '*' first, as uncount does, so the two
// never wait on each other crosswise.
constexpr pg_statement count_sign_in_attempt{"count_sign_in_attempt", R"sql(
INSERT INTO sign_in_failures AS f (email, scope, failures, window_start_us)
VALUES ($1::text, '*', 1, $3::int8), ($1::text, $2::text, 1, $3::int8)
ON CONFLICT (email, scope) DO UPDATE SET
  failures = CASE WHEN f.window_start_us <= $4::int8 THEN 1 ELSE f.failures + 1 END,
  window_start_us = CASE WHEN f.window_start_us <= $4::int8 THEN $3::int8 ELSE f.window_start_us END
RETURNING scope, failures, window_start_us)sql"};

// An attempt taken back, in each scope still in the window it was counted in ($3 for '*', $4 for
// the address); the rows locked '*' first (see count_sign_in_attempt).
constexpr pg_statement uncount_sign_in_attempt{"uncount_sign_in_attempt", R"sql(
WITH l AS (
  SELECT email, scope FROM sign_in_failures
  WHERE email = $1 AND ((scope = '*' AND window_start_us = $3::int8) OR (scope = $2 AND window_start_us = $4::int8))
  ORDER BY scope = '*' DESC
  FOR UPDATE)
UPDATE sign_in_failures AS f SET failures = GREATEST(f.failures - 1, 0)
FROM l WHERE f.email = l.email AND f.scope = l.scope)sql"};

constexpr pg_statement clear_sign_in_failures{"clear_sign_in_failures",
                                              "DELETE FROM sign_in_failures WHERE email = $1 AND scope = $2"};

constexpr pg_statement prune_sign_in_failures{"prune_sign_in_failures",
                                              "DELETE FROM sign_in_failures WHERE window_start_us <= $1::int8"};

// Sign-ins (contract §8 "Token rows"). start_sign_in is a pipeline of two statements in one
// transaction: this lock first, so concurrent sign-ins of one customer take turns, and the next
// statement's snapshot (taken after the lock) sees every sign-in committed before it. No row: the
// customer does not exist (and the insert, which selects it, adds nothing).
// FOR NO KEY UPDATE does not block favorites (their foreign-key checks take KEY SHARE).
constexpr pg_statement lock_customer_sign_ins{"lock_customer_sign_ins",
                                              "SELECT 1 FROM customers WHERE id = $1::uuid FOR NO KEY UPDATE"};

// The new row, and the customer's oldest live sign-ins past the newest $6 others deleted with
// their access tokens revoked (each revocation tells every instance, as revoke_token does).
constexpr pg_statement start_sign_in{"start_sign_in", R"sql(
WITH ins AS (
  INSERT INTO sign_ins (id, customer_id, generation, created_at, refresh_expires_at, expires_at)
  SELECT $1, id, 0, fav_ts($3::int8), fav_ts($4::int8), fav_ts($5::int8) FROM customers WHERE id = $2::uuid),
ended AS (
  DELETE FROM sign_ins s
  USING (SELECT id FROM sign_ins
         WHERE customer_id = $2::uuid AND expires_at > fav_ts($3::int8) AND id <> $1
         ORDER BY created_at DESC, id DESC OFFSET $6::int8) AS old
  WHERE s.id = old.id
  RETURNING s.id, s.expires_at),
revoked AS (
  INSERT INTO revoked_tokens (jti, expires_at)
  SELECT 'sid:' || id, expires_at FROM ended
  ON CONFLICT DO NOTHING
  RETURNING pg_notify('favorites_api_changes', $7::text || 's:' || jti))
SELECT id FROM ended)sql"};

// A refresh: one row, compare-and-set on the generation.
constexpr pg_statement refresh_sign_in{"refresh_sign_in", R"sql(
UPDATE sign_ins
SET generation = generation + 1, refresh_expires_at = fav_ts($4::int8),
    expires_at = greatest(expires_at, fav_ts($5::int8))
WHERE id = $1 AND generation = $2::int8 AND refresh_expires_at > fav_ts($3::int8)
RETURNING customer_id::text)sql"};

// A presented generation below the current one: reuse of a rotated token ends the sign-in.
constexpr pg_statement reuse_sign_in{"reuse_sign_in", R"sql(
DELETE FROM sign_ins WHERE id = $1 AND generation > $2::int8
RETURNING customer_id::text, pg_notify('favorites_api_changes', $3::text || 's:' || id))sql"};

constexpr pg_statement end_sign_in{"end_sign_in", R"sql(
DELETE FROM sign_ins WHERE id = $1
RETURNING pg_notify('favorites_api_changes', $2::text || 's:' || id))sql"};

// The sweep deletes in batches, so no statement outlives its deadline on a large table. (A scan:
// an index on expires_at would make every refresh a non-HOT update, see migration 5.)
constexpr pg_statement sweep_sign_ins{"sweep_sign_ins", R"sql(
DELETE FROM sign_ins WHERE id IN (
  SELECT id FROM sign_ins WHERE expires_at <= fav_ts($1::int8) LIMIT $2::int8))sql"};

constexpr pg_statement sweep_refresh_tokens{"sweep_refresh_tokens", R"sql(
DELETE FROM refresh_tokens WHERE token_hash IN (
  SELECT token_hash FROM refresh_tokens WHERE expires_at <= fav_ts($1::int8) LIMIT $2::int8))sql"};

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
RETURNING pg_notify('favorites_api_changes', $2::text || 'p:' || id::text))sql"};

// Contract §11: a 409 or 422 tells a client retrying a 503 write that its earlier attempt took
// effect, so an answer that nothing changed must itself wait, like a commit, for the synchronous
// standby. Locking the customer row FOR KEY SHARE writes WAL under a transaction id (what the
// foreign key's check does anyway when a favorite is added), so the commit waits for the
// standby to confirm the WAL up to here, which covers any earlier commit that was kept only
// locally; a transaction id alone writes no WAL and would not wait. A cancelled wait makes the
// notice that answers 503 (pg_conn), never 409/422.
//
// One row: (the customer exists, the favorite was added). Added only for an existing customer;
// ON CONFLICT decides duplicates (one winner among concurrent ones). A customer deleted by a
// transaction that commits after this statement's snapshot still trips the foreign key (23503).
constexpr pg_statement insert_favorite{"insert_favorite", R"sql(
WITH c AS (SELECT id FROM customers WHERE id = $1::uuid FOR KEY SHARE),
added AS (
  INSERT INTO customer_favorite_products (customer_id, product_id, favorited_at)
  SELECT id, $2::int8, fav_ts($3::int8) FROM c
  ON CONFLICT DO NOTHING
  RETURNING pg_notify('favorites_api_changes', $4::text || 'f:' || customer_id::text))
SELECT EXISTS (SELECT 1 FROM c), EXISTS (SELECT 1 FROM added))sql"};

// One row: (the customer exists, the favorite was removed).
constexpr pg_statement delete_favorite{"delete_favorite", R"sql(
WITH c AS (SELECT id FROM customers WHERE id = $1::uuid FOR KEY SHARE),
removed AS (
  DELETE FROM customer_favorite_products WHERE customer_id = $1::uuid AND product_id = $2::int8
  RETURNING pg_notify('favorites_api_changes', $3::text || 'f:' || customer_id::text))
SELECT EXISTS (SELECT 1 FROM c), EXISTS (SELECT 1 FROM removed))sql"};

// (already a favorite; when it is, the customer row is locked as above, so the 409 waits for
// replication like a commit).
constexpr pg_statement has_favorite{"has_favorite", R"sql(
SELECT found, CASE WHEN found THEN (SELECT 1 FROM customers WHERE id = $1::uuid FOR KEY SHARE) END FROM (
  SELECT EXISTS (SELECT 1 FROM customer_favorite_products WHERE customer_id = $1::uuid AND product_id = $2::int8)
  AS found) f)sql"};

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

// The products_cache row of get_cached_product's columns.
core::product read_product(const pg_result& r) {
  return core::product{r.int64(0, 0),     r.text(0, 1),      r.text(0, 2), r.int64(0, 3),
                       r.opt_int64(0, 4), r.opt_int64(0, 5), r.int64(0, 6)};
}

// upsert_products' one parameter: the rows as a JSON array.
std::string products_json(const std::vector<core::product>& products) {
  // One row per id (the last wins): ON CONFLICT DO UPDATE cannot touch a row twice.
  std::map<std::int64_t, const core::product*> by_id;
  for (const auto& p : products) by_id[p.id] = &p;
  std::string rows;
  core::json_writer w(rows);
  w.begin_array();
  for (const auto& [id, p] : by_id) {
    w.begin_object();
    w.key("id").num(id);
    w.key("title").str(p->title);
    w.key("image_url").str(p->image_url);
    w.key("price_cents").num(p->price_cents);
    w.key("rate_cents");
    p->review_rate_cents ? w.num(*p->review_rate_cents) : w.null();
    w.key("review_count");
    p->review_count ? w.num(*p->review_count) : w.null();
    w.key("fetched_at").num(p->fetched_at);
    w.end_object();
  }
  w.end_array();
  return rows;
}

}  // namespace

pg_store::pg_store(net::any_io_executor ex, std::string conninfo, int pool_size, pg_limits limits)
    : pool_(std::move(ex), std::move(conninfo), pool_size, limits),
      // One group at a time: its commit takes the notify lock anyway, and the writes that wait
      // meanwhile make the next group bigger. Measured ((c), 64 connections, closed loop): 1 group
      // 23.8k-27.4k requests/s, 2 groups 20.8k-21.0k, 4 groups 17.9k-19.3k, with lower tails at 1.
      favorite_writes_(pool_, 1) {}

store::pool_usage pg_store::usage() const {
  const pg_pool::stats s = pool_.snapshot();
  return {s.open - s.idle, s.waiting, s.round_trips, s.connects, s.unreachable};
}

namespace {
// Statement parameters travel as a pack, not a braced list (CONTRIBUTING.md, "Compiler notes").
template <class... A>
std::vector<pg_param> params_of(A... params) {
  std::vector<pg_param> ps;
  ps.reserve(sizeof...(A));
  (ps.emplace_back(std::move(params)), ...);
  return ps;
}
}  // namespace

template <class... A>
net::awaitable<pg_result> pg_store::run(const pg_statement& st, A... params) {
  std::vector<pg_param> ps = params_of(std::move(params)...);
  auto c = co_await pool_.acquire();
  co_return co_await c->query(st, std::move(ps), pool_.limits().query_timeout);
}

template <class... A>
net::awaitable<pg_result> pg_store::run_batched(const pg_statement& st, std::string lock_order, A... params) {
  std::vector<pg_param> ps = params_of(std::move(params)...);  // named: CONTRIBUTING.md, "Compiler notes"
  co_return co_await favorite_writes_.run(st, std::move(ps), std::move(lock_order));
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

net::awaitable<update_result> pg_store::do_update_customer(core::customer_id id, customer_patch patch, micros now) {
  try {
    const pg_result r = co_await run(sql::update_customer, id.str(), std::move(patch.name), std::move(patch.email),
                                     num(now), notify_prefix_);
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

net::awaitable<bool> pg_store::do_delete_customer(core::customer_id id) {
  const pg_result r = co_await run(sql::delete_customer, id.str(), notify_prefix_);
  co_return r.affected() > 0;
}

net::awaitable<auth_state> pg_store::check_token(core::customer_id customer_id, std::string jti,
                                                 std::string sign_in_key) {
  if (sign_in_key.empty()) sign_in_key = jti;
  const pg_result r = co_await run(sql::check_token, customer_id.str(), std::move(jti), std::move(sign_in_key));
  co_return read_auth_state(r);
}

net::awaitable<void> pg_store::do_revoke_token(std::string jti, micros expires_at) {
  co_await run(sql::revoke_token, std::move(jti), num(expires_at), notify_prefix_);
  if (revocations_.fetch_add(1, std::memory_order_relaxed) % 64 == 63) {
    co_await run(sql::prune_revoked_tokens, num(util::now_micros()));
  }
}

net::awaitable<sign_in_started> pg_store::do_start_sign_in(const core::sign_in& s, int max_live) {
  std::vector<pg_call> calls(2);
  calls[0].st = &sql::lock_customer_sign_ins;
  calls[0].params.emplace_back(s.customer_id);
  calls[1].st = &sql::start_sign_in;
  calls[1].params = {s.id,
                     s.customer_id,
                     num(s.created_at),
                     num(s.refresh_expires_at),
                     num(s.expires_at),
                     num(std::max(0, max_live - 1)),
                     notify_prefix_};
  std::vector<pg_result> results;
  {
    auto c = co_await pool_.acquire();
    // One round trip, one transaction (the pipeline's implicit one, committed at its sync).
    results = co_await c->pipeline(std::move(calls), pool_.limits().query_timeout);
  }
  sign_in_started out;
  out.no_customer = results[0].rows() == 0;
  for (int i = 0; i < results[1].rows(); ++i) out.ended.push_back(results[1].text(i, 0));
  co_return out;
}

net::awaitable<rotate_result> pg_store::refresh_sign_in(std::string id, std::int64_t generation, micros now,
                                                        micros refresh_expires_at, micros expires_at,
                                                        std::string& customer_id) {
  const pg_result r =
      co_await run(sql::refresh_sign_in, id, num(generation), num(now), num(refresh_expires_at), num(expires_at));
  if (r.rows() == 1) {
    customer_id = r.text(0, 0);
    co_return rotate_result::rotated;
  }
  // A separate statement on purpose: its fresh snapshot also sees a refresh of the same
  // generation that a concurrent call committed while the UPDATE waited for the row.
  const pg_result reused = co_await run(sql::reuse_sign_in, std::move(id), num(generation), notify_prefix_);
  if (reused.rows() == 0) co_return rotate_result::invalid;
  customer_id = reused.text(0, 0);
  co_return rotate_result::reused;
}

net::awaitable<void> pg_store::do_end_sign_in(std::string id) {
  co_await run(sql::end_sign_in, std::move(id), notify_prefix_);
}

net::awaitable<std::int64_t> pg_store::sweep_sign_ins(micros now) {
  constexpr std::int64_t batch = 5000;
  std::int64_t deleted = 0;
  for (const pg_statement* st : {&sql::sweep_sign_ins, &sql::sweep_refresh_tokens}) {
    // Bounded: at most 1000 batches a sweep; the next sweep goes on where this one stopped.
    for (int i = 0; i < 1000; ++i) {
      const pg_result r = co_await run(*st, num(now), num(batch));
      deleted += r.affected();
      if (r.affected() < batch) break;
    }
  }
  co_return deleted;
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

net::awaitable<core::failure_counts> pg_store::count_sign_in_attempt(std::string email, std::string address, micros now,
                                                                     micros window) {
  const pg_result r =
      co_await run(sql::count_sign_in_attempt, std::move(email), std::move(address), num(now), num(now - window));
  core::failure_counts counts;
  for (int i = 0; i < r.rows(); ++i) {
    auto& slot = r.text(i, 0) == "*" ? counts.by_email : counts.by_address;
    slot = core::failure_count{r.int64(i, 1), r.int64(i, 2)};
  }
  // Counts past their window mean nothing: drop them now and then.
  if (failures_recorded_.fetch_add(1, std::memory_order_relaxed) % 64 == 63)
    co_await run(sql::prune_sign_in_failures, num(now - window));
  co_return counts;
}

net::awaitable<void> pg_store::uncount_sign_in_attempt(std::string email, std::string address,
                                                       core::failure_counts counted) {
  co_await run(sql::uncount_sign_in_attempt, std::move(email), std::move(address), num(counted.by_email.window_start),
               num(counted.by_address.window_start));
}

net::awaitable<void> pg_store::clear_sign_in_failures(std::string email, std::string address) {
  co_await run(sql::clear_sign_in_failures, std::move(email), std::move(address));
}

net::awaitable<std::optional<core::product>> pg_store::get_cached_product(std::int64_t id) {
  const pg_result r = co_await run(sql::get_cached_product, num(id));
  if (r.rows() == 0) co_return std::nullopt;
  co_return read_product(r);
}

net::awaitable<void> pg_store::do_upsert_products(std::vector<core::product> products) {
  if (products.empty()) co_return;
  co_await run(sql::upsert_products, products_json(products), notify_prefix_);
}

net::awaitable<insert_result> pg_store::do_insert_favorite(core::customer_id customer_id, std::int64_t product_id,
                                                           micros now) {
  bool gone = false;
  try {
    const pg_result r = co_await run_batched(sql::insert_favorite, customer_id.str() + '/' + num(product_id),
                                             customer_id.str(), num(product_id), num(now), notify_prefix_);
    if (r.boolean(0, 1)) co_return insert_result::added;
    gone = !r.boolean(0, 0);
  } catch (const pg_error& e) {
    // The foreign key (23503): deleted by a transaction that committed while this one ran.
    if (e.sqlstate != "23503") throw;
    gone = true;
  }
  co_return gone ? insert_result::no_customer : insert_result::duplicate;
}

net::awaitable<store::favoriting_reads> pg_store::read_for_favoriting(core::customer_id customer_id,
                                                                      std::int64_t product_id) {
  std::vector<pg_call> calls(2);
  calls[0].st = &sql::has_favorite;
  calls[0].params.emplace_back(customer_id.str());
  calls[0].params.emplace_back(num(product_id));
  calls[1].st = &sql::get_cached_product;
  calls[1].params.emplace_back(num(product_id));
  std::vector<pg_result> results;
  {
    auto c = co_await pool_.acquire();
    // One round trip; one transaction, so a 409's lock waits for replication as has_favorite's.
    results = co_await c->pipeline(std::move(calls), pool_.limits().query_timeout);
  }
  favoriting_reads out;
  out.already = results[0].boolean(0, 0);
  if (results[1].rows() > 0) out.cached = read_product(results[1]);
  co_return out;
}

net::awaitable<insert_result> pg_store::do_write_favoriting(core::customer_id customer_id, std::int64_t product_id,
                                                            micros now, std::optional<core::product> fetched) {
  if (!fetched) co_return co_await do_insert_favorite(std::move(customer_id), product_id, now);
  std::vector<pg_call> calls(2);
  calls[0].st = &sql::upsert_products;
  calls[0].params.emplace_back(products_json(std::vector<core::product>(1, *fetched)));
  calls[0].params.emplace_back(notify_prefix_);
  calls[1].st = &sql::insert_favorite;
  calls[1].params.emplace_back(customer_id.str());
  calls[1].params.emplace_back(num(product_id));
  calls[1].params.emplace_back(num(now));
  calls[1].params.emplace_back(notify_prefix_);
  std::vector<pg_result> results;
  bool gone = false;
  {
    auto c = co_await pool_.acquire();
    try {
      // One round trip, one transaction (the pipeline's implicit one, committed at its sync).
      results = co_await c->pipeline(std::move(calls), pool_.limits().query_timeout);
    } catch (const pg_error& e) {
      if (e.sqlstate != "23503") throw;
      gone = true;  // deleted by a transaction that committed while this one ran
    }
  }
  if (gone) co_return insert_result::no_customer;
  if (results[1].boolean(0, 1)) co_return insert_result::added;
  co_return results[1].boolean(0, 0) ? insert_result::duplicate : insert_result::no_customer;
}

net::awaitable<delete_result> pg_store::do_delete_favorite(core::customer_id customer_id, std::int64_t product_id) {
  const pg_result r = co_await run_batched(sql::delete_favorite, customer_id.str() + '/' + num(product_id),
                                           customer_id.str(), num(product_id), notify_prefix_);
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
