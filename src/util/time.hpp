// Time as int64 microseconds since the Unix epoch (UTC), and its RFC 3339 text forms:
// 3 fractional digits on the wire, 6 in the database (fixed width, so text order is time order).
#pragma once
#include <chrono>
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
  using namespace std::chrono;
  return sys_days{year{static_cast<int>(y)} / month{m} / day{d}}.time_since_epoch().count();
}

}  // namespace fav::util
