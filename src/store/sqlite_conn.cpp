// See sqlite_conn.hpp.
#include "store/sqlite_conn.hpp"

#include <algorithm>
#include <string>
#include <thread>

#include "store/store.hpp"
#include "util/time.hpp"

namespace fav::store::sqlite {

connection::connection(const std::string& path, const std::atomic<bool>* closing, int cache_kib) : closing_(closing) {
  int rc =
      sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db_ ? sqlite3_errmsg(db_) : "out of memory";
    sqlite3_close(db_);
    throw unavailable("sqlite open failed: " + msg);
  }
  // Writes go through one writer per process, so lock waits only come from another process on
  // the same file (a second instance, the benchmark's seeder, a test holding the lock) and WAL
  // recovery. Both bounded by the statement deadline (contract §5): a lock wait gives up, a
  // running statement is interrupted (SQLITE_INTERRUPT rolls it back; nothing is applied later).
  sqlite3_busy_handler(db_, &connection::on_busy, this);
  sqlite3_progress_handler(db_, 4096, &connection::on_progress, this);
  // A small page cache on the readers (256 KiB a connection: the B-trees' upper pages) and no
  // mmap: both count in the service's RSS (measured: mmap + 16 MiB caches took it from ~30 to
  // 172 MiB), and the OS page cache already keeps the file hot. SQLite's default 2 MiB held
  // 3.7 MiB more over the benchmark's 10,000 customers for no measurable gain on reads (the list
  // with the read cache off: 26,100 against 25,900 requests/s, within run-to-run noise). The one
  // writer keeps SQLite's default 2 MiB: with 256 KiB a fifth of its thread's time went to
  // pread() of pages it had evicted, and add + remove on 64 connections answered 23.5k-23.7k
  // requests/s against 25.9k-26.1k with 2 MiB (8 MiB: 23.8k-25.9k).
  exec("PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL;");
  exec(("PRAGMA cache_size = -" + std::to_string(std::max(cache_kib, 1))).c_str());
}

connection::~connection() {
  for (auto& [k, s] : stmts_) sqlite3_finalize(s);
  sqlite3_close(db_);
}

void connection::exec(const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "unknown error";
    sqlite3_free(err);
    fail(msg);
  }
}

void connection::fail(const std::string& msg) {
  int code = sqlite3_errcode(db_) & 0xff;
  if (code == SQLITE_BUSY || code == SQLITE_LOCKED || code == SQLITE_IOERR || code == SQLITE_FULL ||
      code == SQLITE_CANTOPEN || code == SQLITE_READONLY || code == SQLITE_CORRUPT || code == SQLITE_INTERRUPT)
    throw unavailable("sqlite: " + msg);
  throw std::runtime_error("sqlite: " + msg);
}

// Busy: sleep a little and retry until the deadline (0 gives up: SQLITE_BUSY). Without a
// deadline, 5 s from the first attempt.
int connection::on_busy(void* self, int attempt) {
  auto* c = static_cast<connection*>(self);
  const auto now = sclock::now();
  if (attempt == 0) c->busy_since_ = now;
  const auto until =
      c->deadline_ == sclock::time_point::max() ? c->busy_since_ + std::chrono::seconds(5) : c->deadline_;
  const auto left = until - now;
  if (left <= sclock::duration::zero() || c->closing()) return 0;
  const auto nap = std::chrono::milliseconds(attempt < 4 ? 1 : attempt < 16 ? 5 : 20);
  std::this_thread::sleep_for(std::min<sclock::duration>(nap, left));
  return 1;
}

// Non-zero interrupts the running statement.
int connection::on_progress(void* self) {
  auto* c = static_cast<connection*>(self);
  return sclock::now() >= c->deadline_ || c->closing() ? 1 : 0;
}

sqlite3_stmt* connection::prepare(const char* sql) {
  auto it = stmts_.find(sql);
  if (it != stmts_.end()) return it->second;
  sqlite3_stmt* s = nullptr;
  if (sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, nullptr) != SQLITE_OK) fail(sqlite3_errmsg(db_));
  stmts_.emplace(sql, s);
  return s;
}

void connection::run_cached(const char* sql) {
  query(*this, sql).run();
}

query& query::bind_time(int i, micros t) {
  return bind(i, util::format_db_time(t));
}

bool query::step() {
  int rc = sqlite3_step(s_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  c_.fail(sqlite3_errmsg(c_.raw()));
}

micros query::time(int col) const {
  return util::parse_rfc3339(text(col)).value_or(0);
}

savepoint::~savepoint() {
  // After an error that made SQLite roll the whole transaction back there is nothing to undo
  // (and no savepoint left to name).
  if (done_ || !c_.in_transaction()) return;
  deadline_scope never_interrupted(c_, sclock::time_point::max());
  sqlite3_exec(c_.raw(), "ROLLBACK TO w; RELEASE w", nullptr, nullptr, nullptr);
}

}  // namespace fav::store::sqlite
