// Parses contract §6 configuration; every error names its variable in one line.
#include "util/config.hpp"

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
// it. Adding a variable = one line here + its parsing in load_config (a name read there but missing
// here fails every start, and the unit tests compare .env.example and the README with this table).
constexpr config_variable variables[] = {
    {"ENV", "dev",
     "dev or prod; prod refuses default or short (< 32 bytes) secrets and adds sslmode=require to PostgreSQL"},
    {"API_HOST", "0.0.0.0",
     "Address to listen on (0.0.0.0; 127.0.0.1 with ENV=dev and a default API_KEY or JWT_SECRET_KEY)"},
    {"API_PORT", "8080", "Port to listen on (0 picks a free port and logs it)"},
    {"API_THREADS", "", "I/O threads (default: the number of cores)"},
    {"API_BODY_LIMIT_BYTES", "65536", "Largest request body; a larger one answers 413 payload_too_large"},
    {"API_REQUEST_TIMEOUT_SECONDS", "30", "Time allowed to read one request's header and body"},
    {"API_HEADER_TIMEOUT_SECONDS", "10",
     "A request's headers must arrive within this of its first byte, else 408 request_timeout"},
    {"API_MAX_CONNECTIONS", "10000", "Open client connections at most (lowered at start to fit the descriptor limit)"},
    {"API_IDLE_TIMEOUT_SECONDS", "60", "A kept-alive connection with no request is closed after this"},
    {"API_DRAIN_TIMEOUT_SECONDS", "10", "On SIGTERM/SIGINT, in-flight work is awaited at most this long"},
    {"API_KEY", "",
     "Private key for GET /customers (x-aiqfome-api-key); dev default dev-api-key, ENV=prod needs >= 32 bytes"},
    {"JWT_SECRET_KEY", "", "HS256 signing secret of the tokens; dev-only default, ENV=prod needs >= 32 bytes"},
    {"JWT_EXPIRE_DAYS", "2", "Access-token lifetime in days (decimals allowed)"},
    {"REFRESH_TOKEN_EXPIRE_DAYS", "30", "Refresh-token lifetime in days (decimals allowed)"},
    {"AUTH_CACHE_TTL_SECONDS", "300",
     "How long an instance trusts a token-not-revoked answer, only while its change feed is live (0: ask every time)"},
    {"READ_CACHE_BYTES", "16777216",
     "Bytes of memory for customer records and favorites pages answered without the database, only while the "
     "change feed is live (0: off)"},
    {"PAGINATION_PER_PAGE_LIMIT", "200", "Largest per_page accepted on paged routes"},
    {"PRODUCT_CATALOG_API_BASE_URL", "https://fakestoreapi.com", "The product catalog (http or https)"},
    {"PRODUCT_CATALOG_API_TIMEOUT_LIMIT", "5.0", "Seconds allowed per catalog attempt"},
    {"PRODUCT_CATALOG_API_MAX_RETRIES", "3", "Retries on timeouts, resets, 429 and 5xx"},
    {"PRODUCT_CATALOG_API_MAX_CONCURRENCY", "10", "Catalog calls in flight at most"},
    {"PRODUCT_CATALOG_BACKOFF_BASE_SECONDS", "1", "First retry delay (doubles each retry, with jitter)"},
    {"PRODUCT_CATALOG_BACKOFF_CAP_SECONDS", "4", "Largest retry delay"},
    {"PRODUCT_CATALOG_WARMUP", "true", "Warm the product cache with one GET /products at start and periodically"},
    {"PRODUCT_CATALOG_WARM_INTERVAL_MINUTES", "10", "Minutes between warm-ups (0: at start only)"},
    {"PRODUCT_CACHE_SOFT_TTL_MINUTES", "5", "Cached products younger than this are served as is (decimals allowed)"},
    {"PRODUCT_CACHE_HARD_TTL_MINUTES", "30", "Older than soft: served and refreshed; older than this: fetched first"},
    {"DATABASE_URL", "", "sqlite:<path> or postgresql://user:pass@host:port/db (default: sqlite:./data/favorites.db)"},
    {"DATABASE_DIALECT", "sqlite",
     "The reference's way to choose the database: sqlite or postgresql (with DATABASE_HOST...)"},
    {"DATABASE_HOST", "localhost", "PostgreSQL host when DATABASE_DIALECT=postgresql"},
    {"DATABASE_PORT", "5432", "PostgreSQL port when DATABASE_DIALECT=postgresql"},
    {"DATABASE_USER", "postgres", "PostgreSQL user when DATABASE_DIALECT=postgresql"},
    {"DATABASE_PASSWORD", "", "PostgreSQL password when DATABASE_DIALECT=postgresql"},
    {"DATABASE_NAME", "favorites", "PostgreSQL database when DATABASE_DIALECT=postgresql"},
    {"DATABASE_POOL_SIZE", "5", "PostgreSQL connections (SQLite: worker connections, at most one per core)"},
    {"DATABASE_READ_URL", "",
     "PostgreSQL standbys (multi-host allowed) that answer the customer and favorites GETs while the primary "
     "cannot be reached (default: none)"},
    {"LOG_LEVEL", "info", "debug, info, warning, error or critical"},
    {"CORS_ALLOW_ORIGINS", "*", "Comma-separated origins allowed by CORS (* for any)"},
    {"PASSWORD_HASH_WORKERS", "", "argon2id workers, 64 MiB each (default: the number of cores)"},
    {"PASSWORD_HASH_QUEUE_LIMIT", "64", "Sign-ins waiting for a hash worker; past it 503 server_busy"},
    {"DATABASE_STATEMENT_TIMEOUT_SECONDS", "10",
     "Deadline of every database statement (decimals allowed); past it 503 database_unavailable"},
    {"PRODUCT_CATALOG_REQUEST_DEADLINE_SECONDS", "10",
     "The longest one request waits on the catalog, queueing included; then 503 catalog_unavailable"},
    {"PRODUCT_CACHE_MISSING_TTL_MINUTES", "5",
     "A product the catalog said does not exist answers 404 without a call this long (0: off)"},
    {"PRODUCT_CATALOG_BREAKER_FAILURES", "5",
     "Consecutive failed lookups that open the catalog circuit breaker (0: off)"},
    {"PRODUCT_CATALOG_BREAKER_OPEN_SECONDS", "30",
     "How long an open breaker answers 503 at once before one probe call"},
    {"RATE_LIMIT_PER_SECOND", "10", "Token-bucket rate limit per client address: tokens added a second"},
    {"RATE_LIMIT_BURST", "0", "Token-bucket rate limit per client address: the bucket size (0: no rate limit)"},
    {"TRUSTED_PROXIES", "",
     "Comma-separated proxy addresses/CIDRs whose X-Forwarded-For names the client (default: none)"},
    {"SIGN_IN_MAX_FAILURES", "10",
     "Failed sign-ins per email and client address within the window; past it 429 too_many_attempts (0: off)"},
    {"SIGN_IN_MAX_FAILURES_PER_EMAIL", "100",
     "Failed sign-ins per email from all addresses within the window; past it 429 too_many_attempts (0: off)"},
    {"SIGN_IN_FAILURE_WINDOW_MINUTES", "15", "The window failed sign-ins are counted in (decimals allowed)"},
    {"DATABASE_CONNECT_TIMEOUT_SECONDS", "2",
     "PostgreSQL: each host's connect deadline (decimals allowed); past it the next host listed is tried"},
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

double number(const reader& env, const std::string& name, double def, double min, double max) {
  auto v = get(env, name);
  if (!v) return def;
  std::string s = trim(*v);
  double out = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  if (ec != std::errc{} || p != s.data() + s.size() || !std::isfinite(out) || out < min || out > max) {
    env.bad(name, *v, "expected a number from " + std::to_string(min) + " to " + std::to_string(max));
    return def;
  }
  return out;
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
  std::string host = text(env, "DATABASE_HOST", "localhost");
  auto port = integer(env, "DATABASE_PORT", 5432, 1, 65535);
  std::string user = text(env, "DATABASE_USER", "postgres");
  std::string pass = text(env, "DATABASE_PASSWORD", "");
  std::string name = text(env, "DATABASE_NAME", "favorites");
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

constexpr const char* dev_api_key = "dev-api-key";
constexpr const char* dev_jwt_secret = "dev-jwt-secret-change-me";

}  // namespace

config load_config(const env_map& raw) {
  const reader env(raw);
  config c;
  c.env = text(env, "ENV", "dev");
  if (c.env != "dev" && c.env != "prod") env.bad("ENV", c.env, "expected dev or prod");
  c.api_port = static_cast<int>(integer(env, "API_PORT", 8080, 0, 65535));
  c.per_page_limit = integer(env, "PAGINATION_PER_PAGE_LIMIT", 200, 1, 100000);

  c.catalog_base_url = text(env, "PRODUCT_CATALOG_API_BASE_URL", c.catalog_base_url);
  {
    auto u = boost::urls::parse_uri(c.catalog_base_url);
    if (!u || (u->scheme() != "http" && u->scheme() != "https") || u->host().empty())
      env.bad("PRODUCT_CATALOG_API_BASE_URL", c.catalog_base_url, "expected an http:// or https:// URL");
  }
  c.catalog_timeout_s = number(env, "PRODUCT_CATALOG_API_TIMEOUT_LIMIT", 5.0, 0.001, 3600);
  c.catalog_max_retries = static_cast<int>(integer(env, "PRODUCT_CATALOG_API_MAX_RETRIES", 3, 0, 20));
  c.catalog_max_concurrency = static_cast<int>(integer(env, "PRODUCT_CATALOG_API_MAX_CONCURRENCY", 10, 1, 10000));
  c.cache_soft_ttl_s = 60 * number(env, "PRODUCT_CACHE_SOFT_TTL_MINUTES", 5, 0, 1e7);
  c.cache_hard_ttl_s = 60 * number(env, "PRODUCT_CACHE_HARD_TTL_MINUTES", 30, 0, 1e7);
  if (c.cache_hard_ttl_s < c.cache_soft_ttl_s)
    env.bad("PRODUCT_CACHE_HARD_TTL_MINUTES", text(env, "PRODUCT_CACHE_HARD_TTL_MINUTES", "30"),
            "must not be below PRODUCT_CACHE_SOFT_TTL_MINUTES");
  c.catalog_backoff_base_s = number(env, "PRODUCT_CATALOG_BACKOFF_BASE_SECONDS", 1.0, 0, 600);
  c.catalog_backoff_cap_s = number(env, "PRODUCT_CATALOG_BACKOFF_CAP_SECONDS", 4.0, 0, 3600);
  bool warm = boolean(env, "PRODUCT_CATALOG_WARMUP", true);
  c.catalog_warm_interval_s = warm ? 60 * number(env, "PRODUCT_CATALOG_WARM_INTERVAL_MINUTES", 10, 0, 1e7) : -1;

  c.api_key = text(env, "API_KEY", dev_api_key);
  c.jwt_secret = text(env, "JWT_SECRET_KEY", dev_jwt_secret);
  c.jwt_expire_days = number(env, "JWT_EXPIRE_DAYS", 2, 1e-6, 3650);
  c.refresh_expire_days = number(env, "REFRESH_TOKEN_EXPIRE_DAYS", 30, 1e-6, 3650);
  c.db_pool_size = static_cast<int>(integer(env, "DATABASE_POOL_SIZE", 5, 1, 1000));
  c.db_statement_timeout_s = number(env, "DATABASE_STATEMENT_TIMEOUT_SECONDS", 10, 0.01, 3600);

  if (auto url = get(env, "DATABASE_URL")) {
    c.database_url = trim(*url);
    if (c.database_url.rfind("postgresql://", 0) == 0 || c.database_url.rfind("postgres://", 0) == 0)
      c.database_is_postgres = true;
    else if (c.database_url.rfind("sqlite:", 0) != 0 || c.database_url.size() == 7)
      env.bad("DATABASE_URL", c.database_url, "expected sqlite:<path> or postgresql://...");
  } else {
    std::string dialect = text(env, "DATABASE_DIALECT", "sqlite");
    if (dialect == "postgresql" || dialect == "postgres") {
      c.database_url = pg_uri_from_parts(env);
      c.database_is_postgres = true;
    } else if (dialect == "sqlite") {
      c.database_url = "sqlite:./data/favorites.db";
    } else {
      env.bad("DATABASE_DIALECT", dialect, "expected sqlite or postgresql");
    }
  }
  c.db_connect_timeout_s = number(env, "DATABASE_CONNECT_TIMEOUT_SECONDS", 2, 0.01, 3600);
  {
    const std::string mode = text(env, "DATABASE_POOL_MODE", "session");
    if (mode != "session" && mode != "transaction")
      env.bad("DATABASE_POOL_MODE", mode, "expected session or transaction");
    c.db_transaction_pooler = mode == "transaction";
  }
  if (auto url = get(env, "DATABASE_LISTEN_URL")) {
    c.database_listen_url = trim(*url);
    if (c.database_listen_url.rfind("postgresql://", 0) != 0 && c.database_listen_url.rfind("postgres://", 0) != 0)
      env.bad("DATABASE_LISTEN_URL", "<hidden>", "expected postgresql://...");
  }
  auto require_ssl = [&](std::string& url) {
    if (c.database_is_postgres && c.env == "prod" && url.find("sslmode=") == std::string::npos)
      url += (url.find('?') == std::string::npos ? "?" : "&") + std::string("sslmode=require");
  };
  require_ssl(c.database_url);
  if (c.database_listen_url.empty())
    c.database_listen_url = c.database_url;
  else
    require_ssl(c.database_listen_url);

  // Contract §11 "Reads through a failover". The value is never echoed: it may hold a password.
  if (auto url = get(env, "DATABASE_READ_URL")) {
    std::string read = trim(*url);
    if (read.rfind("postgresql://", 0) != 0 && read.rfind("postgres://", 0) != 0) {
      env.bad("DATABASE_READ_URL", "...", "expected postgresql://...");
    } else if (!c.database_is_postgres) {
      env.bad("DATABASE_READ_URL", "...", "needs a PostgreSQL DATABASE_URL");
    } else {
      auto add = [&read](const char* param) {
        read += (read.find('?') == std::string::npos ? "?" : "&") + std::string(param);
      };
      if (c.env == "prod" && read.find("sslmode=") == std::string::npos) add("sslmode=require");
      // Any server will do for reads (a standby, or a primary listed there): never read-write only.
      if (read.find("target_session_attrs=") == std::string::npos) add("target_session_attrs=any");
      c.database_read_url = std::move(read);
    }
  }

  c.log_level = text(env, "LOG_LEVEL", "info");
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
  c.api_threads = static_cast<int>(integer(env, "API_THREADS", cores, 1, 256));
  c.hash_workers = static_cast<int>(integer(env, "PASSWORD_HASH_WORKERS", cores, 1, 256));
  c.hash_queue_limit = static_cast<int>(integer(env, "PASSWORD_HASH_QUEUE_LIMIT", 64, 0, 100000));
  c.body_limit = integer(env, "API_BODY_LIMIT_BYTES", 64 * 1024, 1024, 64 * 1024 * 1024);
  c.header_timeout_s = number(env, "API_HEADER_TIMEOUT_SECONDS", 10, 0.1, 3600);
  c.request_timeout_s = number(env, "API_REQUEST_TIMEOUT_SECONDS", 30, 0.1, 3600);
  c.max_connections = static_cast<int>(integer(env, "API_MAX_CONNECTIONS", 10000, 1, 1000000));
  c.rate_limit_per_second = number(env, "RATE_LIMIT_PER_SECOND", 10, 0.001, 1e6);
  c.rate_limit_burst = static_cast<double>(integer(env, "RATE_LIMIT_BURST", 0, 0, 1000000));
  {
    auto proxies = text(env, "TRUSTED_PROXIES", "");
    auto parsed = parse_cidrs(proxies);
    if (!parsed)
      env.bad("TRUSTED_PROXIES", proxies, "expected comma-separated addresses or CIDRs (10.0.0.0/8, ::1)");
    else
      c.trusted_proxies = std::move(*parsed);
  }
  c.idle_timeout_s = number(env, "API_IDLE_TIMEOUT_SECONDS", 60, 0.1, 3600);
  c.drain_timeout_s = number(env, "API_DRAIN_TIMEOUT_SECONDS", 10, 0, 3600);
  c.auth_cache_ttl_s = number(env, "AUTH_CACHE_TTL_SECONDS", 300, 0, 3600);
  c.read_cache_bytes = integer(env, "READ_CACHE_BYTES", 16 * 1024 * 1024, 0, std::int64_t{1} << 40);
  c.sign_in_max_failures = static_cast<int>(integer(env, "SIGN_IN_MAX_FAILURES", 10, 0, 1000000));
  c.sign_in_max_failures_per_email = static_cast<int>(integer(env, "SIGN_IN_MAX_FAILURES_PER_EMAIL", 100, 0, 1000000));
  c.sign_in_failure_window_s = 60 * number(env, "SIGN_IN_FAILURE_WINDOW_MINUTES", 15, 0.001, 1e6);
  c.catalog_request_deadline_s = number(env, "PRODUCT_CATALOG_REQUEST_DEADLINE_SECONDS", 10, 0.001, 3600);
  c.cache_missing_ttl_s = 60 * number(env, "PRODUCT_CACHE_MISSING_TTL_MINUTES", 5, 0, 1e7);
  c.catalog_breaker_failures = static_cast<int>(integer(env, "PRODUCT_CATALOG_BREAKER_FAILURES", 5, 0, 1000000));
  c.catalog_breaker_open_s = number(env, "PRODUCT_CATALOG_BREAKER_OPEN_SECONDS", 30, 0, 86400);

  // Development secrets: fine on loopback, never facing a network unless API_HOST says so (§8).
  if (c.api_key == dev_api_key) c.default_secrets.push_back("API_KEY");
  if (c.jwt_secret == dev_jwt_secret) c.default_secrets.push_back("JWT_SECRET_KEY");
  c.host = text(env, "API_HOST", c.env == "dev" && !c.default_secrets.empty() ? "127.0.0.1" : "0.0.0.0");

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
