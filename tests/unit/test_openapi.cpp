// The embedded OpenAPI document against the code: every route in routes.cpp is documented and
// every documented operation is a route; every error is the `{"detail"}` shape with known codes.
#include <gtest/gtest.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cctype>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "api/docs_assets.hpp"
#include "api/errors.hpp"
#include "core/errc.hpp"
#include "routes.hpp"

namespace json = boost::json;

namespace {

const json::value& root() {
  static const json::value doc = json::parse(fav::api::openapi_document());
  return doc;
}
const json::object& document() {
  return root().as_object();
}

// Follows local "$ref"s ("#/components/...") to their target; other values come back as they are.
const json::value& resolve(const json::value& v) {
  const json::value* cur = &v;
  for (int hops = 0; hops < 8 && cur->is_object() && cur->as_object().contains("$ref"); ++hops) {
    std::string_view ref = cur->as_object().at("$ref").as_string();
    boost::system::error_code ec;
    const json::value* target = ref.starts_with("#/") ? root().find_pointer(ref.substr(1), ec) : nullptr;
    if (!target) {
      ADD_FAILURE() << "unresolved $ref " << ref;
      return v;
    }
    cur = target;
  }
  return *cur;
}

// Every "$ref" anywhere below `v`.
void collect_refs(const json::value& v, std::vector<std::string>& out) {
  if (auto* o = v.if_object()) {
    for (auto& [k, child] : *o) {
      if (k == "$ref" && child.is_string()) out.emplace_back(child.as_string());
      collect_refs(child, out);
    }
  } else if (auto* a = v.if_array()) {
    for (auto& child : *a) collect_refs(child, out);
  }
}

constexpr const char* methods[] = {"get", "put", "post", "delete", "options", "head", "patch", "trace"};

struct operation {
  std::string method;  // lower case
  std::string path;
  const json::object* op;
  const json::object* item;
  std::string name() const {
    std::string m = method;
    for (auto& c : m) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return m + " " + path;
  }
};

std::vector<operation> operations() {
  std::vector<operation> out;
  for (auto& [path, item] : document().at("paths").as_object())
    for (const char* m : methods)
      if (item.as_object().contains(m))
        out.push_back({m, std::string(path), &item.as_object().at(m).as_object(), &item.as_object()});
  return out;
}

// True when `schema` is the Error schema or an allOf that includes it.
bool is_error_schema(const json::value& schema) {
  if (!schema.is_object()) return false;
  auto& o = schema.as_object();
  if (auto* r = o.if_contains("$ref")) return r->as_string() == "#/components/schemas/Error";
  if (auto* all = o.if_contains("allOf"))
    for (auto& part : all->as_array())
      if (is_error_schema(part)) return true;
  return false;
}

// The `detail` enum of an error schema (allOf [Error, {properties: {detail: {enum}}}]), if any.
std::vector<std::string> detail_codes(const json::value& schema) {
  std::vector<std::string> codes;
  if (auto* all = schema.as_object().if_contains("allOf"))
    for (auto& part : all->as_array())
      if (auto* props = part.as_object().if_contains("properties"))
        if (auto* detail = props->as_object().if_contains("detail"))
          if (auto* e = detail->as_object().if_contains("enum"))
            for (auto& c : e->as_array()) codes.emplace_back(c.as_string());
  return codes;
}

std::set<std::string> known_codes() {
  std::set<std::string> codes;
  for (int i = static_cast<int>(fav::core::errc::not_found); i <= static_cast<int>(fav::core::errc::internal_error);
       ++i)
    codes.emplace(fav::core::code(static_cast<fav::core::errc>(i)));
  return codes;
}

}  // namespace

TEST(openapi, is_an_openapi_3_0_document) {
  auto& doc = document();
  ASSERT_TRUE(doc.contains("openapi"));
  EXPECT_TRUE(std::string_view(doc.at("openapi").as_string()).starts_with("3.0."));
  EXPECT_FALSE(doc.at("info").at("title").as_string().empty());
  EXPECT_FALSE(doc.at("info").at("version").as_string().empty());
  EXPECT_FALSE(doc.at("paths").as_object().empty());
}

