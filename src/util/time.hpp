// Time as int64 microseconds since the Unix epoch (UTC), and its RFC 3339 text forms:
// 3 fractional digits on the wire, 6 in the database (fixed width, so text order is time order).
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace fav::util {

using micros = std::int64_t;

inline constexpr micros micros_per_second = 1'000'000;

// Current wall-clock time (system_clock) in microseconds since the epoch.
micros now_micros();

// UTC "YYYY-MM-DDTHH:MM:SS.mmmZ", truncated to milliseconds; t is clamped to years 0000..9999.
std::string format_rfc3339(micros t);

// UTC "YYYY-MM-DDTHH:MM:SS.uuuuuuZ" (always 27 chars); t is clamped to years 0000..9999.
std::string format_db_time(micros t);

// Parses "YYYY-MM-DD(T|t| )HH:MM:SS[.1-9 digits][Z|z|+HH:MM|-HH:MM]" to UTC micros.
// No offset means UTC (the reference's SQLite rows are naive UTC). Digits past the 6th are
// truncated. Anything else, an impossible date (Feb 30), hour > 23 or second 60 -> nullopt.
std::optional<micros> parse_rfc3339(std::string_view text);

// Days since 1970-01-01 of a proleptic Gregorian date (no range or validity check).
constexpr std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) {
  // Howard Hinnant's algorithm: count from March so the leap day ends the year.
  y -= m <= 2 ? 1 : 0;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

}  // namespace fav::util
