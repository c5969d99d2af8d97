// See sqlite_store.hpp. SQL lives in named constants; each constant's address keys the
// per-connection prepared-statement cache.
#include "store/sqlite_store.hpp"

#include <chrono>
#include <filesystem>

#include "store/sqlite_conn.hpp"
#include "store/sqlite_migrations.hpp"
#include "store/sqlite_writer.hpp"
#include "util/time.hpp"
#include "util/worker_pool.hpp"

namespace fav::store {
namespace {

using core::micros;
using sclock = std::chrono::steady_clock;
using sqlite::connection;
using sqlite::deadline_scope;
using sqlite::query;
using sqlite::savepoint;

// ---- statements ----
constexpr const char* sql_ping = "SELECT 1";
constexpr const char* sql_insert_customer =
    "INSERT INTO customers (id, name, email, password_hash, created_at, updated_at) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?5) ON CONFLICT DO NOTHING";
constexpr const char* sql_customer_by_id =
    "SELECT id, name, email, password_hash, created_at, updated_at FROM customers WHERE id = ?1";
constexpr const char* sql_customer_by_email =
    "SELECT id, name, email, password_hash, created_at, updated_at FROM customers WHERE email = ?1";
// instr() rather than LIKE so '%' and '_' in a filter are literal.
#define FAV_CUSTOMER_FILTER                                                                           \
  " WHERE (?1 IS NULL OR instr(lower(name), ?1) > 0) AND (?2 IS NULL OR instr(lower(email), ?2) > 0)" \
  " AND (?3 IS NULL OR created_at >= ?3) AND (?4 IS NULL OR created_at <= ?4)"
constexpr const char* sql_list_customers =
    "SELECT id, name, email, password_hash, created_at, updated_at FROM customers" FAV_CUSTOMER_FILTER
    " ORDER BY created_at, id LIMIT ?5 OFFSET ?6";
constexpr const char* sql_count_customers = "SELECT count(*) FROM customers" FAV_CUSTOMER_FILTER;
#undef FAV_CUSTOMER_FILTER
// OR IGNORE: a unique-email conflict skips the row, so "taken" is a row count, not an error.
constexpr const char* sql_update_customer =
    "UPDATE OR IGNORE customers SET name = ?2, email = ?3, updated_at = ?4 WHERE id = ?1";
constexpr const char* sql_delete_customer = "DELETE FROM customers WHERE id = ?1";
constexpr const char* sql_check_token =
    "SELECT EXISTS (SELECT 1 FROM customers WHERE id = ?1), "
    "EXISTS (SELECT 1 FROM revoked_tokens WHERE jti = ?2 OR jti = ?3)";
constexpr const char* sql_revoke_token =
    "INSERT INTO revoked_tokens (jti, expires_at) VALUES (?1, ?2) ON CONFLICT DO NOTHING";
constexpr const char* sql_prune_revoked = "DELETE FROM revoked_tokens WHERE expires_at < ?1";
constexpr const char* sql_insert_sign_in =
    "INSERT INTO sign_ins (id, customer_id, generation, created_at, refresh_expires_at, expires_at) "
    "VALUES (?1, ?2, 0, ?3, ?4, ?5)";
// The customer's live sign-ins past the newest ?4 others (the new one ?3 never among them).
constexpr const char* sql_sign_ins_past_cap =
    "SELECT id, expires_at FROM sign_ins WHERE customer_id = ?1 AND expires_at > ?2 AND id <> ?3 "
    "ORDER BY created_at DESC, id DESC LIMIT -1 OFFSET ?4";
constexpr const char* sql_refresh_sign_in =
    "UPDATE sign_ins SET generation = generation + 1, refresh_expires_at = ?4, expires_at = max(expires_at, ?5) "
    "WHERE id = ?1 AND generation = ?2 AND refresh_expires_at > ?3 RETURNING customer_id";
constexpr const char* sql_reuse_sign_in =
    "DELETE FROM sign_ins WHERE id = ?1 AND generation > ?2 RETURNING customer_id";
constexpr const char* sql_end_sign_in = "DELETE FROM sign_ins WHERE id = ?1";
// The sweep deletes in batches, so the single writer is never held long.
constexpr const char* sql_sweep_sign_ins =
    "DELETE FROM sign_ins WHERE rowid IN (SELECT rowid FROM sign_ins WHERE expires_at <= ?1 LIMIT ?2)";
constexpr const char* sql_sweep_refresh_tokens =
    "DELETE FROM refresh_tokens WHERE rowid IN (SELECT rowid FROM refresh_tokens WHERE expires_at <= ?1 LIMIT ?2)";
// Sign-in guard: scope is the client address, or '*' for every address.
constexpr const char* sql_sign_in_failures =
    "SELECT scope, failures, window_start_us FROM sign_in_failures WHERE email = ?1 AND scope IN (?2, '*')";
// An atomic increment that returns its count (UPSERT … RETURNING, SQLite 3.35 or later).
constexpr const char* sql_count_sign_in_attempt =
    "INSERT INTO sign_in_failures (email, scope, failures, window_start_us) VALUES (?1, ?2, 1, ?3) "
    "ON CONFLICT (email, scope) DO UPDATE SET "
    "failures = CASE WHEN window_start_us <= ?4 THEN 1 ELSE failures + 1 END, "
    "window_start_us = CASE WHEN window_start_us <= ?4 THEN ?3 ELSE window_start_us END "
    "RETURNING failures, window_start_us";
constexpr const char* sql_uncount_sign_in_attempt =
    "UPDATE sign_in_failures SET failures = max(failures - 1, 0) "
    "WHERE email = ?1 AND scope = ?2 AND window_start_us = ?3";
constexpr const char* sql_clear_sign_in_failures = "DELETE FROM sign_in_failures WHERE email = ?1 AND scope = ?2";
constexpr const char* sql_prune_sign_in_failures = "DELETE FROM sign_in_failures WHERE window_start_us <= ?1";
constexpr const char* sql_get_product =
    "SELECT id, title, image_url, CAST(round(price * 100) AS INTEGER), "
    "CAST(round(review_rate * 100) AS INTEGER), review_count, fetched_at FROM products_cache WHERE id = ?1";
constexpr const char* sql_upsert_product =
    "INSERT INTO products_cache (id, title, image_url, price, review_rate, review_count, fetched_at) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (id) DO UPDATE SET title = excluded.title, "
    "image_url = excluded.image_url, price = excluded.price, review_rate = excluded.review_rate, "
    "review_count = excluded.review_count, fetched_at = excluded.fetched_at";
// Added only for an existing customer (no foreign-key failure to catch); ON CONFLICT decides
// duplicates. Nothing added: sql_customer_exists, in the same transaction, tells which.
constexpr const char* sql_insert_favorite =
    "INSERT INTO customer_favorite_products (customer_id, product_id, favorited_at) "
    "SELECT ?1, ?2, ?3 WHERE EXISTS (SELECT 1 FROM customers WHERE id = ?1) ON CONFLICT DO NOTHING";
constexpr const char* sql_delete_favorite =
    "DELETE FROM customer_favorite_products WHERE customer_id = ?1 AND product_id = ?2";
constexpr const char* sql_customer_exists = "SELECT EXISTS (SELECT 1 FROM customers WHERE id = ?1)";
constexpr const char* sql_has_favorite =
    "SELECT EXISTS (SELECT 1 FROM customer_favorite_products WHERE customer_id = ?1 AND product_id = ?2)";
// A favorite with its cached product: the columns, then (after any extra column) the join.
#define FAV_FAVORITE_COLUMNS                                                             \
  "SELECT f.product_id, f.favorited_at, p.id, p.title, p.image_url, "                    \
  "CAST(round(p.price * 100) AS INTEGER), CAST(round(p.review_rate * 100) AS INTEGER), " \
  "p.review_count, p.fetched_at"
#define FAV_FAVORITE_JOIN " FROM customer_favorite_products f LEFT JOIN products_cache p ON p.id = f.product_id "
// The page and the total in one statement (the window counts before LIMIT applies).
constexpr const char* sql_list_favorites =
    FAV_FAVORITE_COLUMNS ", count(*) OVER ()" FAV_FAVORITE_JOIN
                         "WHERE f.customer_id = ?1 ORDER BY f.favorited_at DESC, f.product_id DESC LIMIT ?2 OFFSET ?3";
constexpr const char* sql_get_favorite =
    FAV_FAVORITE_COLUMNS FAV_FAVORITE_JOIN "WHERE f.customer_id = ?1 AND f.product_id = ?2";
#undef FAV_FAVORITE_COLUMNS
#undef FAV_FAVORITE_JOIN
constexpr const char* sql_count_favorites = "SELECT count(*) FROM customer_favorite_products WHERE customer_id = ?1";

core::customer read_customer(query& q) {
  return core::customer{q.text(0), q.text(1), q.text(2), q.text(3), q.time(4), q.time(5)};
}

// A products_cache row whose seven columns start at `at` (id, title, image_url, price, rate,
// count, fetched_at).
core::product read_product(query& q, int at) {
  core::product p;
  p.id = q.i64(at);
  p.title = q.text(at + 1);
  p.image_url = q.text(at + 2);
  p.price_cents = q.i64(at + 3);
  if (!q.is_null(at + 4)) p.review_rate_cents = q.i64(at + 4);
  if (!q.is_null(at + 5)) p.review_count = q.i64(at + 5);
  p.fetched_at = q.time(at + 6);
  return p;
}

bool customer_exists(connection& c, const core::customer_id& id) {
  query q(c, sql_customer_exists);
  q.bind(1, id.str());
  return q.step() && q.i64(0) != 0;
}

void upsert_product(connection& c, const core::product& p) {
  query q(c, sql_upsert_product);
  q.bind(1, p.id).bind(2, p.title).bind(3, p.image_url).bind_real(4, static_cast<double>(p.price_cents) / 100.0);
  if (p.review_rate_cents)
    q.bind_real(5, static_cast<double>(*p.review_rate_cents) / 100.0);
  else
    q.bind_null(5);
  q.bind_opt(6, p.review_count).bind_time(7, p.fetched_at);
  q.run();
}

// insert_favorite's decision inside the single writer's transaction: the write, then (when it
// changed nothing) whether the customer exists, with no other write in between.
insert_result add_favorite(connection& c, const core::customer_id& customer_id, std::int64_t product_id, micros now) {
  query(c, sql_insert_favorite).bind(1, customer_id.str()).bind(2, product_id).bind_time(3, now).run();
  if (c.changes() == 1) return insert_result::added;
  return customer_exists(c, customer_id) ? insert_result::duplicate : insert_result::no_customer;
}

core::favorite read_favorite(query& q) {
  core::favorite f;
  f.product_id = q.i64(0);
  f.favorited_at = q.time(1);
  if (!q.is_null(2)) f.cached = read_product(q, 2);
  return f;
}

void bind_filter(query& q, const core::customer_filter& f) {
  q.bind_opt(1, f.name).bind_opt(2, f.email);
  if (f.created_from)
    q.bind_time(3, *f.created_from);
  else
    q.bind_null(3);
  if (f.created_to)
    q.bind_time(4, *f.created_to);
  else
    q.bind_null(4);
}

class sqlite_store final : public store {
 public:
  // The writer opens its connection here, so a bad path fails the start, not the first request.
  sqlite_store(std::string path, int threads, sclock::duration statement_timeout)
      : path_(std::move(path)),
        timeout_(statement_timeout),
        pool_(threads, queue_limit),
        conns_(static_cast<std::size_t>(threads)),
        writer_(path_, queue_limit, 1000, &closing_) {}
  ~sqlite_store() override {
    pool_.stop();
    writer_.stop();
  }
  // Running statements and lock waits end at once (unavailable), the writer's too; queued
  // calls then fail fast (a queued write is never applied).
  void close() override {
    closing_ = true;
    pool_.stop();
    writer_.stop();
  }

