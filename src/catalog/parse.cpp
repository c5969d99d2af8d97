// fakestore JSON → core::product, backoff schedule and Retry-After parsing (see parse.hpp).
#include "catalog/parse.hpp"

#include <algorithm>
#include <boost/json.hpp>
#include <charconv>
#include <cmath>
#include <limits>

namespace fav::catalog {

namespace json = boost::json;

namespace {

// Beyond this many hundredths a value is garbage anyway (DECIMAL(10,2) holds < 1e8 units), and
// staying far below INT64_MAX keeps the arithmetic below overflow-free.
constexpr std::int64_t max_hundredths = 1'000'000'000'000'000;  // 1e15
// What products_cache can hold (the reference's schema): price and review_rate DECIMAL(10,2),
// review_count INT. A product past them could not be cached, and on PostgreSQL one such row made
// the whole batch of a warm-up fail.
constexpr std::int64_t max_decimal_10_2_hundredths = 9'999'999'999;
constexpr std::int64_t max_int32 = 2'147'483'647;

std::string_view trim(std::string_view s) {
  const auto first = s.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos) return {};
  const auto last = s.find_last_not_of(" \t\r\n");
  return s.substr(first, last - first + 1);
}

std::optional<std::int64_t> as_integer(const json::value& v) {
  if (v.is_int64()) return v.get_int64();
  if (v.is_uint64() && v.get_uint64() <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
    return static_cast<std::int64_t>(v.get_uint64());
  // Some JSON writers print counts as 120.0; accept integral doubles in a safe range.
  if (v.is_double()) {
    const double d = v.get_double();
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9e15) return static_cast<std::int64_t>(d);
  }
  return std::nullopt;
}

// A JSON number (or, leniently, a decimal string) as hundredths.
std::optional<std::int64_t> as_hundredths(const json::value& v) {
  if (v.is_int64() || v.is_uint64()) {
    const auto i = as_integer(v);
    if (!i || *i > max_hundredths / 100 || *i < -max_hundredths / 100) return std::nullopt;
    return *i * 100;
  }
  if (v.is_double()) {
    const double d = v.get_double();
    if (!std::isfinite(d)) return std::nullopt;
    // Round the shortest decimal that reads back as `d` (what the catalog wrote, e.g. "0.285"),
    // not the binary double (0.28499999...), so half-cents round the way a person expects.
    char buf[400];
    const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::fixed);
    if (ec != std::errc{}) return std::nullopt;
    return decimal_to_hundredths(std::string_view(buf, static_cast<std::size_t>(end - buf)));
  }
  if (v.is_string()) return decimal_to_hundredths(trim(v.get_string()));
  return std::nullopt;
}

// An optional string field: absent or null → "", a string → it, anything else → nullopt.
std::optional<std::string> string_field(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  if (!v || v->is_null()) return std::string{};
  if (!v->is_string()) return std::nullopt;
  return std::string(v->get_string());
}

// rating{rate,count}; anything malformed in it only drops the review, never the product.
void read_rating(const json::object& o, core::product& p) {
  const auto* r = o.if_contains("rating");
  if (!r || !r->is_object()) return;
  const auto& rating = r->get_object();
  if (const auto* rate = rating.if_contains("rate"); rate && !rate->is_null()) {
    const auto r = as_hundredths(*rate);
    if (r && *r >= -max_decimal_10_2_hundredths && *r <= max_decimal_10_2_hundredths) p.review_rate_cents = r;
  }
  if (const auto* count = rating.if_contains("count"); count && !count->is_null()) {
    const auto c = as_integer(*count);
    if (c && *c >= 0 && *c <= max_int32) p.review_count = c;
  }
}

parse_result not_product(std::string detail) {
  return parse_result{parse_kind::not_product, std::nullopt, std::move(detail)};
}

