// See render.hpp.
#include "api/render.hpp"

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