  std::string backend() const override { return "sqlite"; }
  pool_usage usage() const override { return {pool_.running() + writer_.running(), pool_.queued() + writer_.queued()}; }
  write_stats stats() const { return {writer_.commits(), writer_.writes()}; }

  net::awaitable<void> migrate() override {
    co_await write<int>(
        [](connection& c) {
          run_sqlite_migrations(c);
          return 0;
        },
        std::chrono::seconds(120));  // a migration on a large database may outlast a request's deadline
  }

  net::awaitable<bool> ping() override {
    co_return co_await run<bool>([](connection& c) {
      query q(c, sql_ping);
      return q.step();
    });
  }

  net::awaitable<bool> insert_customer(const core::customer& cu) override {
    co_return co_await write<bool>([&cu](connection& c) {
      query(c, sql_insert_customer)
          .bind(1, cu.id)
          .bind(2, cu.name)
          .bind(3, cu.email)
          .bind(4, cu.password_hash)
          .bind_time(5, cu.created_at)
          .run();
      return c.changes() == 1;
    });
  }

  net::awaitable<std::optional<core::customer>> find_customer(core::customer_id id) override {
    co_return co_await run<std::optional<core::customer>>([&id](connection& c) {
      query q(c, sql_customer_by_id);
      q.bind(1, id.str());
      return q.step() ? std::optional(read_customer(q)) : std::nullopt;
    });
  }

