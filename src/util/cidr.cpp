// See cidr.hpp.
#include "util/cidr.hpp"

#include <string>

#include "util/text.hpp"

namespace fav::util {

namespace ip = boost::asio::ip;

bool cidr::contains(const ip::address& a0) const {
  ip::address a = unmapped(a0);
  if (a.is_v4() != base.is_v4()) return false;
  auto cmp = [&](const auto& x, const auto& y, unsigned bits) {
    for (unsigned i = 0; i < bits / 8; ++i)
      if (x[i] != y[i]) return false;
    if (bits % 8 == 0) return true;
    unsigned mask = (0xffu << (8 - bits % 8)) & 0xffu;
    return (x[bits / 8] & mask) == (y[bits / 8] & mask);
  };
  if (a.is_v4()) return cmp(a.to_v4().to_bytes(), base.to_v4().to_bytes(), prefix);
  return cmp(a.to_v6().to_bytes(), base.to_v6().to_bytes(), prefix);
}

ip::address unmapped(const ip::address& a) {
  if (a.is_v6() && a.to_v6().is_v4_mapped()) return ip::make_address_v4(ip::v4_mapped, a.to_v6());
  return a;
}

std::optional<ip::address> parse_address(std::string_view s) {
  s = trim_blanks(s);
  if (s.size() > 2 && s.front() == '[' && s.back() == ']') s = s.substr(1, s.size() - 2);
  boost::system::error_code ec;
  auto a = ip::make_address(std::string(s), ec);
  if (ec) return std::nullopt;
  return unmapped(a);
}

std::optional<std::vector<cidr>> parse_cidrs(std::string_view text) {
  std::vector<cidr> out;
  while (!text.empty()) {
    auto comma = text.find(',');
    auto part = trim_blanks(text.substr(0, comma));
    text = comma == std::string_view::npos ? std::string_view{} : text.substr(comma + 1);
    if (part.empty()) continue;
    auto slash = part.find('/');
    auto addr = parse_address(part.substr(0, slash));
    if (!addr) return std::nullopt;
    unsigned max_bits = addr->is_v4() ? 32 : 128;
    unsigned bits = max_bits;
    if (slash != std::string_view::npos) {
      auto digits = part.substr(slash + 1);
      if (digits.empty() || digits.size() > 3) return std::nullopt;
      bits = 0;
      for (char c : digits) {
        if (c < '0' || c > '9') return std::nullopt;
        bits = bits * 10 + static_cast<unsigned>(c - '0');
      }
      if (bits > max_bits) return std::nullopt;
    }
    out.push_back({*addr, bits});
  }
  return out;
}

}  // namespace fav::util
