// JSON shapes of the API's resources, written straight into strings (hot paths).
#pragma once
#include <optional>
#include <string>

#include "core/types.hpp"

namespace fav::api {

// {"id","name","email","created_at","updated_at"} — never the password hash.
void render_customer(std::string& out, const core::customer& c);
// A favorite item: {"id","title","image_url","price","review","favorited_at"}; when the product
// could not be fetched and was never cached: null fields and "unavailable": true.
void render_favorite(std::string& out, std::int64_t product_id, core::micros favorited_at,
                     const std::optional<core::product>& p);
// {"data": [<items>], "pagination": {...}} around already-rendered items.
std::string render_page(const std::string& items_json, const core::page_req& p, std::int64_t total);

}  // namespace fav::api
