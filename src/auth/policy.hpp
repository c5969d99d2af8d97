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
  // customer_self for a read-only route whose handler's first store call is a checked read
  // (store::token_check): on a token-cache miss the check travels with that read, in the same
  // round trip on PostgreSQL, and is finished after the handler (finish_token_check()). Only for handlers that
  // do nothing before that read which a refused token must not see.
  customer_self_read,
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
  // customer_self_read on a token-cache miss: the check not made yet, and the cache's ticket
  // for remembering its answer.
  std::optional<store::token_check> pending;
  token_cache::ticket ticket;
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
// acts on the caller's token (customer_self*, token_optional), carrying the access_token cookie
// but no Authorization header nor API key, whose Origin (or, without one, its Referer's origin)
// is neither the service's own nor listed → cross_site_request. nullopt → not refused.
std::optional<core::errc> cross_site(policy p, const http::request& req, const verifier& v);

// The origin ("scheme://host[:port]", lower-cased) of an absolute http(s) URL such as a Referer;
// empty when it has none. Pure, for the cross-site rule and its unit tests.
std::string origin_of(std::string_view url);

// Checks `p` for `req`; fills req.auth for customer policies. nullopt → allowed; otherwise
// missing_api_key, invalid_api_key, missing_token, invalid_token, token_expired or forbidden.
net::awaitable<std::optional<core::errc>> authorize(policy p, http::request& req, const verifier& v);

// The token check a customer_self_read route left to its handler's first read, for the store's
// checked reads; null when there is none (the cache answered) or it has passed.
store::token_check* pending_check(http::request& req);

// After the handler of a customer_self_read route: a check its read made is remembered in the
// token cache; one no read made (the handler answered before reading, e.g. a 400) is made now.
// nullopt → the handler's answer stands; otherwise invalid_token.
net::awaitable<std::optional<core::errc>> finish_token_check(http::request& req, const verifier& v);

// The access token from `Authorization: Bearer` or the `access_token` cookie; empty if none.
std::string_view presented_token(const http::request& req);

// The revocation key of a verified token: its jti, or its signature for reference-format tokens.
std::string revocation_key(std::string_view token, const std::optional<std::string>& jti);

}  // namespace fav::auth
