// The thin SQLite wrapper the store is written with: a connection with its prepared-statement
// cache, one execution of a statement, and a savepoint. Each object is used by one thread.
#pragma once
#include <sqlite3.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "core/types.hpp"

namespace fav::store::sqlite {

using core::micros;

using sclock = std::chrono::steady_clock;

// Page cache sizes, KiB a connection (the why is in sqlite_conn.cpp).
inline constexpr int reader_cache_kib = 256;
inline constexpr int writer_cache_kib = 2048;

// Opens `path` read-write (creating it) in WAL mode with foreign keys and synchronous=FULL, with
// a page cache of `cache_kib`. Throws store::unavailable when it cannot. Lock waits and running
// statements are bounded by the deadline set with set_deadline() (contract §5,
// DATABASE_STATEMENT_TIMEOUT_SECONDS) and end at once when `closing` (the store's, may be null)
// is set while a deadline is.
class connection {
 public:
  explicit connection(const std::string& path, const std::atomic<bool>* closing = nullptr,
                      int cache_kib = reader_cache_kib);
  ~connection();
  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;

  // Runs one or more statements without results; throws as fail() does.
  void exec(const char* sql);
  // Runs one statement without results from the statement cache (parsed on first use only): the
  // writer's SAVEPOINT, RELEASE, BEGIN and COMMIT, run for every write or batch. Throws as fail().
  void run_cached(const char* sql);
  // Throws store::unavailable for infrastructure errors (busy, I/O, full, corrupt, interrupted
  // by the deadline, ...), std::runtime_error for the rest (constraint violations: the writes
  // check what they reference first, so one is a bug or bad input).
  [[noreturn]] void fail(const std::string& msg);
  // The deadline of the statements run until the next call; time_point::max() for none (a lock
  // wait then still gives up after 5 s; a running statement is never interrupted).
  void set_deadline(sclock::time_point d) { deadline_ = d; }
  sclock::time_point deadline() const { return deadline_; }
  // The cached statement for `sql` (keyed by the constant's address).
  sqlite3_stmt* prepare(const char* sql);
  int changes() const { return sqlite3_changes(db_); }
  // True while a transaction is open (false after SQLite rolled one back on its own).
  bool in_transaction() const { return sqlite3_get_autocommit(db_) == 0; }
  sqlite3* raw() { return db_; }

 private:
  static int on_busy(void* self, int attempt);
  static int on_progress(void* self);
  // Only while a deadline is set: a rollback (deadline cleared) always runs to its end.
  bool closing() const {
    return deadline_ != sclock::time_point::max() && closing_ && closing_->load(std::memory_order_relaxed);
  }

  sqlite3* db_ = nullptr;
  std::map<const char*, sqlite3_stmt*> stmts_;
  sclock::time_point deadline_ = sclock::time_point::max();
  sclock::time_point busy_since_{};
  const std::atomic<bool>* closing_ = nullptr;
};

// Sets a connection's deadline for a scope; the previous one is back at its end.
class deadline_scope {
 public:
  deadline_scope(connection& c, sclock::time_point d) : c_(c), prev_(c.deadline()) { c_.set_deadline(d); }
  ~deadline_scope() { c_.set_deadline(prev_); }
  deadline_scope(const deadline_scope&) = delete;
  deadline_scope& operator=(const deadline_scope&) = delete;

 private:
  connection& c_;
  sclock::time_point prev_;
};

// One execution of a cached statement: bind, step, read; resets on destruction.
class query {
 public:
  query(connection& c, const char* sql) : c_(c), s_(c.prepare(sql)) {}
  ~query() {
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
  }
  query(const query&) = delete;
  query& operator=(const query&) = delete;

  query& bind(int i, std::string_view v) {
    sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  query& bind(int i, std::int64_t v) {
    sqlite3_bind_int64(s_, i, v);
    return *this;
  }
  query& bind_real(int i, double v) {
    sqlite3_bind_double(s_, i, v);
    return *this;
  }
  query& bind_null(int i) {
    sqlite3_bind_null(s_, i);
    return *this;
  }
  query& bind_time(int i, micros t);
  template <class T>
  query& bind_opt(int i, const std::optional<T>& v) {
    return v ? bind(i, *v) : bind_null(i);
  }
  // Next row: true when one is available.
  bool step();
  void run() {
    while (step()) {
    }
  }
  bool is_null(int col) const { return sqlite3_column_type(s_, col) == SQLITE_NULL; }
  std::int64_t i64(int col) const { return sqlite3_column_int64(s_, col); }
  std::string text(int col) const {
    auto p = sqlite3_column_text(s_, col);
    return p ? std::string(reinterpret_cast<const char*>(p), sqlite3_column_bytes(s_, col)) : std::string{};
  }
  micros time(int col) const;

 private:
  connection& c_;
  sqlite3_stmt* s_;
};

// A savepoint: the unit of atomicity of one write. Inside the writer's batch transaction it
// nests; commit() releases it, destruction without commit() rolls back to it (only its own
// changes go). Outside a transaction it opens one (deferred).
class savepoint {
 public:
  explicit savepoint(connection& c) : c_(c) { c_.run_cached("SAVEPOINT w"); }
  ~savepoint();
  savepoint(const savepoint&) = delete;
  savepoint& operator=(const savepoint&) = delete;
  void commit() {
    c_.run_cached("RELEASE w");
    done_ = true;
  }

 private:
  connection& c_;
  bool done_ = false;
};

}  // namespace fav::store::sqlite
