// Every handler, one signature: parse, call, reply. Grouped by resource in api/*.cpp.
#pragma once
#include <boost/asio/awaitable.hpp>
#include <optional>

#include "core/types.hpp"
#include "http/message.hpp"

namespace fav {
struct app;
}

namespace fav::api {

namespace net = boost::asio;
using handler = net::awaitable<http::response> (*)(http::request&, app&);

// health.cpp
net::awaitable<http::response> health(http::request&, app&);
net::awaitable<http::response> health_ready(http::request&, app&);
net::awaitable<http::response> metrics(http::request&, app&);
// auth.cpp
net::awaitable<http::response> sign_up(http::request&, app&);
net::awaitable<http::response> sign_in(http::request&, app&);
net::awaitable<http::response> sign_out(http::request&, app&);
net::awaitable<http::response> refresh(http::request&, app&);
// customers.cpp
net::awaitable<http::response> list_customers(http::request&, app&);
net::awaitable<http::response> get_customer(http::request&, app&);
net::awaitable<http::response> patch_customer(http::request&, app&);
net::awaitable<http::response> delete_customer(http::request&, app&);
// GET /customers' filters: name/email substrings (lower-cased) and created_from/created_to
// (RFC 3339 with an offset); nullopt → invalid_filter. Public for the fuzz target.
std::optional<core::customer_filter> parse_customer_filter(const http::request& req);
// favorites.cpp
net::awaitable<http::response> list_favorites(http::request&, app&);
net::awaitable<http::response> add_favorite(http::request&, app&);
net::awaitable<http::response> get_favorite(http::request&, app&);
net::awaitable<http::response> remove_favorite(http::request&, app&);
// docs.cpp
net::awaitable<http::response> openapi_json(http::request&, app&);
net::awaitable<http::response> docs_index(http::request&, app&);
net::awaitable<http::response> docs_asset(http::request&, app&);

}  // namespace fav::api
