// Contract §6: names, defaults, decimals, one clear line naming a bad variable, ENV=prod rules.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <iterator>
#include <set>

#include "util/config.hpp"

using fav::util::config_error;
using fav::util::load_config;
using env = std::map<std::string, std::string>;
using namespace std::chrono_literals;

TEST(Config, ReferenceDefaults) {
  auto c = load_config({});
  EXPECT_EQ(c.env, "dev");
  EXPECT_EQ(c.api_port, 8080);
  EXPECT_EQ(c.per_page_limit, 200);
  EXPECT_EQ(c.catalog_base_url, "https://fakestoreapi.com");
  EXPECT_EQ(c.catalog_timeout, 5s);
  EXPECT_EQ(c.catalog_max_retries, 3);
  EXPECT_EQ(c.catalog_max_concurrency, 10);
  EXPECT_EQ(c.cache_soft_ttl, 5min);
  EXPECT_EQ(c.cache_hard_ttl, 30min);
  EXPECT_EQ(c.jwt_expire, 48h);
  EXPECT_EQ(c.jwt_expire_seconds(), 172800);
  EXPECT_EQ(c.db_pool_size, 5);
  EXPECT_EQ(c.database_url, "sqlite:./data/favorites.db");
  EXPECT_FALSE(c.database_is_postgres);
}

TEST(Config, DecimalTimes) {
  auto c = load_config(env{{"PRODUCT_CACHE_SOFT_TTL_MINUTES", "0.05"},
                           {"PRODUCT_CACHE_HARD_TTL_MINUTES", "0.5"},
                           {"PRODUCT_CATALOG_API_TIMEOUT_LIMIT", "0.25"},
                           {"JWT_EXPIRE_DAYS", "0.5"}});
  EXPECT_EQ(c.cache_soft_ttl, 3s);
  EXPECT_EQ(c.cache_hard_ttl, 30s);
  EXPECT_EQ(c.catalog_timeout, 250ms);
  EXPECT_EQ(c.jwt_expire_seconds(), 43200);
}

// "A bad value stops the start with one clear line naming the variable."
TEST(Config, BadValueNamesTheVariable) {
  for (auto [name, value] :
       std::vector<std::pair<std::string, std::string>>{{"API_PORT", "abc"},
                                                        {"API_PORT", "70000"},
                                                        {"PAGINATION_PER_PAGE_LIMIT", "0"},
                                                        {"PRODUCT_CACHE_SOFT_TTL_MINUTES", "x"},
                                                        {"PRODUCT_CATALOG_API_TIMEOUT_LIMIT", "-1"},
                                                        {"PRODUCT_CATALOG_API_MAX_RETRIES", "1.5"},
                                                        {"ENV", "staging"},
                                                        {"LOG_LEVEL", "loud"},
                                                        {"DATABASE_URL", "mysql://x"},
                                                        {"PRODUCT_CATALOG_API_BASE_URL", "ftp://x"},
                                                        {"JWT_EXPIRE_DAYS", "nan"}}) {
    try {
      load_config(env{{name, value}});
      ADD_FAILURE() << name << "=" << value << " was accepted";
    } catch (const config_error& e) {
      std::string what = e.what();
      EXPECT_NE(what.find(name), std::string::npos) << what;
      EXPECT_EQ(what.find('\n'), std::string::npos) << what;
    }
  }
}

TEST(Config, HardTtlBelowSoftIsRejected) {
  EXPECT_THROW(load_config(env{{"PRODUCT_CACHE_SOFT_TTL_MINUTES", "10"}, {"PRODUCT_CACHE_HARD_TTL_MINUTES", "5"}}),
               config_error);
}

