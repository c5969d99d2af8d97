// Pure pieces: input validation, route matching, JSON text, error mapping, gzip negotiation.
#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <limits>

#include "api/errors.hpp"
#include "api/render.hpp"
#include "core/json_text.hpp"
#include "core/validate.hpp"
#include "http/gzip.hpp"
#include "http/router.hpp"
#include "routes.hpp"

using namespace fav;

// Contract §3: "email: trimmed, lower-cased, must match a sane address pattern, ≤ 255 chars".
TEST(Validate, EmailIsTrimmedAndLowerCased) {
  EXPECT_EQ(core::parse_email("  Foo.Bar@Example.COM "), "foo.bar@example.com");
  EXPECT_EQ(core::parse_email("a+tag@sub.example.com.br"), "a+tag@sub.example.com.br");
}

TEST(Validate, EmailRejectsInsaneAddresses) {
  for (auto bad : {"", "plain", "@example.com", "a@", "a@b", "a@@b.com", "a b@c.com", "a@b c.com", "a@-b.com",
                   "a@b-.com", "a..b@c.com", ".a@b.com", "a@b.c", "a@b.c0m", "\"q\"@b.com", "a@b..com"})
    EXPECT_FALSE(core::parse_email(bad)) << bad;
  std::string longest = std::string(64, 'a') + "@" + std::string(63, 'b') + "." + std::string(63, 'c') + "." +
                        std::string(61, 'd') + ".com";
  EXPECT_GT(longest.size(), 255u);
  EXPECT_FALSE(core::parse_email(longest));
}

// Contract §3: "name: trimmed, 1..255 chars"; "password: 8..128 characters (code points)".
TEST(Validate, NameLengthInCodePoints) {
  EXPECT_EQ(core::parse_name("  Ana  "), "Ana");
  EXPECT_FALSE(core::parse_name("   "));
  EXPECT_FALSE(core::parse_name(""));
  EXPECT_TRUE(core::parse_name(std::string(255, 'x')));
  EXPECT_FALSE(core::parse_name(std::string(256, 'x')));
  std::string accents;
  for (int i = 0; i < 255; ++i) accents += "é";
  EXPECT_TRUE(core::parse_name(accents));
  EXPECT_FALSE(core::parse_name("bad\xff"));
}

TEST(Validate, PasswordCountsCodePoints) {
  EXPECT_FALSE(core::valid_password("1234567"));
  EXPECT_TRUE(core::valid_password("12345678"));
  EXPECT_TRUE(core::valid_password(std::string(128, 'p')));
  EXPECT_FALSE(core::valid_password(std::string(129, 'p')));
  EXPECT_TRUE(core::valid_password("ééééééé\xc3\xa9"));                                    // 8 code points, 16 bytes
  EXPECT_FALSE(core::valid_password("\xf0\x9f\x98\x80\xf0\x9f\x98\x80\xf0\x9f\x98\x80"));  // 3 emoji, 12 bytes
  EXPECT_FALSE(core::valid_password("12345678\xc0\xaf"));                                  // invalid UTF-8
}

// Contract §1: "A malformed product id ... (not a positive integer ≤ 2^63−1): 422".
TEST(Validate, ProductId) {
  EXPECT_EQ(core::parse_product_id("1"), 1);
  EXPECT_EQ(core::parse_product_id("9223372036854775807"), INT64_MAX);
  for (auto bad : {"0", "-1", "+1", "abc", "1.5", "1e3", "", " 1", "9223372036854775808", "99999999999999999999"})
    EXPECT_FALSE(core::parse_product_id(bad)) << bad;
}

