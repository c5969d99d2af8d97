// See render.hpp.
#include "api/render.hpp"

#include <openssl/evp.h>

#include <algorithm>

#include "core/json_text.hpp"
#include "util/time.hpp"

namespace fav::api {

void render_customer(std::string& out, const core::customer& c) {
  core::json_object o(out);
  o.key("id").str(c.id);
  o.key("name").str(c.name);
  o.key("email").str(c.email);
  o.key("created_at").str(util::format_rfc3339(c.created_at));
  o.key("updated_at").str(util::format_rfc3339(c.updated_at));
  o.close();
}

void render_favorite(std::string& out, std::int64_t product_id, core::micros favorited_at,
                     const std::optional<core::product>& p) {
  core::json_object o(out);
  o.key("id").num(product_id);
  if (p) {
    o.key("title").str(p->title);
    o.key("image_url").str(p->image_url);
    o.key("price");
    core::append_cents(out, p->price_cents);
    o.key("review");
    if (p->review_rate_cents || p->review_count) {
      core::json_object r(out);
      r.key("rate");
      if (p->review_rate_cents)
        core::append_cents(out, *p->review_rate_cents);
      else
        r.null();
      r.key("count");
      if (p->review_count)
        r.num(*p->review_count);
      else
        r.null();
      r.close();
    } else {
      o.null();
    }
  } else {
    o.key("title").null();
    o.key("image_url").null();
    o.key("price").null();
    o.key("review").null();
  }
  o.key("favorited_at").str(util::format_rfc3339(favorited_at));
  if (!p) o.key("unavailable").boolean(true);
  o.close();
}

std::string render_page(const std::string& items_json, const core::page_req& p, std::int64_t total) {
  std::string out;
  out.reserve(items_json.size() + 96);
  out += "{\"data\":[";
  out += items_json;
  out += "],\"pagination\":";
  core::json_object o(out);
  o.key("page").num(p.page);
  o.key("per_page").num(p.per_page);
  o.key("total_pages").num(total == 0 ? 0 : (total + p.per_page - 1) / p.per_page);
  o.key("total_items").num(total);
  o.close();
  out += '}';
  return out;
}

}  // namespace fav::api

namespace fav::api {

namespace {
// "<32 hex digits>" from SHA-256 of the body: a collision would need a deliberate second preimage.
std::string strong_tag(std::string_view body) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(body.data(), body.size(), md, &n, EVP_sha256(), nullptr);
  static constexpr char hex[] = "0123456789abcdef";
  std::string tag = "\"";
  for (unsigned i = 0; i < 16 && i < n; ++i) {
    tag += hex[md[i] >> 4];
    tag += hex[md[i] & 15];
  }
  return tag + "\"";
}

// RFC 9110 §13.1.2: If-None-Match uses the weak comparison (W/ ignored); `*` matches any.
// A "-gzip" suffix is what the server adds when it compresses the body (see http/middleware).
bool none_match(std::string_view header, std::string_view tag) {
  while (!header.empty()) {
    auto comma = header.find(',');
    auto item = header.substr(0, comma);
    while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
    while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
    if (item == "*") return true;
    if (item.starts_with("W/")) item.remove_prefix(2);
    if (item.size() > 7 && item.ends_with("-gzip\"")) {
      if (item.substr(0, item.size() - 6) == tag.substr(0, tag.size() - 1)) return true;
    } else if (item == tag) {
      return true;
    }
    if (comma == std::string_view::npos) break;
    header.remove_prefix(comma + 1);
  }
  return false;
}

void append_query_component(std::string& out, std::string_view s) {
  static constexpr char hex[] = "0123456789ABCDEF";
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
}
}  // namespace

http::response cacheable(const http::request& req, http::response res) {
  if (res.code != http::status::ok) return res;
  auto tag = strong_tag(res.body);
  res.header("ETag", tag);
  res.header("Cache-Control", "private, no-cache");
  if (auto inm = req.header("if-none-match"); !inm.empty() && none_match(inm, tag)) {
    res.code = http::status::not_modified;
    res.body.clear();
    res.content_type.clear();
  }
  return res;
}

void add_page_links(const http::request& req, http::response& res, const core::page_req& p, std::int64_t total) {
  std::int64_t pages = total == 0 ? 0 : (total + p.per_page - 1) / p.per_page;
  std::int64_t last = std::max<std::int64_t>(pages, 1);
  auto link = [&](std::string& out, std::int64_t page, std::string_view rel) {
    if (!out.empty()) out += ", ";
    out += '<';
    out += req.path;
    // The same query in the same order, only `page` changed (added last when absent).
    bool seen = false;
    char sep = '?';
    for (auto& [k, v] : req.query) {
      if (k == "page" && seen) continue;
      out += sep;
      sep = '&';
      append_query_component(out, k);
      out += '=';
      if (k == "page") {
        seen = true;
        out += std::to_string(page);
      } else {
        append_query_component(out, v);
      }
    }
    if (!seen) out += std::string(1, sep) + "page=" + std::to_string(page);
    out += ">; rel=\"";
    out += rel;
    out += '"';
  };
  std::string value;
  link(value, 1, "first");
  if (p.page > 1) link(value, std::min(p.page - 1, last), "prev");
  if (p.page < pages) link(value, p.page + 1, "next");
  link(value, last, "last");
  res.header("Link", std::move(value));
}

}  // namespace fav::api