// "With ENV=prod the service refuses to start while API_KEY or JWT_SECRET_KEY are unset,
// defaults, or shorter than 32 bytes."
TEST(Config, ProdNeedsStrongSecrets) {
  std::string strong(32, 'k');
  EXPECT_THROW(load_config(env{{"ENV", "prod"}}), config_error);
  EXPECT_THROW(load_config(env{{"ENV", "prod"}, {"API_KEY", strong}}), config_error);
  EXPECT_THROW(load_config(env{{"ENV", "prod"}, {"JWT_SECRET_KEY", strong}}), config_error);
  EXPECT_THROW(load_config(env{{"ENV", "prod"}, {"API_KEY", strong}, {"JWT_SECRET_KEY", std::string(31, 's')}}),
               config_error);
  try {
    load_config(env{{"ENV", "prod"}, {"API_KEY", "short-secret"}, {"JWT_SECRET_KEY", strong}});
  } catch (const config_error& e) {
    EXPECT_EQ(std::string(e.what()).find("short-secret"), std::string::npos) << "secret leaked into the message";
  }
  auto c = load_config(env{{"ENV", "prod"}, {"API_KEY", strong}, {"JWT_SECRET_KEY", std::string(40, 's')}});
  EXPECT_EQ(c.env, "prod");
}

TEST(Config, PostgresFromReferenceVariables) {
  auto c = load_config(env{{"DATABASE_DIALECT", "postgresql"},
                           {"DATABASE_HOST", "db"},
                           {"DATABASE_PORT", "5433"},
                           {"DATABASE_USER", "app"},
                           {"DATABASE_PASSWORD", "p@ss word"},
                           {"DATABASE_NAME", "fav"}});
  EXPECT_TRUE(c.database_is_postgres);
  EXPECT_EQ(c.database_url, "postgresql://app:p%40ss%20word@db:5433/fav");
  // An IPv6 host goes in brackets (bare or already bracketed); a '/' in the name is encoded.
  for (const char* host : {"::1", "[::1]"}) {
    auto v6 = load_config(env{{"DATABASE_DIALECT", "postgresql"},
                              {"DATABASE_HOST", host},
                              {"DATABASE_USER", "app"},
                              {"DATABASE_NAME", "a/b"}});
    EXPECT_EQ(v6.database_url, "postgresql://app@[::1]:5432/a%2Fb") << host;
  }
  auto prod = load_config(env{{"ENV", "prod"},
                              {"API_KEY", std::string(32, 'k')},
                              {"JWT_SECRET_KEY", std::string(32, 'j')},
                              {"DATABASE_URL", "postgresql://u:p@h:5432/d"}});
  EXPECT_EQ(prod.database_url, "postgresql://u:p@h:5432/d?sslmode=verify-full");
}

// Contract §8 "Transport to the database": with ENV=prod, a TCP connection to a host other than
// loopback gets sslmode=verify-full unless DATABASE_URL names an sslmode itself.
TEST(Config, ProdPostgresVerifiesTheServerOffLoopback) {
  auto url_in = [](const std::string& env_name, const std::string& url) {
    return load_config(env{{"ENV", env_name},
                           {"API_KEY", std::string(32, 'k')},
                           {"JWT_SECRET_KEY", std::string(32, 'j')},
                           {"DATABASE_URL", url}})
        .database_url;
  };
  const std::pair<const char*, const char*> rewritten[] = {
      {"postgresql://u:p@db.example/d", "postgresql://u:p@db.example/d?sslmode=verify-full"},
      {"postgresql://u:p@10.0.0.5:5432/d?connect_timeout=3",
       "postgresql://u:p@10.0.0.5:5432/d?connect_timeout=3&sslmode=verify-full"},
      {"postgresql://u:p@[2001:db8::1]/d", "postgresql://u:p@[2001:db8::1]/d?sslmode=verify-full"},
      {"postgresql://u@localhost,db2.example/d", "postgresql://u@localhost,db2.example/d?sslmode=verify-full"},
      {"postgresql://u@localhost/d?hostaddr=10.1.2.3",
       "postgresql://u@localhost/d?hostaddr=10.1.2.3&sslmode=verify-full"},
  };
  for (auto [in, out] : rewritten) {
    EXPECT_EQ(url_in("prod", in), out) << in;
    EXPECT_EQ(url_in("dev", in), in) << "ENV=dev leaves the URL alone: " << in;
  }
  const char* untouched[] = {
      "postgresql://u:p@db.example/d?sslmode=require",  // the URL's own choice
      "postgresql://u:p@db.example/d?sslmode=disable",
      "postgresql://u:p@localhost/d",
      "postgresql://u:p@127.0.0.1:5432/d",
      "postgresql://u:p@127.8.9.1/d",
      "postgresql://u:p@[::1]/d",
      "postgresql:///d?host=/var/run/postgresql",  // a Unix socket
      "postgresql:///d",                           // libpq's default socket
      "postgresql://u@db.example/d?host=/tmp",     // host= wins over the URI's host
  };
  for (auto in : untouched) EXPECT_EQ(url_in("prod", in), in) << in;
}