// Contract §1: "page ≥ 1 (default 1), per_page 1..limit (default 20)".
TEST(Validate, Pagination) {
  auto p = core::parse_page(nullptr, nullptr, 200);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->page, 1);
  EXPECT_EQ(p->per_page, 20);
  std::string two = "2", ten = "10", zero = "0", big = "201", frac = "1.5", neg = "-1";
  p = core::parse_page(&two, &ten, 200);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->offset(), 10);
  EXPECT_FALSE(core::parse_page(&zero, nullptr, 200));
  EXPECT_FALSE(core::parse_page(&neg, nullptr, 200));
  EXPECT_FALSE(core::parse_page(nullptr, &zero, 200));
  EXPECT_FALSE(core::parse_page(nullptr, &big, 200));
  EXPECT_FALSE(core::parse_page(nullptr, &frac, 200));
  EXPECT_TRUE(core::parse_page(nullptr, &big, 300));
  std::string huge = "9223372036854775807";
  p = core::parse_page(&huge, &ten, 200);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->offset(), INT64_MAX);  // saturates: simply an empty page
}

TEST(Router, MatchesTemplatesAndSplitsParams) {
  http::path_pattern p("/customers/{id}/favorites/{product_id}");
  http::path_params params;
  ASSERT_TRUE(p.match("/customers/abc/favorites/5", params));
  ASSERT_EQ(params.size(), 2u);
  EXPECT_EQ(params.get("id"), "abc");
  EXPECT_EQ(params.get("product_id"), "5");
  EXPECT_EQ(params.get("file"), "");  // not in this pattern
  EXPECT_FALSE(p.match("/customers/abc/favorites", params));
  EXPECT_FALSE(p.match("/customers/abc/favorites/5/x", params));
  EXPECT_FALSE(p.match("/customers//favorites/5", params));
  EXPECT_FALSE(p.match("/customers/abc/favorites/5/", params));
  http::path_pattern health("/health");
  EXPECT_TRUE(health.match("/health", params));
  EXPECT_FALSE(health.match("/health/", params));
  EXPECT_FALSE(health.match("//health", params));
  EXPECT_EQ(params.size(), 0u);
  EXPECT_THROW(http::path_pattern("/{a}/{b}/{c}/{d}/{e}"), std::invalid_argument);
}

TEST(Router, EveryRouteIsUniqueAndParsable) {
  auto table = route_table();
  ASSERT_FALSE(table.empty());
  for (std::size_t i = 0; i < table.size(); ++i)
    for (std::size_t j = i + 1; j < table.size(); ++j)
      EXPECT_FALSE(table[i].method == table[j].method && table[i].pattern == table[j].pattern) << table[i].pattern;
}

TEST(JsonText, EscapesAndStaysValidJson) {
  std::string out;
  core::append_json_string(out, std::string_view("a\"b\\c\n\x01 \xff é"));
  auto v = boost::json::parse(out);
  EXPECT_EQ(v.as_string(), "a\"b\\c\n\x01 \xEF\xBF\xBD é");
}

// Contract §3: "price a JSON number with two decimals of meaning".
TEST(JsonText, CentsAsNumbers) {
  auto f = [](std::int64_t c) {
    std::string s;
    core::json_writer(s).money(c);
    return s;
  };
  EXPECT_EQ(f(10995), "109.95");
  EXPECT_EQ(f(2230), "22.3");
  EXPECT_EQ(f(500), "5");
  EXPECT_EQ(f(5), "0.05");
  EXPECT_EQ(f(-150), "-1.5");
  EXPECT_EQ(f(0), "0");
  EXPECT_EQ(f(std::numeric_limits<std::int64_t>::min()), "-92233720368547758.08");
}

// The writer places every comma and bracket itself: nested objects and arrays, empty ones too.
TEST(JsonText, WriterNestsObjectsAndArrays) {
  std::string out;
  core::json_writer w(out);
  w.begin_object();
  w.key("a").num(-1);
  w.key("list").begin_array();
  w.num(1).str("x").null().boolean(false);
  w.begin_object().key("k").money(1050).end_object();
  w.begin_array().end_array();
  w.end_array();
  w.key("empty").begin_object().end_object();
  w.key("ms").fixed(0.25, 3);
  w.key("inf").fixed(std::numeric_limits<double>::infinity(), 6);
  w.end_object();
  EXPECT_TRUE(w.complete());
  EXPECT_EQ(out, R"({"a":-1,"list":[1,"x",null,false,{"k":10.5},[]],"empty":{},"ms":0.250,"inf":null})");
  EXPECT_NO_THROW(boost::json::parse(out));
}

