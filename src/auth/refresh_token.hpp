// Refresh tokens (contract §3 "refresh tokens", §8 "Token rows"): "<sign-in id>.<generation>.<proof>".
// The proof is a MAC of the sign-in id and generation under the access tokens' key, so any
// generation a sign-in ever issued can be recognised — a rotated one is reuse — while the database
// keeps only the sign-in's current generation, never a token or anything that makes one.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "auth/jwt.hpp"

namespace fav::auth {

struct refresh_claim {
  std::string sid;
  std::int64_t generation = 0;
};

// The refresh token of generation `generation` of sign-in `sid`.
std::string make_refresh_token(const jwt_codec& key, std::string_view sid, std::int64_t generation);

// The sign-in and generation a token names, when its proof is good; nullopt for anything else
// (malformed, too long, a forged or foreign proof). Never throws because of the input.
std::optional<refresh_claim> read_refresh_token(const jwt_codec& key, std::string_view token);

}  // namespace fav::auth