// Contract §7: "no passwords (a database URL's included, even a malformed one)". And what libpq
// would refuse (serve refuses it) stops check-config too.
TEST(Config, MalformedDatabaseUrlsAreRefusedWithoutTheirPassword) {
  const char* bad[] = {
      "postgresq://u:S3cretPW@h/db",      // a mistyped scheme
      "postgresql://u:S3cretPW@[::1/db",  // libpq quotes this one back
      "postgresql://u:S3cretPW@h/db?sslmode=bogus",
      "postgresql://u:S3cretPW@h/db?bogus=1",
      "postgresql://u:S3cret%zzPW@h/db",  // a bad percent-escape, quoted back raw
      "postgresql://u@h/db?password=S3cretPW&sslmode=nope",
      "postgresql://u:S3cretPW@h:99999/db",
      "host=h password=S3cretPW",
  };
  for (auto url : bad) {
    try {
      load_config(env{{"DATABASE_URL", url}});
      ADD_FAILURE() << "accepted: " << url;
    } catch (const fav::util::config_error& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find("DATABASE_URL"), std::string::npos) << what;
      EXPECT_EQ(what.find("S3cret"), std::string::npos) << "password leaked: " << what;
      EXPECT_EQ(what.find("PW@"), std::string::npos) << "password leaked: " << what;
    }
  }
}

TEST(Config, HidePasswords) {
  using fav::util::hide_passwords;
  EXPECT_EQ(hide_passwords("bad: \"postgresql://u:pw@[::1/db\"", "postgresql://u:pw@[::1/db"),
            "bad: \"postgresql://u:***@[::1/db\"");
  EXPECT_EQ(hide_passwords("x postgres://a:b%40c@h/d y", ""), "x postgres://a:***@h/d y");
  EXPECT_EQ(hide_passwords("token b@c", "postgres://a:b%40c@h/d"), "token ***");  // decoded too
  EXPECT_EQ(hide_passwords("host=h password='p w' port=1", "host=h password='p w'"), "host=h password='***' port=1");
  EXPECT_EQ(hide_passwords("nothing secret", "postgresql://u@h/db"), "nothing secret");
}

// A password of "*" repeated in the text: replacing in place tripled the text per copy (a fuzzer
// input took 12 s and 545 MB). Hiding works on the original text, so the answer stays small,
// adjacent secrets collapse into one "***", and no secret byte survives.
TEST(Config, HidePasswordsStaysLinearWhenAPasswordIsAStar) {
  using fav::util::hide_passwords;
  std::string text;
  for (int i = 0; i < 3; ++i) text += "PASSWORD=* postgres://u:*@h/d ";
  const std::string out = hide_passwords(text, "postgres://u:*@h/d password=*");
  EXPECT_LE(out.size(), 3 * text.size());
  for (auto p = out.find('*'); p != std::string::npos; p = out.find('*', p + 3))
    ASSERT_TRUE(out.compare(p, 3, "***") == 0 && (p + 3 == out.size() || out[p + 3] != '*'))
        << "a star outside a lone \"***\" at " << p;
  EXPECT_EQ(out.substr(0, 31), "PASSWORD=*** postgres://u:***@h");
  EXPECT_EQ(hide_passwords("a:aaaa:b", "postgres://x:aa@h"), "a:***:b");  // overlapping: one run
  EXPECT_EQ(hide_passwords("pw1pw2 and pw2", "host=h password=pw1 x://u:pw2@h"), "*** and ***");
}

