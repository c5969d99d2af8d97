// Route auth policies: what must be presented before a handler runs (contract §2).
#pragma once
#include <boost/asio/awaitable.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "auth/jwt.hpp"
#include "auth/token_cache.hpp"
#include "core/errc.hpp"
#include "http/message.hpp"

namespace fav::auth {

namespace net = boost::asio;

enum class policy {
  none,           // public
  api_key,        // x-aiqfome-api-key == API_KEY (constant time)
  customer_self,  // a valid token whose `sub` is exactly the route's {id}
  // public, but the handler acts on a token it is shown (sign-out): a write by the cookie, so
  // the cross-site rule (cross_site()) applies as it does to customer_self writes
  token_optional,
};

// Who the auth policy found behind the request (stored in http::request::auth).
struct principal {
  core::customer_id customer_id;   // token `sub`, parsed
  std::string jti;                 // revocation key (jti, or the signature for reference tokens)
  std::optional<std::string> sid;  // refresh-token family of the sign-in
  std::int64_t exp = 0;            // token expiry, seconds
};

// The caller of a request that passed a customer policy (routes with policy::customer_self).
const principal& caller(const http::request& req);

// What the policies need, and nothing else.
struct verifier {
  std::string_view api_key;  // API_KEY
  jwt_codec& jwt;
  token_cache& tokens;                              // revocation / existence check
  const std::vector<std::string>& allowed_origins;  // CORS_ALLOW_ORIGINS ("*" lists none)
};

// Contract §8 "Cross-site writes", before authorize(): a POST, PATCH or DELETE on a route that
// acts on the caller's token (customer_self, token_optional), carrying the access_token cookie
// but no Authorization header nor API key, whose Origin (or, without one, its Referer's origin)
// is neither the service's own nor listed → cross_site_request. nullopt → not refused.
std::optional<core::errc> cross_site(policy p, const http::request& req, const verifier& v);

// The origin ("scheme://host[:port]", lower-cased) of an absolute http(s) URL such as a Referer;
// empty when it has none. Pure, for the cross-site rule and its unit tests.
std::string origin_of(std::string_view url);

// Decides `p` for `req`, completely, before any handler runs: for customer_self the token is
// verified and checked (token cache hit, else one check_token round trip). The refusal is the
// value returned (missing_api_key, invalid_api_key, missing_token, invalid_token, token_expired
// or forbidden); nullopt → allowed, and for customer_self the principal is in req.auth (caller()).
net::awaitable<std::optional<core::errc>> authorize(policy p, http::request& req, const verifier& v);

// The access token from `Authorization: Bearer` or the `access_token` cookie; empty if none.
std::string_view presented_token(const http::request& req);

// The revocation key of a verified token: its jti, or its signature for reference-format tokens.
std::string revocation_key(std::string_view token, const std::optional<std::string>& jti);

}  // namespace fav::auth
