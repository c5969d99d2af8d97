// Handlers for /customers/{id}/favorites (contract §3 "Favorites", §4). The product cache
// decides fresh / stale / expired; these only parse, call and reply.
#include "api/errors.hpp"
#include "api/handlers.hpp"
#include "api/render.hpp"
#include "app.hpp"
#include "auth/policy.hpp"
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

// Who is asking, for the catalog's log lines.
catalog::log_context log_context_of(const http::request& req) {
  return catalog::log_context{req.correlation_id, req.trace.trace_id, req.trace.flags};
}
}  // namespace

net::awaitable<http::response> list_favorites(http::request& req, app& a) {
  auto page = core::parse_page(req.query_value("page"), req.query_value("per_page"), a.cfg.per_page_limit);
  if (!page) co_return fail(errc::invalid_pagination);
  auto favs = co_await a.read_through.list_favorites(auth::caller(req).customer_id, *page);
  const auto ctx = log_context_of(req);  // named: CONTRIBUTING.md, "Compiler notes"
  auto products = co_await a.products.resolve(favs.items, ctx);
  std::string items;
  items.reserve(favs.items.size() * 220);
  for (std::size_t i = 0; i < favs.items.size(); ++i) {
    if (i) items += ',';
    render_favorite(items, favs.items[i].product_id, favs.items[i].favorited_at, products[i]);
  }
  auto res = http::json(http::status::ok, render_page(items, *page, favs.total));
  add_page_links(req, res, *page, favs.total);
  co_return cacheable(req, std::move(res));
}

net::awaitable<http::response> add_favorite(http::request& req, app& a) {
  auto product_id = core::parse_product_id(req.params.get("product_id"));
  if (!product_id) co_return fail(errc::invalid_product_id);
  const auto& customer_id = auth::caller(req).customer_id;
  // Already there: 409 without asking the catalog. Asked of the database, never of the read cache:
  // a write's answer reflects the database (contract §9); the INSERT below still decides races.
  if (co_await a.db.has_favorite(customer_id, *product_id)) co_return fail(errc::product_already_in_favorites);

  const auto ctx = log_context_of(req);  // named: CONTRIBUTING.md, "Compiler notes"
  // The customer's own share of the catalog (§8 "Fair shares").
  auto found = co_await a.products.get_for_favorite(*product_id, ctx, customer_id.str());
  if (found.status == catalog::fetch_status::not_found) co_return fail(errc::product_not_found);
  if (found.status == catalog::fetch_status::unavailable)
    co_return fail(errc::catalog_unavailable, std::nullopt, {}, found.retry_after_s);

  auto now = util::now_micros();
  switch (co_await a.db.insert_favorite(customer_id, *product_id, now)) {
    case store::insert_result::added: break;
    case store::insert_result::duplicate: co_return fail(errc::product_already_in_favorites);
    case store::insert_result::no_customer: co_return customer_gone();
  }
  std::string body;
  render_favorite(body, *product_id, now, found.product);
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
