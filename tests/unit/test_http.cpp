// Pure parts of the HTTP layer: middleware, and (§8) rate-limit buckets, client keys and
// connections per client.
#include <gtest/gtest.h>

#include "http/middleware.hpp"
#include "http/rate_limit.hpp"

using namespace fav;

// Contract §10: "Every response carries `Date`" — RFC 9110 §5.6.7 IMF-fixdate.
TEST(Middleware, HttpDateIsImfFixdate) {
  EXPECT_EQ(http::http_date(784111777), "Sun, 06 Nov 1994 08:49:37 GMT");  // RFC 9110's own example
  EXPECT_EQ(http::http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
  EXPECT_EQ(http::http_date(1951606800), "Wed, 05 Nov 2031 01:00:00 GMT");
}

TEST(Middleware, DateIsSetOnEveryResponse) {
  http::raw_response out{http::status::not_found, 11};
  http::apply_date(out);
  auto d = out[http::bhttp::field::date];
  ASSERT_EQ(d.size(), 29u);
  EXPECT_EQ(d.substr(25), " GMT");
}

// Contract §1: "Every response carries x-correlation-id: the incoming x-correlation-id (or
// x-request-id) if it is 1–64 chars of [A-Za-z0-9._-], else a fresh UUID."
TEST(Middleware, CorrelationIdKeptOnlyWhenWellFormed) {
  http::raw_request r{http::verb::get, "/", 11};
  r.set("x-request-id", "abc.DEF_1-2");
  EXPECT_EQ(http::correlation_id(r), "abc.DEF_1-2");
  r.set("x-correlation-id", "has space");
  EXPECT_EQ(http::correlation_id(r), "abc.DEF_1-2");
  r.set("x-correlation-id", std::string(65, 'a'));
  r.erase("x-request-id");
  EXPECT_EQ(http::correlation_id(r).size(), 36u);
}

TEST(Middleware, CorsOnlyForListedOrigins) {
  http::raw_request r{http::verb::get, "/", 11};
  r.set(http::bhttp::field::origin, "https://a.example");
  http::raw_response out{http::status::ok, 11};
  http::apply_cors({"https://b.example"}, r, out);
  EXPECT_EQ(out.find(http::bhttp::field::access_control_allow_origin), out.end());
  http::apply_cors({"https://a.example"}, r, out);
  EXPECT_EQ(out[http::bhttp::field::access_control_allow_origin], "https://a.example");
  EXPECT_EQ(out[http::bhttp::field::vary], "Origin");
}

// Contract §8: "takes a token from its client address's bucket: RATE_LIMIT_PER_SECOND tokens a
// second, up to RATE_LIMIT_BURST ... An empty bucket: 429 rate_limited with Retry-After (whole
// seconds, ≥ 1)". The clock is a plain number.
TEST(RateLimit, BurstThenRefusedThenRefilled) {
  http::rate_limiter rl(2, 5);
  for (int i = 0; i < 5; ++i) {
    auto d = rl.take("10.0.0.1", 100.0);
    EXPECT_TRUE(d.allowed) << i;
    EXPECT_EQ(d.limit, 5);
    EXPECT_EQ(d.remaining, 4 - i);
  }
  auto refused = rl.take("10.0.0.1", 100.0);
  EXPECT_FALSE(refused.allowed);
  EXPECT_EQ(refused.remaining, 0);
  EXPECT_EQ(refused.retry_after_s, 1);  // 0.5 s to the next token, rounded up to a whole second
  EXPECT_EQ(refused.reset_s, 3);        // 2.5 s to a full bucket
  // Another address has its own bucket.
  EXPECT_TRUE(rl.take("10.0.0.2", 100.0).allowed);
  // Half a second later one token is back, and only one.
  EXPECT_TRUE(rl.take("10.0.0.1", 100.5).allowed);
  EXPECT_FALSE(rl.take("10.0.0.1", 100.5).allowed);
  // Long idle: full again, never above the burst.
  auto full = rl.take("10.0.0.1", 1000.0);
  EXPECT_TRUE(full.allowed);
  EXPECT_EQ(full.remaining, 4);
}

TEST(RateLimit, RetryAfterCoversASlowRefill) {
  http::rate_limiter rl(0.25, 1);  // one token every 4 s
  EXPECT_TRUE(rl.take("a", 0).allowed);
  auto d = rl.take("a", 1);
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.retry_after_s, 3);
  EXPECT_TRUE(rl.take("a", 4).allowed);
}