TEST(openapi, every_ref_resolves) {
  std::vector<std::string> refs;
  collect_refs(root(), refs);
  EXPECT_FALSE(refs.empty());
  for (auto& r : refs) {
    boost::system::error_code ec;
    EXPECT_TRUE(r.starts_with("#/") && root().find_pointer(std::string_view(r).substr(1), ec)) << r;
  }
}

TEST(openapi, has_the_three_security_schemes) {
  bool cookie = false, bearer = false, api_key = false;
  for (auto& [name, v] : document().at("components").at("securitySchemes").as_object()) {
    auto& s = v.as_object();
    auto str = [&](const char* k) { return s.contains(k) ? std::string(s.at(k).as_string()) : std::string(); };
    cookie |= str("type") == "apiKey" && str("in") == "cookie" && str("name") == "access_token";
    bearer |= str("type") == "http" && str("scheme") == "bearer" && str("bearerFormat") == "JWT";
    api_key |= str("type") == "apiKey" && str("in") == "header" && str("name") == "x-aiqfome-api-key";
  }
  EXPECT_TRUE(cookie) << "apiKey in cookie access_token";
  EXPECT_TRUE(bearer) << "http bearer JWT";
  EXPECT_TRUE(api_key) << "apiKey in header x-aiqfome-api-key";
}

TEST(openapi, documents_exactly_the_route_table) {
  std::set<std::string> routes;
  for (auto& r : fav::route_list()) {
    std::string m(r.method);
    for (auto& c : m) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    if (m == "OPTIONS") continue;  // CORS preflight: not a documented operation
    routes.insert(m + " " + std::string(r.pattern));
  }
  ASSERT_FALSE(routes.empty());
  std::set<std::string> documented;
  for (auto& op : operations()) documented.insert(op.name());
  for (auto& r : routes) EXPECT_TRUE(documented.contains(r)) << "route missing from openapi.json: " << r;
  for (auto& d : documented) EXPECT_TRUE(routes.contains(d)) << "documented operation with no route: " << d;
}

TEST(openapi, every_operation_documents_its_responses_and_errors) {
  const auto codes = known_codes();
  for (auto& op : operations()) {
    SCOPED_TRACE(op.name());
    ASSERT_TRUE(op.op->contains("responses"));
    auto& responses = op.op->at("responses").as_object();
    ASSERT_FALSE(responses.empty());
    EXPECT_TRUE(op.op->contains("operationId"));
    EXPECT_TRUE(responses.contains("500")) << "no 500 internal_error";
    bool success = false;
    for (auto& [status, raw] : responses) {
      SCOPED_TRACE(std::string(status));
      auto& r = resolve(raw).as_object();
      EXPECT_TRUE(r.contains("description"));
      // Contract §1: every response carries x-correlation-id.
      EXPECT_TRUE(r.contains("headers") && r.at("headers").as_object().contains("x-correlation-id"));
      success |= status.starts_with("2");
      // The readiness probe answers 503 with its own body, not an error.
      if (op.path == "/health/ready" && status == "503") continue;
      if (!(status.starts_with("4") || status.starts_with("5"))) continue;
      ASSERT_TRUE(r.contains("content"));
      auto& content = r.at("content").as_object();
      ASSERT_TRUE(content.contains("application/json"));
      auto& schema = content.at("application/json").at("schema");
      EXPECT_TRUE(is_error_schema(schema)) << "error response without the Error schema";
      auto listed = detail_codes(schema);
      EXPECT_FALSE(listed.empty()) << "no detail enum";
      for (auto& c : listed) EXPECT_TRUE(codes.contains(c)) << "unknown error code " << c;
    }
    EXPECT_TRUE(success) << "no 2xx response";
  }
}

TEST(openapi, protected_operations_document_their_auth_failures) {
  for (auto& op : operations()) {
    SCOPED_TRACE(op.name());
    auto& responses = op.op->at("responses").as_object();
    if (op.path.starts_with("/customers/{id}")) {
      EXPECT_TRUE(op.op->contains("security"));
      EXPECT_TRUE(responses.contains("401"));
      EXPECT_TRUE(responses.contains("403"));
    }
    if (op.op->contains("requestBody")) {
      for (const char* s : {"413", "415", "422"}) EXPECT_TRUE(responses.contains(s)) << "no " << s;
    }
    if (op.op->contains("security")) {
      for (auto& requirement : op.op->at("security").as_array())
        for (auto& [scheme, scopes] : requirement.as_object())
          EXPECT_TRUE(document().at("components").at("securitySchemes").as_object().contains(scheme)) << scheme;
    }
  }
}