  net::awaitable<std::optional<core::customer>> find_customer_by_email(std::string email) override {
    co_return co_await run<std::optional<core::customer>>([&email](connection& c) {
      query q(c, sql_customer_by_email);
      q.bind(1, email);
      return q.step() ? std::optional(read_customer(q)) : std::nullopt;
    });
  }

  net::awaitable<core::page<core::customer>> list_customers(core::customer_filter f, core::page_req p) override {
    co_return co_await run<core::page<core::customer>>([&](connection& c) {
      core::page<core::customer> out;
      {
        query q(c, sql_list_customers);
        bind_filter(q, f);
        q.bind(5, p.per_page).bind(6, p.offset());
        while (q.step()) out.items.push_back(read_customer(q));
      }
      query q(c, sql_count_customers);
      bind_filter(q, f);
      if (q.step()) out.total = q.i64(0);
      return out;
    });
  }

  net::awaitable<update_result> do_update_customer(core::customer_id id, customer_patch patch, micros now) override {
    co_return co_await write<update_result>([&](connection& c) {
      savepoint tx(c);
      std::optional<core::customer> cur;
      {
        query q(c, sql_customer_by_id);
        q.bind(1, id.str());
        if (q.step()) cur = read_customer(q);
      }
      if (!cur) return update_result::not_found;
      std::string name = patch.name.value_or(cur->name);
      std::string email = patch.email.value_or(cur->email);
      if (name == cur->name && email == cur->email) return update_result::unchanged;
      query(c, sql_update_customer).bind(1, id.str()).bind(2, name).bind(3, email).bind_time(4, now).run();
      if (c.changes() == 0) return update_result::email_taken;
      tx.commit();
      return update_result::updated;
    });
  }