// "Buckets are per instance; their number is bounded (least recently used go first)."
TEST(RateLimit, BucketCountBoundedLeastRecentlyUsedFirst) {
  http::rate_limiter rl(1, 1, 3);
  EXPECT_TRUE(rl.take("a", 0).allowed);
  EXPECT_TRUE(rl.take("b", 0).allowed);
  EXPECT_TRUE(rl.take("c", 0).allowed);
  EXPECT_FALSE(rl.take("a", 0).allowed);  // touches a: b is now the least recently used
  EXPECT_TRUE(rl.take("d", 0).allowed);   // evicts b
  EXPECT_EQ(rl.size(), 3u);
  EXPECT_FALSE(rl.take("a", 0).allowed);  // a kept its empty bucket
  EXPECT_TRUE(rl.take("b", 0).allowed);   // b starts afresh (evicts c)
  EXPECT_TRUE(rl.take("c", 0).allowed);
  for (int i = 0; i < 10000; ++i) rl.take("x" + std::to_string(i), 0);
  EXPECT_EQ(rl.size(), 3u);
}

TEST(RateLimit, CidrsParseV4AndV6) {
  auto c = util::parse_cidrs(" 10.0.0.0/8, 192.168.1.7 ,::1/128,fd00::/8");
  ASSERT_TRUE(c);
  ASSERT_EQ(c->size(), 4u);
  auto a = [](const char* s) { return boost::asio::ip::make_address(s); };
  EXPECT_TRUE((*c)[0].contains(a("10.255.1.2")));
  EXPECT_FALSE((*c)[0].contains(a("11.0.0.1")));
  EXPECT_TRUE((*c)[0].contains(a("::ffff:10.1.2.3")));  // v4-mapped peers on a dual-stack socket
  EXPECT_TRUE((*c)[1].contains(a("192.168.1.7")));
  EXPECT_FALSE((*c)[1].contains(a("192.168.1.8")));
  EXPECT_TRUE((*c)[2].contains(a("::1")));
  EXPECT_TRUE((*c)[3].contains(a("fdab::1")));
  EXPECT_FALSE((*c)[3].contains(a("fe80::1")));
  EXPECT_TRUE(util::parse_cidrs("")->empty());
  for (auto bad : {"10.0.0.0/33", "nope", "10.0.0.0/", "::1/129", "10.0.0.0/8x"})
    EXPECT_FALSE(util::parse_cidrs(bad)) << bad;
}

// "The client address is the peer's, or, when the peer is in TRUSTED_PROXIES, the rightmost
// address of X-Forwarded-For that is not itself trusted."
TEST(RateLimit, ClientAddressBehindTrustedProxies) {
  auto ip = [](const char* s) { return boost::asio::ip::make_address(s); };
  auto trusted = *util::parse_cidrs("127.0.0.1, 10.0.0.0/8");
  // Untrusted peer: X-Forwarded-For is ignored.
  EXPECT_EQ(http::client_address(ip("203.0.113.9"), {"1.2.3.4"}, trusted), "203.0.113.9");
  // Trusted peer: the rightmost untrusted hop, across repeated fields.
  EXPECT_EQ(http::client_address(ip("127.0.0.1"), {"6.6.6.6, 1.2.3.4", "10.0.0.5"}, trusted), "1.2.3.4");
  EXPECT_EQ(http::client_address(ip("127.0.0.1"), {"2001:db8::1"}, trusted), "2001:db8::/64");
  // Trusted peer without the header, or with only trusted hops: the last address seen.
  EXPECT_EQ(http::client_address(ip("127.0.0.1"), {}, trusted), "127.0.0.1");
  EXPECT_EQ(http::client_address(ip("127.0.0.1"), {"10.1.1.1"}, trusted), "10.1.1.1");
  // Garbage stops the walk: the client cannot pick an address left of it.
  EXPECT_EQ(http::client_address(ip("127.0.0.1"), {"1.1.1.1, junk, 10.0.0.2"}, trusted), "10.0.0.2");
  EXPECT_EQ(http::client_address(ip("::ffff:127.0.0.1"), {"9.9.9.9"}, trusted), "9.9.9.9");
}

