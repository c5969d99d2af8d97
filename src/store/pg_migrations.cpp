// The migrations themselves. Migration 1 is the reference service's DDL with IF NOT EXISTS, so
// a database it created is adopted as is; later ones only add. Append new numbers; never edit.
#include "store/pg_migrations.hpp"

#include <array>
#include <set>
#include <string>

namespace fav::store {

namespace {

struct migration {
  int version;
  const char* sql;
};

constexpr std::array<migration, 5> migrations{{
    {1, R"sql(
CREATE TABLE IF NOT EXISTS customers (id UUID PRIMARY KEY, name VARCHAR(255) NOT NULL, email VARCHAR(255) NOT NULL UNIQUE, password_hash VARCHAR(255) NOT NULL, created_at TIMESTAMPTZ NOT NULL DEFAULT now(), updated_at TIMESTAMPTZ NOT NULL DEFAULT now());
CREATE TABLE IF NOT EXISTS products_cache (id BIGINT PRIMARY KEY, title VARCHAR(255) NOT NULL, image_url TEXT NOT NULL, price DECIMAL(10,2) NOT NULL, review_rate DECIMAL(10,2), review_count INT, fetched_at TIMESTAMPTZ NOT NULL DEFAULT now());
CREATE TABLE IF NOT EXISTS customer_favorite_products (customer_id UUID NOT NULL REFERENCES customers(id) ON DELETE CASCADE, product_id BIGINT NOT NULL, favorited_at TIMESTAMPTZ NOT NULL DEFAULT now(), PRIMARY KEY (customer_id, product_id));
)sql"},
    {2, R"sql(
CREATE TABLE IF NOT EXISTS revoked_tokens (
  jti TEXT PRIMARY KEY,
  expires_at TIMESTAMPTZ NOT NULL);
CREATE TABLE IF NOT EXISTS refresh_tokens (
  token_hash TEXT PRIMARY KEY,
  family_id TEXT NOT NULL,
  customer_id UUID NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
  created_at TIMESTAMPTZ NOT NULL,
  expires_at TIMESTAMPTZ NOT NULL,
  used_at TIMESTAMPTZ,
  revoked_at TIMESTAMPTZ);
CREATE INDEX IF NOT EXISTS ix_refresh_tokens_family ON refresh_tokens (family_id);
CREATE INDEX IF NOT EXISTS ix_refresh_tokens_customer ON refresh_tokens (customer_id);
CREATE INDEX IF NOT EXISTS ix_favorites_customer_recent
  ON customer_favorite_products (customer_id, favorited_at DESC, product_id DESC);
CREATE INDEX IF NOT EXISTS ix_customers_created ON customers (created_at, id);
)sql"},
    {3, R"sql(
CREATE TABLE IF NOT EXISTS sign_in_failures (
  email VARCHAR(255) NOT NULL,
  scope TEXT NOT NULL,
  failures BIGINT NOT NULL,
  window_start_us BIGINT NOT NULL,
  PRIMARY KEY (email, scope));
CREATE INDEX IF NOT EXISTS ix_sign_in_failures_window ON sign_in_failures (window_start_us);
)sql"},
    // The service keeps times as int64 microseconds since the epoch; these two conversions were
    // spelled out in every statement. LANGUAGE sql and no more volatile than their bodies, so
    // the planner inlines them (same plans, index use included).
    {4, R"sql(
CREATE OR REPLACE FUNCTION fav_ts(us int8) RETURNS timestamptz
  LANGUAGE sql STABLE PARALLEL SAFE
  AS $$ SELECT timestamptz 'epoch' + us * interval '1 microsecond' $$;
CREATE OR REPLACE FUNCTION fav_us(t timestamptz) RETURNS int8
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  AS $$ SELECT (extract(epoch FROM t) * 1000000)::int8 $$;
)sql"},
    // One row per sign-in (contract §8 "Token rows"): a refresh moves `generation` forward in
    // place. No index covers a column a refresh changes, and pages keep room, so a refresh is a
    // HOT update (no new index entries, dead versions pruned within the page); the hourly sweep
    // scans instead. refresh_tokens (a row per rotation) stays for instances of the previous
    // version during a rolling upgrade; nothing reads it any more, and the sweep deletes its
    // expired rows.
    {5, R"sql(
CREATE TABLE IF NOT EXISTS sign_ins (
  id TEXT PRIMARY KEY,
  customer_id UUID NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
  generation BIGINT NOT NULL,
  created_at TIMESTAMPTZ NOT NULL,
  refresh_expires_at TIMESTAMPTZ NOT NULL,
  expires_at TIMESTAMPTZ NOT NULL) WITH (fillfactor = 80);
CREATE INDEX IF NOT EXISTS ix_sign_ins_customer ON sign_ins (customer_id, created_at, id);
)sql"},
}};

// "favs" in ASCII: one lock id for every instance of this service on the database.
constexpr const char* lock_migrations = "SELECT pg_advisory_xact_lock(1717658227)";

constexpr const char* create_schema_migrations =
    "CREATE TABLE IF NOT EXISTS schema_migrations (version INT PRIMARY KEY, "
    "applied_at TIMESTAMPTZ NOT NULL DEFAULT now())";

constexpr pg_statement applied_migrations{"applied_migrations", "SELECT version FROM schema_migrations"};

constexpr pg_statement record_migration{"record_migration",
                                        "INSERT INTO schema_migrations (version) VALUES ($1::int4)"};

}  // namespace

net::awaitable<void> run_pg_migrations(pg_conn& c, pg_clock::duration timeout) {
  // An exception leaves the transaction open; the pool then drops the connection, which
  // rolls it back, so a failed migration leaves nothing half-done.
  co_await c.script("BEGIN", timeout);
  // DDL on a large adopted database may outlast the per-request statement_timeout.
  const auto ms = std::chrono::ceil<std::chrono::milliseconds>(timeout + server_timeout_margin).count();
  co_await c.script(("SET LOCAL statement_timeout = " + std::to_string(ms)).c_str(), timeout);
  // The lock comes first: concurrent CREATE TABLE IF NOT EXISTS can otherwise collide.
  co_await c.script(lock_migrations, timeout);
  co_await c.script(create_schema_migrations, timeout);
  const pg_result rows = co_await c.query(applied_migrations, std::vector<pg_param>(), timeout);
  std::set<std::int64_t> applied;
  for (int r = 0; r < rows.rows(); ++r) applied.insert(rows.int64(r, 0));
  for (const migration& m : migrations) {
    if (applied.contains(m.version)) continue;
    co_await c.script(m.sql, timeout);
    std::vector<pg_param> version{std::to_string(m.version)};
    co_await c.query(record_migration, std::move(version), timeout);
  }
  co_await c.script("COMMIT", timeout);
}

}  // namespace fav::store