TEST(Render, FavoriteItemShape) {
  core::product p{7, "White Gold Plated Princess", "https://img/7.png", 999, 300, 400, 0};
  std::string out;
  api::render_favorite(out, 7, 1'764'417'600'123'000, p);
  auto v = boost::json::parse(out).as_object();
  EXPECT_EQ(v["id"].as_int64(), 7);
  EXPECT_EQ(v["title"].as_string(), "White Gold Plated Princess");
  EXPECT_DOUBLE_EQ(v["price"].to_number<double>(), 9.99);
  EXPECT_DOUBLE_EQ(v["review"].as_object()["rate"].to_number<double>(), 3.0);
  EXPECT_EQ(v["review"].as_object()["count"].as_int64(), 400);
  EXPECT_EQ(v["favorited_at"].as_string(), "2025-11-29T12:00:00.123Z");
  EXPECT_FALSE(v.contains("unavailable"));
  out.clear();
  api::render_favorite(out, 8, 0, std::nullopt);
  v = boost::json::parse(out).as_object();
  EXPECT_TRUE(v["title"].is_null());
  EXPECT_TRUE(v["price"].is_null());
  EXPECT_EQ(v["unavailable"].as_bool(), true);
}

// Contract §1: total_pages = ceil(total_items / per_page), 0 when empty.
TEST(Render, PageEnvelope) {
  const std::vector<core::favorite> two{{1, 0, std::nullopt}, {2, 0, std::nullopt}};
  auto v = boost::json::parse(api::render_favorites_page(two, {std::nullopt, std::nullopt}, core::page_req{2, 10}, 25))
               .as_object();
  EXPECT_EQ(v["data"].as_array().size(), 2u);
  auto& p = v["pagination"].as_object();
  EXPECT_EQ(p["page"].as_int64(), 2);
  EXPECT_EQ(p["per_page"].as_int64(), 10);
  EXPECT_EQ(p["total_pages"].as_int64(), 3);
  EXPECT_EQ(p["total_items"].as_int64(), 25);
  v = boost::json::parse(api::render_favorites_page({}, {}, core::page_req{1, 10}, 0)).as_object();
  EXPECT_EQ(v["pagination"].as_object()["total_pages"].as_int64(), 0);
}

// The list's bytes as the contract's clients have always seen them (prices, timestamps, null
// reviews, unavailable items, pagination): written by the earlier renderer, byte for byte.
TEST(Render, PageBytesUnchanged) {
  const core::product a{7, "Tab\t\"q\" \xC3\xA9 \xff", "https://img/7.png", 10995, 390, 120, 0};
  const core::product b{8, "B", "u", 500, std::nullopt, std::nullopt, 0};
  const core::product c{9, "C", "v", 2230, 5, std::nullopt, 0};
  const std::vector<core::favorite> favs{
      {7, 1'764'417'600'123'456, a}, {8, 1'764'417'600'000'000, b}, {9, 0, c}, {10, 1, std::nullopt}};
  const std::string expected =
      R"GOLDEN({"data":[{"id":7,"title":"Tab\t\"q\" é �","image_url":"https://img/7.png","price":109.95,"review":{"rate":3.9,"count":120},"favorited_at":"2025-11-29T12:00:00.123Z"},{"id":8,"title":"B","image_url":"u","price":5,"review":null,"favorited_at":"2025-11-29T12:00:00.000Z"},{"id":9,"title":"C","image_url":"v","price":22.3,"review":{"rate":0.05,"count":null},"favorited_at":"1970-01-01T00:00:00.000Z"},{"id":10,"title":null,"image_url":null,"price":null,"review":null,"favorited_at":"1970-01-01T00:00:00.000Z","unavailable":true}],"pagination":{"page":2,"per_page":4,"total_pages":3,"total_items":9}})GOLDEN";
  EXPECT_EQ(api::render_favorites_page(favs, {a, b, c, std::nullopt}, core::page_req{2, 4}, 9), expected);
}

