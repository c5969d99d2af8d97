// Contract §6: names, defaults, decimals, one clear line naming a bad variable, ENV=prod rules.
#include <gtest/gtest.h>

#include "util/config.hpp"

using fav::util::config_error;
using fav::util::load_config;
using env = std::map<std::string, std::string>;

TEST(Config, ReferenceDefaults) {
  auto c = load_config({});
  EXPECT_EQ(c.env, "dev");
  EXPECT_EQ(c.api_port, 8080);
  EXPECT_EQ(c.per_page_limit, 200);
  EXPECT_EQ(c.catalog_base_url, "https://fakestoreapi.com");
  EXPECT_DOUBLE_EQ(c.catalog_timeout_s, 5.0);
  EXPECT_EQ(c.catalog_max_retries, 3);
  EXPECT_EQ(c.catalog_max_concurrency, 10);
  EXPECT_DOUBLE_EQ(c.cache_soft_ttl_s, 300);
  EXPECT_DOUBLE_EQ(c.cache_hard_ttl_s, 1800);
  EXPECT_DOUBLE_EQ(c.jwt_expire_days, 2);
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
  EXPECT_NEAR(c.cache_soft_ttl_s, 3.0, 1e-9);
  EXPECT_NEAR(c.cache_hard_ttl_s, 30.0, 1e-9);
  EXPECT_DOUBLE_EQ(c.catalog_timeout_s, 0.25);
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
  auto prod = load_config(env{{"ENV", "prod"},
                              {"API_KEY", std::string(32, 'k')},
                              {"JWT_SECRET_KEY", std::string(32, 'j')},
                              {"DATABASE_URL", "postgresql://u:p@h:5432/d"}});
  EXPECT_EQ(prod.database_url, "postgresql://u:p@h:5432/d?sslmode=require");
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
  EXPECT_DOUBLE_EQ(c.header_timeout_s, 10);
  EXPECT_DOUBLE_EQ(c.request_timeout_s, 30);
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
