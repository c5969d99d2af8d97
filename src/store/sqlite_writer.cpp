// See sqlite_writer.hpp.
#include "store/sqlite_writer.hpp"

#include <algorithm>
#include <iterator>

namespace fav::store::sqlite {

writer::writer(const std::string& path, int queue_limit, int max_batch, const std::atomic<bool>* closing)
    : closing_(closing),
      conn_(path, closing, writer_cache_kib),
      queue_limit_(static_cast<std::size_t>(std::max(queue_limit, 1))),
      max_batch_(static_cast<std::size_t>(std::max(max_batch, 1))) {
  thread_ = std::thread([this] { loop(); });
}

void writer::stop() {
  {
    std::lock_guard lk(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool writer::submit(std::unique_ptr<job>& j) {
  {
    std::lock_guard lk(mu_);
    if (stopping_ || queue_.size() >= queue_limit_) return false;
    queue_.push_back(std::move(j));
    ++queued_;
  }
  cv_.notify_one();
  return true;
}

void writer::loop() {
  std::vector<std::unique_ptr<job>> batch;
  for (;;) {
    {
      std::unique_lock lk(mu_);
      cv_.wait(lk, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;
      // Everything that queued while the last batch was being made durable.
      const auto n = static_cast<std::ptrdiff_t>(std::min(queue_.size(), max_batch_));
      batch.assign(std::make_move_iterator(queue_.begin()), std::make_move_iterator(queue_.begin() + n));
      queue_.erase(queue_.begin(), queue_.begin() + n);
      queued_ -= static_cast<int>(n);
      running_ = 1;  // the one writing connection is in use
    }
    run_batch(batch);
    // The connection is free before any caller hears its answer: a caller that looks at
    // running() right after its write returned never sees its own finished batch.
    running_ = 0;
    for (auto& j : batch) j->finish(j->error);
    batch.clear();
  }
}

void writer::run_batch(std::vector<std::unique_ptr<job>>& batch) {
  std::vector<job*> todo;
  for (auto& j : batch) todo.push_back(j.get());
  // An error that makes SQLite roll back the whole transaction (I/O error, disk full,
  // interrupt) takes the batch's earlier writes with it: those are run again in a new
  // transaction, a bounded number of times.
  for (int attempt = 0; !todo.empty(); ++attempt) {
    if (attempt == 3) {
      auto e = std::make_exception_ptr(unavailable("sqlite: write batch rolled back repeatedly"));
      for (job* j : todo) j->error = e;
      return;
    }
    // The lock wait is bounded by the latest deadline of the batch; a write whose own deadline
    // passed meanwhile is then answered below without running.
    auto latest = clock::time_point::min();
    for (job* j : todo) latest = std::max(latest, j->deadline);
    try {
      if (closing_ && closing_->load()) throw unavailable("sqlite: shutting down");
      deadline_scope lock_wait(conn_, latest);
      conn_.run_cached("BEGIN IMMEDIATE");
    } catch (...) {
      auto e = std::current_exception();
      for (job* j : todo) j->error = e;
      return;
    }
    std::vector<job*> applied, again;
    for (std::size_t i = 0; i < todo.size(); ++i) {
      job* j = todo[i];
      if (j->deadline != clock::time_point::max() && clock::now() >= j->deadline) {
        j->error = std::make_exception_ptr(unavailable("sqlite: write deadline passed while queued"));
        continue;
      }
      if (closing_ && closing_->load()) {
        j->error = std::make_exception_ptr(unavailable("sqlite: shutting down"));
        continue;
      }
      try {
        deadline_scope bounded(conn_, j->deadline);
        conn_.run_cached("SAVEPOINT job");
        j->run(conn_);
        conn_.run_cached("RELEASE job");
        applied.push_back(j);
      } catch (...) {
        j->error = std::current_exception();
        if (!conn_.in_transaction()) {
          again = std::move(applied);
          again.insert(again.end(), todo.begin() + static_cast<std::ptrdiff_t>(i) + 1, todo.end());
          applied.clear();
          break;
        }
        sqlite3_exec(conn_.raw(), "ROLLBACK TO job; RELEASE job", nullptr, nullptr, nullptr);
      }
    }
    if (conn_.in_transaction()) {
      try {
        conn_.run_cached("COMMIT");  // the batch's one fsync
        ++commits_;
        writes_ += applied.size();
      } catch (...) {
        auto e = std::current_exception();
        sqlite3_exec(conn_.raw(), "ROLLBACK", nullptr, nullptr, nullptr);
        for (job* j : applied) j->error = e;
      }
    }
    todo = std::move(again);
  }
}

}  // namespace fav::store::sqlite
