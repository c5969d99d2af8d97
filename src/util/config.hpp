// Configuration from the environment and an optional .env file (contract §6).
#pragma once
#include <chrono>
#include <cstdint>
#include <map>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "util/cidr.hpp"

namespace fav::util {

struct config;

// A time the configuration holds: parsed once from its variable's unit, then used as is (timers,
// deadlines; to_micros() for the microsecond time stamps of core::micros).
using duration = std::chrono::steady_clock::duration;
constexpr std::int64_t to_micros(duration d) {
  return std::chrono::duration_cast<std::chrono::microseconds>(d).count();
}

// How a variable's text is read. The duration kinds (seconds, minutes, days: the variable's unit)
// allow decimals and fill a `duration` member.
enum class config_kind { text, boolean, integer, number, seconds, minutes, days };

// The `config` member a row fills; monostate when load_config's code reads the variable (special rules).
using config_member = std::variant<std::monostate, int config::*, std::int64_t config::*, double config::*,
                                   std::string config::*, duration config::*>;

// One variable the service reads: THE table of them is `config_variables()` (config.cpp), the one place
// its default and bounds are written; .env.example and the README's table are tested against it.
// `default_value` is what .env.example writes (empty when computed, e.g. "number of cores", which the
// description then says).
struct config_variable {
  std::string_view name;
  std::string_view default_value;
  std::string_view description;
  config_kind kind = config_kind::text;
  double min = 0, max = 0;  // bounds of integers and numbers (in the variable's own unit)
  config_member member{};
  bool read_by_code = false;  // has a member, but load_config reads it only under a condition
};

// One bad variable: its name and one line saying what is wrong (a secret's value never appears).
struct config_problem {
  std::string variable;
  std::string message;
};

// Every bad value found at once; what() joins their lines with "; " (one line for one problem).
struct config_error : std::runtime_error {
  explicit config_error(std::vector<config_problem> p);
  std::vector<config_problem> problems;
};

// Members filled from the table start at its defaults (the constructor); the others say theirs here.
struct config {
  config();
  // Reference names.
  std::string env{};  // dev | prod
  int api_port{};
  std::int64_t per_page_limit{};
  std::string catalog_base_url{};
  duration catalog_timeout{};
  int catalog_max_retries{};
  int catalog_max_concurrency{};
  duration cache_soft_ttl{};
  duration cache_hard_ttl{};
  std::string api_key;
  std::string jwt_secret;
  duration jwt_expire{};
  int db_pool_size{};
  // The store: "sqlite:<path>" or a postgresql:// URI (built from DATABASE_* when given so).
  std::string database_url;
  bool database_is_postgres = false;
  // Contract §11.
  duration db_connect_timeout{};       // DATABASE_CONNECT_TIMEOUT_SECONDS: each host's connect deadline
  std::string database_listen_url;     // DATABASE_LISTEN_URL: the change feed's connection (default database_url)
  bool db_transaction_pooler = false;  // DATABASE_POOL_MODE=transaction
  // DATABASE_READ_URL: standbys for reads while the primary cannot be reached; empty: none.
  std::string database_read_url;

  // Ours.
  std::string host = "0.0.0.0";  // API_HOST; 127.0.0.1 when unset with development secrets
  std::string log_level{};
  std::vector<std::string> cors_origins{"*"};
  int api_threads = 0;  // 0 → number of cores
  std::int64_t body_limit{};
  duration header_timeout{};   // a request's headers, from its first byte
  duration request_timeout{};  // the whole request, from its first byte
  int max_connections{};       // lowered at start to fit RLIMIT_NOFILE
  // Open connections per client address (§8 fair shares).
  int max_connections_per_client{};
  double rate_limit_per_second{};
  double rate_limit_burst{};                 // 0: rate limits off
  std::vector<util::cidr> trusted_proxies;   // TRUSTED_PROXIES
  std::vector<std::string> default_secrets;  // ENV=dev: names of secrets left at their defaults
  duration idle_timeout{};                   // keep-alive connection with no request
  duration drain_timeout{};
  int hash_workers = 0;  // 0 → number of cores
  int hash_queue_limit{};
  int hash_queue_per_client{};  // §8 "Fair shares": places one client address may hold
  duration refresh_expire{};
  int max_sign_ins_per_customer{};    // live sign-ins a customer holds at most (contract §8 "Token rows")
  duration sign_in_sweep_interval{};  // expired sign-ins are deleted this often
  duration catalog_warm_interval{};   // 0 disables the periodic warm-up; negative: no warm-up at all
  duration catalog_backoff_base{};    // 1 s, 2 s, 4 s cap (contract §4)
  duration catalog_backoff_cap{};
  duration auth_cache_ttl{};        // token-check cache lifetime; kept coherent by the change feed
  duration db_statement_timeout{};  // every database statement's deadline (contract §5)
  std::int64_t read_cache_bytes{};  // hot-GET answers kept in memory (0 turns it off)

  // Contract §8 "Sign-in guard" and "Catalog admission".
  int sign_in_max_failures{};            // per email and client address (0 turns it off)
  int sign_in_max_failures_per_email{};  // per email, every address (0 turns it off)
  duration sign_in_failure_window{};
  duration catalog_request_deadline{};  // one favoriting request's whole wait on the catalog
  duration cache_missing_ttl{};         // "no such product" remembered this long (0 turns it off)
  int catalog_breaker_failures{};       // consecutive failed lookups that open the breaker (0: off)
  duration catalog_breaker_open{};
  int catalog_max_concurrency_per_customer{};  // §8 "Fair shares": one customer's lookups at once

  std::int64_t jwt_expire_seconds() const { return std::chrono::round<std::chrono::seconds>(jwt_expire).count(); }
};

// Builds the configuration from `env` (the process environment merged over .env).
// Throws config_error naming every bad variable.
config load_config(const std::map<std::string, std::string>& env);

// The KEY=VALUE lines of a `.env` text: `#` comments, optional `export`, optional quotes.
std::map<std::string, std::string> parse_dotenv(std::string_view text);
// Every variable the service reads, in the order .env.example lists them.
std::span<const config_variable> config_variables();

// A variable in `env` that is not in the table but looks like ours (a known prefix such as API_,
// DATABASE_, PRODUCT_, JWT_), with the closest known name when one is near (a likely typo).
struct unknown_variable {
  std::string name;
  std::string suggestion;  // empty when nothing is close
};
std::vector<unknown_variable> unknown_variables(const std::map<std::string, std::string>& env);

// `text` with every password that `url` holds (its userinfo's, a `password=` parameter's, raw or
// percent-decoded), and every one a URL inside `text` holds, replaced by "***": for any message about
// a database URL, even a malformed one that libpq quotes back (contract §7).
std::string hide_passwords(std::string_view text, std::string_view url);

// The process environment merged over the `.env` file in `dir` (real environment wins).
std::map<std::string, std::string> read_environment(const std::string& dotenv_path = ".env");

}  // namespace fav::util
