// THE route table: method, path, auth policy, handler — one line each. No other place adds a route.
#include "routes.hpp"

#include "api/errors.hpp"
#include "app.hpp"
#include "http/trace_context.hpp"
#include "util/log.hpp"

namespace fav {

using auth::policy;
using v = http::verb;

namespace {
const route_def routes[] = {
    {v::get, "/health", policy::none, api::health},
    {v::get, "/health/ready", policy::none, api::health_ready},
    {v::get, "/metrics", policy::none, api::metrics},
    {v::get, "/openapi.json", policy::none, api::openapi_json},
    {v::get, "/docs", policy::none, api::docs_index},
    {v::get, "/docs/{file}", policy::none, api::docs_asset},
    {v::post, "/auth/sign-up", policy::none, api::sign_up},
    {v::post, "/auth/sign-in", policy::none, api::sign_in},
    {v::post, "/auth/sign-out", policy::token_optional, api::sign_out},
    {v::post, "/auth/refresh", policy::none, api::refresh},
    {v::get, "/customers", policy::api_key, api::list_customers},
    {v::get, "/customers/{id}", policy::customer_self, api::get_customer},
    {v::patch, "/customers/{id}", policy::customer_self, api::patch_customer},
    {v::delete_, "/customers/{id}", policy::customer_self, api::delete_customer},
    {v::get, "/customers/{id}/favorites", policy::customer_self, api::list_favorites},
    {v::post, "/customers/{id}/favorites/{product_id}", policy::customer_self, api::add_favorite},
    {v::get, "/customers/{id}/favorites/{product_id}", policy::customer_self, api::get_favorite},
    {v::delete_, "/customers/{id}/favorites/{product_id}", policy::customer_self, api::remove_favorite},
};
}  // namespace

std::span<const route_def> route_table() {
  return routes;
}

std::vector<route_info> route_list() {
  std::vector<route_info> out;
  for (auto& r : routes) out.push_back({http::bhttp::to_string(r.method), r.pattern});
  return out;
}

api_router::api_router(app& a) : app_(a), verifier_{a.cfg.api_key, a.jwt, a.tokens, a.cfg.cors_origins} {
  for (auto& r : routes) patterns_.emplace_back(r.pattern);
}

boost::asio::awaitable<http::response> api_router::operator()(http::request& req) {
  if (req.trace.trace_id.empty()) req.trace = http::continue_or_start(req.header("traceparent"));
  auto res = co_await route(req);
  co_return res;
}

boost::asio::awaitable<http::response> api_router::route(http::request& req) {
  const route_def* found = nullptr;
  std::string allow;
  http::path_params params;
  auto method = req.raw->method();
  // Contract §10: HEAD works on every GET route; the server sends the GET's header without its body.
  auto wanted = method == v::head ? v::get : method;
  for (std::size_t i = 0; i < patterns_.size(); ++i) {
    if (!patterns_[i].match(req.path, params)) continue;
    req.route = routes[i].pattern;
    if (routes[i].method == wanted) {
      found = &routes[i];
      req.params = params;
      break;
    }
    if (!allow.empty()) allow += ", ";
    allow += http::bhttp::to_string(routes[i].method);
    if (routes[i].method == v::get) allow += ", HEAD";
  }
  if (!found) {
    if (allow.empty()) co_return api::fail(core::errc::not_found);
    // CORS preflight (and plain OPTIONS) on a known path.
    if (method == v::options) {
      auto res = http::no_content();
      res.header("Allow", allow + ", OPTIONS");
      co_return res;
    }
    auto res = api::fail(core::errc::method_not_allowed);
    res.header("Allow", allow);
    co_return res;
  }

  // Refusals are values (authorize's errc, the handlers' answers); only infrastructure failures
  // and bugs arrive here as exceptions.
  try {
    // Contract §8: a cookie write from another site is refused before anything else looks at it.
    if (auto denied = auth::cross_site(found->policy, req, verifier_)) co_return api::fail(*denied);
    // Who is calling is decided here, completely, before the handler runs.
    if (auto denied = co_await auth::authorize(found->policy, req, verifier_)) co_return api::fail(*denied);
    co_return co_await found->handle(req, app_);
  } catch (const store::unavailable& e) {
    util::log(util::log_level::error, "database unavailable",
              {{"correlation_id", req.correlation_id}, {"trace_id", req.trace.trace_id}, {"error", e.what()}});
    co_return api::fail(core::errc::database_unavailable);
  } catch (const std::exception& e) {
    util::log(util::log_level::error, "unhandled error",
              {{"correlation_id", req.correlation_id},
               {"trace_id", req.trace.trace_id},
               {"route", req.route},
               {"error", e.what()}});
    co_return api::fail(core::errc::internal_error);
  }
}

}  // namespace fav
