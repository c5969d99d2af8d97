// JSON shapes of the API's resources, written with the one JSON writer (core/json_text.hpp)
// straight into strings (hot paths), and the conditional-request headers of the cacheable GETs.
#pragma once
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/types.hpp"
#include "http/message.hpp"

namespace fav::api {

// {"id","name","email","created_at","updated_at"} — never the password hash.
void render_customer(std::string& out, const core::customer& c);
// A favorite item: {"id","title","image_url","price","review","favorited_at"}; when the product
// could not be fetched and was never cached: null fields and "unavailable": true.
void render_favorite(std::string& out, std::int64_t product_id, core::micros favorited_at,
                     const std::optional<core::product>& p);
// A page of customers: {"data": [<customers>], "pagination": {...}} (as below).
std::string render_customers_page(const std::vector<core::customer>& customers, const core::page_req& p,
                                  std::int64_t total);
// Where an item's product part is in a rendered page: offset and length of the bytes from the
// item's "{" to the end of its "review" (the same bytes on every page showing that product row).
struct product_span {
  std::size_t offset = 0;
  std::size_t length = 0;
};
// A page of favorites: {"data": [<items>], "pagination": {"page", "per_page", "total_pages",
// "total_items"}}; `products[i]` is what favs[i] shows (nullopt: unavailable). `product_bytes`,
// when given, gets the product part of each item that shows one, in order.
std::string render_favorites_page(const std::vector<core::favorite>& favs,
                                  const std::vector<std::optional<core::product>>& products, const core::page_req& p,
                                  std::int64_t total, std::vector<product_span>* product_bytes = nullptr);

// Contract §10: a strong ETag (a hash of the body: any change to what it shows changes it) and
// `Cache-Control: private, no-cache` on `res`; 304 with no body when the request's If-None-Match
// names that tag (or is `*`). Leaves non-200 answers alone.
http::response cacheable(const http::request& req, http::response res);
// The same with a tag the caller vouches for (a stored page's version: one tag, one body).
http::response cacheable(const http::request& req, http::response res, std::string tag);
// True when the request's If-None-Match names `tag` (weak comparison, RFC 9110 §13.1.2) or is `*`.
bool not_modified(const http::request& req, std::string_view tag);
// Contract §10: an RFC 8288 Link header on a paged answer: first, last, and prev/next where those
// pages exist; each the request's path and query with only `page` changed.
void add_page_links(const http::request& req, http::response& res, const core::page_req& p, std::int64_t total);

}  // namespace fav::api
