// The store suites' shared fixture: a fresh database per test on one backend (a fresh SQLite
// file; a fresh PostgreSQL schema in FAV_TEST_PG_URL), the helpers to build rows and to look
// at the database from outside the store. Used by test_store_contract.cpp (both backends),
// test_pg_store.cpp and test_sqlite_store.cpp (one backend each).
#pragma once

#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <poll.h>
#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <set>
#include <thread>

#include "store/change_feed.hpp"
#include "store/pg_store.hpp"
#include "store/pg_write_batch.hpp"
#include "store/read_through.hpp"
#include "store/sqlite_store.hpp"
#include "store/sqlite_writer.hpp"
#include "util/random.hpp"
#include "util/time.hpp"

// Named (not anonymous) so the three test files share one definition of each helper.
namespace fav::store_test {

namespace net = boost::asio;
namespace store = fav::store;
namespace core = fav::core;
using namespace std::chrono_literals;
using store::auth_state;
using store::delete_result;
using store::insert_result;
using store::rotate_result;
using store::update_result;

inline constexpr core::micros t0 = 1'700'000'000'123'457;  // odd microseconds: precision is checked
inline constexpr core::micros second = 1'000'000;

// A favorite write as "did it change anything", for tests that count winners among many.
inline net::awaitable<bool> added(net::awaitable<insert_result> insert) {
  co_return co_await std::move(insert) == insert_result::added;
}
inline net::awaitable<bool> removed(net::awaitable<delete_result> remove) {
  co_return co_await std::move(remove) == delete_result::removed;
}

inline std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

// A raw SQLite connection for holding a lock from outside the store.
struct sqlite3_handle {
  sqlite3* db = nullptr;
  ~sqlite3_handle() {
    if (db) sqlite3_close(db);
  }
};

// ---- blocking libpq for test setup only ----

inline void ignore_notice(void*, const char*) {}

// Runs `sql` (several statements allowed) and returns the first column of the last result.
inline std::vector<std::string> pg_exec(const std::string& conninfo, const std::string& sql) {
  PGconn* c = PQconnectdb(conninfo.c_str());
  if (PQstatus(c) != CONNECTION_OK) {
    std::string msg = PQerrorMessage(c);
    PQfinish(c);
    throw std::runtime_error("test setup: " + msg);
  }
  PQsetNoticeProcessor(c, &ignore_notice, nullptr);
  PGresult* r = PQexec(c, sql.c_str());
  const ExecStatusType st = PQresultStatus(r);
  std::vector<std::string> out;
  const bool ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
  std::string err = ok ? "" : PQresultErrorMessage(r);
  if (err.empty()) {
    for (int i = 0; i < PQntuples(r); ++i) out.emplace_back(PQgetvalue(r, i, 0));
  }
  PQclear(r);
  PQfinish(c);
  if (!err.empty()) throw std::runtime_error("test setup: " + err);
  return out;
}

// The same server and database, with unqualified names resolved in `schema` only.
inline std::string with_search_path(const std::string& url, const std::string& schema) {
  if (url.starts_with("postgresql://") || url.starts_with("postgres://")) {
    return url + (url.find('?') == std::string::npos ? "?" : "&") + "options=-csearch_path%3D" + schema;
  }
  return url + " options='-csearch_path=" + schema + "'";
}

inline std::string fresh_schema_name() {
  std::string id = fav::util::uuid_v4();
  id.erase(std::remove(id.begin(), id.end(), '-'), id.end());
  return "fav_t_" + id;
}

// A customer id for the store calls: the tests only hold well-formed ones (the type refuses others).
inline core::customer_id cid(std::string_view text) {
  auto id = core::customer_id::parse(text);
  if (!id) throw std::invalid_argument("not a customer id: " + std::string(text));
  return *id;
}

inline core::customer make_customer(std::string name, std::string email, core::micros created) {
  return {fav::util::uuid_v4(),
          std::move(name),
          std::move(email),
          "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2g",
          created,
          created};
}

inline core::product make_product(std::int64_t id, std::int64_t price_cents, std::optional<std::int64_t> rate,
                                  std::optional<std::int64_t> count, core::micros fetched) {
  return {id,
          "Product " + std::to_string(id),
          "https://img.example/" + std::to_string(id) + ".png",
          price_cents,
          rate,
          count,
          fetched};
}

// Filters and patches by position (-Wextra flags designated initializers that skip members).
inline core::customer_filter filter(std::optional<std::string> name, std::optional<std::string> email = {},
                                    std::optional<core::micros> from = {}, std::optional<core::micros> to = {}) {
  core::customer_filter f;
  f.name = std::move(name);
  f.email = std::move(email);
  f.created_from = from;
  f.created_to = to;
  return f;
}

inline store::customer_patch patch(std::optional<std::string> name, std::optional<std::string> email = {}) {
  store::customer_patch p;
  p.name = std::move(name);
  p.email = std::move(email);
  return p;
}

// A sign-in whose refresh token and every other token expire `ttl` after `created`.
inline core::sign_in make_sign_in(std::string id, std::string customer, core::micros created, core::micros ttl) {
  return {std::move(id), std::move(customer), created, created + ttl, created + ttl};
}

// ---- fixture ----

// Owns an io_context, a fresh database for one backend, and the store over it.
class backend_fixture : public ::testing::Test {
 protected:
  // False (and the test skipped) when the backend is not configured.
  bool open(const std::string& backend, bool migrate = true) {
    backend_ = backend;
    if (backend == "postgresql") {
      url_ = env("FAV_TEST_PG_URL");
      if (url_.empty()) return false;
      schema_ = fresh_schema_name();
      pg_exec(url_, "CREATE SCHEMA " + schema_);
      conninfo_ = with_search_path(url_, schema_);
    } else {
      path_ = (std::filesystem::temp_directory_path() / ("fav_store_test_" + fav::util::uuid_v4() + ".db")).string();
    }
    st_ = make_store();
    if (migrate) run(st_->migrate());
    return true;
  }

