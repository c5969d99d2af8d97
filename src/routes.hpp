// THE route table and the api_router that applies it (the server's request handler):
// match → 404/405 → auth policy (decided completely) → handler, with the service's one `try`
// (infrastructure failures only: refusals are values).
#pragma once
#include <boost/asio/awaitable.hpp>
#include <span>
#include <string_view>
#include <vector>

#include "api/handlers.hpp"
#include "auth/policy.hpp"
#include "http/message.hpp"
#include "http/router.hpp"

namespace fav {

struct app;

struct route_def {
  http::verb method;
  std::string_view pattern;
  auth::policy policy;
  api::handler handle;
};

// Every route of the service, one line each (src/routes.cpp).
std::span<const route_def> route_table();

// Method and pattern of every route, for the OpenAPI drift test.
struct route_info {
  std::string_view method;
  std::string_view pattern;
};
std::vector<route_info> route_list();

class api_router {
 public:
  explicit api_router(app& a);
  // Never throws: infrastructure failures become 503 database_unavailable, bugs 500.
  // Contract §10: the request's trace context is set first (its `traceparent` continued, or a new
  // trace), and an error answer is `application/problem+json` when the request's Accept names it.
  boost::asio::awaitable<http::response> operator()(http::request& req);

 private:
  boost::asio::awaitable<http::response> route(http::request& req);
  app& app_;
  auth::verifier verifier_;
  std::vector<http::path_pattern> patterns_;  // parallel to route_table()
};

}  // namespace fav
