// HS256 JWT signing and verification over an OpenSSL 3 HMAC context keyed once; claims parsed
// by Boost.JSON, written by the one JSON writer.
#include "auth/jwt.hpp"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include <array>
#include <atomic>
#include <boost/json.hpp>
#include <cmath>
#include <limits>
#include <stdexcept>

#include "core/json_text.hpp"
#include "util/base64url.hpp"

namespace fav::auth {
namespace {

namespace json = boost::json;

constexpr std::size_t max_token_size = 8 * 1024;
constexpr std::size_t mac_size = 32;
using mac_bytes = std::array<unsigned char, mac_size>;

// base64url of {"alg":"HS256","typ":"JWT"}: what both services emit, byte for byte.
constexpr std::string_view standard_header = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9";

// An integral JSON number that fits in int64; integral doubles (4102444800.0) count too,
// because other JWT libraries may write exp that way.
std::optional<std::int64_t> as_int64(const json::value& v) {
  if (const auto* i = v.if_int64()) return *i;
  if (const auto* u = v.if_uint64()) {
    if (*u > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) return {};
    return static_cast<std::int64_t>(*u);
  }
  if (const auto* d = v.if_double()) {
    // 2^63 is exactly representable; anything at or past it would overflow the cast.
    constexpr double limit = 9223372036854775808.0;
    if (std::isfinite(*d) && std::trunc(*d) == *d && *d >= -limit && *d < limit) {
      return static_cast<std::int64_t>(*d);
    }
  }
  return {};
}

// Parses JSON text allocated from mr; null unless it is an object.
// (Returned, not assigned: assigning into a value with other storage would copy it.)
json::value parse_object(std::string_view text, json::monotonic_resource& mr) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec, json::storage_ptr(&mr));
  if (ec || !v.is_object()) return nullptr;
  return v;
}

// Fills c from a payload object; false when a claim is missing or has the wrong type.
bool read_claims(const json::object& payload, claims& c) {
  const auto* sub = payload.if_contains("sub");
  const auto* exp = payload.if_contains("exp");
  if (sub == nullptr || !sub->is_string() || sub->get_string().empty() || exp == nullptr) {
    return false;
  }
  const auto exp_value = as_int64(*exp);
  if (!exp_value) return false;
  c.sub = sub->get_string();
  c.exp = *exp_value;
  if (const auto* iat = payload.if_contains("iat")) {
    c.iat = as_int64(*iat);
    if (!c.iat) return false;
  }
  if (const auto* jti = payload.if_contains("jti")) {
    if (!jti->is_string()) return false;
    c.jti = std::string(jti->get_string());
  }
  if (const auto* sid = payload.if_contains("sid")) {
    if (!sid->is_string()) return false;
    c.sid = std::string(sid->get_string());
  }
  return true;
}

// Hands out codec ids; an id names one key, so a thread's cached context is reusable
// exactly when the ids match. Ids are never reused.
std::atomic<std::uint64_t> next_codec_id{1};

// HMAC-SHA256 of data under the codec's key. Each thread keeps one working copy of the keyed
// template: duplicating it on every call is twice as slow and makes threads contend on
// OpenSSL's shared reference counts; re-initialising with a null key restarts HMAC with the
// same key without re-deriving its pads. A thread alternating between codecs just re-copies.
mac_bytes compute_mac(std::uint64_t codec_id, evp_mac_ctx_st* keyed, std::string_view data) {
  struct working_copy {
    std::uint64_t codec_id = 0;
    std::unique_ptr<EVP_MAC_CTX, decltype(&EVP_MAC_CTX_free)> ctx{nullptr, &EVP_MAC_CTX_free};
  };
  thread_local working_copy mine;
  if (mine.codec_id != codec_id || EVP_MAC_init(mine.ctx.get(), nullptr, 0, nullptr) != 1) {
    mine.codec_id = 0;
    mine.ctx.reset(EVP_MAC_CTX_dup(keyed));  // fresh from the template: ready for update
    if (!mine.ctx) throw std::runtime_error("HMAC-SHA256 context allocation failed");
    mine.codec_id = codec_id;
  }
  mac_bytes out{};
  std::size_t len = 0;
  if (EVP_MAC_update(mine.ctx.get(), reinterpret_cast<const unsigned char*>(data.data()), data.size()) != 1 ||
      EVP_MAC_final(mine.ctx.get(), out.data(), &len, out.size()) != 1 || len != mac_size) {
    mine.codec_id = 0;  // unknown state: start from the template next time
    throw std::runtime_error("HMAC-SHA256 computation failed");
  }
  return out;
}

}  // namespace

void jwt_codec::ctx_deleter::operator()(evp_mac_ctx_st* ctx) const noexcept {
  EVP_MAC_CTX_free(ctx);
}

