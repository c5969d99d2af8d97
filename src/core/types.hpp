// Plain records shared by the store, the catalog and the handlers; no I/O here.
#pragma once
#include <climits>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace fav::core {

using micros = std::int64_t;  // microseconds since the Unix epoch, UTC

// A customer's id as the store takes it: 8-4-4-4-12 hex digits. Parsed once at the edge (the
// token subject), so no store has to guard against a malformed one.
class customer_id {
 public:
  // nullopt unless `text` has the canonical UUID shape (either case of hex digit).
  static std::optional<customer_id> parse(std::string_view text);
  const std::string& str() const { return text_; }
  bool operator==(const customer_id&) const = default;

 private:
  explicit customer_id(std::string_view text) : text_(text) {}
  std::string text_;
};

struct customer {
  std::string id;  // UUIDv4, lower case
  std::string name;
  std::string email;          // trimmed, lower case
  std::string password_hash;  // argon2id PHC string
  micros created_at = 0;
  micros updated_at = 0;
};

// A product as cached in products_cache; money and rates are hundredths (DECIMAL(10,2)).
struct product {
  std::int64_t id = 0;
  std::string title;
  std::string image_url;
  std::int64_t price_cents = 0;
  std::optional<std::int64_t> review_rate_cents;
  std::optional<std::int64_t> review_count;
  micros fetched_at = 0;
};

// One favorite joined with its cache entry (absent when the product was never cached).
struct favorite {
  std::int64_t product_id = 0;
  micros favorited_at = 0;
  std::optional<product> cached;
};

// A validated page request (contract §1 pagination).
struct page_req {
  std::int64_t page = 1;
  std::int64_t per_page = 20;
  // Saturates instead of overflowing: a page far past the end is simply empty.
  std::int64_t offset() const { return page - 1 > INT64_MAX / per_page ? INT64_MAX : (page - 1) * per_page; }
};

template <class T>
struct page {
  std::vector<T> items;
  std::int64_t total = 0;
};

// GET /customers filters, already parsed and lower-cased.
struct customer_filter {
  std::optional<std::string> name;     // case-insensitive substring
  std::optional<std::string> email;    // case-insensitive substring
  std::optional<micros> created_from;  // inclusive
  std::optional<micros> created_to;    // inclusive
};

// A sign-in's one row (contract §8 "Token rows"): refreshing moves its generation forward in
// place, so however often it refreshes it stays one row. No token is stored: a refresh token
// names its sign-in and generation and proves them with a MAC (auth/refresh_token.hpp).
struct sign_in {
  std::string id;  // the sign-in id: the access tokens' `sid` claim
  std::string customer_id;
  micros created_at = 0;          // orders a customer's sign-ins: the oldest ends first
  micros refresh_expires_at = 0;  // the current refresh token's expiry (exclusive)
  micros expires_at = 0;          // every token it issued has expired by then: the sweep may delete it
};

// Failed sign-ins counted in one window (contract §8 "Sign-in guard").
struct failure_count {
  std::int64_t failures = 0;
  micros window_start = 0;  // the window's first failure
};
// An email's counts from one client address and from all addresses.
struct failure_counts {
  failure_count by_address;
  failure_count by_email;
};

}  // namespace fav::core
