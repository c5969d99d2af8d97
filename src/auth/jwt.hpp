// HS256 JSON Web Tokens in the reference service's format: header {"alg":"HS256","typ":"JWT"},
// claims sub + exp (integer seconds), plus our optional iat, jti and sid.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

struct evp_mac_ctx_st;  // OpenSSL's EVP_MAC_CTX, kept out of this header

namespace fav::auth {

// The `{}` initializers let callers write claims{.sub = s, .exp = e} warning-free on g++ 12.
struct claims {
  std::string sub{};
  std::int64_t exp = 0;
  std::optional<std::int64_t> iat{};
  std::optional<std::string> jti{};
  std::optional<std::string> sid{};
};

enum class token_status { ok, malformed, bad_algorithm, bad_signature, expired };

struct verify_result {
  token_status status = token_status::malformed;
  claims value{};  // filled for ok and expired, empty otherwise
};

// Signs and verifies tokens with one secret. Thread-safe: methods are const, the keyed HMAC
// template is never modified, and each thread computes on its own copy of it.
// The secret is not kept in plain form, logged or put in exceptions.
class jwt_codec {
 public:
  // Keys HMAC-SHA256 once; throws std::invalid_argument if secret is empty.
  explicit jwt_codec(std::string secret);
  ~jwt_codec();
  jwt_codec(jwt_codec&&) noexcept;
  jwt_codec& operator=(jwt_codec&&) noexcept;

  // header.payload.signature, each base64url without padding; claims appear in the order
  // sub, exp, iat, jti, sid. Throws std::runtime_error only if OpenSSL fails.
  std::string sign(const claims& c) const;

  // Checks, in order: size (<= 8 KiB), three base64url parts, JSON header -> malformed;
  // alg exactly "HS256" -> bad_algorithm; signature (constant time) -> bad_signature;
  // payload JSON and claim types -> malformed; now_seconds >= exp -> expired.
  // Never throws because of the input; only if memory or OpenSSL itself fails.
  verify_result verify(std::string_view token, std::int64_t now_seconds) const;

  // The same key for another kind of token (refresh tokens): base64url of HMAC-SHA256(`data`).
  // `data` must hold a character no JWT signing input has (':'), so neither kind passes for the other.
  std::string mac(std::string_view data) const;
  // True when `mac` is mac(data); compared in constant time.
  bool check_mac(std::string_view data, std::string_view mac) const;

 private:
  struct ctx_deleter {
    void operator()(evp_mac_ctx_st* ctx) const noexcept;
  };
  std::uint64_t id_;                                    // names the key for per-thread copies
  std::unique_ptr<evp_mac_ctx_st, ctx_deleter> keyed_;  // keyed template, copied per thread
};

}  // namespace fav::auth
