// See refresh_token.hpp.
#include "auth/refresh_token.hpp"

#include <charconv>

namespace fav::auth {
namespace {

// What the proof covers: a label with ':' (never in a JWT's signing input), the id, the generation.
std::string proof_input(std::string_view sid, std::string_view generation) {
  std::string in = "refresh:";
  in.append(sid).append(".").append(generation);
  return in;
}

// A sign-in id as this service makes them: 1..64 of [A-Za-z0-9-] (a UUID today).
bool plausible_sid(std::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  for (char ch : s) {
    const bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '-';
    if (!ok) return false;
  }
  return true;
}

}  // namespace

std::string make_refresh_token(const jwt_codec& key, std::string_view sid, std::int64_t generation) {
  const std::string g = std::to_string(generation);
  std::string token(sid);
  token.append(".").append(g).append(".").append(key.mac(proof_input(sid, g)));
  return token;
}

std::optional<refresh_claim> read_refresh_token(const jwt_codec& key, std::string_view token) {
  if (token.size() > 256) return std::nullopt;
  const auto dot1 = token.find('.');
  if (dot1 == std::string_view::npos) return std::nullopt;
  const auto dot2 = token.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos) return std::nullopt;
  const std::string_view sid = token.substr(0, dot1);
  const std::string_view g = token.substr(dot1 + 1, dot2 - dot1 - 1);
  const std::string_view proof = token.substr(dot2 + 1);
  if (!plausible_sid(sid) || g.empty() || g.size() > 18) return std::nullopt;
  // Canonical decimal only ("007" or "+7" would name generation 7 with another proof input).
  if (g.size() > 1 && g.front() == '0') return std::nullopt;
  std::int64_t generation = 0;
  const auto [end, ec] = std::from_chars(g.data(), g.data() + g.size(), generation);
  if (ec != std::errc() || end != g.data() + g.size() || generation < 0) return std::nullopt;
  if (!key.check_mac(proof_input(sid, g), proof)) return std::nullopt;
  return refresh_claim{std::string(sid), generation};
}

}  // namespace fav::auth
