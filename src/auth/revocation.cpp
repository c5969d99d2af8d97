// See revocation.hpp.
#include "auth/revocation.hpp"

namespace fav::auth {

net::awaitable<void> revoke_access_token(store::store& db, std::string key, core::micros expires_at) {
  co_await db.revoke_token(std::move(key), expires_at);
}

net::awaitable<void> revoke_sign_in(store::store& db, std::string sid, core::micros now, core::micros access_ttl) {
  const std::string key = sign_in_key(sid);  // named: CONTRIBUTING.md, "Compiler notes"
  co_await db.revoke_token(key, now + access_ttl);
  co_await db.end_sign_in(sid);
}

}  // namespace fav::auth
