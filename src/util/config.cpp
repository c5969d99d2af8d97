// Parses contract §6 configuration; every error names its variable in one line.
#include "util/config.hpp"

#include <libpq-fe.h>
#include <algorithm>
#include <boost/url/parse.hpp>
#include <boost/url/url.hpp>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <sstream>
#include <thread>

extern char** environ;

namespace fav::util {

namespace {
std::string join_problems(const std::vector<config_problem>& problems) {
  std::string out;
  for (auto& p : problems) out += (out.empty() ? "" : "; ") + p.message;
  return out;
}
}  // namespace

config_error::config_error(std::vector<config_problem> p)
    : std::runtime_error(join_problems(p)), problems(std::move(p)) {}

namespace {

using env_map = std::map<std::string, std::string>;

// THE table: every variable the service reads, its default as .env.example writes it, one line on
// it, its kind, bounds and the `config` member it fills. Adding a plain variable = one line here (the
// constructor sets its default, load_config's table pass reads it); one with special rules = a line
// without a member + its code in load_config (a name read there but missing here fails every start,
// and the unit tests compare .env.example and the README with this table).
constexpr config_variable variables[] = {
    {"ENV", "dev",
     "dev or prod; prod refuses default or short (< 32 bytes) secrets and adds sslmode=verify-full to PostgreSQL off "
     "loopback",
     config_kind::text, 0, 0, &config::env},
    {"API_HOST", "0.0.0.0",
     "Address to listen on (0.0.0.0; 127.0.0.1 with ENV=dev and a default API_KEY or JWT_SECRET_KEY)"},
    {"API_PORT", "8080", "Port to listen on (0 picks a free port and logs it)", config_kind::integer, 0, 65535,
     &config::api_port},
    {"API_THREADS", "", "I/O threads (default: the number of cores)", config_kind::integer, 1, 256},
    {"API_BODY_LIMIT_BYTES", "65536", "Largest request body; a larger one answers 413 payload_too_large",
     config_kind::integer, 1024, 64 * 1024 * 1024, &config::body_limit},
    {"API_REQUEST_TIMEOUT_SECONDS", "30", "Time allowed to read one request's header and body", config_kind::seconds,
     0.1, 3600, &config::request_timeout},
    {"API_HEADER_TIMEOUT_SECONDS", "10",
     "A request's headers must arrive within this of its first byte, else 408 request_timeout", config_kind::seconds,
     0.1, 3600, &config::header_timeout},
    {"API_MAX_CONNECTIONS", "10000", "Open client connections at most (lowered at start to fit the descriptor limit)",
     config_kind::integer, 1, 1000000, &config::max_connections},
    {"API_MAX_CONNECTIONS_PER_CLIENT", "256",
     "Open connections per client address (an IPv6 /64) at most; TRUSTED_PROXIES are exempt", config_kind::integer, 1,
     1000000, &config::max_connections_per_client},
    {"API_IDLE_TIMEOUT_SECONDS", "60", "A kept-alive connection with no request is closed after this",
     config_kind::seconds, 0.1, 3600, &config::idle_timeout},
    {"API_DRAIN_TIMEOUT_SECONDS", "10", "On SIGTERM/SIGINT, in-flight work is awaited at most this long",
     config_kind::seconds, 0, 3600, &config::drain_timeout},
    {"API_KEY", "",
     "Private key for GET /customers (x-aiqfome-api-key); dev default dev-api-key, ENV=prod needs >= 32 bytes"},
    {"JWT_SECRET_KEY", "", "HS256 signing secret of the tokens; dev-only default, ENV=prod needs >= 32 bytes"},
    {"JWT_EXPIRE_DAYS", "2", "Access-token lifetime in days (decimals allowed)", config_kind::days, 1e-06, 3650,
     &config::jwt_expire},
    {"REFRESH_TOKEN_EXPIRE_DAYS", "30", "Refresh-token lifetime in days (decimals allowed)", config_kind::days, 1e-06,
     3650, &config::refresh_expire},
    {"AUTH_MAX_SIGN_INS_PER_CUSTOMER", "50",
     "Live sign-ins (devices) a customer may hold; one more ends the oldest, whose tokens then answer 401",
     config_kind::integer, 1, 100000, &config::max_sign_ins_per_customer},
    // At least daily (contract §8 "Token rows").
    {"AUTH_SIGN_IN_SWEEP_INTERVAL_SECONDS", "3600",
     "How often sign-ins whose tokens have all expired are deleted (also once at start)", config_kind::seconds, 0.1,
     86400, &config::sign_in_sweep_interval},
    {"AUTH_CACHE_TTL_SECONDS", "300",
     "How long an instance trusts a token-not-revoked answer, only while its change feed is live (0: ask every time)",
     config_kind::seconds, 0, 3600, &config::auth_cache_ttl},
    {"READ_CACHE_BYTES", "67108864",
     "Bytes of memory for customer records and favorites pages answered without the database, only while the "
     "change feed is live (0: off)",
     config_kind::integer, 0, std::int64_t{1} << 40, &config::read_cache_bytes},
    {"PAGINATION_PER_PAGE_LIMIT", "200", "Largest per_page accepted on paged routes", config_kind::integer, 1, 100000,
     &config::per_page_limit},
    {"PRODUCT_CATALOG_API_BASE_URL", "https://fakestoreapi.com", "The product catalog (http or https)",
     config_kind::text, 0, 0, &config::catalog_base_url},
    {"PRODUCT_CATALOG_API_TIMEOUT_LIMIT", "5.0", "Seconds allowed per catalog attempt", config_kind::seconds, 0.001,
     3600, &config::catalog_timeout},
    {"PRODUCT_CATALOG_API_MAX_RETRIES", "3", "Retries on timeouts, resets, 429 and 5xx", config_kind::integer, 0, 20,
     &config::catalog_max_retries},
    {"PRODUCT_CATALOG_API_MAX_CONCURRENCY", "10", "Catalog calls in flight at most", config_kind::integer, 1, 10000,
     &config::catalog_max_concurrency},
    {"PRODUCT_CATALOG_BACKOFF_BASE_SECONDS", "1", "First retry delay (doubles each retry, with jitter)",
     config_kind::seconds, 0, 600, &config::catalog_backoff_base},
    {"PRODUCT_CATALOG_BACKOFF_CAP_SECONDS", "4", "Largest retry delay", config_kind::seconds, 0, 3600,
     &config::catalog_backoff_cap},
    {"PRODUCT_CATALOG_WARMUP", "true", "Warm the product cache with one GET /products at start and periodically",
     config_kind::boolean},
    {"PRODUCT_CATALOG_WARM_INTERVAL_MINUTES", "10", "Minutes between warm-ups (0: at start only)", config_kind::minutes,
     0, 1e7, &config::catalog_warm_interval, true},
    {"PRODUCT_CACHE_SOFT_TTL_MINUTES", "5", "Cached products younger than this are served as is (decimals allowed)",
     config_kind::minutes, 0, 1e7, &config::cache_soft_ttl},
    {"PRODUCT_CACHE_HARD_TTL_MINUTES", "30", "Older than soft: served and refreshed; older than this: fetched first",
     config_kind::minutes, 0, 1e7, &config::cache_hard_ttl},
    {"DATABASE_URL", "", "sqlite:<path> or postgresql://user:pass@host:port/db (default: sqlite:./data/favorites.db)"},
    {"DATABASE_DIALECT", "sqlite",
     "The reference's way to choose the database: sqlite or postgresql (with DATABASE_HOST...)"},
    {"DATABASE_HOST", "localhost", "PostgreSQL host when DATABASE_DIALECT=postgresql"},
    {"DATABASE_PORT", "5432", "PostgreSQL port when DATABASE_DIALECT=postgresql", config_kind::integer, 1, 65535},
    {"DATABASE_USER", "postgres", "PostgreSQL user when DATABASE_DIALECT=postgresql"},
    {"DATABASE_PASSWORD", "", "PostgreSQL password when DATABASE_DIALECT=postgresql"},
    {"DATABASE_NAME", "favorites", "PostgreSQL database when DATABASE_DIALECT=postgresql"},
    {"DATABASE_POOL_SIZE", "5", "PostgreSQL connections (SQLite: worker connections, at most one per core)",
     config_kind::integer, 1, 1000, &config::db_pool_size},
    {"DATABASE_READ_URL", "",
     "PostgreSQL standbys (multi-host allowed) that answer the customer and favorites GETs while the primary "
     "cannot be reached (default: none)"},
    {"LOG_LEVEL", "info",
     "debug, info, warning, error or critical (the log's queue: 16,384 lines, 6.4 MiB, at info and debug; 1,024 "
     "above them)",
     config_kind::text, 0, 0, &config::log_level},
    {"CORS_ALLOW_ORIGINS", "*", "Comma-separated origins allowed by CORS (* for any)"},
    {"PASSWORD_HASH_WORKERS", "", "argon2id workers, 64 MiB each (default: the number of cores)", config_kind::integer,
     1, 256},
    {"PASSWORD_HASH_QUEUE_LIMIT", "64", "Sign-ins waiting for a hash worker; past it 503 server_busy",
     config_kind::integer, 0, 100000, &config::hash_queue_limit},
    {"PASSWORD_HASH_QUEUE_PER_CLIENT", "4",
     "Hash-queue places (waiting or hashing) one client address may hold; past it 503 server_busy",
     config_kind::integer, 1, 100000, &config::hash_queue_per_client},
    {"DATABASE_STATEMENT_TIMEOUT_SECONDS", "10",
     "Deadline of every database statement (decimals allowed); past it 503 database_unavailable", config_kind::seconds,
     0.01, 3600, &config::db_statement_timeout},
    {"PRODUCT_CATALOG_REQUEST_DEADLINE_SECONDS", "10",
     "The longest one request waits on the catalog, queueing included; then 503 catalog_unavailable",
     config_kind::seconds, 0.001, 3600, &config::catalog_request_deadline},
    {"PRODUCT_CACHE_MISSING_TTL_MINUTES", "5",
     "A product the catalog said does not exist answers 404 without a call this long (0: off)", config_kind::minutes, 0,
     1e7, &config::cache_missing_ttl},
    {"PRODUCT_CATALOG_BREAKER_FAILURES", "5",
     "Consecutive failed lookups that open the catalog circuit breaker (0: off)", config_kind::integer, 0, 1000000,
     &config::catalog_breaker_failures},
    {"PRODUCT_CATALOG_BREAKER_OPEN_SECONDS", "30", "How long an open breaker answers 503 at once before one probe call",
     config_kind::seconds, 0, 86400, &config::catalog_breaker_open},
    {"PRODUCT_CATALOG_MAX_CONCURRENCY_PER_CUSTOMER", "2",
     "Catalog lookups one customer's favoritings hold at once; the others wait for its share", config_kind::integer, 1,
     10000, &config::catalog_max_concurrency_per_customer},
    {"RATE_LIMIT_PER_SECOND", "10", "Token-bucket rate limit per client address: tokens added a second",
     config_kind::number, 0.001, 1e6, &config::rate_limit_per_second},
    {"RATE_LIMIT_BURST", "0", "Token-bucket rate limit per client address: the bucket size (0: no rate limit)",
     config_kind::integer, 0, 1000000, &config::rate_limit_burst},
    {"TRUSTED_PROXIES", "",
     "Comma-separated proxy addresses/CIDRs whose X-Forwarded-For names the client (default: none)"},
    {"SIGN_IN_MAX_FAILURES", "10",
     "Failed sign-ins per email and client address within the window; past it 429 too_many_attempts (0: off)",
     config_kind::integer, 0, 1000000, &config::sign_in_max_failures},
    {"SIGN_IN_MAX_FAILURES_PER_EMAIL", "100",
     "Failed sign-ins per email from all addresses within the window; past it 429 too_many_attempts (0: off)",
     config_kind::integer, 0, 1000000, &config::sign_in_max_failures_per_email},
    {"SIGN_IN_FAILURE_WINDOW_MINUTES", "15", "The window failed sign-ins are counted in (decimals allowed)",
     config_kind::minutes, 0.001, 1e6, &config::sign_in_failure_window},
    {"DATABASE_CONNECT_TIMEOUT_SECONDS", "2",
     "PostgreSQL: each host's connect deadline (decimals allowed); past it the next host listed is tried",
     config_kind::seconds, 0.01, 3600, &config::db_connect_timeout},
    {"DATABASE_LISTEN_URL", "",
     "PostgreSQL: the change feed's LISTEN connection, which must reach the server directly (default: DATABASE_URL)"},
    {"DATABASE_POOL_MODE", "session",
     "session, or transaction behind a transaction-pooling PgBouncer (no prepared statements or session state)"},
};

const config_variable* find_variable(std::string_view name) {
  for (auto& v : variables)
    if (v.name == name) return &v;
  return nullptr;
}

std::string trim(std::string s) {
  auto issp = [](unsigned char c) { return std::isspace(c) != 0; };
  while (!s.empty() && issp(s.back())) s.pop_back();
  std::size_t i = 0;
  while (i < s.size() && issp(s[i])) ++i;
  return s.substr(i);
}

// The environment as load_config reads it: each lookup is checked against the table, and each bad
// value is recorded (the parse goes on with the default) so that every problem is reported at once.
class reader {
 public:
  explicit reader(const env_map& env) : env_(env) {}
  const std::string* find(const std::string& name) const {
    if (!find_variable(name))
      throw std::logic_error("configuration variable " + name + " is missing from the table in util/config.cpp");
    auto it = env_.find(name);
    return it == env_.end() ? nullptr : &it->second;
  }
  void bad(const std::string& name, const std::string& value, const std::string& want) const {
    for (auto& p : problems_)
      if (p.variable == name) return;  // one line per variable
    problems_.push_back({name, "invalid configuration: " + name + "='" + value + "' (" + want + ")"});
  }
  std::vector<config_problem> take_problems() const { return std::move(problems_); }