// The product part of each item (README, "Rendered pages": held once for every page showing the
// row) is the same bytes wherever the item stands and whenever it was favorited.
TEST(Render, ProductBytesAreEachItemsProductPart) {
  const core::product a{7, "Tab\t\"q\"", "https://img/7.png", 10995, 390, 120, 0};
  const core::product b{8, "B", "u", 500, std::nullopt, std::nullopt, 0};
  const std::vector<core::favorite> favs{{7, 1'764'417'600'123'456, a}, {10, 1, std::nullopt}, {8, 0, b}};
  std::vector<api::product_span> spans;
  const auto body = api::render_favorites_page(favs, {a, std::nullopt, b}, core::page_req{1, 3}, 3, &spans);
  EXPECT_EQ(body, api::render_favorites_page(favs, {a, std::nullopt, b}, core::page_req{1, 3}, 3))
      << "the spans change nothing in the body";
  ASSERT_EQ(spans.size(), 2u) << "one a product shown; none for the unavailable item";
  EXPECT_EQ(
      body.substr(spans[0].offset, spans[0].length),
      R"({"id":7,"title":"Tab\t\"q\"","image_url":"https://img/7.png","price":109.95,"review":{"rate":3.9,"count":120})");
  EXPECT_EQ(body.substr(spans[1].offset, spans[1].length),
            R"({"id":8,"title":"B","image_url":"u","price":5,"review":null)");
  // Elsewhere on another page, favorited at another time: the same bytes.
  std::vector<api::product_span> other;
  const auto body2 = api::render_favorites_page({{8, 99, b}}, {b}, core::page_req{2, 1}, 2, &other);
  ASSERT_EQ(other.size(), 1u);
  EXPECT_EQ(body2.substr(other[0].offset, other[0].length), body.substr(spans[1].offset, spans[1].length));
}

TEST(Errors, BodyAndStatus) {
  auto r = api::fail(core::errc::invalid_email, http::status::bad_request);
  EXPECT_EQ(r.code, http::status::bad_request);
  // §10: problem-details members beside the code, `status` being the answer's own status.
  EXPECT_EQ(r.body, R"({"detail":"invalid_email","status":400,"title":"The email address is not valid."})");
  EXPECT_EQ(api::fail(core::errc::invalid_email).code, http::status::unprocessable_entity);
  EXPECT_EQ(api::status_of(core::errc::product_already_in_favorites), http::status::conflict);
  auto busy = api::fail(core::errc::server_busy);
  EXPECT_EQ(busy.code, http::status::service_unavailable);
  ASSERT_FALSE(busy.headers.empty());
  EXPECT_EQ(busy.headers[0].first, "Retry-After");
  auto fields = api::fail(core::errc::invalid_body, std::nullopt, {{"email", "missing"}});
  auto v = boost::json::parse(fields.body).as_object();
  EXPECT_EQ(v["errors"].as_array()[0].as_object()["field"].as_string(), "email");
}

TEST(Gzip, AcceptEncodingNegotiation) {
  EXPECT_TRUE(http::accepts_gzip("gzip"));
  EXPECT_TRUE(http::accepts_gzip("deflate, gzip;q=0.5"));
  EXPECT_TRUE(http::accepts_gzip("GZIP"));
  EXPECT_TRUE(http::accepts_gzip("*"));
  EXPECT_FALSE(http::accepts_gzip("gzip;q=0"));
  EXPECT_FALSE(http::accepts_gzip("gzip;q=0.000"));
  EXPECT_FALSE(http::accepts_gzip("br, deflate"));
  EXPECT_FALSE(http::accepts_gzip(""));
  auto gz = http::gzip_compress(std::string(1000, 'a'));
  ASSERT_TRUE(gz);
  EXPECT_LT(gz->size(), 100u);
  EXPECT_EQ(static_cast<unsigned char>((*gz)[0]), 0x1f);
  EXPECT_EQ(static_cast<unsigned char>((*gz)[1]), 0x8b);
}