// §8: "An IPv6 client counts by its /64 network, for the rate limits and the sign-in guard", and
// for the fair shares ("A client here is the client address of the rate limits (an IPv6 address
// counts by its /64 network)"). A v4-mapped address is the IPv4 client.
TEST(RateLimit, ClientKeyIsTheIpv4AddressOrTheIpv6Slash64) {
  auto ip = [](const char* s) { return boost::asio::ip::make_address(s); };
  EXPECT_EQ(http::client_key(ip("203.0.113.9")), "203.0.113.9");
  EXPECT_EQ(http::client_key(ip("::ffff:203.0.113.9")), "203.0.113.9");
  EXPECT_EQ(http::client_key(ip("2001:db8:1:2:aaaa:bbbb:cccc:dddd")), "2001:db8:1:2::/64");
  EXPECT_EQ(http::client_key(ip("2001:db8:1:2::1")), http::client_key(ip("2001:db8:1:2:ffff:ffff:ffff:ffff")));
  EXPECT_NE(http::client_key(ip("2001:db8:1:2::1")), http::client_key(ip("2001:db8:1:3::1")));
  EXPECT_EQ(http::client_key(ip("::1")), "::/64");
  // The untrusted peer and the forwarded client alike.
  auto trusted = *util::parse_cidrs("10.0.0.0/8");
  EXPECT_EQ(http::client_address(ip("2001:db8:5:6::7"), {}, trusted), "2001:db8:5:6::/64");
  EXPECT_EQ(http::client_address(ip("10.0.0.1"), {"2001:db8:5:6:1:2:3:4"}, trusted), "2001:db8:5:6::/64");
  EXPECT_EQ(http::client_address(ip("10.0.0.1"), {"[::ffff:198.51.100.4]"}, trusted), "198.51.100.4");
  EXPECT_TRUE(http::is_trusted(ip("::ffff:10.1.2.3"), trusted));
  EXPECT_FALSE(http::is_trusted(ip("11.1.2.3"), trusted));
}

// §8: "at most API_MAX_CONNECTIONS_PER_CLIENT ... open connections; past it a new connection
// from that address is closed at once while others are still accepted." The map keeps no entry
// at zero, so it never holds more entries than there are open connections.
TEST(RateLimit, ConnectionsPerClientCappedAndForgottenAtZero) {
  http::client_counts counts(2);
  EXPECT_TRUE(counts.try_add("a"));
  EXPECT_TRUE(counts.try_add("a"));
  EXPECT_FALSE(counts.try_add("a"));  // a holds its cap
  EXPECT_TRUE(counts.try_add("b"));   // others are still accepted
  EXPECT_EQ(counts.size(), 2u);
  counts.remove("a");
  EXPECT_TRUE(counts.try_add("a"));  // a slot came back
  counts.remove("a");
  counts.remove("a");
  counts.remove("b");
  EXPECT_EQ(counts.size(), 0u);
  for (int i = 0; i < 1000; ++i) {
    EXPECT_TRUE(counts.try_add("c" + std::to_string(i)));
    counts.remove("c" + std::to_string(i));
  }
  EXPECT_EQ(counts.size(), 0u);
  http::client_counts none(0);
  EXPECT_FALSE(none.try_add("a"));
  EXPECT_EQ(none.size(), 0u);
}

// Contract §8 framing: "A Transfer-Encoding other than chunked: 501 not_implemented.
// Transfer-Encoding together with Content-Length ...: 400 bad_request."
TEST(Framing, OnlyExactlyChunked) {
  auto with = [](std::initializer_list<std::pair<const char*, const char*>> fields) {
    http::raw_request r{http::verb::post, "/", 11};
    for (auto& [k, v] : fields) r.insert(k, v);
    return http::framing_failure(r);
  };
  EXPECT_EQ(with({}), std::nullopt);
  EXPECT_EQ(with({{"Content-Length", "3"}}), std::nullopt);
  EXPECT_EQ(with({{"Transfer-Encoding", "chunked"}}), std::nullopt);
  EXPECT_EQ(with({{"Transfer-Encoding", "Chunked"}}), std::nullopt);
  for (auto te : {"gzip", "identity", "chunked, gzip", "gzip, chunked", "chunked, chunked", ""})
    EXPECT_EQ(with({{"Transfer-Encoding", te}}), http::failure::not_implemented) << te;
  EXPECT_EQ(with({{"Transfer-Encoding", "chunked"}, {"Transfer-Encoding", "chunked"}}), http::failure::not_implemented);
  EXPECT_EQ(with({{"Transfer-Encoding", "chunked"}, {"Content-Length", "3"}}), http::failure::bad_request);
  EXPECT_EQ(with({{"Transfer-Encoding", "gzip"}, {"Content-Length", "3"}}), http::failure::bad_request);
}

// "a method outside GET HEAD POST PATCH DELETE OPTIONS counts as `other`"
TEST(MetricLabels, MethodsFromAFixedSet) {
  http::raw_request r{http::verb::get, "/", 11};
  EXPECT_EQ(http::method_label(r), "GET");
  r.method(http::verb::options);
  EXPECT_EQ(http::method_label(r), "OPTIONS");
  r.method(http::verb::put);
  EXPECT_EQ(http::method_label(r), "other");
  r.method_string("XYZ123ABC");
  EXPECT_EQ(http::method_label(r), "other");
}
