// bench-seed: fills a database for bench/run.sh (customers, favorites, a warm products cache) and
// mints one token per customer with the service's own code; `--hash-bench` measures argon2id.
//
//   bench-seed --database-url URL --customers N --favorites M --secret S --tokens-out FILE
//              [--products data/fakestore-products.json] [--password P] [--expire-days D]
//   bench-seed --hash-bench SECONDS [--threads T]
//   bench-seed --database-url URL --reset-since MICROS   (drops favorites added after seeding)
//
// Schema and products go through the store (migrate(), upsert_products()); customers and
// favorites are bulk-inserted with direct SQL in one transaction (SQLite: the store's own
// statement shapes; PostgreSQL: COPY), because the store writes one committed row per call.
#include <libpq-fe.h>
#include <sqlite3.h>

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "auth/jwt.hpp"
#include "auth/password.hpp"
#include "catalog/parse.hpp"
#include "store/pg_store.hpp"
#include "store/sqlite_store.hpp"
#include "util/random.hpp"
#include "util/time.hpp"

namespace net = boost::asio;
using namespace fav;

namespace {

constexpr const char* default_password = "bench-password-1";

struct options {
  std::string database_url;
  std::string products = "data/fakestore-products.json";
  std::string secret;
  std::string tokens_out;
  std::string password = default_password;
  long customers = 10000;
  long favorites = 10;
  double expire_days = 2;
  double hash_bench_s = 0;     // > 0: hash micro-benchmark mode
  long long reset_since = -1;  // >= 0: reset mode (favorites newer than this, in micros)
  int threads = 0;             // hash bench threads; 0 = all cores
};

[[noreturn]] void usage(const std::string& why) {
  std::cerr << "bench-seed: " << why << "\n"
            << "usage: bench-seed --database-url URL --customers N --favorites M --secret S --tokens-out FILE\n"
            << "                  [--products PATH] [--password P] [--expire-days D]\n"
            << "       bench-seed --hash-bench SECONDS [--threads T] [--password P]\n"
            << "       bench-seed --database-url URL --reset-since MICROS\n";
  std::exit(2);
}

options parse_args(int argc, char** argv) {
  options o;
  std::map<std::string, std::string> kv;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind("--", 0) != 0 || i + 1 >= argc) usage("bad argument " + a);
    kv[a] = argv[++i];
  }
  try {
    for (auto& [k, v] : kv) {
      if (k == "--database-url")
        o.database_url = v;
      else if (k == "--products")
        o.products = v;
      else if (k == "--secret")
        o.secret = v;
      else if (k == "--tokens-out")
        o.tokens_out = v;
      else if (k == "--password")
        o.password = v;
      else if (k == "--customers")
        o.customers = std::stol(v);
      else if (k == "--favorites")
        o.favorites = std::stol(v);
      else if (k == "--expire-days")
        o.expire_days = std::stod(v);
      else if (k == "--hash-bench")
        o.hash_bench_s = std::stod(v);
      else if (k == "--threads")
        o.threads = std::stoi(v);
      else if (k == "--reset-since")
        o.reset_since = std::stoll(v);
      else
        usage("unknown option " + k);
    }
  } catch (const std::logic_error&) {
    usage("bad number");
  }
  if (o.hash_bench_s > 0) return o;
  if (o.reset_since >= 0) {
    if (o.database_url.empty()) usage("--reset-since needs --database-url");
    return o;
  }
  if (o.database_url.empty() || o.secret.empty() || o.tokens_out.empty()) usage("missing option");
  if (o.customers < 1 || o.favorites < 0) usage("--customers must be >= 1, --favorites >= 0");
  return o;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// ---- hash micro-benchmark: what sign-in costs, on every core ----

// "$argon2id$v=19$m=65536,t=3,p=1" of a PHC string: the parameters without salt and hash.
std::string params_of(const std::string& phc) {
  std::size_t at = 0;
  for (int i = 0; i < 3 && at != std::string::npos; ++i) at = phc.find('$', at + 1);
  return phc.substr(0, at);
}

// Each thread verifies the password against one hash with the service's parameters (exactly
// the work of a sign-in) until the deadline; prints one JSON line.
int hash_bench(const options& o) {
  auth::init_crypto();
  const std::string phc = auth::hash_password(o.password);
  int threads = o.threads > 0 ? o.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  std::atomic<long> done{0};
  std::atomic<bool> failed{false};
  const auto t0 = std::chrono::steady_clock::now();
  const auto deadline = t0 + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                 std::chrono::duration<double>(o.hash_bench_s));
  std::vector<std::thread> pool;
  for (int i = 0; i < threads; ++i) {
    pool.emplace_back([&] {
      while (std::chrono::steady_clock::now() < deadline) {
        if (!auth::verify_password(phc, o.password)) failed = true;
        done.fetch_add(1, std::memory_order_relaxed);
      }
    });
  }
  for (auto& t : pool) t.join();
  const double elapsed = seconds_since(t0);  // includes the last, overrunning hash of each thread
  if (failed) {
    std::cerr << "bench-seed: verify_password failed on its own hash\n";
    return 1;
  }
  std::printf("{\"threads\":%d,\"hashes\":%ld,\"seconds\":%.3f,\"hashes_per_second\":%.3f,\"phc_prefix\":\"%s\"}\n",
              threads, done.load(), elapsed, static_cast<double>(done.load()) / elapsed, params_of(phc).c_str());
  return 0;
}