  net::awaitable<bool> do_delete_customer(core::customer_id id) override {
    co_return co_await write<bool>([&id](connection& c) {
      query(c, sql_delete_customer).bind(1, id.str()).run();
      return c.changes() == 1;
    });
  }

  net::awaitable<auth_state> check_token(core::customer_id customer_id, std::string jti,
                                         std::string sign_in_key) override {
    co_return co_await run<auth_state>([&](connection& c) {
      if (sign_in_key.empty()) sign_in_key = jti;  // bound without a copy: must outlive the query
      query q(c, sql_check_token);
      q.bind(1, customer_id.str()).bind(2, jti).bind(3, sign_in_key);
      if (!q.step() || q.i64(0) == 0) return auth_state::no_customer;
      return q.i64(1) ? auth_state::revoked : auth_state::ok;
    });
  }

  net::awaitable<void> do_revoke_token(std::string jti, micros expires_at) override {
    co_await write<int>([&](connection& c) {
      query(c, sql_revoke_token).bind(1, jti).bind_time(2, expires_at).run();
      // Revocations are only needed until the token would expire anyway.
      if (++revocations_ % 64 == 0) query(c, sql_prune_revoked).bind_time(1, util::now_micros()).run();
      return 0;
    });
  }

  net::awaitable<sign_in_started> do_start_sign_in(const core::sign_in& s, int max_live) override {
    // The single writer serializes sign-ins: the cap holds however they race.
    co_return co_await write<sign_in_started>([&](connection& c) {
      sign_in_started out;
      {
        query q(c, sql_customer_exists);
        q.bind(1, s.customer_id);
        out.no_customer = !(q.step() && q.i64(0) != 0);
      }
      if (out.no_customer) return out;  // deleted meanwhile (the foreign key would refuse the row)
      savepoint tx(c);
      query(c, sql_insert_sign_in)
          .bind(1, s.id)
          .bind(2, s.customer_id)
          .bind_time(3, s.created_at)
          .bind_time(4, s.refresh_expires_at)
          .bind_time(5, s.expires_at)
          .run();
      std::vector<std::pair<std::string, micros>> past;
      {
        query q(c, sql_sign_ins_past_cap);
        q.bind(1, s.customer_id)
            .bind_time(2, s.created_at)
            .bind(3, s.id)
            .bind(4, std::int64_t{std::max(0, max_live - 1)});
        while (q.step()) past.emplace_back(q.text(0), q.time(1));
      }
      for (auto& [id, expires] : past) {
        query(c, sql_end_sign_in).bind(1, id).run();
        const std::string key = sign_in_key(id);
        query(c, sql_revoke_token).bind(1, key).bind_time(2, expires).run();
        out.ended.push_back(id);
      }
      tx.commit();
      return out;
    });
  }

