// Process-wide counters for GET /metrics (Prometheus text). Hot-path updates are relaxed atomics;
// the per-route table takes a mutex only to find its row.
#pragma once
#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace fav::util {

using counter = std::atomic<std::uint64_t>;

inline void bump(counter& c, std::uint64_t n = 1) {
  c.fetch_add(n, std::memory_order_relaxed);
}

struct metrics {
  // Catalog calls by outcome (one per HTTP attempt: ok, not_found, retry, failure).
  counter catalog_ok{0}, catalog_not_found{0}, catalog_retry{0}, catalog_failure{0};
  // Product-cache lookups by freshness, single-flight joins and background refreshes.
  counter cache_fresh{0}, cache_stale{0}, cache_expired{0}, cache_miss{0};
  counter singleflight_joins{0}, background_refreshes{0}, warmups{0};
  counter catalog_breaker_refusals{0}, missing_cache_hits{0};

  // Latency histogram buckets (seconds); the last bucket is +Inf. They reach past the catalog's
  // worst case (retries with backoff take ~5.5 s with the defaults) and the request timeout.
  static constexpr std::array<double, 15> bounds{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                                 0.25,   0.5,   1.0,    2.5,   5.0,  10.0,  30.0};
  struct route_stats {
    std::map<int, counter> by_status;  // guarded by mu_ for insertion
    std::array<counter, bounds.size() + 1> buckets{};
    counter count{0};
    std::atomic<std::uint64_t> sum_us{0};
  };

  // Records one finished request under its route template (e.g. "/customers/{id}").
  void observe_request(std::string_view route, std::string_view method, int status, double seconds);

  // A value read at scrape time, with its HELP text; typed counter when its name ends in `_total`.
  struct gauge {
    std::string_view name;
    std::string_view help;
    double value;
  };
  // Prometheus exposition of everything above, the caller's gauges, the standard process_* series
  // (from /proc/self) and fav_build_info{version}.
  std::string render(const std::vector<gauge>& gauges) const;

 private:
  mutable std::mutex mu_;
  std::map<std::string, std::unique_ptr<route_stats>, std::less<>> routes_;
};

// A number as Prometheus expects it, in its shortest exact form ("0.0005", not 0.00050000000000000001).
std::string prometheus_number(double v);

// The standard process series from /proc/self (Linux): resident memory, open descriptors, CPU
// seconds, start time, appended to `out` with HELP and TYPE. Nothing when /proc is unreadable.
void render_process_metrics(std::string& out);

}  // namespace fav::util
