#include "store/pg_canceller.hpp"

#include <condition_variable>
#include <deque>
#include <mutex>
#include <system_error>

#include "util/log.hpp"

namespace fav::store {

struct pg_canceller::queue {
  explicit queue(std::size_t bound) : max_pending(bound) {}
  const std::size_t max_pending;
  std::mutex mu;
  std::condition_variable cv;  // a request queued, one sent, or closing
  std::deque<PGcancel*> pending;
  bool busy = false;  // the worker is sending one
  bool closing = false;

  void work() {
    std::unique_lock lk(mu);
    for (;;) {
      cv.wait(lk, [&] { return closing || !pending.empty(); });
      if (pending.empty()) return;  // closing, nothing left
      PGcancel* cancel = pending.front();
      pending.pop_front();
      busy = true;
      lk.unlock();
      char err[256];
      (void)PQcancel(cancel, err, sizeof err);
      PQfreeCancel(cancel);
      lk.lock();
      busy = false;
      cv.notify_all();
    }
  }
};

pg_canceller::pg_canceller(std::size_t max_pending) : q_(std::make_shared<queue>(max_pending)) {}

pg_canceller::~pg_canceller() {
  if (!closed_ && !close(drain_limit))
    util::log(util::log_level::warning, "exiting before every statement cancel reached the database", {});
}

bool pg_canceller::request(PGconn* conn) {
  PGcancel* cancel = PQgetCancel(conn);
  if (!cancel) return false;
  {
    std::lock_guard lk(q_->mu);
    if (!q_->closing && q_->pending.size() < q_->max_pending) {
      try {
        if (!worker_.joinable()) worker_ = std::thread([q = q_] { q->work(); });
        q_->pending.push_back(cancel);
        cancel = nullptr;
      } catch (const std::system_error&) {
        // No thread to send it from: the server's statement_timeout ends the statement.
      }
    }
  }
  if (!cancel) {
    q_->cv.notify_all();
    return true;
  }
  PQfreeCancel(cancel);
  return false;
}

bool pg_canceller::close(std::chrono::steady_clock::duration limit) {
  closed_ = true;
  bool drained;
  {
    std::unique_lock lk(q_->mu);
    q_->closing = true;
    q_->cv.notify_all();
    drained = q_->cv.wait_for(lk, limit, [&] { return q_->pending.empty() && !q_->busy; });
  }
  if (worker_.joinable()) {
    if (drained) {
      worker_.join();
    } else {
      worker_.detach();  // still blocked in PQcancel; it holds its own reference to the queue
    }
  }
  return drained;
}

}  // namespace fav::store
