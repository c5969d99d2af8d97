#pragma once
// Small text helpers shared by the parsers of comma-separated fields and settings.
#include <string_view>

namespace fav::util {

// `s` without leading and trailing spaces and tabs (the optional whitespace, OWS, of RFC 9110
// lists such as X-Forwarded-For, and of comma-separated settings such as TRUSTED_PROXIES).
inline std::string_view trim_blanks(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace fav::util
