// Pure pieces of the catalog client (contract §4): fakestore JSON → core::product, the retry
// backoff schedule and Retry-After parsing. No I/O, so they are unit-tested with plain values.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/types.hpp"

namespace fav::catalog {

enum class parse_kind {
  product,          // a product object with an integer id
  not_found_empty,  // empty (or all-whitespace) body: "no such product", not logged
  not_found_null,   // the body `null`: "no such product", not logged
  not_product,      // anything else (garbage, array, object without id): "no such product", logged
};

struct parse_result {
  parse_kind kind = parse_kind::not_product;
  std::optional<core::product> product;  // set only for parse_kind::product; fetched_at is 0
  std::string detail;                    // why it is not a product (for the log line)
};

// Parses one fakestore product {id,title,price,description,category,image,rating{rate,count}}.
// id must be a positive integer; price and rating.rate become hundredths rounded half away from
// zero; a missing or null rating (or rating field) leaves the review fields empty.
parse_result parse_product(std::string_view body);

// Parses GET /products: a JSON array of products. Elements that are not products are skipped
// (`skipped` counts them); nullopt when the body is not a JSON array.
std::optional<std::vector<core::product>> parse_product_list(std::string_view body, int& skipped);

// The decimal `text` (e.g. "109.95", "-3", "0.285") as hundredths, rounded half away from zero;
// nullopt when it is not a plain decimal number or does not fit.
std::optional<std::int64_t> decimal_to_hundredths(std::string_view text);

// Seconds to wait before retry number `attempt` (0 = first retry): nominal base·2^attempt capped
// at `cap`, then "equal jitter": the result lies in [nominal/2, nominal] (jitter01 ∈ [0,1] picks
// where), so retries spread out yet never wait longer than the cap.
double backoff_delay(int attempt, double base, double cap, double jitter01);

// Retry-After as delta-seconds ("120", leniently "1.5"); nullopt for an HTTP-date, a negative
// or malformed value (the caller then falls back to its own backoff).
std::optional<double> parse_retry_after(std::string_view value);

}  // namespace fav::catalog
