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

}  // namespace fav::catalog
