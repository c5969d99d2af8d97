// See rate_limit.hpp.
#include "http/rate_limit.hpp"

#include <algorithm>
#include <cmath>

#include "util/text.hpp"

namespace fav::http {

namespace ip = boost::asio::ip;

rate_limiter::rate_limiter(double per_second, double burst, std::size_t max_clients)
    : per_second_(per_second), burst_(burst), buckets_(std::max<std::size_t>(1, max_clients)) {}

std::size_t rate_limiter::size() const {
  std::lock_guard lk(mu_);
  return buckets_.size();
}

rate_decision rate_limiter::take(std::string_view client, double now_s) {
  std::lock_guard lk(mu_);
  bucket* b = buckets_.get(client);  // now the most recently used
  if (b) {
    b->tokens = std::min(burst_, b->tokens + std::max(0.0, now_s - b->at) * per_second_);
    b->at = std::max(b->at, now_s);
  } else {
    b = buckets_.put(std::string(client), bucket{burst_, now_s});  // the least recently used may go
  }
  rate_decision d;
  d.limit = static_cast<int>(burst_);
  if (b->tokens >= 1.0) {
    b->tokens -= 1.0;
  } else {
    d.allowed = false;
    d.retry_after_s = std::max(1, static_cast<int>(std::ceil((1.0 - b->tokens) / per_second_)));
  }
  d.remaining = static_cast<int>(std::floor(b->tokens));
  d.reset_s = static_cast<int>(std::ceil((burst_ - b->tokens) / per_second_ - 1e-9));
  if (d.reset_s < 0) d.reset_s = 0;
  return d;
}

std::string client_address(const ip::address& peer0, const std::vector<std::string_view>& forwarded_for,
                           const std::vector<util::cidr>& trusted) {
  ip::address peer = util::unmapped(peer0);
  if (!is_trusted(peer, trusted)) return client_key(peer);
  // Every X-Forwarded-For entry, left to right across repeated fields.
  std::vector<std::string_view> hops;
  for (auto field : forwarded_for) {
    while (!field.empty()) {
      auto comma = field.find(',');
      hops.push_back(util::trim_blanks(field.substr(0, comma)));
      field = comma == std::string_view::npos ? std::string_view{} : field.substr(comma + 1);
    }
  }
  ip::address client = peer;
  for (auto it = hops.rbegin(); it != hops.rend(); ++it) {
    auto a = util::parse_address(*it);
    if (!a) break;
    client = *a;
    if (!is_trusted(client, trusted)) break;
  }
  return client_key(client);
}

bool is_trusted(const ip::address& a, const std::vector<util::cidr>& trusted) {
  return std::any_of(trusted.begin(), trusted.end(), [&](const util::cidr& c) { return c.contains(a); });
}

std::string client_key(const ip::address& a0) {
  ip::address a = util::unmapped(a0);
  if (a.is_v4()) return a.to_string();
  auto bytes = a.to_v6().to_bytes();
  std::fill(bytes.begin() + 8, bytes.end(), 0);  // the interface half: the host's to choose
  return ip::address_v6(bytes).to_string() + "/64";
}

bool client_counts::try_add(const std::string& key) {
  std::lock_guard lk(mu_);
  auto& n = counts_[key];
  if (n >= cap_) {
    if (n == 0) counts_.erase(key);  // a cap of 0 keeps no entry
    return false;
  }
  ++n;
  return true;
}

void client_counts::remove(const std::string& key) {
  std::lock_guard lk(mu_);
  auto it = counts_.find(key);
  if (it == counts_.end()) return;
  if (--it->second == 0) counts_.erase(it);
}

std::size_t client_counts::size() const {
  std::lock_guard lk(mu_);
  return counts_.size();
}

}  // namespace fav::http
