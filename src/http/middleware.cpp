// See middleware.hpp.
#include "http/middleware.hpp"

#include <algorithm>
#include <boost/beast/core/string.hpp>
#include <cctype>
#include <cstdlib>
#include <ctime>

#include "http/gzip.hpp"
#include "util/log.hpp"
#include "util/random.hpp"

namespace fav::http {

namespace {
constexpr std::size_t gzip_min_bytes = 500;
constexpr const char* cors_methods = "GET, POST, PATCH, DELETE";
constexpr const char* cors_headers =
    "Content-Type, Authorization, x-aiqfome-api-key, x-correlation-id, traceparent, tracestate";
constexpr const char* cors_exposed =
    "x-correlation-id, Location, Retry-After, RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset";
}  // namespace

std::optional<failure> framing_failure(const raw_request& r) {
  auto [te, te_end] = r.equal_range(bhttp::field::transfer_encoding);
  if (te == te_end) return std::nullopt;
  if (r.find(bhttp::field::content_length) != r.end()) return failure::bad_request;
  auto value = te->value();
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
  if (std::next(te) != te_end || !boost::beast::iequals(value, "chunked")) return failure::not_implemented;
  return std::nullopt;
}

std::string_view method_label(const raw_request& r) {
  switch (r.method()) {
    case verb::get: return "GET";
    case verb::head: return "HEAD";
    case verb::post: return "POST";
    case verb::patch: return "PATCH";
    case verb::delete_: return "DELETE";
    case verb::options: return "OPTIONS";
    default: return "other";
  }
}

std::string correlation_id(const raw_request& r) {
  for (auto name : {"x-correlation-id", "x-request-id"}) {
    auto it = r.find(name);
    if (it == r.end()) continue;
    auto v = it->value();
    bool ok = !v.empty() && v.size() <= 64;
    for (char c : v) ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-');
    if (ok) return std::string(v);
  }
  return util::request_uuid();
}

void apply_response_headers(const response& res, std::string_view correlation_id, raw_response& out) {
  out.set("x-correlation-id", correlation_id);
  if (!res.content_type.empty()) out.set(bhttp::field::content_type, res.content_type);
  for (auto& [k, v] : res.headers) out.insert(k, v);
}

void apply_problem_type(const raw_request& req, raw_response& out) {
  if (out.result_int() < 400) return;
  auto type = out.find(bhttp::field::content_type);
  if (type == out.end() || !type->value().starts_with("application/json")) return;
  auto accept = req.find(bhttp::field::accept);
  if (accept == req.end()) return;
  // Named in Accept (case-insensitive), unless with q=0 ("not acceptable").
  std::string a(accept->value());
  for (auto& ch : a) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  auto at = a.find("application/problem+json");
  if (at == std::string::npos) return;
  auto params = a.substr(at, a.find(',', at) - at);  // npos - at: to the end
  params.erase(std::remove(params.begin(), params.end(), ' '), params.end());
  if (auto q = params.find(";q="); q != std::string::npos && std::strtod(params.c_str() + q + 3, nullptr) <= 0) return;
  out.set(bhttp::field::content_type, "application/problem+json");
}

void apply_cors(const std::vector<std::string>& origins, const raw_request& req, raw_response& out) {
  auto origin = req.find(bhttp::field::origin);
  if (origin == req.end()) return;
  bool any = !origins.empty() && origins.front() == "*";
  bool listed = false;
  for (auto& o : origins) listed = listed || o == origin->value();
  if (any) {
    out.set(bhttp::field::access_control_allow_origin, "*");
  } else if (listed) {
    out.set(bhttp::field::access_control_allow_origin, origin->value());
    out.set(bhttp::field::access_control_allow_credentials, "true");
    out.insert(bhttp::field::vary, "Origin");
  } else {
    return;
  }
  if (req.method() == verb::options) {
    out.set(bhttp::field::access_control_allow_methods, cors_methods);
    out.set(bhttp::field::access_control_allow_headers, cors_headers);
    out.set(bhttp::field::access_control_max_age, "600");
  } else {
    out.set(bhttp::field::access_control_expose_headers, cors_exposed);
  }
}

void apply_gzip(const raw_request& req, response& res, raw_response& out) {
  if (!res.compressible || res.body.size() < gzip_min_bytes) return;
  out.insert(bhttp::field::vary, "Accept-Encoding");
  auto ae = req.find(bhttp::field::accept_encoding);
  if (ae == req.end() || !accepts_gzip(ae->value())) return;
  if (auto gz = gzip_compress(res.body)) {
    res.body = std::move(*gz);
    out.set(bhttp::field::content_encoding, "gzip");
  }
}

std::string http_date(std::int64_t unix_seconds) {
  static constexpr const char* days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static constexpr const char* months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                           "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday], tm.tm_mday, months[tm.tm_mon],
                tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
  return buf;
}

void apply_date(raw_response& out) {
  thread_local std::time_t cached_second = -1;
  thread_local std::string cached;
  std::time_t now = std::time(nullptr);
  if (now != cached_second) {
    cached = http_date(now);
    cached_second = now;
  }
  out.set(bhttp::field::date, cached);
}

void log_access(const request& req, int status, double seconds) {
  // A 503 sheds load (a full queue, a catalog or database down): whatever refused logs the cause
  // itself, once per interval at most where one client can repeat it (§8 "Fair shares"), so its
  // access line is not an error line per request.
  const bool error = status >= 500 && status != 503;
  util::log(error ? util::log_level::error : util::log_level::info, "request",
            {{"correlation_id", req.correlation_id},
             {"method", std::string_view(req.raw->method_string())},
             {"path", req.path.empty() ? std::string_view(req.raw->target()) : req.path},
             {"route", req.route},
             {"trace_id", req.trace.trace_id},
             {"status", status},
             {"duration_ms", seconds * 1000.0}});
}

}  // namespace fav::http
