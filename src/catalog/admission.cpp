// See admission.hpp.
#include "catalog/admission.hpp"

#include <algorithm>

namespace fav::catalog {

breaker::decision breaker::admit(double now_s) {
  decision d;
  if (threshold_ <= 0) return d;
  std::lock_guard lk(mu_);
  switch (state_) {
    case state::closed: return d;
    case state::open:
      if (now_s < open_until_s_) {
        d.allowed = false;
        d.retry_after_s = open_until_s_ - now_s;
        return d;
      }
      state_ = state::half_open;  // the time is up: this lookup is the probe
      d.probe = true;
      return d;
    case state::half_open:
      d.allowed = false;  // a probe is deciding; ask again in a moment
      d.retry_after_s = 1;
      return d;
  }
  return d;
}

void breaker::on_success() {
  if (threshold_ <= 0) return;
  std::lock_guard lk(mu_);
  state_ = state::closed;
  failures_ = 0;
}

void breaker::on_failure(double now_s) {
  if (threshold_ <= 0) return;
  std::lock_guard lk(mu_);
  switch (state_) {
    case state::closed:
      if (++failures_ < threshold_) return;
      break;
    case state::half_open: break;  // the probe failed
    case state::open: return;      // a lookup admitted before the breaker opened
  }
  state_ = state::open;
  open_until_s_ = now_s + open_s_;
  failures_ = 0;
}

void breaker::on_abandoned(const decision& d) {
  if (threshold_ <= 0 || !d.probe) return;
  std::lock_guard lk(mu_);
  if (state_ == state::half_open) {
    state_ = state::open;  // open_until_s_ has passed: the next admit() probes
  }
}

bool breaker::open(double now_s) const {
  std::lock_guard lk(mu_);
  return state_ == state::half_open || (state_ == state::open && now_s < open_until_s_);
}

customer_shares::take_result customer_shares::take(const std::string& customer, const std::shared_ptr<waiter>& w) {
  std::lock_guard lk(mu_);
  auto it = entries_.find(customer);
  if (it == entries_.end()) {
    if (entries_.size() >= max_customers_) return take_result::refused;
    it = entries_.emplace(customer, entry{}).first;
  }
  auto& e = it->second;
  if (e.held < per_customer_) {
    ++e.held;
    return take_result::granted;
  }
  if (e.waiting.size() >= max_waiting_) return take_result::refused;  // e.held > 0: the entry stays
  e.waiting.push_back(w);
  return take_result::waiting;
}

void customer_shares::give_back(const std::string& customer) {
  std::shared_ptr<waiter> next;
  {
    std::lock_guard lk(mu_);
    auto it = entries_.find(customer);
    if (it == entries_.end()) return;
    auto& e = it->second;
    if (!e.waiting.empty()) {
      next = std::move(e.waiting.front());  // the share passes on: `held` stays as it is
      e.waiting.pop_front();
      next->granted = true;
    } else if (--e.held <= 0) {
      entries_.erase(it);
    }
  }
  if (next && next->wake) next->wake();
}

bool customer_shares::withdraw(const std::string& customer, const std::shared_ptr<waiter>& w) {
  std::lock_guard lk(mu_);
  if (w->granted) return false;
  auto it = entries_.find(customer);
  if (it == entries_.end()) return true;
  auto& q = it->second.waiting;
  std::erase(q, w);
  return true;
}

std::size_t customer_shares::customers() const {
  std::lock_guard lk(mu_);
  return entries_.size();
}

}  // namespace fav::catalog
