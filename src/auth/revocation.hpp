// Revoking tokens and whole sign-ins (contract §2 sign-out, §8 "Tokens, whole sign-ins"): the one
// place that writes revocations. The store publishes each to the change feed, from which the
// token cache (this instance's at once, every other's within 1 s) forgets what it revoked.
#pragma once
#include <boost/asio/awaitable.hpp>
#include <string>
#include <string_view>

#include "core/types.hpp"
#include "store/store.hpp"

namespace fav::auth {

namespace net = boost::asio;

// The revoked_tokens key that revokes every access token naming sign-in `sid`.
using store::sign_in_key;

// Revokes one access token (`key` from revocation_key) until it expires.
net::awaitable<void> revoke_access_token(store::store& db, std::string key, core::micros expires_at);

// Revokes sign-in `sid`: every access token its refresh chain issued (they all expire by
// now + access_ttl) and its refresh tokens (its one row goes). Idempotent.
net::awaitable<void> revoke_sign_in(store::store& db, std::string sid, core::micros now, core::micros access_ttl);

}  // namespace fav::auth
