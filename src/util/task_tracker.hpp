// Counts detached work (background refreshes, warm-ups) so shutdown can drain it.
#pragma once
#include <atomic>

namespace fav::util {

class task_tracker {
 public:
  // RAII hold: the task counts as running while the guard lives.
  class guard {
   public:
    explicit guard(task_tracker* t) : t_(t) { t_->active_.fetch_add(1); }
    guard(guard&& o) noexcept : t_(o.t_) { o.t_ = nullptr; }
    guard(const guard&) = delete;
    guard& operator=(const guard&) = delete;
    guard& operator=(guard&&) = delete;
    ~guard() {
      if (t_) t_->active_.fetch_sub(1);
    }

   private:
    task_tracker* t_;
  };

  guard hold() { return guard(this); }
  int active() const { return active_.load(); }
  bool stopping() const { return stopping_.load(); }
  void stop() { stopping_.store(true); }

 private:
  std::atomic<int> active_{0};
  std::atomic<bool> stopping_{false};
};

}  // namespace fav::util
