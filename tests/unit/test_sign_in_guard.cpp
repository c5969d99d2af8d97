// The sign-in guard's rule (contract §8 "Sign-in guard") with plain numbers: "Failed sign-ins
// are counted per email and client address (SIGN_IN_MAX_FAILURES, default 10) and per email from
// all addresses (SIGN_IN_MAX_FAILURES_PER_EMAIL, default 100) over
// SIGN_IN_FAILURE_WINDOW_MINUTES (default 15). Past either count every sign-in for that email
// from that scope ... answers 429 too_many_attempts with Retry-After until the window has passed."
#include <gtest/gtest.h>

#include "auth/sign_in_guard.hpp"

namespace {

using fav::auth::locked_for_s;
using fav::auth::sign_in_limits;
using fav::core::failure_count;
using fav::core::failure_counts;

constexpr fav::core::micros s = 1'000'000;
constexpr fav::core::micros t0 = 1'800'000'000 * s;

failure_counts counts(std::int64_t by_address, std::int64_t by_email, fav::core::micros start = t0) {
  return failure_counts{failure_count{by_address, start}, failure_count{by_email, start}};
}

TEST(sign_in_guard, under_both_counts_is_allowed) {
  const sign_in_limits l;  // 10 / 100 / 15 min
  EXPECT_FALSE(locked_for_s(counts(0, 0), l, t0));
  EXPECT_FALSE(locked_for_s(counts(9, 99), l, t0 + 60 * s));
}

TEST(sign_in_guard, the_address_count_locks_until_its_window_ends) {
  const sign_in_limits l;
  EXPECT_EQ(locked_for_s(counts(10, 10), l, t0 + 60 * s), 14 * 60);
  EXPECT_EQ(locked_for_s(counts(10, 10), l, t0 + 900 * s - 1), 1);  // rounds up, at least 1
  EXPECT_FALSE(locked_for_s(counts(10, 10), l, t0 + 900 * s));      // the window has passed
}

TEST(sign_in_guard, the_email_count_locks_every_address) {
  const sign_in_limits l;
  EXPECT_EQ(locked_for_s(counts(0, 100), l, t0), 900);
}

TEST(sign_in_guard, the_later_window_wins_when_both_lock) {
  const sign_in_limits l;
  const failure_counts c{failure_count{10, t0}, failure_count{100, t0 + 300 * s}};
  EXPECT_EQ(locked_for_s(c, l, t0 + 600 * s), 600);
}

TEST(sign_in_guard, zero_turns_a_count_off) {
  sign_in_limits l;
  l.max_per_address = 0;
  EXPECT_FALSE(locked_for_s(counts(1000, 0), l, t0));
  l.max_per_email = 0;
  EXPECT_FALSE(locked_for_s(counts(1000, 1000), l, t0));
}

TEST(sign_in_guard, decimal_windows) {
  sign_in_limits l;
  l.window_us = static_cast<fav::core::micros>(0.05 * 60 * s);  // 0.05 min = 3 s
  EXPECT_EQ(locked_for_s(counts(10, 10), l, t0 + s / 2), 3);
  EXPECT_FALSE(locked_for_s(counts(10, 10), l, t0 + 3 * s));
}

}  // namespace

// An attempt counted before it is checked (store::count_sign_in_attempt returns the counts with
// it): with a limit of 10 the 10th attempt of a window is checked, the 11th is locked.
TEST(sign_in_guard, a_counted_attempt_passes_up_to_the_limit) {
  const sign_in_limits l;
  using fav::auth::attempt_locked_for_s;
  EXPECT_FALSE(attempt_locked_for_s(counts(1, 1), l, t0));
  EXPECT_FALSE(attempt_locked_for_s(counts(10, 10), l, t0 + 60 * s));
  EXPECT_EQ(attempt_locked_for_s(counts(11, 11), l, t0 + 60 * s), 14 * 60);
  EXPECT_EQ(attempt_locked_for_s(counts(1, 101), l, t0), 900);
  EXPECT_FALSE(attempt_locked_for_s(counts(1, 100), l, t0));
}
