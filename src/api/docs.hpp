// Handlers for the API's own documentation: the OpenAPI document and the Swagger UI that reads it.
#pragma once
#include <boost/asio/awaitable.hpp>

#include "http/message.hpp"

namespace fav {
struct app;
}

namespace fav::api {

// GET /openapi.json → 200 the document (ETag, no-cache; 304 on a matching If-None-Match).
boost::asio::awaitable<http::response> openapi_json(http::request& req, app& a);
// GET /docs → 200 the Swagger UI page, with a strict Content-Security-Policy.
boost::asio::awaitable<http::response> docs_index(http::request& req, app& a);
// GET /docs/{file} → 200 a Swagger UI file (gzip when accepted), 304, or 404 not_found.
boost::asio::awaitable<http::response> docs_asset(http::request& req, app& a);

}  // namespace fav::api
