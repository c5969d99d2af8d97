// See worker_pool.hpp.
#include "util/worker_pool.hpp"

namespace fav::util {

namespace {
thread_local int this_worker = -1;
}

int worker_pool::current_index() {
  return this_worker;
}

worker_pool::worker_pool(int workers, int queue_limit, std::function<void(int)> on_start) : queue_limit_(queue_limit) {
  for (int i = 0; i < workers; ++i) threads_.emplace_back([this, i, on_start] { work(i, on_start); });
}

worker_pool::~worker_pool() {
  stop();
}

void worker_pool::stop(bool run_queued) {
  {
    std::lock_guard lk(mu_);
    stopping_ = true;
    if (!run_queued) {
      queued_ -= static_cast<int>(jobs_.size());
      jobs_.clear();
    }
  }
  cv_.notify_all();
  for (auto& t : threads_)
    if (t.joinable()) t.join();
}

bool worker_pool::submit(std::function<void()> job) {
  {
    std::lock_guard lk(mu_);
    // Idle workers take a job at once; only jobs that must wait count against the limit.
    int idle = static_cast<int>(threads_.size()) - running_.load();
    if (stopping_ || static_cast<int>(jobs_.size()) >= queue_limit_ + std::max(idle, 0)) return false;
    jobs_.push_back(std::move(job));
    ++queued_;
  }
  cv_.notify_one();
  return true;
}

void worker_pool::work(int index, const std::function<void(int)>& on_start) {
  this_worker = index;
  if (on_start) on_start(index);
  for (;;) {
    std::function<void()> job;
    {
      std::unique_lock lk(mu_);
      cv_.wait(lk, [&] { return stopping_ || !jobs_.empty(); });
      if (jobs_.empty()) return;
      job = std::move(jobs_.front());
      jobs_.pop_front();
      --queued_;
      ++running_;
    }
    job();
    --running_;
  }
}

}  // namespace fav::util
