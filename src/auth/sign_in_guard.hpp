// The sign-in guard's rule (contract §8 "Sign-in guard") as a pure function of the stored counts
// and the time, so it is unit-tested with plain numbers. The counts live in the database
// (store::store::count_sign_in_attempt), shared by every instance.
#pragma once
#include <cstdint>
#include <optional>

#include "core/types.hpp"

namespace fav::auth {

struct sign_in_limits {
  int max_per_address = 10;  // SIGN_IN_MAX_FAILURES: one email from one client address (0 = off)
  int max_per_email = 100;   // SIGN_IN_MAX_FAILURES_PER_EMAIL: one email from all addresses (0 = off)
  core::micros window_us = 15 * 60 * 1'000'000LL;  // SIGN_IN_FAILURE_WINDOW_MINUTES
};

// Whole seconds (≥ 1) the email stays locked for this address, or nullopt when a sign-in may be
// tried. A count that reached its maximum locks until its window (which starts at its first
// failure) has passed.
inline std::optional<std::int64_t> locked_for_s(const core::failure_counts& counts, const sign_in_limits& l,
                                                core::micros now) {
  std::optional<core::micros> until;
  const auto check = [&](const core::failure_count& c, int max) {
    if (max <= 0 || c.failures < max) return;
    const core::micros end = c.window_start + l.window_us;
    if (now < end && (!until || end > *until)) until = end;
  };
  check(counts.by_address, l.max_per_address);
  check(counts.by_email, l.max_per_email);
  if (!until) return std::nullopt;
  const std::int64_t s = (*until - now + 999'999) / 1'000'000;
  return s < 1 ? 1 : s;
}

// The same rule for an attempt already counted (store::count_sign_in_attempt returns the counts with
// it): the attempt may be checked when the counts before it were not locked, so with a limit of N
// the first N attempts of a window pass, however many arrive at once.
inline std::optional<std::int64_t> attempt_locked_for_s(core::failure_counts counted, const sign_in_limits& l,
                                                        core::micros now) {
  counted.by_address.failures -= 1;
  counted.by_email.failures -= 1;
  return locked_for_s(counted, l, now);
}

}  // namespace fav::auth