// Contract §11: per-host connect deadline, the feed's own URL, the pooler mode.
TEST(Config, HighAvailabilityVariables) {
  auto d = load_config(env{{"DATABASE_URL", "postgresql://u:p@h1:5432,h2:5432/d"}});
  EXPECT_EQ(d.db_connect_timeout, 2s);
  EXPECT_EQ(d.database_listen_url, d.database_url);
  EXPECT_FALSE(d.db_transaction_pooler);
  auto c = load_config(env{{"ENV", "prod"},
                           {"API_KEY", std::string(32, 'k')},
                           {"JWT_SECRET_KEY", std::string(32, 'j')},
                           {"DATABASE_URL", "postgresql://u:p@bouncer:6432/d"},
                           {"DATABASE_LISTEN_URL", "postgresql://u:p@db:5432/d"},
                           {"DATABASE_POOL_MODE", "transaction"},
                           {"DATABASE_CONNECT_TIMEOUT_SECONDS", "0.5"}});
  EXPECT_EQ(c.db_connect_timeout, 500ms);
  // §8 "Transport to the database": off loopback, in prod, verify-full like DATABASE_URL.
  EXPECT_EQ(c.database_listen_url, "postgresql://u:p@db:5432/d?sslmode=verify-full");
  EXPECT_TRUE(c.db_transaction_pooler);
  try {
    load_config(env{{"DATABASE_POOL_MODE", "statement"},
                    {"DATABASE_LISTEN_URL", "mysql://u:secret@h/d"},
                    {"DATABASE_CONNECT_TIMEOUT_SECONDS", "0"}});
    ADD_FAILURE() << "bad values were accepted";
  } catch (const config_error& e) {
    ASSERT_EQ(e.problems.size(), 3u) << e.what();
    EXPECT_EQ(std::string(e.what()).find("secret"), std::string::npos) << "a password reached the message";
  }
}

// Contract §11 "Reads through a failover": DATABASE_READ_URL names PostgreSQL servers that take
// reads from any server listed (never read-write only), beside a PostgreSQL DATABASE_URL.
TEST(Config, ReadUrlForStandbys) {
  EXPECT_EQ(load_config({}).database_read_url, "");
  auto c = load_config(
      env{{"DATABASE_URL", "postgresql://u:p@h1:5432/d"}, {"DATABASE_READ_URL", "postgresql://u:p@h2:5432,h3:5432/d"}});
  EXPECT_EQ(c.database_read_url, "postgresql://u:p@h2:5432,h3:5432/d?target_session_attrs=any");
  auto named = load_config(env{{"DATABASE_URL", "postgresql://u:p@h1:5432/d"},
                               {"DATABASE_READ_URL", "postgresql://u:p@h2/d?target_session_attrs=prefer-standby"}});
  EXPECT_EQ(named.database_read_url, "postgresql://u:p@h2/d?target_session_attrs=prefer-standby");
  auto prod = load_config(env{{"ENV", "prod"},
                              {"API_KEY", std::string(32, 'k')},
                              {"JWT_SECRET_KEY", std::string(32, 'j')},
                              {"DATABASE_URL", "postgresql://u:p@h1:5432/d"},
                              {"DATABASE_READ_URL", "postgresql://u:p@h2:5432/d"}});
  // §8 "Transport to the database": off loopback, in prod, the standbys are verified like the primary.
  EXPECT_EQ(prod.database_read_url, "postgresql://u:p@h2:5432/d?sslmode=verify-full&target_session_attrs=any");
  // Not PostgreSQL, or beside SQLite: refused, naming the variable and never echoing the value.
  for (auto& e : {env{{"DATABASE_URL", "postgresql://u@h/d"}, {"DATABASE_READ_URL", "mysql://u:secret@h/d"}},
                  env{{"DATABASE_READ_URL", "postgresql://u:secret@h/d"}}}) {
    try {
      load_config(e);
      ADD_FAILURE() << "accepted";
    } catch (const config_error& err) {
      const std::string what = err.what();
      EXPECT_NE(what.find("DATABASE_READ_URL"), std::string::npos) << what;
      EXPECT_EQ(what.find("secret"), std::string::npos) << what;
    }
  }
}

