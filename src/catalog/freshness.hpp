// How old a cached product may be before it is refreshed or refetched (contract §4), as a pure
// function of plain numbers so the rule is tested without clocks or databases.
#pragma once

namespace fav::catalog {

enum class freshness { fresh, stale, expired };

// age ≤ soft → fresh; soft < age ≤ hard → stale; age > hard (or NaN) → expired. A negative age
// (clock skew between instances) counts as fresh.
constexpr freshness classify(double age_s, double soft_ttl_s, double hard_ttl_s) {
  if (age_s <= soft_ttl_s) return freshness::fresh;
  if (age_s <= hard_ttl_s) return freshness::stale;
  return freshness::expired;
}

}  // namespace fav::catalog