// ---- the data set ----

// Customer i favorites products (i+k) % P + 1 for k < M, newest first by k; the first product
// it lacks is (i+M) % P + 1 (used by the add/remove scenario), or 0 when it has them all.
struct seed_row {
  std::string id, email, name;
  std::vector<std::pair<std::int64_t, core::micros>> favorites;  // product, favorited_at
  std::int64_t free_product = 0;
};

std::vector<seed_row> make_rows(const options& o, std::int64_t products, core::micros now) {
  std::vector<seed_row> rows(static_cast<std::size_t>(o.customers));
  for (long i = 0; i < o.customers; ++i) {
    auto& r = rows[static_cast<std::size_t>(i)];
    r.id = util::uuid_v4();
    r.email = "bench-" + std::to_string(i) + "@bench.example";
    r.name = "Bench Customer " + std::to_string(i);
    for (long k = 0; k < o.favorites; ++k)
      r.favorites.emplace_back((i + k) % products + 1, now - (k + 1) * util::micros_per_second);
    if (o.favorites < products) r.free_product = (i + o.favorites) % products + 1;
  }
  return rows;
}

// Removes what an earlier seeding of the same database left (favorites and tokens cascade).
constexpr const char* sql_delete_old = "DELETE FROM customers WHERE email LIKE 'bench-%@bench.example'";