  std::unique_ptr<store::store> make_store(int pool = 3, std::chrono::steady_clock::duration timeout = 10s) {
    if (backend_ == "postgresql") return store::make_pg_store(ioc_.get_executor(), conninfo_, pool, timeout);
    return store::make_sqlite_store(ioc_.get_executor(), path_, 2, timeout);
  }

  void TearDown() override {
    st_.reset();  // before the io_context and before the schema goes
    if (!schema_.empty()) pg_exec(url_, "DROP SCHEMA IF EXISTS " + schema_ + " CASCADE");
    if (!path_.empty()) {
      for (const char* suffix : {"", "-wal", "-shm", "-journal"}) {
        std::error_code ec;
        std::filesystem::remove(path_ + suffix, ec);
      }
    }
  }

  // Runs one coroutine to completion on this thread.
  template <class T>
  T run(net::awaitable<T> a) {
    auto f = net::co_spawn(ioc_, std::move(a), net::use_future);
    ioc_.restart();
    ioc_.run();
    return f.get();
  }

  // Runs coroutines concurrently on two threads; results in the given order.
  template <class T>
  std::vector<T> run_all(std::vector<net::awaitable<T>> as) {
    std::vector<std::future<T>> fs;
    for (auto& a : as) fs.push_back(net::co_spawn(ioc_, std::move(a), net::use_future));
    ioc_.restart();
    std::thread other([this] { ioc_.run(); });
    ioc_.run();
    other.join();
    std::vector<T> out;
    for (auto& f : fs) out.push_back(f.get());
    return out;
  }

  core::customer add_customer(std::string name, std::string email, core::micros created) {
    core::customer c = make_customer(std::move(name), std::move(email), created);
    EXPECT_TRUE(run(st_->insert_customer(c)));
    return c;
  }

  // Starts a sign-in with no cap in the way; returns the ids it ended.
  std::vector<std::string> open_sign_in(const core::sign_in& s, int max_live = 1000) {
    const store::sign_in_started started = run(st_->start_sign_in(s, max_live));
    EXPECT_FALSE(started.no_customer);
    return started.ended;
  }

  // Presents generation `g` of sign-in `id` at `now`; a rotation's new expiries are now + 1 h.
  rotate_result refresh(const std::string& id, std::int64_t g, core::micros now, std::string* customer = nullptr) {
    std::string who;
    const auto r = run(st_->refresh_sign_in(id, g, now, now + 3600 * second, now + 3600 * second, who));
    if (customer) *customer = who;
    return r;
  }

  // Runs `sql` from outside the store; the first column of the first row as a number (-1: none).
  std::int64_t sql_number(const std::string& sql) {
    if (backend_ == "postgresql") {
      const auto rows = pg_exec(conninfo_, sql);
      return rows.empty() || rows[0].empty() ? -1 : std::stoll(rows[0]);
    }
    sqlite3_handle h;
    if (sqlite3_open(path_.c_str(), &h.db) != SQLITE_OK) throw std::runtime_error("test: cannot open the database");
    sqlite3_busy_timeout(h.db, 10000);
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(h.db, sql.c_str(), -1, &st, nullptr) != SQLITE_OK)
      throw std::runtime_error("test: " + std::string(sqlite3_errmsg(h.db)));
    std::int64_t n = -1;
    const int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) throw std::runtime_error("test: " + std::string(sqlite3_errmsg(h.db)));
    return n;
  }

  // Rows of the sign-ins table, counted from outside the store.
  std::int64_t sign_in_rows() { return sql_number("SELECT count(*) FROM sign_ins"); }

  // A time literal for this backend's SQL.
  std::string time_sql(core::micros t) {
    const std::string text = fav::util::format_db_time(t);
    return backend_ == "postgresql" ? "'" + text + "'::timestamptz" : "'" + text + "'";
  }

  net::io_context ioc_;  // declared first: destroyed last
  std::string backend_, url_, schema_, conninfo_, path_;
  std::unique_ptr<store::store> st_;
};

// A write that is expected to fail (a sign-in id already taken: the primary key refuses it), as a
// bool: false when it threw.
inline net::awaitable<bool> try_start_sign_in(store::store& st, core::sign_in s) {
  try {
    co_await st.start_sign_in(s, 50);
    co_return true;
  } catch (const std::exception&) {
    co_return false;
  }
}

// The store stack as main builds it: the store publishes its writes to the feed, and the
// read-through layer (1 MiB of memory) subscribes to it.
struct through_memory {
  through_memory(std::unique_ptr<store::store> s, store::change_feed& feed)
      : db(std::move(s)), reads(*db, feed, 1 << 20) {
    db->publish_to(feed);
  }
  std::unique_ptr<store::store> db;
  store::read_through reads;
};

}  // namespace fav::store_test
