// A connection's memory of the last access token it verified (one entry): a client that sends the
// same token on every request of a keep-alive connection has its signature checked and its claims
// decoded once. Only the verification is remembered: the expiry is checked against the clock on
// every use, and the revocation check (token_cache) still runs on every request.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/types.hpp"

namespace fav::auth {

// What verifying a token produced, as the auth policy uses it.
struct verified_token {
  core::customer_id customer;      // `sub`, parsed
  std::string key;                 // revocation key (revocation_key())
  std::optional<std::string> sid;  // sign-in of the token, if any
  std::int64_t exp = 0;            // expiry, Unix seconds
};

class token_memo {
 public:
  // The verification of `token` when it is the one remembered and `now_s` is before its expiry;
  // null otherwise (another token, none remembered, or expired: the caller verifies afresh).
  // The comparison takes the same time wherever the tokens differ: behind a proxy one connection
  // carries many clients' tokens.
  const verified_token* find(std::string_view token, std::int64_t now_s) const;
  // Remembers `v` as the verification of `token`, replacing the previous entry; returns it.
  const verified_token& remember(std::string_view token, verified_token v);

 private:
  std::string token_;
  std::optional<verified_token> verified_;
};

}  // namespace fav::auth