 private:
  const env_map& env_;
  mutable std::vector<config_problem> problems_;
};

const std::string* get(const reader& env, const std::string& name) {
  auto v = env.find(name);
  if (!v || trim(*v).empty()) return nullptr;
  return v;
}

std::int64_t integer(const reader& env, const std::string& name, std::int64_t def, std::int64_t min, std::int64_t max) {
  auto v = get(env, name);
  if (!v) return def;
  std::string s = trim(*v);
  std::int64_t out = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  if (ec != std::errc{} || p != s.data() + s.size() || out < min || out > max) {
    env.bad(name, *v, "expected an integer from " + std::to_string(min) + " to " + std::to_string(max));
    return def;
  }
  return out;
}

const config_variable& row(std::string_view name) {
  if (auto v = find_variable(name)) return *v;
  throw std::logic_error("configuration variable " + std::string(name) +
                         " is missing from the table in util/config.cpp");
}

std::string default_of(std::string_view name) {
  return std::string(row(name).default_value);
}

// An integer variable whose default is computed (the number of cores) or not kept in a member, within
// its row's bounds.
std::int64_t integer(const reader& env, const std::string& name, std::int64_t def) {
  const auto& v = row(name);
  return integer(env, name, def, static_cast<std::int64_t>(v.min), static_cast<std::int64_t>(v.max));
}

// Seconds in one unit of a duration kind; 0 for the other kinds.
double seconds_per_unit(config_kind k) {
  switch (k) {
    case config_kind::seconds: return 1;
    case config_kind::minutes: return 60;
    case config_kind::days: return 86400;
    default: return 0;
  }
}

// Sets row `v`'s member from the trimmed text `s`; false (member untouched) when `s` is not a value of
// the row's kind within its bounds.
bool assign(config& c, const config_variable& v, const std::string& s) {
  const auto set = [&](auto value) {
    if (auto i = std::get_if<int config::*>(&v.member))
      c.** i = static_cast<int>(value);
    else if (auto i64 = std::get_if<std::int64_t config::*>(&v.member))
      c.** i64 = static_cast<std::int64_t>(value);
    else if (auto d = std::get_if<double config::*>(&v.member))
      c.** d = static_cast<double>(value);
  };
  if (v.kind == config_kind::text) {
    if (auto text = std::get_if<std::string config::*>(&v.member)) c.** text = s;
    return true;
  }
  if (v.kind == config_kind::integer) {
    std::int64_t out = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    if (ec != std::errc{} || p != s.data() + s.size() || out < static_cast<std::int64_t>(v.min) ||
        out > static_cast<std::int64_t>(v.max))
      return false;
    set(out);
    return true;
  }
  double out = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  if (ec != std::errc{} || p != s.data() + s.size() || !std::isfinite(out) || out < v.min || out > v.max) return false;
  if (auto t = std::get_if<duration config::*>(&v.member)) {
    // The one conversion of a time: the variable's unit, read once, into the member's duration.
    c.** t = std::chrono::round<duration>(std::chrono::duration<double>(out * seconds_per_unit(v.kind)));
    return true;
  }
  if (seconds_per_unit(v.kind) > 0) return false;  // a time kind fills a duration member, nothing else
  set(out);
  return true;
}

// What a bad value of row `v` should have been.
std::string expectation(const config_variable& v) {
  if (v.kind == config_kind::integer)
    return "expected an integer from " + std::to_string(static_cast<std::int64_t>(v.min)) + " to " +
           std::to_string(static_cast<std::int64_t>(v.max));
  return "expected a number from " + std::to_string(v.min) + " to " + std::to_string(v.max);
}

// Reads row `v` from the environment into its member; unset or blank keeps the default the
// constructor set, a bad value is recorded (and the default kept).
void read_row(const reader& env, config& c, const config_variable& v) {
  if (auto s = get(env, std::string(v.name)); s && !assign(c, v, trim(*s)))
    env.bad(std::string(v.name), *s, expectation(v));
}

bool boolean(const reader& env, const std::string& name, bool def) {
  auto v = get(env, name);
  if (!v) return def;
  std::string s = trim(*v);
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (s == "1" || s == "true" || s == "yes" || s == "on") return true;
  if (s == "0" || s == "false" || s == "no" || s == "off") return false;
  env.bad(name, *v, "expected true or false");
  return def;
}

std::string text(const reader& env, const std::string& name, std::string def) {
  auto v = get(env, name);
  return v ? trim(*v) : def;
}

// libpq URI from the reference's DATABASE_* variables, built by Boost.URL: each component
// percent-encoded where it must be, and an IPv6 host (`::1`, or `[::1]`) in brackets.
std::string pg_uri_from_parts(const reader& env) {
  std::string host = text(env, "DATABASE_HOST", default_of("DATABASE_HOST"));
  auto port = integer(env, "DATABASE_PORT", std::stoll(default_of("DATABASE_PORT")));
  std::string user = text(env, "DATABASE_USER", default_of("DATABASE_USER"));
  std::string pass = text(env, "DATABASE_PASSWORD", default_of("DATABASE_PASSWORD"));
  std::string name = text(env, "DATABASE_NAME", default_of("DATABASE_NAME"));
  boost::urls::url u;
  u.set_scheme("postgresql");
  u.set_user(user);
  if (!pass.empty()) u.set_password(pass);
  std::string_view bare = host;
  if (bare.size() > 2 && bare.front() == '[' && bare.back() == ']') bare = bare.substr(1, bare.size() - 2);
  if (auto v6 = boost::urls::parse_ipv6_address(bare))
    u.set_host_ipv6(*v6);
  else
    u.set_host(host);
  u.set_port_number(static_cast<std::uint16_t>(port));
  u.set_path_absolute(true);
  u.segments().push_back(name);
  return std::string(u.buffer());
}

// `s` with each valid %XX escape decoded (the others kept as they are).
std::string percent_decoded(std::string_view s) {
  auto hex = [](char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  for (std::size_t k = 0; k < s.size(); ++k) {
    if (s[k] == '%' && k + 2 < s.size() && hex(s[k + 1]) >= 0 && hex(s[k + 2]) >= 0) {
      out += static_cast<char>(hex(s[k + 1]) * 16 + hex(s[k + 2]));
      k += 2;
    } else {
      out += s[k];
    }
  }
  return out;
}

// The passwords `s` holds: a URL's userinfo password (from the first ':' after "://" to the last
// '@', generous for malformed URLs) and `password=` values (URL query or key=value form), each
// also percent-decoded.
void collect_passwords(std::string_view s, std::vector<std::string>& out) {
  if (auto scheme = s.find("://"); scheme != std::string_view::npos) {
    const auto at = s.rfind('@');
    const auto colon = s.find(':', scheme + 3);
    if (at != std::string_view::npos && colon < at) out.emplace_back(s.substr(colon + 1, at - colon - 1));
  }
  std::string lower(s);
  for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (auto p = lower.find("password"); p != std::string::npos; p = lower.find("password", p + 1)) {
    auto v = p + 8;
    while (v < s.size() && s[v] == ' ') ++v;
    if (v >= s.size() || s[v] != '=') continue;
    ++v;
    while (v < s.size() && s[v] == ' ') ++v;
    const bool quoted = v < s.size() && (s[v] == '\'' || s[v] == '"');
    const auto end = quoted ? s.find(s[v], v + 1) : s.find_first_of("& \t\r\n'\"", v);
    const auto from = quoted ? v + 1 : v;
    out.emplace_back(s.substr(from, end == std::string_view::npos ? std::string_view::npos : end - from));
  }
  const std::size_t raw = out.size();
  for (std::size_t i = 0; i < raw; ++i) {
    std::string decoded = percent_decoded(out[i]);
    if (decoded != out[i]) out.push_back(std::move(decoded));
  }
}

// The options of a PostgreSQL URL as libpq parses it, or the problem it or its connect-time
// checks would refuse it with (password hidden): `serve` and `check-config` both refuse it here.
std::optional<std::map<std::string, std::string>> pg_options(const std::string& url, std::string& problem) {
  char* err = nullptr;
  PQconninfoOption* parsed = PQconninfoParse(url.c_str(), &err);
  if (!parsed) {
    std::string msg = err ? err : "out of memory";
    PQfreemem(err);
    while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
    problem = "libpq: " + hide_passwords(msg, url);
    return std::nullopt;
  }
  std::map<std::string, std::string> opts;
  for (PQconninfoOption* o = parsed; o->keyword; ++o)
    if (o->val && *o->val) opts[o->keyword] = o->val;
  PQconninfoFree(parsed);
  // The values libpq checks only when connecting (libpq's connectOptions2).
  const std::pair<const char*, std::vector<std::string_view>> choices[] = {
      {"sslmode", {"disable", "allow", "prefer", "require", "verify-ca", "verify-full"}},
      {"gssencmode", {"disable", "prefer", "require"}},
      {"channel_binding", {"disable", "prefer", "require"}},
      {"target_session_attrs", {"any", "read-write", "read-only", "primary", "standby", "prefer-standby"}},
  };
  for (const auto& [key, allowed] : choices) {
    auto it = opts.find(key);
    if (it != opts.end() && std::find(allowed.begin(), allowed.end(), it->second) == allowed.end()) {
      problem = std::string("invalid ") + key + " value \"" + hide_passwords(it->second, url) + "\"";
      return std::nullopt;
    }
  }
  if (auto it = opts.find("port"); it != opts.end()) {
    std::string_view ports = it->second;
    while (true) {
      const auto comma = ports.find(',');
      const auto one = ports.substr(0, comma);
      int n = 0;
      auto [p, ec] = std::from_chars(one.data(), one.data() + one.size(), n);
      if (!one.empty() && (ec != std::errc{} || p != one.data() + one.size() || n < 1 || n > 65535)) {
        problem = "invalid port number";
        return std::nullopt;
      }
      if (comma == std::string_view::npos) break;
      ports.remove_prefix(comma + 1);
    }
  }
  return opts;
}

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (true) {
    const auto comma = s.find(',', start);
    out.push_back(s.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
    if (comma == std::string::npos) return out;
    start = comma + 1;
  }
}

// Whether libpq would reach some host over TCP at an address that is not loopback (a socket
// directory, "localhost", 127.0.0.0/8 and ::1 are local).
bool tcp_beyond_loopback(const std::map<std::string, std::string>& opts) {
  auto get = [&](const char* k) {
    auto it = opts.find(k);
    return it == opts.end() ? std::vector<std::string>{} : split_commas(it->second);
  };
  const auto hosts = get("host"), addrs = get("hostaddr");
  for (std::size_t i = 0; i < std::max(hosts.size(), addrs.size()); ++i) {
    std::string h = i < addrs.size() && !addrs[i].empty() ? addrs[i] : i < hosts.size() ? hosts[i] : "";
    // Empty (libpq's default socket), a socket directory, or a name of this machine.
    if (h.empty() || h.front() == '/' || h.front() == '@' || h == "localhost") continue;
    if (h.size() > 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
    auto ip = parse_address(h);
    if (ip && util::unmapped(*ip).is_loopback()) continue;
    return true;
  }
  return false;
}

constexpr const char* dev_api_key = "dev-api-key";
constexpr const char* dev_jwt_secret = "dev-jwt-secret-change-me";

}  // namespace

config::config() {
  for (auto& v : variables)
    if (!std::holds_alternative<std::monostate>(v.member) && !assign(*this, v, std::string(v.default_value)))
      throw std::logic_error("configuration variable " + std::string(v.name) + ": its default is not a valid value");
}

config load_config(const env_map& raw) {
  const reader env(raw);
  config c;  // the table's defaults
  // The table pass: every variable with a member and no special rule.
  for (auto& v : variables)
    if (!std::holds_alternative<std::monostate>(v.member) && !v.read_by_code) read_row(env, c, v);

  // Variables with special rules: checks beyond the row's bounds, and those without a member.
  if (c.env != "dev" && c.env != "prod") env.bad("ENV", c.env, "expected dev or prod");
  {
    auto u = boost::urls::parse_uri(c.catalog_base_url);
    if (!u || (u->scheme() != "http" && u->scheme() != "https") || u->host().empty())
      env.bad("PRODUCT_CATALOG_API_BASE_URL", c.catalog_base_url, "expected an http:// or https:// URL");
  }
  if (c.cache_hard_ttl < c.cache_soft_ttl)
    env.bad("PRODUCT_CACHE_HARD_TTL_MINUTES",
            text(env, "PRODUCT_CACHE_HARD_TTL_MINUTES", default_of("PRODUCT_CACHE_HARD_TTL_MINUTES")),
            "must not be below PRODUCT_CACHE_SOFT_TTL_MINUTES");
  // The interval is read only while warm-ups are on (-1: none at all).
  if (boolean(env, "PRODUCT_CATALOG_WARMUP", default_of("PRODUCT_CATALOG_WARMUP") == "true"))
    read_row(env, c, row("PRODUCT_CATALOG_WARM_INTERVAL_MINUTES"));
  else
    c.catalog_warm_interval = duration(-1);

  c.api_key = text(env, "API_KEY", dev_api_key);
  c.jwt_secret = text(env, "JWT_SECRET_KEY", dev_jwt_secret);

  if (auto url = get(env, "DATABASE_URL")) {
    c.database_url = trim(*url);
    if (c.database_url.rfind("postgresql://", 0) == 0 || c.database_url.rfind("postgres://", 0) == 0)
      c.database_is_postgres = true;
    else if (c.database_url.rfind("sqlite:", 0) != 0 || c.database_url.size() == 7)
      env.bad("DATABASE_URL", hide_passwords(c.database_url, c.database_url),
              "expected sqlite:<path> or postgresql://...");
  } else {
    std::string dialect = text(env, "DATABASE_DIALECT", default_of("DATABASE_DIALECT"));
    if (dialect == "postgresql" || dialect == "postgres") {
      c.database_url = pg_uri_from_parts(env);
      c.database_is_postgres = true;
    } else if (dialect == "sqlite") {
      c.database_url = "sqlite:./data/favorites.db";
    } else {
      env.bad("DATABASE_DIALECT", dialect, "expected sqlite or postgresql");
    }
  }
  {
    const std::string mode = text(env, "DATABASE_POOL_MODE", default_of("DATABASE_POOL_MODE"));
    if (mode != "session" && mode != "transaction")
      env.bad("DATABASE_POOL_MODE", mode, "expected session or transaction");
    c.db_transaction_pooler = mode == "transaction";
  }
  if (auto url = get(env, "DATABASE_LISTEN_URL")) {
    c.database_listen_url = trim(*url);
    if (c.database_listen_url.rfind("postgresql://", 0) != 0 && c.database_listen_url.rfind("postgres://", 0) != 0)
      env.bad("DATABASE_LISTEN_URL", "<hidden>", "expected postgresql://...");
  }
  // What libpq would refuse stops the start here, for `serve` and `check-config` alike; and §8
  // "Transport to the database": off this machine, in prod, the server's certificate and name are
  // verified unless the URL chose its own sslmode.
  auto check_pg_url = [&](std::string& url, const char* variable) {
    std::string problem;
    const auto opts = pg_options(url, problem);
    if (!opts) {
      env.bad(variable, "<hidden>", problem);
    } else if (c.env == "prod" && !opts->count("sslmode") && tcp_beyond_loopback(*opts)) {
      const char last = url.back();
      const bool has_query = url.find('?') != std::string::npos;
      url += (!has_query ? "?" : last == '?' || last == '&' ? "" : "&") + std::string("sslmode=verify-full");
    }
  };
  if (c.database_is_postgres) check_pg_url(c.database_url, get(env, "DATABASE_URL") ? "DATABASE_URL" : "DATABASE_HOST");
  if (c.database_listen_url.empty())
    c.database_listen_url = c.database_url;
  else
    check_pg_url(c.database_listen_url, "DATABASE_LISTEN_URL");

  // Contract §11 "Reads through a failover". The value is never echoed: it may hold a password.
  if (auto url = get(env, "DATABASE_READ_URL")) {
    std::string read = trim(*url);
    if (read.rfind("postgresql://", 0) != 0 && read.rfind("postgres://", 0) != 0) {
      env.bad("DATABASE_READ_URL", "...", "expected postgresql://...");
    } else if (!c.database_is_postgres) {
      env.bad("DATABASE_READ_URL", "...", "needs a PostgreSQL DATABASE_URL");
    } else {
      check_pg_url(read, "DATABASE_READ_URL");
      // Any server will do for reads (a standby, or a primary listed there): never read-write only.
      if (read.find("target_session_attrs=") == std::string::npos)
        read += (read.find('?') == std::string::npos ? "?" : "&") + std::string("target_session_attrs=any");
      c.database_read_url = std::move(read);
    }
  }

  for (auto& ch : c.log_level) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  if (c.log_level == "warn") c.log_level = "warning";
  if (c.log_level != "debug" && c.log_level != "info" && c.log_level != "warning" && c.log_level != "error" &&
      c.log_level != "critical")
    env.bad("LOG_LEVEL", c.log_level, "expected debug, info, warning, error or critical");

  if (auto origins = get(env, "CORS_ALLOW_ORIGINS")) {
    c.cors_origins.clear();
    std::string s = *origins;
    std::size_t start = 0;
    while (start <= s.size()) {
      auto comma = s.find(',', start);
      auto part = trim(s.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
      if (!part.empty()) c.cors_origins.push_back(part);
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
  }
  unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  c.api_threads = static_cast<int>(integer(env, "API_THREADS", cores));
  c.hash_workers = static_cast<int>(integer(env, "PASSWORD_HASH_WORKERS", cores));
  {
    auto proxies = text(env, "TRUSTED_PROXIES", default_of("TRUSTED_PROXIES"));
    auto parsed = parse_cidrs(proxies);
    if (!parsed)
      env.bad("TRUSTED_PROXIES", proxies, "expected comma-separated addresses or CIDRs (10.0.0.0/8, ::1)");
    else
      c.trusted_proxies = std::move(*parsed);
  }

  // Development secrets: fine on loopback, never facing a network unless API_HOST says so (§8).
  if (c.api_key == dev_api_key) c.default_secrets.push_back("API_KEY");
  if (c.jwt_secret == dev_jwt_secret) c.default_secrets.push_back("JWT_SECRET_KEY");
  c.host = text(env, "API_HOST", c.env == "dev" && !c.default_secrets.empty() ? "127.0.0.1" : default_of("API_HOST"));

  if (c.env == "prod") {
    // Every example secret in the repository (compose fallbacks, .env.example) says "change-me".
    auto weak = [](const std::string& v, const char* def) {
      return v == def || v.size() < 32 || v.find("change-me") != std::string::npos;
    };
    if (weak(c.api_key, dev_api_key))
      env.bad("API_KEY", "<hidden>", "ENV=prod needs a non-default value of at least 32 bytes, without change-me");
    if (weak(c.jwt_secret, dev_jwt_secret))
      env.bad("JWT_SECRET_KEY", "<hidden>",
              "ENV=prod needs a non-default value of at least 32 bytes, without change-me");
  }
  if (auto problems = env.take_problems(); !problems.empty()) throw config_error(std::move(problems));
  return c;
}

std::span<const config_variable> config_variables() {
  return variables;
}

std::string hide_passwords(std::string_view text, std::string_view url) {
  std::vector<std::string> secrets;
  collect_passwords(url, secrets);
  // URLs quoted inside the text itself (up to a blank or a quote).
  for (auto p = text.find("://"); p != std::string_view::npos; p = text.find("://", p + 3)) {
    auto start = text.find_last_of(" \t'\"", p);
    start = start == std::string_view::npos ? 0 : start + 1;
    auto end = text.find_first_of(" \t'\"", p);
    collect_passwords(text.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start),
                      secrets);
  }
  std::sort(secrets.begin(), secrets.end());
  secrets.erase(std::unique(secrets.begin(), secrets.end()), secrets.end());
  // Mark every byte some secret covers in the original text, then write each marked run as one
  // "***". Matching never sees a replacement, so a short secret ("*", "%") cannot match the stars
  // another one left, and the output is at most three bytes per input byte. (Replacing in place
  // grew the text threefold per repeated "*" password: a fuzzer input took 12 s and 545 MB.)
  std::vector<bool> hidden(text.size(), false);
  for (const auto& s : secrets) {
    if (s.empty()) continue;
    std::size_t marked_to = 0;  // overlapping matches ("aa" in "aaaa") mark each byte once
    for (auto p = text.find(s); p != std::string_view::npos; p = text.find(s, p + 1)) {
      for (auto i = std::max(p, marked_to); i < p + s.size(); ++i) hidden[i] = true;
      marked_to = p + s.size();
    }
  }
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (!hidden[i]) {
      out += text[i];
    } else if (i == 0 || !hidden[i - 1]) {
      out += "***";
    }
  }
  return out;
}

std::vector<unknown_variable> unknown_variables(const env_map& env) {
  // Prefixes of the known names (API_, DATABASE_, PRODUCT_, JWT_, ...): a name sharing one is ours.
  auto prefix = [](std::string_view n) {
    auto u = n.find('_');
    return u == std::string_view::npos ? std::string_view{} : n.substr(0, u + 1);
  };
  auto distance = [](std::string_view a, std::string_view b) {
    std::vector<std::size_t> row(b.size() + 1);
    for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
    for (std::size_t i = 1; i <= a.size(); ++i) {
      std::size_t diag = row[0];
      row[0] = i;
      for (std::size_t j = 1; j <= b.size(); ++j) {
        std::size_t up = row[j];
        row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
        diag = up;
      }
    }
    return row[b.size()];
  };
  std::vector<unknown_variable> out;
  for (auto& [name, value] : env) {
    if (find_variable(name)) continue;
    auto p = prefix(name);
    bool ours = false;
    for (auto& v : variables) ours = ours || (!p.empty() && prefix(v.name) == p);
    if (!ours) continue;
    unknown_variable u{name, {}};
    std::size_t best = 5;  // a typo or a dropped suffix: at most 4 edits away
    for (auto& v : variables) {
      auto d = distance(name, v.name);
      if (d < best) {
        best = d;
        u.suggestion = std::string(v.name);
      }
    }
    out.push_back(std::move(u));
  }
  return out;
}

env_map parse_dotenv(std::string_view text) {
  env_map env;
  std::istringstream in{std::string(text)};
  std::string line;
  while (std::getline(in, line)) {
    line = trim(line);
    if (line.empty() || line[0] == '#') continue;
    if (line.rfind("export ", 0) == 0) line = trim(line.substr(7));
    auto eq = line.find('=');
    if (eq == std::string::npos) continue;
    std::string key = trim(line.substr(0, eq));
    std::string value = trim(line.substr(eq + 1));
    if (value.size() >= 2 && (value.front() == '"' || value.front() == '\'') && value.back() == value.front())
      value = value.substr(1, value.size() - 2);
    else if (auto hash = value.find(" #"); hash != std::string::npos)
      value = trim(value.substr(0, hash));
    env[key] = value;
  }
  return env;
}

env_map read_environment(const std::string& dotenv_path) {
  // .env first: KEY=VALUE lines, `#` comments, optional `export`, optional quotes.
  std::ifstream in(dotenv_path);
  std::ostringstream text;
  if (in) text << in.rdbuf();
  env_map env = parse_dotenv(text.str());
  // The real environment wins.
  for (char** e = environ; e && *e; ++e) {
    std::string kv = *e;
    auto eq = kv.find('=');
    if (eq != std::string::npos) env[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  return env;
}

}  // namespace fav::util
