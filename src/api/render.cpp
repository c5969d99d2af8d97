// See render.hpp.
#include "api/render.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <cctype>

#include "core/json_text.hpp"
#include "util/base64url.hpp"
#include "util/time.hpp"

namespace fav::api {

namespace {

// `product_bytes`, when given, gets where the item's product part is in `out` (from its "{" up to
// the end of "review"): what every page showing the same row shows.
void write_favorite(core::json_writer& w, std::int64_t product_id, core::micros favorited_at,
                    const std::optional<core::product>& p, const std::string* out = nullptr,
                    product_span* product_bytes = nullptr) {
  w.begin_object();
  const std::size_t from = out ? out->size() - 1 : 0;  // the "{" (after any separator)
  w.key("id").num(product_id);
  if (p) {
    w.key("title").str(p->title);
    w.key("image_url").str(p->image_url);
    w.key("price").money(p->price_cents);
    w.key("review");
    if (p->review_rate_cents || p->review_count) {
      w.begin_object();
      w.key("rate");
      if (p->review_rate_cents)
        w.money(*p->review_rate_cents);
      else
        w.null();
      w.key("count");
      if (p->review_count)
        w.num(*p->review_count);
      else
        w.null();
      w.end_object();
    } else {
      w.null();
    }
    if (out && product_bytes) *product_bytes = {from, out->size() - from};
  } else {
    w.key("title").null();
    w.key("image_url").null();
    w.key("price").null();
    w.key("review").null();
  }
  w.key("favorited_at").str(util::format_rfc3339(favorited_at));
  if (!p) w.key("unavailable").boolean(true);
  w.end_object();
}

void write_customer(core::json_writer& w, const core::customer& c) {
  w.begin_object();
  w.key("id").str(c.id);
  w.key("name").str(c.name);
  w.key("email").str(c.email);
  w.key("created_at").str(util::format_rfc3339(c.created_at));
  w.key("updated_at").str(util::format_rfc3339(c.updated_at));
  w.end_object();
}

// "pagination": {...} of a paged answer (contract §1: total_pages = ceil(total / per_page)).
void write_pagination(core::json_writer& w, const core::page_req& p, std::int64_t total) {
  w.key("pagination").begin_object();
  w.key("page").num(p.page);
  w.key("per_page").num(p.per_page);
  w.key("total_pages").num(total == 0 ? 0 : (total + p.per_page - 1) / p.per_page);
  w.key("total_items").num(total);
  w.end_object();
}

}  // namespace

void render_customer(std::string& out, const core::customer& c) {
  core::json_writer w(out);
  write_customer(w, c);
}

std::string render_customers_page(const std::vector<core::customer>& customers, const core::page_req& p,
                                  std::int64_t total) {
  std::string out;
  core::json_writer w(out);
  w.begin_object();
  w.key("data").begin_array();
  for (const auto& c : customers) write_customer(w, c);
  w.end_array();
  write_pagination(w, p, total);
  w.end_object();
  return out;
}

void render_favorite(std::string& out, std::int64_t product_id, core::micros favorited_at,
                     const std::optional<core::product>& p) {
  core::json_writer w(out);
  write_favorite(w, product_id, favorited_at, p);
}

std::string render_favorites_page(const std::vector<core::favorite>& favs,
                                  const std::vector<std::optional<core::product>>& products, const core::page_req& p,
                                  std::int64_t total, std::vector<product_span>* product_bytes) {
  std::string out;
  out.reserve(favs.size() * 240 + 96);
  if (product_bytes) product_bytes->clear();
  core::json_writer w(out);
  w.begin_object();
  w.key("data").begin_array();
  static const std::optional<core::product> none;
  for (std::size_t i = 0; i < favs.size(); ++i) {  // both branches lvalues: no copy of the product
    const auto& product = i < products.size() ? products[i] : none;
    product_span span;
    write_favorite(w, favs[i].product_id, favs[i].favorited_at, product, &out, &span);
    if (product_bytes && product) product_bytes->push_back(span);
  }
  w.end_array();
  write_pagination(w, p, total);
  w.end_object();
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
  return "\"" + util::hex_encode(std::string_view(reinterpret_cast<const char*>(md), std::min(n, 16U))) + "\"";
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
  return cacheable(req, std::move(res), std::move(tag));
}

http::response cacheable(const http::request& req, http::response res, std::string tag) {
  if (res.code != http::status::ok) return res;
  const bool unchanged = not_modified(req, tag);
  res.header("ETag", std::move(tag));
  res.header("Cache-Control", "private, no-cache");
  if (unchanged) {
    res.code = http::status::not_modified;
    res.body.clear();
    res.content_type.clear();
  }
  return res;
}

bool not_modified(const http::request& req, std::string_view tag) {
  const auto inm = req.header("if-none-match");
  return !inm.empty() && none_match(inm, tag);
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