TEST(Config, SqliteUrlAndCors) {
  auto c = load_config(
      env{{"DATABASE_URL", "sqlite:/tmp/x.db"}, {"CORS_ALLOW_ORIGINS", "https://a.example, https://b.example"}});
  EXPECT_EQ(c.database_url, "sqlite:/tmp/x.db");
  ASSERT_EQ(c.cors_origins.size(), 2u);
  EXPECT_EQ(c.cors_origins[1], "https://b.example");
}

// Contract §8 variables and their defaults.
TEST(Config, HostileLoadDefaults) {
  auto c = load_config({});
  EXPECT_EQ(c.max_connections, 10000);
  EXPECT_EQ(c.header_timeout, 10s);
  EXPECT_EQ(c.request_timeout, 30s);
  EXPECT_DOUBLE_EQ(c.rate_limit_burst, 0);  // off
  EXPECT_TRUE(c.trusted_proxies.empty());
  auto t = load_config(env{{"TRUSTED_PROXIES", "10.0.0.0/8, ::1"},
                           {"RATE_LIMIT_BURST", "20"},
                           {"RATE_LIMIT_PER_SECOND", "2.5"},
                           {"API_MAX_CONNECTIONS", "50"}});
  ASSERT_EQ(t.trusted_proxies.size(), 2u);
  EXPECT_EQ(t.trusted_proxies[1].prefix, 128u);
  EXPECT_DOUBLE_EQ(t.rate_limit_burst, 20);
  EXPECT_DOUBLE_EQ(t.rate_limit_per_second, 2.5);
  EXPECT_EQ(t.max_connections, 50);
  EXPECT_THROW(load_config(env{{"TRUSTED_PROXIES", "10.0.0.0/40"}}), config_error);
}

// "With ENV=dev and a default JWT_SECRET_KEY or API_KEY, the service listens on 127.0.0.1
// unless API_HOST is set" — and ENV=prod accepts no example secret.
TEST(Config, SafeDevelopmentDefaults) {
  auto c = load_config({});
  EXPECT_EQ(c.host, "127.0.0.1");
  EXPECT_EQ(c.default_secrets, (std::vector<std::string>{"API_KEY", "JWT_SECRET_KEY"}));
  EXPECT_EQ(load_config(env{{"JWT_SECRET_KEY", "a-real-secret"}}).host, "127.0.0.1");  // API_KEY still default
  EXPECT_EQ(load_config(env{{"API_HOST", "0.0.0.0"}}).host, "0.0.0.0");
  auto real = load_config(env{{"API_KEY", "k"}, {"JWT_SECRET_KEY", "j"}});
  EXPECT_EQ(real.host, "0.0.0.0");
  EXPECT_TRUE(real.default_secrets.empty());
  std::string strong(40, 'x');
  EXPECT_NO_THROW(load_config(env{{"ENV", "prod"}, {"API_KEY", strong}, {"JWT_SECRET_KEY", strong}}));
  EXPECT_THROW(load_config(env{{"ENV", "prod"}, {"API_KEY", strong}, {"JWT_SECRET_KEY", strong + "-change-me"}}),
               config_error);
}

// check-config "reports every bad variable at once" — one problem per variable.
TEST(Config, EveryBadVariableAtOnce) {
  try {
    load_config(env{{"API_PORT", "abc"}, {"LOG_LEVEL", "loud"}, {"ENV", "staging"}, {"DATABASE_POOL_SIZE", "0"}});
    ADD_FAILURE() << "accepted";
  } catch (const config_error& e) {
    std::set<std::string> named;
    for (auto& p : e.problems) {
      named.insert(p.variable);
      EXPECT_NE(p.message.find(p.variable), std::string::npos) << p.message;
      EXPECT_EQ(p.message.find('\n'), std::string::npos) << p.message;
    }
    EXPECT_EQ(named, (std::set<std::string>{"API_PORT", "LOG_LEVEL", "ENV", "DATABASE_POOL_SIZE"}));
    EXPECT_EQ(e.problems.size(), 4u);
  }
}