TEST(openapi, path_parameters_match_the_templates) {
  for (auto& op : operations()) {
    SCOPED_TRACE(op.name());
    std::set<std::string> in_template;
    for (std::size_t open = op.path.find('{'); open != std::string::npos; open = op.path.find('{', open + 1))
      in_template.insert(op.path.substr(open + 1, op.path.find('}', open) - open - 1));
    std::set<std::string> declared;
    for (auto* params : {op.item->if_contains("parameters"), op.op->if_contains("parameters")})
      if (params)
        for (auto& p : params->as_array()) {
          auto& param = resolve(p).as_object();
          if (param.at("in").as_string() == "path") {
            EXPECT_TRUE(param.at("required").as_bool());
            declared.emplace(param.at("name").as_string());
          }
        }
    EXPECT_EQ(in_template, declared);
  }
}

TEST(openapi, lists_exactly_the_embedded_docs_files) {
  std::set<std::string> documented;
  for (auto& p : document().at("components").at("parameters").at("DocsFile").at("schema").at("enum").as_array())
    documented.emplace(p.as_string());
  std::set<std::string> embedded;
  for (auto& a : fav::api::docs_assets()) embedded.emplace(a.path);
  EXPECT_EQ(documented, embedded);
  EXPECT_TRUE(embedded.contains("index.html"));
}

// Contract §8: framing (400/501) and slow-client (408) answers can come on any operation; 429
// "with Retry-After and the RateLimit fields on every limited operation" (all but the probes).
TEST(openapi, every_operation_documents_the_connection_layer_answers) {
  for (auto& op : operations()) {
    SCOPED_TRACE(op.name());
    auto& responses = op.op->at("responses").as_object();
    for (const char* s : {"400", "408", "501"}) EXPECT_TRUE(responses.contains(s)) << "no " << s;
    bool exempt = op.path == "/health" || op.path == "/health/ready" || op.path == "/metrics";
    if (exempt) continue;
    ASSERT_TRUE(responses.contains("429"));
    auto& r = resolve(responses.at("429")).as_object();
    auto codes = detail_codes(r.at("content").at("application/json").at("schema"));
    EXPECT_NE(std::find(codes.begin(), codes.end(), "rate_limited"), codes.end());
    for (const char* h : {"Retry-After", "RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"})
      EXPECT_TRUE(r.at("headers").as_object().contains(h)) << h;
  }
}

// Contract §10: the documented error examples are what the service sends: `detail`, the
// response's `status`, and the code's `title` (api/errors.cpp).
TEST(openapi, error_examples_are_problem_details) {
  std::map<std::string, std::string> titles;
  for (int i = static_cast<int>(fav::core::errc::not_found); i <= static_cast<int>(fav::core::errc::internal_error);
       ++i) {
    auto e = static_cast<fav::core::errc>(i);
    titles[std::string(fav::core::code(e))] = std::string(fav::api::title_of(e));
  }
  int checked = 0;
  for (auto& op : operations()) {
    for (auto& [status, raw] : op.op->at("responses").as_object()) {
      auto& r = resolve(raw).as_object();
      if (!r.contains("content") || !(status.starts_with("4") || status.starts_with("5"))) continue;
      for (auto& [media, m] : r.at("content").as_object()) {
        auto* examples = m.as_object().if_contains("examples");
        if (!examples) continue;
        for (auto& [name, ex] : examples->as_object()) {
          auto& value = resolve(ex).as_object().at("value").as_object();
          if (!value.contains("detail")) continue;
          SCOPED_TRACE(op.name() + " " + std::string(status) + " " + std::string(name));
          std::string code(value.at("detail").as_string());
          ASSERT_TRUE(value.contains("status") && value.contains("title"));
          EXPECT_EQ(std::to_string(value.at("status").as_int64()), std::string(status));
          EXPECT_EQ(std::string(value.at("title").as_string()), titles[code]);
          ++checked;
        }
      }
    }
  }
  EXPECT_GT(checked, 20);
}