parse_result product_from_value(const json::value& v) {
  if (!v.is_object()) return not_product("not a JSON object");
  const auto& o = v.get_object();
  const auto* id = o.if_contains("id");
  if (!id) return not_product("no id");
  const auto id_value = as_integer(*id);
  if (!id_value || *id_value <= 0 || !(id->is_int64() || id->is_uint64()))
    return not_product("id is not a positive integer");

  core::product p;
  p.id = *id_value;
  auto title = string_field(o, "title");
  auto image = string_field(o, "image");
  if (!title) return not_product("title is not a string");
  if (!image) return not_product("image is not a string");
  p.title = std::move(*title);
  p.image_url = std::move(*image);
  if (const auto* price = o.if_contains("price"); price && !price->is_null()) {
    const auto cents = as_hundredths(*price);
    if (!cents || *cents < 0) return not_product("price is not a non-negative number");
    if (*cents > max_decimal_10_2_hundredths) return not_product("price past what the cache holds (DECIMAL(10,2))");
    p.price_cents = *cents;
  }
  read_rating(o, p);
  return parse_result{parse_kind::product, std::move(p), {}};
}

}  // namespace

std::optional<std::int64_t> decimal_to_hundredths(std::string_view text) {
  bool negative = false;
  if (!text.empty() && (text.front() == '-' || text.front() == '+')) {
    negative = text.front() == '-';
    text.remove_prefix(1);
  }
  const auto dot = text.find('.');
  const std::string_view whole = text.substr(0, dot);
  const std::string_view frac = dot == std::string_view::npos ? std::string_view{} : text.substr(dot + 1);
  if (whole.empty() && frac.empty()) return std::nullopt;
  const auto is_digit = [](char c) { return c >= '0' && c <= '9'; };
  if (!std::all_of(whole.begin(), whole.end(), is_digit) || !std::all_of(frac.begin(), frac.end(), is_digit))
    return std::nullopt;

  std::int64_t units = 0;
  for (const char c : whole) {
    units = units * 10 + (c - '0');
    if (units > max_hundredths / 100) return std::nullopt;
  }
  const auto digit = [&](std::size_t i) -> std::int64_t { return i < frac.size() ? frac[i] - '0' : 0; };
  std::int64_t result = units * 100 + digit(0) * 10 + digit(1);
  if (digit(2) >= 5) ++result;  // half away from zero (the sign is applied after)
  return negative ? -result : result;
}

parse_result parse_product(std::string_view body) {
  const auto text = trim(body);
  if (text.empty()) return parse_result{parse_kind::not_found_empty, std::nullopt, "empty body"};
  boost::system::error_code ec;
  const json::value v = json::parse(text, ec);
  if (ec) return not_product("not JSON: " + ec.message());
  if (v.is_null()) return parse_result{parse_kind::not_found_null, std::nullopt, "null body"};
  return product_from_value(v);
}

std::optional<std::vector<core::product>> parse_product_list(std::string_view body, int& skipped) {
  skipped = 0;
  boost::system::error_code ec;
  const json::value v = json::parse(trim(body), ec);
  if (ec || !v.is_array()) return std::nullopt;
  std::vector<core::product> out;
  out.reserve(v.get_array().size());
  for (const auto& item : v.get_array()) {
    auto r = product_from_value(item);
    if (r.product)
      out.push_back(std::move(*r.product));
    else
      ++skipped;
  }
  return out;
}

double backoff_delay(int attempt, double base, double cap, double jitter01) {
  if (!(base > 0) || !(cap > 0)) return 0;
  const double nominal = std::min(cap, std::ldexp(base, std::clamp(attempt, 0, 60)));
  const double j = std::isnan(jitter01) ? 1.0 : std::clamp(jitter01, 0.0, 1.0);
  return nominal * (0.5 + 0.5 * j);
}

std::optional<double> parse_retry_after(std::string_view value) {
  const auto text = trim(value);
  // Only digits and one dot: rejects signs, exponents, "inf" and HTTP-dates in one test.
  if (text.empty() || std::count(text.begin(), text.end(), '.') > 1 ||
      !std::all_of(text.begin(), text.end(), [](char c) { return (c >= '0' && c <= '9') || c == '.'; }))
    return std::nullopt;
  double seconds = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), seconds);
  if (ec != std::errc{} || end != text.data() + text.size() || !std::isfinite(seconds)) return std::nullopt;
  return seconds;
}

}  // namespace fav::catalog
