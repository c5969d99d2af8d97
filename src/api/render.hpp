// JSON shapes of the API's resources, written straight into strings (hot paths).
#pragma once
#include <optional>
#include <string>

#include "core/types.hpp"
#include "http/message.hpp"

namespace fav::api {

// {"id","name","email","created_at","updated_at"} — never the password hash.
void render_customer(std::string& out, const core::customer& c);
// A favorite item: {"id","title","image_url","price","review","favorited_at"}; when the product
// could not be fetched and was never cached: null fields and "unavailable": true.
void render_favorite(std::string& out, std::int64_t product_id, core::micros favorited_at,
                     const std::optional<core::product>& p);
// {"data": [<items>], "pagination": {...}} around already-rendered items.
std::string render_page(const std::string& items_json, const core::page_req& p, std::int64_t total);

// Contract §10: a strong ETag (a hash of the body: any change to what it shows changes it) and
// `Cache-Control: private, no-cache` on `res`; 304 with no body when the request's If-None-Match
// names that tag (or is `*`). Leaves non-200 answers alone.
http::response cacheable(const http::request& req, http::response res);
// Contract §10: an RFC 8288 Link header on a paged answer: first, last, and prev/next where those
// pages exist; each the request's path and query with only `page` changed.
void add_page_links(const http::request& req, http::response& res, const core::page_req& p, std::int64_t total);

}  // namespace fav::api
