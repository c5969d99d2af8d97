// Handlers for /customers/{id}/favorites (contract §3 "Favorites", §4). The product cache
// decides fresh / stale / expired; these only parse, call and reply.
#include <algorithm>
#include <limits>

#include "api/errors.hpp"
#include "api/handlers.hpp"
#include "api/render.hpp"
#include "app.hpp"
#include "auth/policy.hpp"
#include "catalog/freshness.hpp"
#include "core/validate.hpp"
#include "util/log.hpp"
#include "util/time.hpp"

namespace fav::api {

using core::errc;

namespace {
std::string item_path(const core::customer_id& customer_id, std::int64_t product_id) {
  return "/customers/" + customer_id.str() + "/favorites/" + std::to_string(product_id);
}

// The caller was deleted while the request ran: answered as that customer's token now is
// (contract §5). The store published it: the token cache has forgotten the customer.
http::response customer_gone() {
  return fail(errc::invalid_token);
}

// Keeps a page just rendered in the read cache when the bytes are exactly what a later request
// would render: every item shows its cached row as read (no catalog fetch, nothing unavailable)
// and every row is fresh (a stale one is refreshed in the background, and its page must be
// rendered again then). nullptr when not kept.
std::shared_ptr<const store::read_cache::rendered_page> keep_rendered(
    store::read_cache& pages, const core::customer_id& customer_id, const core::page_req& p, std::uint64_t generation,
    const core::page<core::favorite>& favs, const std::vector<std::optional<core::product>>& products,
    std::string_view body, const std::vector<product_span>& product_bytes, const util::config& cfg) {
  const core::micros now = util::now_micros();
  const auto soft_ttl = util::to_micros(cfg.cache_soft_ttl);
  core::micros fresh_until = std::numeric_limits<core::micros>::max();
  std::vector<core::product> shown;
  shown.reserve(favs.items.size());
  for (std::size_t i = 0; i < favs.items.size(); ++i) {
    const auto& cached = favs.items[i].cached;
    if (!cached || i >= products.size() || !products[i] || products[i]->fetched_at != cached->fetched_at)
      return nullptr;
    if (catalog::classify_age(now - cached->fetched_at, cfg.cache_soft_ttl, cfg.cache_hard_ttl) !=
        catalog::freshness::fresh)
      return nullptr;
    fresh_until = std::min(fresh_until, cached->fetched_at + soft_ttl);
    shown.push_back(*products[i]);
  }
  if (product_bytes.size() != shown.size()) return nullptr;
  std::vector<std::string_view> shown_bytes;
  shown_bytes.reserve(product_bytes.size());
  for (const auto& span : product_bytes) shown_bytes.push_back(body.substr(span.offset, span.length));
  return pages.put_rendered(customer_id.str(), p, generation, shown, fresh_until, body, favs.total, shown_bytes);
}

// Who is asking, for the catalog's log lines.
catalog::log_context log_context_of(const http::request& req) {
  return catalog::log_context{req.correlation_id, req.trace.trace_id, req.trace.flags};
}
}  // namespace

net::awaitable<http::response> list_favorites(http::request& req, app& a) {
  auto page = core::parse_page(req.query_value("page"), req.query_value("per_page"), a.cfg.per_page_limit);
  if (!page) co_return fail(errc::invalid_pagination);
  const auto& customer_id = auth::caller(req).customer_id;
  // An unchanged page is answered with the bytes rendered for it before, and a matching
  // If-None-Match with 304, without rendering anything (README, "Rendered pages"). Only while the
  // change feed is live, as every answer from memory.
  store::read_cache* const pages = a.read_through.memory().enabled() ? &a.read_through.memory() : nullptr;
  const bool from_memory = pages && a.feed.live();
  std::uint64_t generation = 0;
  if (from_memory) {
    if (auto hit = pages->rendered(customer_id.str(), *page, util::now_micros())) {
      http::response res;
      if (!not_modified(req, hit->etag)) hit->append_body(res.body);
      add_page_links(req, res, *page, hit->total);
      co_return cacheable(req, std::move(res), hit->etag);
    }
    generation = pages->generation(customer_id.str());
  }
  auto favs = co_await a.read_through.list_favorites(customer_id, *page);
  const auto ctx = log_context_of(req);  // named: CONTRIBUTING.md, "Compiler notes"
  auto products = co_await a.products.resolve(favs.items, ctx);
  std::vector<product_span> product_bytes;
  auto res = http::json(http::status::ok, render_favorites_page(favs.items, products, *page, favs.total,
                                                                pages ? &product_bytes : nullptr));
  add_page_links(req, res, *page, favs.total);
  if (from_memory && a.feed.live()) {
    if (auto kept =
            keep_rendered(*pages, customer_id, *page, generation, favs, products, res.body, product_bytes, a.cfg))
      co_return cacheable(req, std::move(res), kept->etag);
  }
  co_return cacheable(req, std::move(res));
}

net::awaitable<http::response> add_favorite(http::request& req, app& a) {
  auto product_id = core::parse_product_id(req.params.get("product_id"));
  if (!product_id) co_return fail(errc::invalid_product_id);
  const auto& customer_id = auth::caller(req).customer_id;
  const auto ctx = log_context_of(req);  // named: CONTRIBUTING.md, "Compiler notes"
  // Already there (asked of the database, never of a cache: contract §9): 409 without asking the
  // catalog; the catalog is asked within the customer's own share (§8 "Fair shares").
  const catalog::favoriting f = co_await a.products.favorite(customer_id, *product_id, ctx);
  using outcome = catalog::favoriting::outcome;
  switch (f.what) {
    case outcome::added: break;
    case outcome::duplicate: co_return fail(errc::product_already_in_favorites);
    case outcome::no_customer: co_return customer_gone();
    case outcome::not_found: co_return fail(errc::product_not_found);
    case outcome::unavailable: co_return fail(errc::catalog_unavailable, std::nullopt, {}, f.retry_after_s);
  }
  std::string body;
  render_favorite(body, *product_id, f.favorited_at, f.product);
  auto res = http::json(http::status::created, std::move(body));
  res.header("Location", item_path(customer_id, *product_id));
  co_return res;
}

net::awaitable<http::response> get_favorite(http::request& req, app& a) {
  auto product_id = core::parse_product_id(req.params.get("product_id"));
  if (!product_id) co_return fail(errc::invalid_product_id);
  auto fav = co_await a.read_through.get_favorite(auth::caller(req).customer_id, *product_id);
  if (!fav) co_return fail(errc::product_not_in_favorites);
  const std::vector<core::favorite> one{std::move(*fav)};
  const auto ctx = log_context_of(req);  // named: CONTRIBUTING.md, "Compiler notes"
  auto products = co_await a.products.resolve(one, ctx);
  std::string body;
  render_favorite(body, one[0].product_id, one[0].favorited_at, products[0]);
  co_return cacheable(req, http::json(http::status::ok, std::move(body)));
}

net::awaitable<http::response> remove_favorite(http::request& req, app& a) {
  auto product_id = core::parse_product_id(req.params.get("product_id"));
  if (!product_id) co_return fail(errc::invalid_product_id);
  const auto& customer_id = auth::caller(req).customer_id;
  switch (co_await a.db.delete_favorite(customer_id, *product_id)) {
    case store::delete_result::removed: break;
    // The reference answers 422 for "not a favorite" here; keep it.
    case store::delete_result::absent:
      co_return fail(errc::product_not_in_favorites, http::status::unprocessable_entity);
    case store::delete_result::no_customer: co_return customer_gone();
  }
  co_return http::no_content();
}

}  // namespace fav::api
