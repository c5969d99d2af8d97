// Unit tests for fav::util: base64url/hex, uuids, tokens, SHA-256, and RFC 3339 time.
#include <gtest/gtest.h>

#include <algorithm>
#include <limits>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "core/types.hpp"
#include "util/base64url.hpp"
#include "util/random.hpp"
#include "util/time.hpp"

using namespace fav::util;

namespace {
// The one UUID-shape check: the customer id type parses at the edge with it.
bool is_uuid(std::string_view text) {
  return fav::core::customer_id::parse(text).has_value();
}
}  // namespace

// ---- base64url / hex ---------------------------------------------------------------------

TEST(base64url, rfc4648_vectors_without_padding) {
  EXPECT_EQ(base64url_encode(""), "");
  EXPECT_EQ(base64url_encode("f"), "Zg");
  EXPECT_EQ(base64url_encode("fo"), "Zm8");
  EXPECT_EQ(base64url_encode("foo"), "Zm9v");
  EXPECT_EQ(base64url_encode("foob"), "Zm9vYg");
  EXPECT_EQ(base64url_encode("fooba"), "Zm9vYmE");
  EXPECT_EQ(base64url_encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(base64url_decode("Zm9vYmFy"), "foobar");
  EXPECT_EQ(base64url_decode("Zm9vYg"), "foob");
  EXPECT_EQ(base64url_decode(""), "");
}

TEST(base64url, uses_url_safe_alphabet) {
  EXPECT_EQ(base64url_encode("\xfb\xff"), "-_8");
  EXPECT_EQ(base64url_decode("-_8"), "\xfb\xff");
}

TEST(base64url, roundtrips_every_length_and_byte) {
  std::mt19937 rng(42);
  for (std::size_t len = 0; len <= 70; ++len) {
    std::string bytes(len, '\0');
    for (auto& b : bytes) b = static_cast<char>(rng() & 0xff);
    EXPECT_EQ(base64url_decode(base64url_encode(bytes)), bytes) << "length " << len;
  }
  std::string all;
  for (int i = 0; i < 256; ++i) all += static_cast<char>(i);
  EXPECT_EQ(base64url_decode(base64url_encode(all)), all);
}

TEST(base64url, rejects_invalid_input) {
  EXPECT_FALSE(base64url_decode("Zg=="));    // padding
  EXPECT_FALSE(base64url_decode("Zm8="));    // padding
  EXPECT_FALSE(base64url_decode("Zm9v+A"));  // standard alphabet
  EXPECT_FALSE(base64url_decode("Zm9v/A"));
  EXPECT_FALSE(base64url_decode("Z"));  // impossible length
  EXPECT_FALSE(base64url_decode("Zm9vY"));
  EXPECT_FALSE(base64url_decode("Zh"));   // non-zero unused bits ("Zg" is canonical)
  EXPECT_FALSE(base64url_decode("Zm9"));  // ("Zm8" is canonical)
  EXPECT_FALSE(base64url_decode("Zm 9v"));
  EXPECT_FALSE(base64url_decode("Zm9v\n"));
  EXPECT_FALSE(base64url_decode(std::string_view("Zm\0v", 4)));
  EXPECT_FALSE(base64url_decode("Zm9v\xc3\xa9"));
}

TEST(hex, lowercase_two_digits_per_byte) {
  EXPECT_EQ(hex_encode(""), "");
  EXPECT_EQ(hex_encode(std::string_view("\x00\xff\x10\xab", 4)), "00ff10ab");
}

// ---- random / digests ---------------------------------------------------------------------

TEST(sha256, known_digests) {
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(random_token, length_alphabet_and_uniqueness) {
  const std::string a = random_token();
  const std::string b = random_token();
  EXPECT_EQ(a.size(), 43u);  // 32 bytes, unpadded
  EXPECT_NE(a, b);
  const auto raw = base64url_decode(a);
  ASSERT_TRUE(raw);
  EXPECT_EQ(raw->size(), 32u);
  EXPECT_EQ(random_token(16).size(), 22u);
}

TEST(uuid, v4_format_version_and_variant) {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    const std::string id = uuid_v4();
    ASSERT_EQ(id.size(), 36u);
    EXPECT_TRUE(is_uuid(id)) << id;
    EXPECT_EQ(id[14], '4') << id;
    EXPECT_NE(std::string_view("89ab").find(id[19]), std::string_view::npos) << id;
    EXPECT_TRUE(std::none_of(id.begin(), id.end(), [](char c) { return c >= 'A' && c <= 'F'; }));
    seen.insert(id);
  }
  EXPECT_EQ(seen.size(), 1000u);
}

TEST(uuid, customer_id_parse_accepts_only_canonical_shape) {
  EXPECT_EQ(fav::core::customer_id::parse("78293DE4-36E6-4507-9EDA-B374974F0F08")->str(),
            "78293DE4-36E6-4507-9EDA-B374974F0F08");  // kept as given: no case change
  EXPECT_TRUE(is_uuid("78293de4-36e6-4507-9eda-b374974f0f08"));
  EXPECT_TRUE(is_uuid("78293DE4-36E6-4507-9EDA-B374974F0F08"));
  EXPECT_TRUE(is_uuid("00000000-0000-0000-0000-000000000000"));
  EXPECT_FALSE(is_uuid(""));
  EXPECT_FALSE(is_uuid("78293de4-36e6-4507-9eda-b374974f0f0"));    // 35
  EXPECT_FALSE(is_uuid("78293de4-36e6-4507-9eda-b374974f0f088"));  // 37
  EXPECT_FALSE(is_uuid("78293de436e645079edab374974f0f08"));       // no hyphens
  EXPECT_FALSE(is_uuid("78293de-436e6-4507-9eda-b374974f0f08"));   // hyphen misplaced
  EXPECT_FALSE(is_uuid("78293de4-36e6-4507-9eda-b374974f0f0g"));
  EXPECT_FALSE(is_uuid("{8293de4-36e6-4507-9eda-b374974f0f0}"));
  EXPECT_FALSE(is_uuid("78293de4-36e6-4507-9eda-b374974f0f0 "));
}

// ---- time ---------------------------------------------------------------------------------

TEST(time, days_from_civil_known_values) {
  EXPECT_EQ(days_from_civil(1970, 1, 1), 0);
  EXPECT_EQ(days_from_civil(2000, 3, 1), 11017);
  EXPECT_EQ(days_from_civil(1969, 12, 31), -1);
  EXPECT_EQ(days_from_civil(1, 1, 1) * 86400, -62135596800);
}

TEST(time, formats_known_epoch_values) {
  EXPECT_EQ(format_rfc3339(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(format_db_time(0), "1970-01-01T00:00:00.000000Z");
  EXPECT_EQ(format_rfc3339(1795953600123000), "2026-11-29T12:00:00.123Z");
  EXPECT_EQ(format_db_time(1795953600123456), "2026-11-29T12:00:00.123456Z");
  EXPECT_EQ(format_rfc3339(1795953600123999), "2026-11-29T12:00:00.123Z");  // truncated
  EXPECT_EQ(format_rfc3339(4102444800 * micros_per_second), "2100-01-01T00:00:00.000Z");
  EXPECT_EQ(format_rfc3339(951782400 * micros_per_second), "2000-02-29T00:00:00.000Z");
  EXPECT_EQ(format_db_time(1709251199 * micros_per_second), "2024-02-29T23:59:59.000000Z");
}

TEST(time, formats_before_epoch_with_floor) {
  EXPECT_EQ(format_db_time(-1), "1969-12-31T23:59:59.999999Z");
  EXPECT_EQ(format_rfc3339(-1), "1969-12-31T23:59:59.999Z");
  EXPECT_EQ(format_db_time(-62135596800 * micros_per_second), "0001-01-01T00:00:00.000000Z");
}

TEST(time, clamps_to_four_digit_years) {
  EXPECT_EQ(format_db_time(std::numeric_limits<micros>::max()), "9999-12-31T23:59:59.999999Z");
  EXPECT_EQ(format_db_time(std::numeric_limits<micros>::min()), "0000-01-01T00:00:00.000000Z");
}

TEST(time, parses_utc_and_fractions) {
  EXPECT_EQ(parse_rfc3339("1970-01-01T00:00:00Z"), 0);
  EXPECT_EQ(parse_rfc3339("1970-01-01T00:00:00.5Z"), 500000);
  EXPECT_EQ(parse_rfc3339("2026-11-29T12:00:00.123Z"), 1795953600123000);
  EXPECT_EQ(parse_rfc3339("2026-11-29T12:00:00.123456Z"), 1795953600123456);
  EXPECT_EQ(parse_rfc3339("2026-11-29T12:00:00.123456789Z"), 1795953600123456);  // truncated
  EXPECT_EQ(parse_rfc3339("2026-11-29t12:00:00.123z"), 1795953600123000);
  EXPECT_EQ(parse_rfc3339("2026-11-29 12:00:00.123"), 1795953600123000);  // naive = UTC
  EXPECT_EQ(parse_rfc3339("1969-12-31T23:59:59.999999Z"), -1);
  EXPECT_EQ(parse_rfc3339("0000-01-01T00:00:00Z"), -62167219200 * micros_per_second);
}

TEST(time, converts_offsets_to_utc) {
  EXPECT_EQ(parse_rfc3339("2026-11-29T15:00:00.123+03:00"), 1795953600123000);
  EXPECT_EQ(parse_rfc3339("2026-11-29T09:00:00.123-03:00"), 1795953600123000);
  EXPECT_EQ(parse_rfc3339("2026-11-29T12:00:00.123+00:00"), 1795953600123000);
  EXPECT_EQ(parse_rfc3339("2026-11-29T12:00:00.123-00:00"), 1795953600123000);
  EXPECT_EQ(parse_rfc3339("2026-11-29T17:30:00.123+05:30"), 1795953600123000);
  // Crossing midnight and the year boundary.
  EXPECT_EQ(format_rfc3339(*parse_rfc3339("2026-01-01T01:00:00+02:00")), "2025-12-31T23:00:00.000Z");
}

TEST(time, leap_years) {
  EXPECT_EQ(parse_rfc3339("2000-02-29T00:00:00Z"), 951782400 * micros_per_second);
  EXPECT_TRUE(parse_rfc3339("2024-02-29T00:00:00Z"));
  EXPECT_FALSE(parse_rfc3339("2023-02-29T00:00:00Z"));
  EXPECT_FALSE(parse_rfc3339("1900-02-29T00:00:00Z"));
  EXPECT_FALSE(parse_rfc3339("2024-02-30T00:00:00Z"));
}

TEST(time, rejects_invalid_input) {
  for (const char* bad : {"",
                          "2026-11-29",
                          "2026-11-29T12:00Z",
                          "2026-11-29T12:00:00ZZ",
                          "2026-11-29X12:00:00Z",
                          "2026-04-31T00:00:00Z",
                          "2026-13-01T00:00:00Z",
                          "2026-00-10T00:00:00Z",
                          "2026-01-00T00:00:00Z",
                          "2026-01-32T00:00:00Z",
                          "2026-11-29T24:00:00Z",
                          "2026-11-29T23:60:00Z",
                          "2026-11-29T23:59:60Z",
                          "2026-11-29T12:00:00+24:00",
                          "2026-11-29T12:00:00+03:60",
                          "2026-11-29T12:00:00+0300",
                          "2026-11-29T12:00:00+03",
                          "2026-11-29T12:00:00Z ",
                          " 2026-11-29T12:00:00Z",
                          "2026-1-29T12:00:00Z",
                          "26-11-29T12:00:00Z",
                          "2026-11-29T12:00:00.Z",
                          "2026-11-29T12:00:00.1234567890Z",
                          "2026-11-29T12:00:00,123Z",
                          "+2026-11-29T12:00:00Z",
                          "2026-11-29T1:00:00Z",
                          "2026-11-29T12:00:00.12a3Z",
                          "2026-11-29T12:00:00UTC",
                          "2026-11-29T12:00:00 +03:00",
                          "2026-11-29T12:00:00\xef\xbc\x9a",
                          "2026/11/29T12:00:00Z"}) {
    EXPECT_FALSE(parse_rfc3339(bad)) << '"' << bad << '"';
  }
  EXPECT_FALSE(parse_rfc3339(std::string_view("2026-11-29T12:00:00Z\0", 21)));
}

TEST(time, format_then_parse_roundtrips) {
  std::mt19937_64 rng(7);
  const micros lo = *parse_rfc3339("0001-01-01T00:00:00Z");
  const micros hi = *parse_rfc3339("9999-12-31T23:59:59.999999Z");
  std::uniform_int_distribution<micros> pick(lo, hi);
  for (int i = 0; i < 20000; ++i) {
    const micros t = pick(rng);
    ASSERT_EQ(parse_rfc3339(format_db_time(t)), t) << format_db_time(t);
    const micros floored_ms = t - (((t % 1000) + 1000) % 1000);
    ASSERT_EQ(parse_rfc3339(format_rfc3339(t)), floored_ms) << format_rfc3339(t);
  }
}

TEST(time, db_time_text_order_is_time_order) {
  std::mt19937_64 rng(11);
  std::uniform_int_distribution<micros> pick(*parse_rfc3339("1900-01-01T00:00:00Z"),
                                             *parse_rfc3339("2200-01-01T00:00:00Z"));
  std::vector<micros> times(2000);
  for (auto& t : times) t = pick(rng);
  std::sort(times.begin(), times.end());
  for (std::size_t i = 1; i < times.size(); ++i) {
    EXPECT_LE(format_db_time(times[i - 1]), format_db_time(times[i]));
    EXPECT_EQ(format_db_time(times[i]).size(), 27u);
  }
}

TEST(time, now_is_plausible) {
  const micros now = now_micros();
  EXPECT_GT(now, *parse_rfc3339("2024-01-01T00:00:00Z"));
  EXPECT_LT(now, *parse_rfc3339("2100-01-01T00:00:00Z"));
}
