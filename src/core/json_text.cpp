// See json_text.hpp.
#include "core/json_text.hpp"

#include <algorithm>
#include <cassert>
#include <charconv>
#include <cmath>
#include <cstdio>

namespace fav::core {

namespace {
// Length of the valid UTF-8 sequence at s[i], or 0 when it is not valid.
std::size_t utf8_len(std::string_view s, std::size_t i) {
  auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char c = b(i);
  std::size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
  if (n == 0 || i + n > s.size()) return 0;
  for (std::size_t k = 1; k < n; ++k)
    if ((b(i + k) & 0xC0) != 0x80) return 0;
  if (n == 2 && c < 0xC2) return 0;                       // overlong
  if (n == 3 && c == 0xE0 && b(i + 1) < 0xA0) return 0;   // overlong
  if (n == 3 && c == 0xED && b(i + 1) >= 0xA0) return 0;  // surrogates
  if (n == 4 && ((c == 0xF0 && b(i + 1) < 0x90) || c > 0xF4 || (c == 0xF4 && b(i + 1) >= 0x90))) return 0;
  return n;
}
}  // namespace

void append_json_string(std::string& out, std::string_view s) {
  out += '"';
  static constexpr char hex[] = "0123456789abcdef";
  for (std::size_t i = 0; i < s.size();) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
      out += static_cast<char>(c);
      ++i;
      continue;
    }
    switch (c) {
      case '"':
        out += "\\\"";
        ++i;
        continue;
      case '\\':
        out += "\\\\";
        ++i;
        continue;
      case '\n':
        out += "\\n";
        ++i;
        continue;
      case '\r':
        out += "\\r";
        ++i;
        continue;
      case '\t':
        out += "\\t";
        ++i;
        continue;
      default: break;
    }
    if (c < 0x20) {
      out += "\\u00";
      out += hex[c >> 4];
      out += hex[c & 0xF];
      ++i;
      continue;
    }
    std::size_t n = utf8_len(s, i);
    if (n == 0) {
      out += "\xEF\xBF\xBD";
      ++i;
    } else {
      out.append(s.data() + i, n);
      i += n;
    }
  }
  out += '"';
}

json_writer& json_writer::money(std::int64_t hundredths) {
  comma();
  // Unsigned arithmetic: the most negative value has no positive counterpart.
  std::uint64_t v =
      hundredths < 0 ? 0 - static_cast<std::uint64_t>(hundredths) : static_cast<std::uint64_t>(hundredths);
  if (hundredths < 0) out_ += '-';
  char buf[24];
  const auto end = std::to_chars(buf, buf + sizeof buf, v / 100).ptr;
  out_.append(buf, end);
  const unsigned frac = static_cast<unsigned>(v % 100);
  if (frac != 0) {
    out_ += '.';
    out_ += static_cast<char>('0' + frac / 10);
    if (frac % 10) out_ += static_cast<char>('0' + frac % 10);
  }
  need_comma_ = true;
  return *this;
}

json_writer& json_writer::fixed(double v, int decimals) {
  if (!std::isfinite(v)) return null();
  decimals = std::clamp(decimals, 0, 17);
  comma();
  char buf[400];  // %f of the largest double: 309 digits, the point and the decimals
  const int n = std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  out_.append(buf, static_cast<std::size_t>(std::clamp(n, 0, static_cast<int>(sizeof buf) - 1)));
  need_comma_ = true;
  return *this;
}

}  // namespace fav::core
