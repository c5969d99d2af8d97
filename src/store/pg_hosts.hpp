// A libpq connection string taken apart host by host (contract §11 "Several hosts"): libpq's own
// multi-host connect gives the whole list one deadline, and its asynchronous connect ignores
// `connect_timeout`, so a host that accepts TCP and never answers would hold up every host after
// it. The service tries the hosts itself, one deadline each, with a short memory of the hosts that
// failed so that they are tried last for a few seconds.
#pragma once
#include <chrono>
#include <cstddef>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace fav::store {

// Keyword/value pairs for PQconnectStartParams, owning their text.
struct pg_params {
  std::vector<std::string> keys, values;

  std::string* find(std::string_view key);
  const std::string* find(std::string_view key) const;
  void set(std::string_view key, std::string value);
  void erase(std::string_view key);
};

class pg_hosts {
 public:
  using clock = std::chrono::steady_clock;

  // Throws unavailable for a string libpq cannot parse (its message names no password). Several
  // hosts and no `target_session_attrs`: `read-write` is added, so the pool lands on the primary.
  explicit pg_hosts(const std::string& conninfo);

  std::size_t size() const { return hosts_.size(); }
  // The parameters for host `i` alone: every other parameter as the string gave it.
  pg_params params_for(std::size_t i) const;
  // host[:port] of host `i`, for logs.
  std::string label(std::size_t i) const;
  // The order to try the hosts in now: the string's order, hosts that failed within
  // `failure_memory` last (the oldest failure first among them).
  std::vector<std::size_t> order(clock::time_point now) const;
  void failed(std::size_t i, clock::time_point now);
  void succeeded(std::size_t i);
  // The string's `target_session_attrs` (after the default above), or "any".
  const std::string& session_attrs() const { return attrs_; }

  static constexpr clock::duration failure_memory = std::chrono::seconds(5);

 private:
  struct host {
    std::string host, hostaddr, port;
  };
  pg_params common_;  // everything but host, hostaddr, port
  std::vector<host> hosts_;
  std::string attrs_ = "any";

  mutable std::mutex mu_;                     // guards failed_at_ (connects run on any thread)
  std::vector<clock::time_point> failed_at_;  // per host; min() when it has not failed lately
};

}  // namespace fav::store
