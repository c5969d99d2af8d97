// Calendar arithmetic with std::chrono's civil calendar: no locale, no timegm/gmtime_r, no TZ
// environment.
#include "util/time.hpp"

#include <chrono>

namespace fav::util {
namespace {

constexpr std::int64_t micros_per_day = 86'400 * micros_per_second;
constexpr micros min_time = days_from_civil(0, 1, 1) * micros_per_day;
constexpr micros max_time = days_from_civil(10000, 1, 1) * micros_per_day - 1;

void put_digits(std::string& out, std::int64_t value, int width) {
  char buf[20];
  for (int i = width - 1; i >= 0; --i) {
    buf[i] = static_cast<char>('0' + value % 10);
    value /= 10;
  }
  out.append(buf, static_cast<std::size_t>(width));
}

// Shared by both formats; frac_digits is 3 or 6.
std::string format(micros t, int frac_digits) {
  if (t < min_time) t = min_time;
  if (t > max_time) t = max_time;
  // Floor division, so times before 1970 land on the right day and time of day.
  std::int64_t days = t / micros_per_day;
  std::int64_t rem = t % micros_per_day;
  if (rem < 0) {
    rem += micros_per_day;
    --days;
  }
  const std::chrono::year_month_day c{std::chrono::sys_days{std::chrono::days{days}}};
  const std::int64_t secs = rem / micros_per_second;
  const std::int64_t frac = rem % micros_per_second;
  std::string out;
  out.reserve(27);
  put_digits(out, static_cast<int>(c.year()), 4);
  out += '-';
  put_digits(out, static_cast<unsigned>(c.month()), 2);
  out += '-';
  put_digits(out, static_cast<unsigned>(c.day()), 2);
  out += 'T';
  put_digits(out, secs / 3600, 2);
  out += ':';
  put_digits(out, secs / 60 % 60, 2);
  out += ':';
  put_digits(out, secs % 60, 2);
  out += '.';
  put_digits(out, frac_digits == 3 ? frac / 1000 : frac, frac_digits);
  out += 'Z';
  return out;
}

// A cursor over the input that reads fixed-width decimal fields.
struct reader {
  std::string_view s;
  std::size_t i = 0;

  bool digits(int n, int& out) {
    if (s.size() - i < static_cast<std::size_t>(n)) return false;
    int v = 0;
    for (int k = 0; k < n; ++k) {
      const char c = s[i++];
      if (c < '0' || c > '9') return false;
      v = v * 10 + (c - '0');
    }
    out = v;
    return true;
  }
  bool literal(char c) {
    if (i >= s.size() || s[i] != c) return false;
    ++i;
    return true;
  }
  bool done() const { return i == s.size(); }
};

}  // namespace

micros now_micros() {
  using namespace std::chrono;
  return duration_cast<microseconds>(system_clock::now().time_since_epoch()).count();
}

std::string format_rfc3339(micros t) {
  // Floor to whole milliseconds so a formatted time never lies in the future of the real one.
  return format(t, 3);
}

std::string format_db_time(micros t) {
  return format(t, 6);
}

std::optional<micros> parse_rfc3339(std::string_view text) {
  reader r{text};
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
  if (!r.digits(4, year) || !r.literal('-') || !r.digits(2, month) || !r.literal('-') || !r.digits(2, day)) {
    return std::nullopt;
  }
  if (!(r.literal('T') || r.literal('t') || r.literal(' '))) return std::nullopt;
  if (!r.digits(2, hour) || !r.literal(':') || !r.digits(2, minute) || !r.literal(':') || !r.digits(2, second)) {
    return std::nullopt;
  }
  const std::chrono::year_month_day date{std::chrono::year{year}, std::chrono::month{static_cast<unsigned>(month)},
                                         std::chrono::day{static_cast<unsigned>(day)}};
  if (!date.ok() || hour > 23 || minute > 59 || second > 59) {  // ok(): Feb 30 and month 13 are not
    return std::nullopt;
  }

  std::int64_t frac = 0;
  if (r.literal('.')) {
    int n = 0;
    while (!r.done() && r.s[r.i] >= '0' && r.s[r.i] <= '9') {
      // Keep microsecond precision; further digits are read but dropped (truncation).
      if (n < 6) frac = frac * 10 + (r.s[r.i] - '0');
      ++n;
      ++r.i;
    }
    if (n < 1 || n > 9) return std::nullopt;
    for (; n < 6; ++n) frac *= 10;
  }

  std::int64_t offset_seconds = 0;
  if (!r.done()) {
    if (r.literal('Z') || r.literal('z')) {
      // UTC.
    } else {
      const char sign = r.s[r.i];
      if (sign != '+' && sign != '-') return std::nullopt;
      ++r.i;
      int oh = 0, om = 0;
      if (!r.digits(2, oh) || !r.literal(':') || !r.digits(2, om) || oh > 23 || om > 59) {
        return std::nullopt;
      }
      offset_seconds = (sign == '+' ? 1 : -1) * (oh * 3600 + om * 60);
    }
    if (!r.done()) return std::nullopt;
  }

  const std::int64_t days = std::chrono::sys_days{date}.time_since_epoch().count();
  const std::int64_t seconds = days * 86'400 + hour * 3600 + minute * 60 + second - offset_seconds;
  return seconds * micros_per_second + frac;
}

}  // namespace fav::util