jwt_codec::jwt_codec(std::string secret) : id_(next_codec_id.fetch_add(1)) {
  // OpenSSL 3.0 refuses an empty HMAC key, and an empty secret is a configuration bug anyway.
  if (secret.empty()) throw std::invalid_argument("JWT secret must not be empty");
  EVP_MAC* mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  if (mac == nullptr) throw std::runtime_error("OpenSSL HMAC is unavailable");
  keyed_.reset(EVP_MAC_CTX_new(mac));
  EVP_MAC_free(mac);  // the context holds its own reference
  char digest[] = "SHA256";
  const OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
      OSSL_PARAM_construct_end(),
  };
  const bool ok = keyed_ && EVP_MAC_init(keyed_.get(), reinterpret_cast<const unsigned char*>(secret.data()),
                                         secret.size(), params) == 1;
  OPENSSL_cleanse(secret.data(), secret.size());  // our copy is no longer needed
  if (!ok) throw std::runtime_error("OpenSSL HMAC-SHA256 initialisation failed");
}

jwt_codec::~jwt_codec() = default;
jwt_codec::jwt_codec(jwt_codec&&) noexcept = default;
jwt_codec& jwt_codec::operator=(jwt_codec&&) noexcept = default;

std::string jwt_codec::sign(const claims& c) const {
  std::string payload;
  core::json_writer w(payload);
  w.begin_object();
  w.key("sub").str(c.sub);
  w.key("exp").num(c.exp);
  if (c.iat) w.key("iat").num(*c.iat);
  if (c.jti) w.key("jti").str(*c.jti);
  if (c.sid) w.key("sid").str(*c.sid);
  w.end_object();

  std::string token(standard_header);
  token += '.';
  token += util::base64url_encode(payload);
  const mac_bytes mac = compute_mac(id_, keyed_.get(), token);
  token += '.';
  token += util::base64url_encode(std::string_view(reinterpret_cast<const char*>(mac.data()), mac.size()));
  return token;
}

verify_result jwt_codec::verify(std::string_view token, std::int64_t now_seconds) const {
  verify_result result{token_status::malformed, {}};
  if (token.empty() || token.size() > max_token_size) return result;
  const auto dot1 = token.find('.');
  if (dot1 == std::string_view::npos) return result;
  const auto dot2 = token.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos || token.find('.', dot2 + 1) != std::string_view::npos) {
    return result;
  }
  const std::string_view header = token.substr(0, dot1);
  const std::string_view payload = token.substr(dot1 + 1, dot2 - dot1 - 1);
  const std::string_view signature = token.substr(dot2 + 1);
  // Shape first: three strict base64url segments, header and payload non-empty. The
  // signature may be empty here (alg:none tokens have none) and is judged below.
  if (header.empty() || payload.empty()) return result;
  const auto payload_text = util::base64url_decode(payload);
  const auto sig = util::base64url_decode(signature);
  if (!payload_text || !sig) return result;

  // Small tokens parse without touching the heap; bigger ones spill over transparently.
  unsigned char buffer[2048];
  json::monotonic_resource mr(buffer, sizeof buffer);

  // The algorithm is pinned before any signature work, so alg:none or an asymmetric
  // algorithm can never steer verification. Our own header skips decoding and parsing.
  if (header != standard_header) {
    const auto header_text = util::base64url_decode(header);
    if (!header_text) return result;
    const json::value h = parse_object(*header_text, mr);
    if (!h.is_object()) return result;
    const auto* alg = h.get_object().if_contains("alg");
    if (alg == nullptr || !alg->is_string() || alg->get_string() != "HS256") {
      result.status = token_status::bad_algorithm;
      return result;
    }
  }

  const mac_bytes expected = compute_mac(id_, keyed_.get(), token.substr(0, dot2));
  if (sig->size() != mac_size || CRYPTO_memcmp(sig->data(), expected.data(), mac_size) != 0) {
    result.status = token_status::bad_signature;
    return result;
  }

  // Only now, with the signature good, are the claims worth reading.
  const json::value p = parse_object(*payload_text, mr);
  if (!p.is_object() || !read_claims(p.get_object(), result.value)) {
    result.value = {};
    return result;
  }
  result.status = now_seconds >= result.value.exp ? token_status::expired : token_status::ok;
  return result;
}

std::string jwt_codec::mac(std::string_view data) const {
  const mac_bytes m = compute_mac(id_, keyed_.get(), data);
  return util::base64url_encode(std::string_view(reinterpret_cast<const char*>(m.data()), m.size()));
}

bool jwt_codec::check_mac(std::string_view data, std::string_view mac) const {
  const auto given = util::base64url_decode(mac);
  if (!given || given->size() != mac_size) return false;
  const mac_bytes expected = compute_mac(id_, keyed_.get(), data);
  return CRYPTO_memcmp(given->data(), expected.data(), mac_size) == 0;
}

}  // namespace fav::auth
