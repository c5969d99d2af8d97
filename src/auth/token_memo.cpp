// See token_memo.hpp.
#include "auth/token_memo.hpp"

#include <sodium.h>

namespace fav::auth {

const verified_token* token_memo::find(std::string_view token, std::int64_t now_s) const {
  if (!verified_ || token.size() != token_.size() || token.empty()) return nullptr;
  if (sodium_memcmp(token.data(), token_.data(), token.size()) != 0) return nullptr;
  if (now_s >= verified_->exp) return nullptr;  // as jwt_codec::verify: expired from `exp` on
  return &*verified_;
}

const verified_token& token_memo::remember(std::string_view token, verified_token v) {
  token_.assign(token);  // reuses the connection's buffer when the new token fits
  verified_ = std::move(v);
  return *verified_;
}

}  // namespace fav::auth