// Unknown variables: "warns about unknown variables that look like ours (known prefixes)".
TEST(Config, UnknownVariablesThatLookLikeOurs) {
  auto unknown = fav::util::unknown_variables(env{{"API_PROT", "1"},
                                                  {"DATABASE_URLL", "x"},
                                                  {"JWT_SECRET", "x"},
                                                  {"PATH", "/bin"},
                                                  {"HOME", "/"},
                                                  {"API_PORT", "1"},
                                                  {"LANG", "C"},
                                                  {"XDG_RUNTIME_DIR", "/run"},
                                                  {"PRODUCT_CATALOG_NOPE_AT_ALL_XYZ", "1"}});
  std::map<std::string, std::string> got;
  for (auto& u : unknown) got[u.name] = u.suggestion;
  EXPECT_EQ(got, (std::map<std::string, std::string>{{"API_PROT", "API_PORT"},
                                                     {"DATABASE_URLL", "DATABASE_URL"},
                                                     {"JWT_SECRET", "JWT_SECRET_KEY"},
                                                     {"PRODUCT_CATALOG_NOPE_AT_ALL_XYZ", ""}}));
}

// Every variable load_config reads is in the table (a missing one throws std::logic_error on any
// start); the configurations below reach every branch that reads a variable.
TEST(Config, EveryReadVariableIsInTheTable) {
  std::string strong(32, 'k');
  for (auto& e : {env{}, env{{"DATABASE_DIALECT", "postgresql"}},
                  env{{"ENV", "prod"}, {"API_KEY", strong}, {"JWT_SECRET_KEY", strong}},
                  env{{"DATABASE_URL", "postgresql://u@h/d"},
                      {"DATABASE_READ_URL", "postgresql://u@h2/d"},
                      {"PRODUCT_CATALOG_WARMUP", "false"}}}) {
    EXPECT_NO_THROW(load_config(e));
  }
}