  net::awaitable<rotate_result> refresh_sign_in(std::string id, std::int64_t generation, micros now,
                                                micros refresh_expires_at, micros expires_at,
                                                std::string& customer_id) override {
    co_return co_await write<rotate_result>([&](connection& c) {
      {
        query q(c, sql_refresh_sign_in);
        q.bind(1, id).bind(2, generation).bind_time(3, now).bind_time(4, refresh_expires_at).bind_time(5, expires_at);
        if (q.step()) {
          customer_id = q.text(0);
          return rotate_result::rotated;
        }
      }
      query q(c, sql_reuse_sign_in);
      q.bind(1, id).bind(2, generation);
      if (!q.step()) return rotate_result::invalid;
      customer_id = q.text(0);
      return rotate_result::reused;
    });
  }

  net::awaitable<void> do_end_sign_in(std::string id) override {
    co_await write<int>([&](connection& c) {
      query(c, sql_end_sign_in).bind(1, id).run();
      return 0;
    });
  }

  net::awaitable<std::int64_t> sweep_sign_ins(micros now) override {
    constexpr std::int64_t batch = 5000;
    std::int64_t deleted = 0;
    for (const char* sql : {sql_sweep_sign_ins, sql_sweep_refresh_tokens}) {
      // Bounded: at most 1000 batches a sweep; the next sweep goes on where this one stopped.
      for (int i = 0; i < 1000; ++i) {
        const std::int64_t n = co_await write<std::int64_t>([&](connection& c) {
          query(c, sql).bind_time(1, now).bind(2, batch).run();
          return static_cast<std::int64_t>(c.changes());
        });
        deleted += n;
        if (n < batch) break;
      }
    }
    co_return deleted;
  }

  net::awaitable<core::failure_counts> sign_in_failures(std::string email, std::string address) override {
    co_return co_await run<core::failure_counts>([&](connection& c) {
      core::failure_counts counts;
      query q(c, sql_sign_in_failures);
      q.bind(1, email).bind(2, address);
      while (q.step()) {
        auto& slot = q.text(0) == "*" ? counts.by_email : counts.by_address;
        slot = core::failure_count{q.i64(1), q.i64(2)};
      }
      return counts;
    });
  }

