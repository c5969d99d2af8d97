// How old a cached product may be before it is refreshed or refetched (contract §4), as a pure
// function of plain numbers so the rule is tested without clocks or databases.
#pragma once
#include <chrono>
#include <cstdint>

namespace fav::catalog {

enum class freshness { fresh, stale, expired };

// age ≤ soft → fresh; soft < age ≤ hard → stale; age > hard (or NaN) → expired. A negative age
// (clock skew between instances) counts as fresh.
constexpr freshness classify(double age_s, double soft_ttl_s, double hard_ttl_s) {
  if (age_s <= soft_ttl_s) return freshness::fresh;
  if (age_s <= hard_ttl_s) return freshness::stale;
  return freshness::expired;
}

// The same for a product's age in microseconds (now - fetched_at) and the configured TTLs
// (PRODUCT_CACHE_SOFT_TTL_MINUTES, PRODUCT_CACHE_HARD_TTL_MINUTES as durations).
template <class Rep, class Period>
constexpr freshness classify_age(std::int64_t age_us, std::chrono::duration<Rep, Period> soft,
                                 std::chrono::duration<Rep, Period> hard) {
  using us = std::chrono::microseconds;
  if (age_us <= std::chrono::duration_cast<us>(soft).count()) return freshness::fresh;
  if (age_us <= std::chrono::duration_cast<us>(hard).count()) return freshness::stale;
  return freshness::expired;
}

}  // namespace fav::catalog
