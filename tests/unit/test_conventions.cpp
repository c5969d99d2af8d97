// Contract §10 pure parts: traceparent parsing, ETag / If-None-Match, Link headers, metric numbers,
// problem-details bodies.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <set>

#include "api/errors.hpp"
#include "api/render.hpp"
#include "http/trace_context.hpp"
#include "util/log.hpp"
#include "util/metrics.hpp"

using fav::http::parse_traceparent;

namespace {
const std::string trace = "4bf92f3577b34da6a3ce929d0e0e4736";
const std::string parent = "00f067aa0ba902b7";
}  // namespace

// "an incoming valid `traceparent` is continued" (the specification's own example).
TEST(TraceContext, ValidHeaderIsContinued) {
  auto ctx = parse_traceparent("00-" + trace + "-" + parent + "-01");
  ASSERT_TRUE(ctx);
  EXPECT_EQ(ctx->trace_id, trace);
  EXPECT_EQ(ctx->parent_id, parent);
  EXPECT_EQ(ctx->flags, "01");
  // A later version is read as 00, extra fields ignored.
  EXPECT_TRUE(parse_traceparent("01-" + trace + "-" + parent + "-01-future"));
  EXPECT_EQ(fav::http::continue_or_start("00-" + trace + "-" + parent + "-00").trace_id, trace);
}

TEST(TraceContext, InvalidHeadersAreRejected) {
  for (std::string bad :
       {std::string(), std::string("garbage"), "ff-" + trace + "-" + parent + "-01",
        "00-" + std::string(32, '0') + "-" + parent + "-01", "00-" + trace + "-" + std::string(16, '0') + "-01",
        "00-" + trace + "-" + parent + "-01-x", "00-4BF92F3577B34DA6A3CE929D0E0E4736-" + parent + "-01",
        "00-" + trace + "-" + parent + "-1", "00_" + trace + "-" + parent + "-01", "0g-" + trace + "-" + parent + "-01",
        "00-" + trace.substr(1) + "-" + parent + "-01", "01-" + trace + "-" + parent + "-01x"}) {
    EXPECT_FALSE(parse_traceparent(bad)) << bad;
    auto fresh = fav::http::continue_or_start(bad);
    EXPECT_EQ(fresh.trace_id.size(), 32u);
    EXPECT_TRUE(parse_traceparent(fav::http::child_traceparent(fresh))) << bad;
  }
}

// "catalog calls ... carry a `traceparent` with that trace id and a new parent id"
TEST(TraceContext, ChildKeepsTheTraceWithAFreshParent) {
  auto ctx = *parse_traceparent("00-" + trace + "-" + parent + "-01");
  std::set<std::string> parents;
  for (int i = 0; i < 100; ++i) {
    auto child = parse_traceparent(fav::http::child_traceparent(ctx));
    ASSERT_TRUE(child);
    EXPECT_EQ(child->trace_id, trace);
    EXPECT_NE(child->parent_id, parent);
    EXPECT_EQ(child->flags, "01");
    parents.insert(child->parent_id);
  }
  EXPECT_EQ(parents.size(), 100u);
  EXPECT_NE(fav::http::continue_or_start("").trace_id, fav::http::continue_or_start("").trace_id);
}

namespace {
struct fake_request {
  fav::http::raw_request raw;
  fav::http::request req;
  fake_request(std::string path, std::vector<std::pair<std::string, std::string>> query = {}) : path_(std::move(path)) {
    req.raw = &raw;
    req.path = path_;
    req.query = std::move(query);
  }
  std::string path_;
};
std::string header(const fav::http::response& r, std::string_view name) {
  for (auto& [k, v] : r.headers)
    if (k == name) return v;
  return {};
}
}  // namespace

// "`If-None-Match` naming the current tag answers 304 with no body. Any change to what the body
// shows changes the tag."
TEST(Conditional, EtagAnd304) {
  fake_request f("/customers/x");
  auto a = fav::api::cacheable(f.req, fav::http::json(fav::http::status::ok, R"({"name":"a"})"));
  auto b = fav::api::cacheable(f.req, fav::http::json(fav::http::status::ok, R"({"name":"b"})"));
  auto tag = header(a, "ETag");
  EXPECT_EQ(tag.size(), 34u);
  EXPECT_EQ(tag.front(), '"');
  EXPECT_NE(tag, header(b, "ETag"));
  EXPECT_EQ(header(a, "Cache-Control"), "private, no-cache");
  for (std::string inm : {tag, "W/" + tag, "\"x\", " + tag, std::string("*"), tag.substr(0, 33) + "-gzip\""}) {
    f.raw.set("If-None-Match", inm);
    auto r = fav::api::cacheable(f.req, fav::http::json(fav::http::status::ok, R"({"name":"a"})"));
    EXPECT_EQ(r.code, fav::http::status::not_modified) << inm;
    EXPECT_TRUE(r.body.empty());
    EXPECT_EQ(header(r, "ETag"), tag);
  }
  for (std::string inm : {std::string("\"x\""), header(b, "ETag"), tag.substr(1)}) {
    f.raw.set("If-None-Match", inm);
    auto r = fav::api::cacheable(f.req, fav::http::json(fav::http::status::ok, R"({"name":"a"})"));
    EXPECT_EQ(r.code, fav::http::status::ok) << inm;
  }
  // Errors are left alone.
  f.raw.set("If-None-Match", "*");
  auto e = fav::api::cacheable(f.req, fav::http::json(fav::http::status::not_found, "{}"));
  EXPECT_EQ(e.code, fav::http::status::not_found);
  EXPECT_EQ(header(e, "ETag"), "");
}

