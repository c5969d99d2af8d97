// sqlite-commit-bench: the durable-commit ceiling of this disk for the benchmark's (c) on SQLite.
// It runs the service's add + remove of a favorite (the same two statements) on one connection
// opened like the service's writer (store/sqlite_conn: WAL, synchronous=FULL, foreign keys, the
// writer's page cache), one transaction per pair, so one fsync per pair: what a server that
// commits each pair on its own could reach at best. Run it on the benchmark's seeded database,
// with the service stopped.
//
//   sqlite-commit-bench --database PATH --seconds S [--warmup S]
//
// Prints one JSON line: pairs, seconds, pairs_per_second, p50_us, p99_us, max_us (per pair).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "store/sqlite_conn.hpp"
#include "util/time.hpp"

namespace {

using namespace fav::store::sqlite;
using clock_type = std::chrono::steady_clock;

// As in src/store/sqlite_store.cpp (sql_insert_favorite, sql_delete_favorite).
constexpr const char* sql_insert_favorite =
    "INSERT INTO customer_favorite_products (customer_id, product_id, favorited_at) "
    "SELECT ?1, ?2, ?3 WHERE EXISTS (SELECT 1 FROM customers WHERE id = ?1) ON CONFLICT DO NOTHING";
constexpr const char* sql_delete_favorite =
    "DELETE FROM customer_favorite_products WHERE customer_id = ?1 AND product_id = ?2";

[[noreturn]] void usage(const std::string& why) {
  std::cerr << "sqlite-commit-bench: " << why << "\n"
            << "usage: sqlite-commit-bench --database PATH --seconds S [--warmup S]\n";
  std::exit(2);
}

// Runs pairs for `seconds`; returns each pair's duration in microseconds.
std::vector<std::int64_t> run_pairs(connection& c, const std::string& customer, std::int64_t product, double seconds) {
  std::vector<std::int64_t> took;
  const auto end = clock_type::now() + std::chrono::duration<double>(seconds);
  for (auto now = clock_type::now(); now < end && took.size() < 50'000'000;) {
    c.exec("BEGIN IMMEDIATE");
    query(c, sql_insert_favorite).bind(1, customer).bind(2, product).bind_time(3, fav::util::now_micros()).run();
    if (c.changes() != 1) throw std::runtime_error("the favorite was already there");
    query(c, sql_delete_favorite).bind(1, customer).bind(2, product).run();
    c.exec("COMMIT");
    const auto after = clock_type::now();
    took.push_back(std::chrono::duration_cast<std::chrono::microseconds>(after - now).count());
    now = after;
  }
  return took;
}

}  // namespace

int main(int argc, char** argv) {
  std::string path;
  double seconds = 0, warmup = 1;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--database")
      path = v;
    else if (k == "--seconds")
      seconds = std::atof(v.c_str());
    else if (k == "--warmup")
      warmup = std::atof(v.c_str());
    else
      usage("unknown option " + k);
  }
  if (path.empty() || seconds <= 0) usage("--database and --seconds are required");
  try {
    connection c(path, nullptr, writer_cache_kib);
    std::string customer;
    std::int64_t product = 0;
    {
      // A seeded customer, and a product id none of the favorites uses.
      query q(c,
              "SELECT id, (SELECT coalesce(max(product_id), 0) + 1 FROM customer_favorite_products) "
              "FROM customers ORDER BY id LIMIT 1");
      if (!q.step()) usage(path + " has no customer: seed it first");
      customer = q.text(0);
      product = q.i64(1);
    }
    run_pairs(c, customer, product, warmup);
    auto took = run_pairs(c, customer, product, seconds);
    if (took.empty()) throw std::runtime_error("no pair completed");
    std::int64_t total = 0;
    for (auto t : took) total += t;
    std::sort(took.begin(), took.end());
    auto pct = [&](double p) { return took[std::min(took.size() - 1, static_cast<std::size_t>(p * took.size()))]; };
    const double secs = static_cast<double>(total) / 1e6;
    std::printf(
        "{\"pairs\":%zu,\"seconds\":%.3f,\"pairs_per_second\":%.1f,\"p50_us\":%lld,\"p99_us\":%lld,\"max_us\":%lld}\n",
        took.size(), secs, static_cast<double>(took.size()) / secs, static_cast<long long>(pct(0.5)),
        static_cast<long long>(pct(0.99)), static_cast<long long>(took.back()));
  } catch (const std::exception& e) {
    std::cerr << "sqlite-commit-bench: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
