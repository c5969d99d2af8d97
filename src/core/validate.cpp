// See validate.hpp.
#include "core/validate.hpp"

#include <charconv>

namespace fav::core {

std::string trim(std::string_view s) {
  auto sp = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; };
  while (!s.empty() && sp(s.front())) s.remove_prefix(1);
  while (!s.empty() && sp(s.back())) s.remove_suffix(1);
  return std::string(s);
}

std::string ascii_lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

std::int64_t utf8_length(std::string_view s) {
  std::int64_t n = 0;
  for (std::size_t i = 0; i < s.size();) {
    auto c = static_cast<unsigned char>(s[i]);
    std::size_t len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
    if (len == 0 || i + len > s.size()) return -1;
    for (std::size_t k = 1; k < len; ++k)
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return -1;
    if ((len == 2 && c < 0xC2) || (len == 4 && c > 0xF4)) return -1;
    i += len;
    ++n;
  }
  return n;
}

std::optional<std::string> parse_email(std::string_view raw) {
  std::string e = ascii_lower(trim(raw));
  if (e.empty() || e.size() > 255) return std::nullopt;
  // local@domain.tld: printable ASCII without spaces, quotes or a second '@'; a dotted domain
  // of letters, digits and hyphens whose labels do not start or end with a hyphen.
  auto at = e.find('@');
  if (at == std::string::npos || at == 0 || e.find('@', at + 1) != std::string::npos) return std::nullopt;
  std::string_view local(e.data(), at), domain(e.data() + at + 1, e.size() - at - 1);
  if (local.size() > 64 || local.front() == '.' || local.back() == '.' || local.find("..") != std::string_view::npos)
    return std::nullopt;
  for (char c : local) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              std::string_view("!#$%&'*+/=?^_`{|}~.-").find(c) != std::string_view::npos;
    if (!ok) return std::nullopt;
  }
  if (domain.empty() || domain.find('.') == std::string_view::npos) return std::nullopt;
  std::size_t start = 0;
  while (start <= domain.size()) {
    auto dot = domain.find('.', start);
    auto label = domain.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') return std::nullopt;
    for (char c : label)
      if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return std::nullopt;
    if (dot == std::string_view::npos) {
      // The top-level label is alphabetic and at least two letters.
      if (label.size() < 2) return std::nullopt;
      for (char c : label)
        if (!(c >= 'a' && c <= 'z')) return std::nullopt;
      break;
    }
    start = dot + 1;
  }
  return e;
}

std::optional<std::string> parse_name(std::string_view raw) {
  std::string n = trim(raw);
  auto len = utf8_length(n);
  if (len < 1 || len > 255) return std::nullopt;
  for (unsigned char c : n)
    if (c < 0x20 || c == 0x7f) return std::nullopt;  // control characters
  return n;
}

bool valid_password(std::string_view raw) {
  auto len = utf8_length(raw);
  return len >= 8 && len <= 128;
}

namespace {
std::optional<std::int64_t> parse_i64(std::string_view s) {
  if (s.empty() || s.size() > 19) return std::nullopt;
  for (char c : s)
    if (c < '0' || c > '9') return std::nullopt;
  std::int64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || p != s.data() + s.size()) return std::nullopt;
  return v;
}
}  // namespace

std::optional<customer_id> customer_id::parse(std::string_view text) {
  if (text.size() != 36) return std::nullopt;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (c != '-') return std::nullopt;
    } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) {
      return std::nullopt;
    }
  }
  return customer_id(text);
}

std::optional<std::int64_t> parse_product_id(std::string_view raw) {
  auto v = parse_i64(raw);
  if (!v || *v < 1) return std::nullopt;
  return v;
}

std::optional<page_req> parse_page(const std::string* page, const std::string* per_page, std::int64_t limit) {
  page_req p;
  if (page) {
    auto v = parse_i64(*page);
    if (!v || *v < 1) return std::nullopt;
    p.page = *v;
  }
  if (per_page) {
    auto v = parse_i64(*per_page);
    if (!v || *v < 1 || *v > limit) return std::nullopt;
    p.per_page = *v;
  } else {
    p.per_page = std::min<std::int64_t>(20, limit);
  }
  return p;
}

}  // namespace fav::core