  net::awaitable<core::failure_counts> count_sign_in_attempt(std::string email, std::string address, micros now,
                                                             micros window) override {
    co_return co_await write<core::failure_counts>([&](connection& c) {
      savepoint tx(c);
      core::failure_counts counts;
      for (const std::string* scope : {static_cast<const std::string*>(&address), &star_}) {
        query q(c, sql_count_sign_in_attempt);
        q.bind(1, email).bind(2, *scope).bind(3, now).bind(4, now - window);
        while (q.step()) (scope == &star_ ? counts.by_email : counts.by_address) = {q.i64(0), q.i64(1)};
      }
      // Counts past their window mean nothing: drop them now and then.
      if (++failures_recorded_ % 64 == 0) query(c, sql_prune_sign_in_failures).bind(1, now - window).run();
      tx.commit();
      return counts;
    });
  }

  net::awaitable<void> uncount_sign_in_attempt(std::string email, std::string address,
                                               core::failure_counts counted) override {
    co_await write<int>([&](connection& c) {
      savepoint tx(c);
      query(c, sql_uncount_sign_in_attempt)
          .bind(1, email)
          .bind(2, address)
          .bind(3, counted.by_address.window_start)
          .run();
      query(c, sql_uncount_sign_in_attempt).bind(1, email).bind(2, star_).bind(3, counted.by_email.window_start).run();
      tx.commit();
      return 0;
    });
  }

  net::awaitable<void> clear_sign_in_failures(std::string email, std::string address) override {
    co_await write<int>([&](connection& c) {
      query(c, sql_clear_sign_in_failures).bind(1, email).bind(2, address).run();
      return 0;
    });
  }

  net::awaitable<std::optional<core::product>> get_cached_product(std::int64_t id) override {
    co_return co_await run<std::optional<core::product>>([id](connection& c) -> std::optional<core::product> {
      query q(c, sql_get_product);
      q.bind(1, id);
      if (!q.step()) return std::nullopt;
      return read_product(q, 0);
    });
  }

  net::awaitable<void> do_upsert_products(std::vector<core::product> products) override {
    co_await write<int>([&](connection& c) {
      savepoint tx(c);
      for (auto& p : products) upsert_product(c, p);
      tx.commit();
      return 0;
    });
  }

  // Each decided inside the single writer's transaction: the write, then (when it changed
  // nothing) whether the customer exists, with no other write in between.
  net::awaitable<insert_result> do_insert_favorite(core::customer_id customer_id, std::int64_t product_id,
                                                   micros now) override {
    co_return co_await write<insert_result>(
        [&](connection& c) { return add_favorite(c, customer_id, product_id, now); });
  }

  // Both reads in one call on one reader connection.
  net::awaitable<favoriting_reads> read_for_favoriting(core::customer_id customer_id,
                                                       std::int64_t product_id) override {
    co_return co_await run<favoriting_reads>([&](connection& c) {
      favoriting_reads out;
      {
        query q(c, sql_has_favorite);
        q.bind(1, customer_id.str()).bind(2, product_id);
        out.already = q.step() && q.i64(0) != 0;
      }
      query q(c, sql_get_product);
      q.bind(1, product_id);
      if (q.step()) out.cached = read_product(q, 0);
      return out;
    });
  }

  // One write of the writer's batch (its savepoint makes the row and the favorite one atomic
  // write; no transaction of its own).
  net::awaitable<insert_result> do_write_favoriting(core::customer_id customer_id, std::int64_t product_id, micros now,
                                                    std::optional<core::product> fetched) override {
    co_return co_await write<insert_result>([&](connection& c) {
      if (fetched) upsert_product(c, *fetched);
      return add_favorite(c, customer_id, product_id, now);
    });
  }

  net::awaitable<delete_result> do_delete_favorite(core::customer_id customer_id, std::int64_t product_id) override {
    co_return co_await write<delete_result>([&](connection& c) {
      query(c, sql_delete_favorite).bind(1, customer_id.str()).bind(2, product_id).run();
      if (c.changes() == 1) return delete_result::removed;
      return customer_exists(c, customer_id) ? delete_result::absent : delete_result::no_customer;
    });
  }

