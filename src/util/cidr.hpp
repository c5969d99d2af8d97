// IP addresses and CIDR blocks, as TRUSTED_PROXIES names them (v4 and v6).
#pragma once
#include <boost/asio/ip/address.hpp>
#include <optional>
#include <string_view>
#include <vector>

namespace fav::util {

// One CIDR block ("10.0.0.0/8", "::1/128", or a bare address for a single host).
struct cidr {
  boost::asio::ip::address base;
  unsigned prefix = 0;
  bool contains(const boost::asio::ip::address& a) const;
};
// Comma-separated CIDRs (TRUSTED_PROXIES); nullopt when one does not parse.
std::optional<std::vector<cidr>> parse_cidrs(std::string_view text);
// An address as text ("1.2.3.4", "::1", "[::1]"); v4-mapped v6 addresses come back as v4.
std::optional<boost::asio::ip::address> parse_address(std::string_view text);
// `a` with a v4-mapped v6 address turned into the v4 one.
boost::asio::ip::address unmapped(const boost::asio::ip::address& a);

}  // namespace fav::util
