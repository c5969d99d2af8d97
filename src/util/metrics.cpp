// See metrics.hpp.
#include "util/metrics.hpp"

#include <cstdio>

namespace fav::util {

void metrics::observe_request(std::string_view route, std::string_view method, int status, double seconds) {
  std::string key;
  key.reserve(method.size() + route.size() + 1);
  key.append(method).append(" ").append(route.empty() ? std::string_view("unmatched") : route);
  route_stats* rs;
  counter* by_status;
  {
    std::lock_guard lk(mu_);
    auto it = routes_.find(key);
    if (it == routes_.end()) it = routes_.emplace(key, std::make_unique<route_stats>()).first;
    rs = it->second.get();
    by_status = &rs->by_status[status];
  }
  bump(*by_status);
  bump(rs->count);
  rs->sum_us.fetch_add(static_cast<std::uint64_t>(seconds * 1e6), std::memory_order_relaxed);
  std::size_t b = 0;
  while (b < bounds.size() && seconds > bounds[b]) ++b;
  bump(rs->buckets[b]);
}

std::string metrics::render(const std::map<std::string, double>& gauges) const {
  std::string out;
  char buf[64];
  auto num = [&](double v) {
    std::snprintf(buf, sizeof buf, "%.17g", v);
    return std::string(buf);
  };
  auto line = [&](std::string_view name, std::string_view labels, double v) {
    out.append(name);
    if (!labels.empty()) out.append("{").append(labels).append("}");
    out.append(" ").append(num(v)).append("\n");
  };
  auto help = [&](std::string_view name, std::string_view type, std::string_view text) {
    out.append("# HELP ").append(name).append(" ").append(text).append("\n");
    out.append("# TYPE ").append(name).append(" ").append(type).append("\n");
  };

  std::lock_guard lk(mu_);
  help("fav_http_requests_total", "counter", "HTTP requests by method, route template and status.");
  for (auto& [key, rs] : routes_) {
    auto sp = key.find(' ');
    std::string labels = "method=\"" + key.substr(0, sp) + "\",route=\"" + key.substr(sp + 1) + "\"";
    for (auto& [st, c] : rs->by_status)
      line("fav_http_requests_total", labels + ",status=\"" + std::to_string(st) + "\"", static_cast<double>(c.load()));
  }
  help("fav_http_request_duration_seconds", "histogram", "Request latency by method and route template.");
  for (auto& [key, rs] : routes_) {
    auto sp = key.find(' ');
    std::string labels = "method=\"" + key.substr(0, sp) + "\",route=\"" + key.substr(sp + 1) + "\"";
    std::uint64_t cumulative = 0;
    for (std::size_t b = 0; b <= bounds.size(); ++b) {
      cumulative += rs->buckets[b].load();
      std::string le = b < bounds.size() ? num(bounds[b]) : "+Inf";
      line("fav_http_request_duration_seconds_bucket", labels + ",le=\"" + le + "\"", static_cast<double>(cumulative));
    }
    line("fav_http_request_duration_seconds_sum", labels, static_cast<double>(rs->sum_us.load()) / 1e6);
    line("fav_http_request_duration_seconds_count", labels, static_cast<double>(rs->count.load()));
  }
  help("fav_catalog_calls_total", "counter", "Catalog HTTP attempts by outcome.");
  line("fav_catalog_calls_total", "outcome=\"ok\"", static_cast<double>(catalog_ok.load()));
  line("fav_catalog_calls_total", "outcome=\"not_found\"", static_cast<double>(catalog_not_found.load()));
  line("fav_catalog_calls_total", "outcome=\"retry\"", static_cast<double>(catalog_retry.load()));
  line("fav_catalog_calls_total", "outcome=\"failure\"", static_cast<double>(catalog_failure.load()));
  help("fav_product_cache_lookups_total", "counter", "Product-cache lookups by freshness.");
  line("fav_product_cache_lookups_total", "freshness=\"fresh\"", static_cast<double>(cache_fresh.load()));
  line("fav_product_cache_lookups_total", "freshness=\"stale\"", static_cast<double>(cache_stale.load()));
  line("fav_product_cache_lookups_total", "freshness=\"expired\"", static_cast<double>(cache_expired.load()));
  line("fav_product_cache_lookups_total", "freshness=\"miss\"", static_cast<double>(cache_miss.load()));
  help("fav_catalog_singleflight_joins_total", "counter", "Product fetches that joined an in-flight call.");
  line("fav_catalog_singleflight_joins_total", "", static_cast<double>(singleflight_joins.load()));
  help("fav_product_cache_background_refreshes_total", "counter", "Background refreshes of stale products.");
  line("fav_product_cache_background_refreshes_total", "", static_cast<double>(background_refreshes.load()));
  help("fav_catalog_breaker_refusals_total", "counter", "Product lookups refused at once by the open breaker.");
  line("fav_catalog_breaker_refusals_total", "", static_cast<double>(catalog_breaker_refusals.load()));
  help("fav_product_cache_missing_hits_total", "counter", "Lookups answered from the missing-product cache.");
  line("fav_product_cache_missing_hits_total", "", static_cast<double>(missing_cache_hits.load()));
  help("fav_product_cache_warmups_total", "counter", "Whole-catalog warm-ups stored in the cache.");
  line("fav_product_cache_warmups_total", "", static_cast<double>(warmups.load()));
  for (auto& [name, v] : gauges) {
    help(name, "gauge", "Current value.");
    line(name, "", v);
  }
  return out;
}

}  // namespace fav::util