  net::awaitable<bool> has_favorite(core::customer_id customer_id, std::int64_t product_id) override {
    co_return co_await run<bool>([&](connection& c) {
      query q(c, sql_has_favorite);
      q.bind(1, customer_id.str()).bind(2, product_id);
      return q.step() && q.i64(0) != 0;
    });
  }

  net::awaitable<core::page<core::favorite>> list_favorites(core::customer_id customer_id, core::page_req p) override {
    co_return co_await run<core::page<core::favorite>>([&](connection& c) {
      core::page<core::favorite> out;
      {
        query q(c, sql_list_favorites);
        q.bind(1, customer_id.str()).bind(2, p.per_page).bind(3, p.offset());
        while (q.step()) {
          out.items.push_back(read_favorite(q));
          out.total = q.i64(9);
        }
      }
      if (!out.items.empty()) return out;
      // A page past the end has no row to carry the total.
      query q(c, sql_count_favorites);
      q.bind(1, customer_id.str());
      if (q.step()) out.total = q.i64(0);
      return out;
    });
  }

  net::awaitable<std::optional<core::favorite>> get_favorite(core::customer_id customer_id,
                                                             std::int64_t product_id) override {
    co_return co_await run<std::optional<core::favorite>>([&](connection& c) {
      query q(c, sql_get_favorite);
      q.bind(1, customer_id.str()).bind(2, product_id);
      return q.step() ? std::optional(read_favorite(q)) : std::nullopt;
    });
  }

 private:
  // Runs the read `f` with the calling worker's own connection (opened on first use).
  template <class R, class F>
  net::awaitable<R> run(F f, std::optional<sclock::duration> timeout = std::nullopt) {
    // The deadline counts from here: time spent queued for a worker is part of it.
    const auto deadline = sclock::now() + timeout.value_or(timeout_);
    auto r = co_await util::offload<R>(pool_, [this, &f, deadline]() -> R {
      if (sclock::now() >= deadline) throw unavailable("sqlite: statement deadline passed while queued");
      if (closing_) throw unavailable("sqlite: shutting down");
      auto& slot = conns_[static_cast<std::size_t>(util::worker_pool::current_index())];
      if (!slot) slot = std::make_unique<connection>(path_, &closing_);
      deadline_scope bounded(*slot, deadline);
      return f(*slot);
    });
    if (!r) throw unavailable("sqlite queue full");
    co_return std::move(*r);
  }

  // Runs `f` as one atomic write of the writer's next group-committed batch. The deadline counts
  // from here: time spent queued for the writer is part of it.
  template <class R, class F>
  net::awaitable<R> write(F f, std::optional<sclock::duration> timeout = std::nullopt) {
    return writer_.write<R>(std::move(f), sclock::now() + timeout.value_or(timeout_));
  }

  static constexpr int queue_limit = 100000;
  std::string path_;
  sclock::duration timeout_;
  std::atomic<bool> closing_{false};
  util::worker_pool pool_;                          // reads
  std::vector<std::unique_ptr<connection>> conns_;  // one per reader; touched only by it
  sqlite::writer writer_;                           // every write
  std::atomic<std::uint64_t> revocations_{0};
  std::atomic<std::uint64_t> failures_recorded_{0};
  const std::string star_ = "*";  // the sign-in guard scope of every address
};

}  // namespace

std::unique_ptr<store> make_sqlite_store(net::any_io_executor, std::string path, int threads,
                                         std::chrono::steady_clock::duration statement_timeout) {
  std::filesystem::path p(path);
  std::error_code ec;
  if (p.has_parent_path()) std::filesystem::create_directories(p.parent_path(), ec);
  if (ec) throw unavailable("cannot create folder " + p.parent_path().string() + ": " + ec.message());
  return std::make_unique<sqlite_store>(std::move(path), threads, statement_timeout);
}

write_stats sqlite_write_stats(const store& s) {
  auto* sq = dynamic_cast<const sqlite_store*>(&s);
  return sq ? sq->stats() : write_stats{};
}

}  // namespace fav::store
