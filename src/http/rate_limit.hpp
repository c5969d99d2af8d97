// Contract §8 rate limits and fair shares, the pure parts: a token bucket per client in a bounded
// LRU map (O(1) a request, the clock passed in), the open connections per client, and the client
// behind trusted proxies as the key these count by (an IPv6 client by its /64 network).
#pragma once
#include <cstddef>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "util/cidr.hpp"
#include "util/lru_map.hpp"

namespace fav::http {

// What one request got from its bucket, and the RateLimit header values that describe it.
struct rate_decision {
  bool allowed = true;
  int limit = 0;          // RateLimit-Limit: the burst
  int remaining = 0;      // RateLimit-Remaining: whole tokens left after this request
  int reset_s = 0;        // RateLimit-Reset: seconds until the bucket is full again
  int retry_after_s = 0;  // when refused: seconds until a token is there (≥ 1)
};

class rate_limiter {
 public:
  // `per_second` tokens a second up to `burst`; at most `max_clients` buckets (least recently
  // used dropped first: a dropped client starts again with a full bucket).
  rate_limiter(double per_second, double burst, std::size_t max_clients = 100000);
  // Takes one token from `client`'s bucket at time `now_s` (any monotonic seconds).
  rate_decision take(std::string_view client, double now_s);
  std::size_t size() const;

 private:
  struct bucket {
    double tokens;
    double at;  // when `tokens` was computed
  };
  // Looks a client up by string_view, without making a string of it.
  struct key_hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  double per_second_, burst_;
  mutable std::mutex mu_;
  util::lru_map<std::string, bucket, key_hash, std::equal_to<>> buckets_;  // one bucket costs 1
};

// Open connections per client key, each client at most `cap`. An entry goes when its count is
// back at zero, so the map holds at most as many entries as there are open connections.
class client_counts {
 public:
  explicit client_counts(std::size_t cap) : cap_(cap) {}
  // Counts one more connection for `key`; false (nothing counted) when it already has `cap`.
  bool try_add(const std::string& key);
  // Counts one fewer (after a successful try_add).
  void remove(const std::string& key);
  std::size_t size() const;

 private:
  std::size_t cap_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, std::size_t> counts_;
};

// Whether `a` (v4-mapped or not) is inside one of the `trusted` blocks (TRUSTED_PROXIES).
bool is_trusted(const boost::asio::ip::address& a, const std::vector<util::cidr>& trusted);

// The key per-client rules count by (contract §8): an IPv4 address (also when v4-mapped in
// IPv6) as itself, an IPv6 address as its /64 network ("2001:db8:1:2::/64"), so one host's
// 2^64 addresses are one client.
std::string client_key(const boost::asio::ip::address& a);

// The client address (contract §8) as its client_key: the peer's, or when the peer is trusted,
// the rightmost address of X-Forwarded-For (all its fields, in order) that is not itself
// trusted. Entries that are not addresses end the walk there (anything left of them is the
// client's to forge).
std::string client_address(const boost::asio::ip::address& peer, const std::vector<std::string_view>& forwarded_for,
                           const std::vector<util::cidr>& trusted);

}  // namespace fav::http