// "Paged answers carry an RFC 8288 `Link` header with `first`, `last`, and `prev` / `next` where
// those pages exist (same query, other `page`)."
TEST(Conditional, PageLinks) {
  fake_request f("/customers", {{"name", "a b&c"}, {"page", "2"}, {"per_page", "10"}});
  fav::http::response r;
  fav::api::add_page_links(f.req, r, {2, 10}, 35);
  EXPECT_EQ(header(r, "Link"),
            "</customers?name=a%20b%26c&page=1&per_page=10>; rel=\"first\", "
            "</customers?name=a%20b%26c&page=1&per_page=10>; rel=\"prev\", "
            "</customers?name=a%20b%26c&page=3&per_page=10>; rel=\"next\", "
            "</customers?name=a%20b%26c&page=4&per_page=10>; rel=\"last\"");
  fake_request empty("/customers");
  fav::http::response e;
  fav::api::add_page_links(empty.req, e, {1, 20}, 0);
  EXPECT_EQ(header(e, "Link"), "</customers?page=1>; rel=\"first\", </customers?page=1>; rel=\"last\"");
  fav::http::response past;
  fav::api::add_page_links(empty.req, past, {9, 20}, 21);  // past the end: prev is the last page
  EXPECT_EQ(header(past, "Link"),
            "</customers?page=1>; rel=\"first\", </customers?page=2>; rel=\"prev\", </customers?page=2>; rel=\"last\"");
}

// Metrics: "Bucket labels print as le=\"0.00050000000000000001\"".
// README, LOG_LEVEL: the log's queue is allocated up front, so it is sized for the level's volume
// (a line per request at info and debug; only warnings and worse above them).
TEST(Log, TheQueueIsSizedForTheLevel) {
  using fav::util::log_level;
  EXPECT_EQ(fav::util::log_queue_slots(log_level::debug), 16384u);
  EXPECT_EQ(fav::util::log_queue_slots(log_level::info), 16384u);
  EXPECT_EQ(fav::util::log_queue_slots(log_level::warning), 1024u);
  EXPECT_EQ(fav::util::log_queue_slots(log_level::error), 1024u);
  EXPECT_EQ(fav::util::log_queue_slots(log_level::critical), 1024u);
}

TEST(Metrics, ReadableNumbers) {
  EXPECT_EQ(fav::util::prometheus_number(0.0005), "0.0005");
  EXPECT_EQ(fav::util::prometheus_number(2.5), "2.5");
  EXPECT_EQ(fav::util::prometheus_number(10), "10");
  EXPECT_EQ(fav::util::prometheus_number(1e21), "1e+21");
  EXPECT_GE(fav::util::metrics::bounds.back(), 10.0);
  for (double b : fav::util::metrics::bounds) EXPECT_LE(fav::util::prometheus_number(b).size(), 6u) << b;
}

// Contract §10: "Error bodies keep `detail` (the code) and add `status` ... and `title`".
TEST(Errors, ProblemDetailsMembers) {
  for (int e = static_cast<int>(fav::core::errc::not_found); e <= static_cast<int>(fav::core::errc::internal_error);
       ++e) {
    auto code = static_cast<fav::core::errc>(e);
    auto r = fav::api::fail(code);
    auto body = boost::json::parse(r.body).as_object();
    EXPECT_EQ(body.at("detail").as_string(), fav::core::code(code));
    EXPECT_EQ(body.at("status").as_int64(), static_cast<int>(r.code));
    std::string title(body.at("title").as_string());
    EXPECT_FALSE(title.empty());
    EXPECT_EQ(title.back(), '.') << title;
  }
  auto over = fav::api::fail(fav::core::errc::invalid_email, fav::http::status::bad_request);
  EXPECT_EQ(boost::json::parse(over.body).at("status").as_int64(), 400);
}