// SQLite: the store's column formats (ids as text, times as format_db_time text).
void bulk_sqlite(const std::string& path, const std::vector<seed_row>& rows, const std::string& phc, core::micros now) {
  sqlite3* db = nullptr;
  auto check = [&](int rc, const char* what) {
    if (rc != SQLITE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW)
      throw std::runtime_error(std::string("sqlite ") + what + ": " + sqlite3_errmsg(db));
  };
  check(sqlite3_open(path.c_str(), &db), "open");
  std::unique_ptr<sqlite3, int (*)(sqlite3*)> guard(db, sqlite3_close);
  sqlite3_busy_timeout(db, 5000);
  check(sqlite3_exec(db, "PRAGMA foreign_keys = ON; BEGIN IMMEDIATE", nullptr, nullptr, nullptr), "begin");
  check(sqlite3_exec(db, sql_delete_old, nullptr, nullptr, nullptr), "delete");
  sqlite3_stmt* cust = nullptr;
  sqlite3_stmt* fav = nullptr;
  check(sqlite3_prepare_v2(db,
                           "INSERT INTO customers (id, name, email, password_hash, created_at, updated_at) "
                           "VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
                           -1, &cust, nullptr),
        "prepare");
  check(sqlite3_prepare_v2(db,
                           "INSERT INTO customer_favorite_products (customer_id, product_id, favorited_at) "
                           "VALUES (?1, ?2, ?3)",
                           -1, &fav, nullptr),
        "prepare");
  const std::string created = util::format_db_time(now - 3600 * util::micros_per_second);
  for (const auto& r : rows) {
    sqlite3_bind_text(cust, 1, r.id.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(cust, 2, r.name.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(cust, 3, r.email.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(cust, 4, phc.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(cust, 5, created.c_str(), -1, SQLITE_TRANSIENT);
    check(sqlite3_step(cust), "insert customer");
    sqlite3_reset(cust);
    for (const auto& [pid, at] : r.favorites) {
      const std::string t = util::format_db_time(at);
      sqlite3_bind_text(fav, 1, r.id.c_str(), -1, SQLITE_TRANSIENT);
      sqlite3_bind_int64(fav, 2, pid);
      sqlite3_bind_text(fav, 3, t.c_str(), -1, SQLITE_TRANSIENT);
      check(sqlite3_step(fav), "insert favorite");
      sqlite3_reset(fav);
    }
  }
  sqlite3_finalize(cust);
  sqlite3_finalize(fav);
  check(sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr), "commit");
  // The WAL would otherwise be replayed by the service's first readers.
  check(sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", nullptr, nullptr, nullptr), "checkpoint");
}

// PostgreSQL: one transaction, COPY for both tables, then ANALYZE (what autovacuum would do
// soon after a bulk load anyway) so the service and pgbench both get the settled plans.
void bulk_pg(const std::string& uri, const std::vector<seed_row>& rows, const std::string& phc, core::micros now) {
  std::unique_ptr<PGconn, void (*)(PGconn*)> conn(PQconnectdb(uri.c_str()), PQfinish);
  if (PQstatus(conn.get()) != CONNECTION_OK)
    throw std::runtime_error(std::string("pg connect: ") + PQerrorMessage(conn.get()));
  auto exec = [&](const char* sql, ExecStatusType want) {
    std::unique_ptr<PGresult, void (*)(PGresult*)> r(PQexec(conn.get(), sql), PQclear);
    if (PQresultStatus(r.get()) != want)
      throw std::runtime_error(std::string("pg: ") + sql + ": " + PQerrorMessage(conn.get()));
  };
  auto copy = [&](const char* sql, const std::string& data) {
    exec(sql, PGRES_COPY_IN);
    if (PQputCopyData(conn.get(), data.data(), static_cast<int>(data.size())) != 1 ||
        PQputCopyEnd(conn.get(), nullptr) != 1)
      throw std::runtime_error(std::string("pg copy: ") + PQerrorMessage(conn.get()));
    std::unique_ptr<PGresult, void (*)(PGresult*)> r(PQgetResult(conn.get()), PQclear);
    if (PQresultStatus(r.get()) != PGRES_COMMAND_OK)
      throw std::runtime_error(std::string("pg copy: ") + PQerrorMessage(conn.get()));
    while (PGresult* extra = PQgetResult(conn.get())) PQclear(extra);
  };
  exec("BEGIN", PGRES_COMMAND_OK);
  exec(sql_delete_old, PGRES_COMMAND_OK);
  const std::string created = util::format_db_time(now - 3600 * util::micros_per_second);
  std::string customers, favorites;
  customers.reserve(rows.size() * 250);
  for (const auto& r : rows) {
    customers += r.id + '\t' + r.name + '\t' + r.email + '\t' + phc + '\t' + created + '\t' + created + '\n';
    for (const auto& [pid, at] : r.favorites)
      favorites += r.id + '\t' + std::to_string(pid) + '\t' + util::format_db_time(at) + '\n';
  }
  copy("COPY customers (id, name, email, password_hash, created_at, updated_at) FROM STDIN", customers);
  copy("COPY customer_favorite_products (customer_id, product_id, favorited_at) FROM STDIN", favorites);
  exec("COMMIT", PGRES_COMMAND_OK);
  exec("ANALYZE customers, customer_favorite_products, products_cache, revoked_tokens", PGRES_COMMAND_OK);
}

bool is_pg_url(const std::string& url) {
  return url.rfind("postgresql://", 0) == 0 || url.rfind("postgres://", 0) == 0;
}

// Drops favorites added after seeding (by an interrupted add/remove pair), so every add/remove
// run starts from the seeded state: each customer lacks exactly its free product.
int reset_favorites(const options& o) {
  const auto t0 = std::chrono::steady_clock::now();
  long long removed = 0;
  if (is_pg_url(o.database_url)) {
    std::unique_ptr<PGconn, void (*)(PGconn*)> conn(PQconnectdb(o.database_url.c_str()), PQfinish);
    if (PQstatus(conn.get()) != CONNECTION_OK)
      throw std::runtime_error(std::string("pg connect: ") + PQerrorMessage(conn.get()));
    const std::string since = std::to_string(o.reset_since);
    const char* params[] = {since.c_str()};
    std::unique_ptr<PGresult, void (*)(PGresult*)> r(
        PQexecParams(conn.get(),
                     "DELETE FROM customer_favorite_products "
                     "WHERE favorited_at > timestamptz 'epoch' + $1::int8 * interval '1 microsecond'",
                     1, nullptr, params, nullptr, nullptr, 0),
        PQclear);
    if (PQresultStatus(r.get()) != PGRES_COMMAND_OK)
      throw std::runtime_error(std::string("pg reset: ") + PQerrorMessage(conn.get()));
    removed = std::atoll(PQcmdTuples(r.get()));
  } else if (o.database_url.rfind("sqlite:", 0) == 0) {
    sqlite3* db = nullptr;
    const int rc = sqlite3_open(o.database_url.substr(7).c_str(), &db);
    std::unique_ptr<sqlite3, int (*)(sqlite3*)> guard(db, sqlite3_close);
    if (rc != SQLITE_OK) throw std::runtime_error(std::string("sqlite open: ") + sqlite3_errmsg(db));
    sqlite3_busy_timeout(db, 5000);
    sqlite3_stmt* st = nullptr;
    // Times are fixed-width RFC 3339 text in the SQLite store: text order is time order.
    if (sqlite3_prepare_v2(db, "DELETE FROM customer_favorite_products WHERE favorited_at > ?1", -1, &st, nullptr) !=
        SQLITE_OK)
      throw std::runtime_error(std::string("sqlite reset: ") + sqlite3_errmsg(db));
    const std::string since = util::format_db_time(o.reset_since);
    sqlite3_bind_text(st, 1, since.c_str(), -1, SQLITE_TRANSIENT);
    const int step = sqlite3_step(st);
    sqlite3_finalize(st);
    if (step != SQLITE_DONE) throw std::runtime_error(std::string("sqlite reset: ") + sqlite3_errmsg(db));
    removed = sqlite3_changes(db);
  } else {
    usage("--database-url must be sqlite:<path> or postgresql://...");
  }
  std::printf("{\"removed\":%lld,\"seconds\":%.3f}\n", removed, seconds_since(t0));
  return 0;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

int seed(const options& o) {
  const auto t0 = std::chrono::steady_clock::now();
  auth::init_crypto();
  const bool pg = is_pg_url(o.database_url);
  if (!pg && o.database_url.rfind("sqlite:", 0) != 0) usage("--database-url must be sqlite:<path> or postgresql://...");
  const std::string sqlite_path = pg ? "" : o.database_url.substr(7);

  int skipped = 0;
  auto products = catalog::parse_product_list(read_file(o.products), skipped);
  if (!products || products->empty()) throw std::runtime_error("no products in " + o.products);
  const auto product_count = static_cast<std::int64_t>(products->size());
  if (o.favorites > product_count) usage("--favorites exceeds the number of products");
  const core::micros now = util::now_micros();
  for (auto& p : *products) p.fetched_at = now;  // warm: fresh for the soft TTL

  // Schema and products cache through the store, as the service itself would write them.
  // As in main: the io threads stop first, then the store goes, then the io_context.
  {
    net::io_context ioc;
    auto work = net::make_work_guard(ioc);
    std::thread io([&] { ioc.run(); });
    std::unique_ptr<store::store> db;
    auto stop = [&] {
      work.reset();
      ioc.stop();
      io.join();
    };
    try {
      db = pg ? store::make_pg_store(ioc.get_executor(), o.database_url, 1)
              : store::make_sqlite_store(ioc.get_executor(), sqlite_path, 1);
      net::co_spawn(ioc, db->migrate(), net::use_future).get();
      net::co_spawn(ioc, db->upsert_products(*products), net::use_future).get();
    } catch (...) {
      stop();
      throw;
    }
    stop();
  }
  const double t_schema = seconds_since(t0);

  // One shared hash, computed once: every customer signs in with the same password.
  const std::string phc = auth::hash_password(o.password);
  auto rows = make_rows(o, product_count, now);
  const auto t1 = std::chrono::steady_clock::now();
  if (pg)
    bulk_pg(o.database_url, rows, phc, now);
  else
    bulk_sqlite(sqlite_path, rows, phc, now);
  const double t_bulk = seconds_since(t1);

  // Tokens in the service's format: sub, exp, iat, jti (a fresh uuid each).
  const auto t2 = std::chrono::steady_clock::now();
  auth::jwt_codec jwt(o.secret);
  const std::int64_t now_s = now / util::micros_per_second;
  const auto exp_s = now_s + static_cast<std::int64_t>(o.expire_days * 86400);
  std::ofstream out(o.tokens_out, std::ios::trunc);
  if (!out) throw std::runtime_error("cannot write " + o.tokens_out);
  for (const auto& r : rows) {
    auth::claims c{.sub = r.id, .exp = exp_s, .iat = now_s, .jti = util::uuid_v4()};
    // id token free_product email: one customer per line, read by bench/lua/common.lua.
    out << r.id << ' ' << jwt.sign(c) << ' ' << r.free_product << ' ' << r.email << '\n';
  }
  out.close();
  if (!out) throw std::runtime_error("cannot write " + o.tokens_out);

  std::printf(
      "{\"backend\":\"%s\",\"customers\":%ld,\"favorites\":%ld,\"products\":%lld,"
      "\"seeded_at_us\":%lld,\"schema_s\":%.3f,\"bulk_s\":%.3f,\"tokens_s\":%.3f,\"total_s\":%.3f}\n",
      pg ? "postgresql" : "sqlite", o.customers, o.favorites, static_cast<long long>(product_count),
      static_cast<long long>(now), t_schema, t_bulk, seconds_since(t2), seconds_since(t0));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const options o = parse_args(argc, argv);
  try {
    if (o.hash_bench_s > 0) return hash_bench(o);
    if (o.reset_since >= 0) return reset_favorites(o);
    return seed(o);
  } catch (const std::exception& e) {
    std::cerr << "bench-seed: " << e.what() << "\n";
    return 1;
  }
}
