// The migrations themselves, the same tables as PostgreSQL's (pg_migrations.cpp) in SQLite's
// dialect, so a database the reference service created is adopted as is. Append new numbers;
// never edit.
#include "store/sqlite_migrations.hpp"

#include <cstdint>

#include "util/time.hpp"

namespace fav::store {

namespace {

struct migration {
  int version;
  const char* sql;
};
constexpr migration migrations[] = {
    {1, R"sql(
CREATE TABLE IF NOT EXISTS customers (
  id UUID PRIMARY KEY, name VARCHAR(255) NOT NULL, email VARCHAR(255) NOT NULL UNIQUE,
  password_hash VARCHAR(255) NOT NULL, created_at TIMESTAMPTZ NOT NULL, updated_at TIMESTAMPTZ NOT NULL);
CREATE TABLE IF NOT EXISTS products_cache (
  id BIGINT PRIMARY KEY, title VARCHAR(255) NOT NULL, image_url TEXT NOT NULL, price DECIMAL(10,2) NOT NULL,
  review_rate DECIMAL(10,2), review_count INT, fetched_at TIMESTAMPTZ NOT NULL);
CREATE TABLE IF NOT EXISTS customer_favorite_products (
  customer_id UUID NOT NULL REFERENCES customers(id) ON DELETE CASCADE, product_id BIGINT NOT NULL,
  favorited_at TIMESTAMPTZ NOT NULL, PRIMARY KEY (customer_id, product_id));
)sql"},
    {2, R"sql(
CREATE TABLE IF NOT EXISTS revoked_tokens (jti TEXT PRIMARY KEY, expires_at TIMESTAMPTZ NOT NULL);
CREATE TABLE IF NOT EXISTS refresh_tokens (
  token_hash TEXT PRIMARY KEY, family_id TEXT NOT NULL,
  customer_id UUID NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
  created_at TIMESTAMPTZ NOT NULL, expires_at TIMESTAMPTZ NOT NULL, used_at TIMESTAMPTZ, revoked_at TIMESTAMPTZ);
CREATE INDEX IF NOT EXISTS ix_refresh_tokens_family ON refresh_tokens (family_id);
CREATE INDEX IF NOT EXISTS ix_favorites_customer_recent
  ON customer_favorite_products (customer_id, favorited_at DESC, product_id DESC);
CREATE INDEX IF NOT EXISTS ix_customers_created ON customers (created_at, id);
)sql"},
    {3, R"sql(
CREATE TABLE IF NOT EXISTS sign_in_failures (
  email VARCHAR(255) NOT NULL, scope TEXT NOT NULL, failures BIGINT NOT NULL, window_start_us BIGINT NOT NULL,
  PRIMARY KEY (email, scope));
CREATE INDEX IF NOT EXISTS ix_sign_in_failures_window ON sign_in_failures (window_start_us);
)sql"},
    // One row per sign-in (contract §8 "Token rows"): a refresh moves `generation` forward in
    // place. refresh_tokens (a row per rotation) is no longer read; the sweep deletes its
    // expired rows.
    {4, R"sql(
CREATE TABLE IF NOT EXISTS sign_ins (
  id TEXT PRIMARY KEY, customer_id UUID NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
  generation BIGINT NOT NULL, created_at TIMESTAMPTZ NOT NULL, refresh_expires_at TIMESTAMPTZ NOT NULL,
  expires_at TIMESTAMPTZ NOT NULL);
CREATE INDEX IF NOT EXISTS ix_sign_ins_customer ON sign_ins (customer_id, created_at, id);
CREATE INDEX IF NOT EXISTS ix_sign_ins_expires ON sign_ins (expires_at);
)sql"},
};

}  // namespace

void run_sqlite_migrations(sqlite::connection& c) {
  c.exec("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL)");
  sqlite::savepoint tx(c);
  std::int64_t current = 0;
  {
    sqlite::query q(c, "SELECT coalesce(max(version), 0) FROM schema_migrations");
    if (q.step()) current = q.i64(0);
  }
  for (const migration& m : migrations) {
    if (m.version <= current) continue;
    c.exec(m.sql);
    sqlite::query(c, "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, ?2)")
        .bind(1, std::int64_t{m.version})
        .bind_time(2, util::now_micros())
        .run();
  }
  tx.commit();
}

}  // namespace fav::store
