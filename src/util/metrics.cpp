// See metrics.hpp.
#include "util/metrics.hpp"

#include <dirent.h>
#include <unistd.h>

#include <charconv>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

#ifndef FAV_VERSION
#define FAV_VERSION "0.0.0"
#endif

namespace fav::util {

std::string prometheus_number(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[64];
  // The shortest form that reads back exactly; plain decimals in the usual range ("0.0005").
  const double a = std::fabs(v);
  auto fmt = a == 0 || (a >= 1e-9 && a < 1e21) ? std::chars_format::fixed : std::chars_format::general;
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v, fmt);
  return ec == std::errc{} ? std::string(buf, end) : std::string("NaN");
}

void render_process_metrics(std::string& out) {
  auto emit = [&](std::string_view name, std::string_view type, std::string_view help, double v) {
    out.append("# HELP ").append(name).append(" ").append(help).append("\n");
    out.append("# TYPE ").append(name).append(" ").append(type).append("\n");
    out.append(name).append(" ").append(prometheus_number(v)).append("\n");
  };
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
  // /proc/self/stat: the command name (field 2) may hold spaces, so fields are counted after ')'.
  std::ifstream stat("/proc/self/stat");
  std::string line;
  if (stat && std::getline(stat, line)) {
    auto close = line.rfind(')');
    if (close != std::string::npos) {
      std::istringstream in(line.substr(close + 2));
      std::vector<std::string> f;  // f[0] is field 3 (state)
      for (std::string tok; in >> tok;) f.push_back(tok);
      auto field = [&](std::size_t n) { return n - 3 < f.size() ? std::strtod(f[n - 3].c_str(), nullptr) : 0.0; };
      emit("process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.",
           (field(14) + field(15)) / ticks);
      emit("process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.", field(23));
      emit("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.", field(24) * page);
      // Start time: ticks after boot (field 22) plus the boot time (btime in /proc/stat).
      std::ifstream sys("/proc/stat");
      double btime = -1;
      for (std::string l; btime < 0 && std::getline(sys, l);)
        if (l.rfind("btime ", 0) == 0) btime = std::strtod(l.c_str() + 6, nullptr);
      if (btime >= 0)
        emit("process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds.",
             btime + field(22) / ticks);
    }
  }
  if (DIR* d = opendir("/proc/self/fd")) {
    double n = 0;
    while (auto* e = readdir(d))
      if (e->d_name[0] != '.') ++n;
    closedir(d);
    emit("process_open_fds", "gauge", "Number of open file descriptors.", n - 1);  // minus the one reading
  }
  std::ifstream limits("/proc/self/limits");
  for (std::string l; std::getline(limits, l);) {
    if (l.rfind("Max open files", 0) != 0) continue;
    std::istringstream in(l.substr(14));
    std::string soft;
    in >> soft;
    if (soft != "unlimited")
      emit("process_max_fds", "gauge", "Maximum number of open file descriptors.", std::strtod(soft.c_str(), nullptr));
  }
}

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

std::string metrics::render(const std::vector<gauge>& gauges) const {
  std::string out;
  auto num = [](double v) { return prometheus_number(v); };
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
  for (auto& g : gauges) {
    // A value read at scrape time may still be monotonic (round trips, cache hits): Prometheus's
    // convention names those `_total` and types them counter, so rate() knows to handle resets.
    help(g.name, g.name.ends_with("_total") ? "counter" : "gauge", g.help);
    line(g.name, "", g.value);
  }
  help("fav_build_info", "gauge", "Build information; the value is always 1.");
  line("fav_build_info", "version=\"" FAV_VERSION "\"", 1);
  render_process_metrics(out);
  return out;
}

}  // namespace fav::util