namespace {
// NAME=value lines of a .env-style file (also commented out, `# NAME=value`, as .env.example writes
// them), with the comment line just above each.
std::map<std::string, std::pair<std::string, std::string>> dotenv_entries(const std::string& path) {
  std::ifstream in(path);
  std::map<std::string, std::pair<std::string, std::string>> out;
  std::string line, comment;
  auto is_name = [](std::string_view n) {
    return !n.empty() && std::all_of(n.begin(), n.end(), [](char ch) {
      return (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_';
    });
  };
  while (std::getline(in, line)) {
    auto entry = line.rfind("# ", 0) == 0 ? line.substr(2) : line;
    auto eq = entry.find('=');
    if (eq != std::string::npos && is_name(std::string_view(entry).substr(0, eq))) {
      out[entry.substr(0, eq)] = {entry.substr(eq + 1), comment};
      comment.clear();
    } else if (line.rfind("# ", 0) == 0) {
      comment = line.substr(2);
    }
  }
  return out;
}
}  // namespace

// Contract §10: "a `.env.example` listing every variable with its default" — the same names,
// defaults and one line of description as the table in util/config.cpp, and it loads as is.
TEST(Config, EnvExampleMatchesTheTable) {
  auto entries = dotenv_entries(std::string(FAV_SOURCE_DIR) + "/.env.example");
  std::set<std::string> table_names;
  for (auto& v : fav::util::config_variables()) {
    std::string name(v.name);
    table_names.insert(name);
    auto it = entries.find(name);
    if (it == entries.end()) {
      ADD_FAILURE() << name << " is missing from .env.example (add: # " << v.description << " / " << name << "="
                    << v.default_value << ")";
      continue;
    }
    EXPECT_EQ(it->second.first, v.default_value) << name << ": default in .env.example differs from the table";
    EXPECT_EQ(it->second.second, v.description) << name << ": description in .env.example differs from the table";
    EXPECT_FALSE(v.description.empty()) << name;
  }
  for (auto& [name, _] : entries)
    EXPECT_TRUE(table_names.count(name)) << name << " is in .env.example but not in the table in util/config.cpp";
  env as_is;
  for (auto& [name, vd] : entries) as_is[name] = vd.first;
  EXPECT_NO_THROW(load_config(as_is));
}

// The README's configuration table names every variable of the table.
TEST(Config, ReadmeNamesEveryVariable) {
  std::ifstream in(std::string(FAV_SOURCE_DIR) + "/README.md");
  std::string readme((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  for (auto& v : fav::util::config_variables()) {
    std::string name(v.name);
    // The README groups some (`DATABASE_HOST/PORT/...`, `PRODUCT_CATALOG_BACKOFF_BASE_SECONDS` / `_CAP_SECONDS`).
    auto tail = name.substr(name.rfind('_') + 1);
    bool named = readme.find("`" + name) != std::string::npos || readme.find("/" + tail) != std::string::npos ||
                 readme.find("_" + tail + "`") != std::string::npos;
    EXPECT_TRUE(named) << name << " is not in the README's configuration table";
  }
}

// The table is the one place a default and its bounds are written: each row's default is a value
// of its own kind within its own bounds, and one past its upper bound is refused naming the row.
TEST(Config, TableDefaultsLieWithinTheirBounds) {
  using fav::util::config_kind;
  for (auto& v : fav::util::config_variables()) {
    const std::string name(v.name);
    if (v.kind == config_kind::text || v.kind == config_kind::boolean) continue;
    EXPECT_LE(v.min, v.max) << name;
    env base;
    if (name == "DATABASE_PORT") base["DATABASE_DIALECT"] = "postgresql";  // read only then
    if (!v.default_value.empty()) {
      const double d = std::stod(std::string(v.default_value));
      EXPECT_GE(d, v.min) << name;
      EXPECT_LE(d, v.max) << name;
      env as_is = base;
      as_is[name] = std::string(v.default_value);
      EXPECT_NO_THROW(load_config(as_is)) << name;
    }
    env over = base;
    over[name] = v.kind == config_kind::integer ? std::to_string(static_cast<std::int64_t>(v.max) + 1)
                                                : std::to_string(v.max * 2 + 1);
    try {
      load_config(over);
      ADD_FAILURE() << name << "=" << over[name] << " was accepted";
    } catch (const config_error& e) {
      ASSERT_EQ(e.problems.size(), 1u) << e.what();
      EXPECT_EQ(e.problems[0].variable, name);
    }
  }
}

// A default-constructed configuration holds the table's defaults, the same as loading an empty
// environment (components built from `config` alone, as the unit tests do, see what a start sees).
TEST(Config, DefaultConstructedHoldsTheTableDefaults) {
  const fav::util::config made;
  const auto loaded = load_config({});
  int members = 0;
  for (auto& v : fav::util::config_variables()) {
    const auto& m = v.member;
    if (auto i = std::get_if<int fav::util::config::*>(&m))
      EXPECT_EQ(made.**i, loaded.**i) << v.name;
    else if (auto i64 = std::get_if<std::int64_t fav::util::config::*>(&m))
      EXPECT_EQ(made.**i64, loaded.**i64) << v.name;
    else if (auto d = std::get_if<double fav::util::config::*>(&m))
      EXPECT_DOUBLE_EQ(made.**d, loaded.**d) << v.name;
    else if (auto s = std::get_if<std::string fav::util::config::*>(&m))
      EXPECT_EQ(made.**s, loaded.**s) << v.name;
    else if (auto t = std::get_if<fav::util::duration fav::util::config::*>(&m))
      EXPECT_EQ(made.**t, loaded.**t) << v.name;
    else
      continue;
    ++members;
  }
  EXPECT_GE(members, 40);
  EXPECT_EQ(made.per_page_limit, 200);
  EXPECT_EQ(made.cache_hard_ttl, 30min);  // minutes read once into a duration
}
