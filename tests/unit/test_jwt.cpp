// Unit tests for fav::auth::jwt_codec: the reference's compat vectors, algorithm pinning,
// signature checks, claim types, hostile input and concurrent use; and the refresh tokens made
// with its key.
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <boost/json.hpp>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "auth/jwt.hpp"
#include "auth/refresh_token.hpp"
#include "util/base64url.hpp"

namespace json = boost::json;
using fav::auth::claims;
using fav::auth::jwt_codec;
using fav::auth::token_status;
using fav::util::base64url_encode;

namespace {

const json::object& jwt_vectors() {
  static const json::value doc = [] {
    std::ifstream in(FAV_SOURCE_DIR "/tests/compat-vectors.json");
    if (!in) throw std::runtime_error("cannot open tests/compat-vectors.json");
    std::stringstream text;
    text << in.rdbuf();
    return json::parse(text.str());
  }();
  return doc.at("jwt_hs256_seed_format").as_object();
}

std::string vec(const char* key) {
  return std::string(jwt_vectors().at(key).as_string());
}

constexpr std::int64_t now_2026 = 1795953600;  // 2026-11-29T12:00:00Z
constexpr std::int64_t exp_2100 = 4102444800;

// Builds a token from raw header/payload JSON text, signed with an independent one-shot
// OpenSSL HMAC: lets tests reach the checks that run after a good signature.
std::string sign_raw(std::string_view secret, std::string_view header, std::string_view payload) {
  std::string input = base64url_encode(header) + "." + base64url_encode(payload);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, &len);
  return input + "." + base64url_encode(std::string_view(reinterpret_cast<char*>(mac), len));
}

constexpr std::string_view hs256 = R"({"alg":"HS256","typ":"JWT"})";

class jwt_test : public ::testing::Test {
 protected:
  std::string secret = vec("secret");
  jwt_codec codec{secret};

  token_status status_of(std::string_view token) const { return codec.verify(token, now_2026).status; }
  token_status status_of_payload(std::string_view payload) const { return status_of(sign_raw(secret, hs256, payload)); }
};

}  // namespace

TEST_F(jwt_test, reference_token_verifies) {
  const auto r = codec.verify(vec("valid_until_2100"), now_2026);
  ASSERT_EQ(r.status, token_status::ok);
  EXPECT_EQ(r.value.sub, vec("customer_id"));
  EXPECT_EQ(r.value.exp, exp_2100);
  EXPECT_FALSE(r.value.iat);
  EXPECT_FALSE(r.value.jti);
  EXPECT_FALSE(r.value.sid);
}

TEST_F(jwt_test, signs_byte_identical_to_reference) {
  EXPECT_EQ(codec.sign({.sub = vec("customer_id"), .exp = exp_2100}), vec("valid_until_2100"));
}

TEST_F(jwt_test, expiry_boundary_and_reference_expired_token) {
  const std::string token = vec("valid_until_2100");
  EXPECT_EQ(codec.verify(token, exp_2100 - 1).status, token_status::ok);
  EXPECT_EQ(codec.verify(token, exp_2100).status, token_status::expired);
  const auto r = codec.verify(vec("expired_2020"), now_2026);
  EXPECT_EQ(r.status, token_status::expired);
  EXPECT_EQ(r.value.sub, vec("customer_id"));
}

TEST_F(jwt_test, alg_none_is_rejected_before_signature) {
  const std::string none = vec("alg_none");
  EXPECT_EQ(status_of(none), token_status::bad_algorithm);
  // Even with a signature our key would accept over those bytes, alg:none stays refused.
  const std::string forged = sign_raw(secret, R"({"alg":"none","typ":"JWT"})", R"({"sub":"x","exp":4102444800})");
  EXPECT_EQ(status_of(forged), token_status::bad_algorithm);
}

TEST_F(jwt_test, other_algorithms_are_rejected) {
  const std::string_view payload = R"({"sub":"x","exp":4102444800})";
  for (const char* header : {R"({"alg":"HS512","typ":"JWT"})", R"({"alg":"RS256","typ":"JWT"})",
                             R"({"alg":"hs256","typ":"JWT"})", R"({"alg":"HS256 "})", R"({"typ":"JWT"})",
                             R"({"alg":null})", R"({"alg":256})", R"({"alg":["HS256"]})", R"({})"}) {
    EXPECT_EQ(status_of(sign_raw(secret, header, payload)), token_status::bad_algorithm) << header;
  }
}

TEST_F(jwt_test, any_hs256_header_spelling_is_accepted) {
  const std::string token =
      sign_raw(secret, R"({ "typ": "JWT", "alg": "HS256", "kid": "1" })", R"({"sub":"x","exp":4102444800})");
  EXPECT_EQ(status_of(token), token_status::ok);
}

TEST_F(jwt_test, wrong_secret_is_bad_signature) {
  const jwt_codec other("another-secret-another-secret-0000");
  EXPECT_EQ(status_of(other.sign({.sub = "x", .exp = exp_2100})), token_status::bad_signature);
  EXPECT_EQ(other.verify(vec("valid_until_2100"), now_2026).status, token_status::bad_signature);
}

TEST_F(jwt_test, tampering_is_bad_signature) {
  const std::string token = vec("valid_until_2100");
  const auto dot1 = token.find('.');
  const auto dot2 = token.rfind('.');
  const std::string forged_payload =
      base64url_encode(R"({"sub":"00000000-0000-4000-8000-000000000000","exp":4102444800})");
  EXPECT_EQ(status_of(token.substr(0, dot1 + 1) + forged_payload + token.substr(dot2)), token_status::bad_signature);

  std::string bad_sig = token;
  bad_sig[dot2 + 1] = bad_sig[dot2 + 1] == 'A' ? 'B' : 'A';
  EXPECT_EQ(status_of(bad_sig), token_status::bad_signature);
  EXPECT_EQ(status_of(token.substr(0, dot2 + 1)), token_status::bad_signature);          // empty
  EXPECT_EQ(status_of(token.substr(0, token.size() - 3)), token_status::bad_signature);  // short
}

TEST_F(jwt_test, garbage_is_malformed) {
  const std::string good = vec("valid_until_2100");
  const std::string header = good.substr(0, good.find('.'));
  for (const std::string& bad :
       std::vector<std::string>{"", ".", "..", "...", "a", "a.b", "a.b.c", "a.b.c.d", good + ".x", "!!!.###.$$$",
                                header + ".%%%.abc", header + "..", "." + good.substr(good.find('.') + 1), good + "=",
                                header + "=." + good.substr(good.find('.') + 1), std::string("\0.\0.\0", 5),
                                std::string(9000, 'a'), header + "." + std::string(9000, 'A') + ".sig"}) {
    EXPECT_EQ(status_of(bad), token_status::malformed) << bad.substr(0, 60);
  }
  // A header that is not a JSON object cannot name an algorithm.
  EXPECT_EQ(status_of(sign_raw(secret, "not json", R"({"sub":"x","exp":1})")), token_status::malformed);
  EXPECT_EQ(status_of(sign_raw(secret, R"(["HS256"])", R"({"sub":"x","exp":1})")), token_status::malformed);
}

TEST_F(jwt_test, bad_claims_are_malformed_even_when_signed) {
  for (const char* payload : {"not json",
                              "",
                              R"(["x"])",
                              R"("x")",
                              "null",
                              R"({"sub":"x","exp":4102444800)",
                              R"({"exp":4102444800})",
                              R"({"sub":"","exp":4102444800})",
                              R"({"sub":7,"exp":4102444800})",
                              R"({"sub":null,"exp":4102444800})",
                              R"({"sub":"x"})",
                              R"({"sub":"x","exp":"4102444800"})",
                              R"({"sub":"x","exp":null})",
                              R"({"sub":"x","exp":4102444800.5})",
                              R"({"sub":"x","exp":1e300})",
                              R"({"sub":"x","exp":18446744073709551615})",
                              R"({"sub":"x","exp":true})",
                              R"({"sub":"x","exp":4102444800,"iat":"1"})",
                              R"({"sub":"x","exp":4102444800,"iat":1.5})",
                              R"({"sub":"x","exp":4102444800,"jti":1})",
                              R"({"sub":"x","exp":4102444800,"sid":null})",
                              R"({"sub":"x","exp":4102444800,"sid":{}})"}) {
    EXPECT_EQ(status_of_payload(payload), token_status::malformed) << payload;
  }
}

TEST_F(jwt_test, integral_double_exp_is_accepted) {
  const auto r = codec.verify(sign_raw(secret, hs256, R"({"sub":"x","exp":4102444800.0,"iat":1.7e9})"), now_2026);
  ASSERT_EQ(r.status, token_status::ok);
  EXPECT_EQ(r.value.exp, exp_2100);
  EXPECT_EQ(r.value.iat, 1700000000);
}

TEST_F(jwt_test, roundtrip_with_optional_claims) {
  const claims c{.sub = "78293de4-36e6-4507-9eda-b374974f0f08",
                 .exp = exp_2100,
                 .iat = now_2026,
                 .jti = "jti-\"quoted\"-ünï",
                 .sid = "session-1"};
  const std::string token = codec.sign(c);
  EXPECT_EQ(token.substr(0, token.find('.')), "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9");
  const auto r = codec.verify(token, now_2026);
  ASSERT_EQ(r.status, token_status::ok);
  EXPECT_EQ(r.value.sub, c.sub);
  EXPECT_EQ(r.value.exp, c.exp);
  EXPECT_EQ(r.value.iat, c.iat);
  EXPECT_EQ(r.value.jti, c.jti);
  EXPECT_EQ(r.value.sid, c.sid);

  const auto payload =
      fav::util::base64url_decode(token.substr(token.find('.') + 1, token.rfind('.') - token.find('.') - 1));
  ASSERT_TRUE(payload);
  EXPECT_EQ(json::parse(*payload), json::parse(R"({"sub":"78293de4-36e6-4507-9eda-b374974f0f08","exp":4102444800,)"
                                               R"("iat":1795953600,"jti":"jti-\"quoted\"-ünï","sid":"session-1"})"));
}

TEST_F(jwt_test, codec_is_movable) {
  jwt_codec moved = std::move(codec);
  EXPECT_EQ(moved.verify(vec("valid_until_2100"), now_2026).status, token_status::ok);
}

TEST(jwt, empty_secret_is_refused) {
  EXPECT_THROW(jwt_codec(""), std::invalid_argument);
}

TEST_F(jwt_test, concurrent_use_from_several_threads) {
  const std::string good = vec("valid_until_2100");
  std::vector<std::thread> threads;
  std::vector<int> failures(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 2000; ++i) {
        const std::string mine = codec.sign({.sub = std::to_string(t), .exp = exp_2100, .iat = i});
        if (codec.verify(mine, now_2026).status != token_status::ok) ++failures[t];
        if (codec.verify(good, now_2026).status != token_status::ok) ++failures[t];
      }
    });
  }
  for (auto& th : threads) th.join();
  for (const int f : failures) EXPECT_EQ(f, 0);
}

TEST_F(jwt_test, codecs_with_different_keys_alternate_on_one_thread) {
  const jwt_codec other("another-secret-another-secret-0000");
  const std::string mine = codec.sign({.sub = "a", .exp = exp_2100});
  const std::string theirs = other.sign({.sub = "b", .exp = exp_2100});
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(codec.verify(mine, now_2026).status, token_status::ok);
    EXPECT_EQ(other.verify(mine, now_2026).status, token_status::bad_signature);
    EXPECT_EQ(other.verify(theirs, now_2026).status, token_status::ok);
    EXPECT_EQ(codec.verify(theirs, now_2026).status, token_status::bad_signature);
  }
}

// ---- refresh tokens (auth/refresh_token.hpp): "<sign-in id>.<generation>.<MAC>" ----

namespace {

using fav::auth::make_refresh_token;
using fav::auth::read_refresh_token;

const std::string sid = "0b7f3f5e-8a51-4f6c-9a53-2f7ad2d6c0de";

TEST(refresh_token, names_its_sign_in_and_generation) {
  const jwt_codec key("refresh-secret-0123456789abcdef");
  for (std::int64_t g : {std::int64_t{0}, std::int64_t{1}, std::int64_t{200}, std::int64_t{999999999999}}) {
    const std::string t = make_refresh_token(key, sid, g);
    EXPECT_EQ(t.rfind(sid + "." + std::to_string(g) + ".", 0), 0u) << t;
    const auto claim = read_refresh_token(key, t);
    ASSERT_TRUE(claim) << t;
    EXPECT_EQ(claim->sid, sid);
    EXPECT_EQ(claim->generation, g);
  }
  // Each generation has its own proof: one cannot be turned into another.
  EXPECT_NE(make_refresh_token(key, sid, 0).substr(sid.size() + 3),
            make_refresh_token(key, sid, 1).substr(sid.size() + 3));
}

TEST(refresh_token, refuses_forged_altered_and_malformed_tokens) {
  const jwt_codec key("refresh-secret-0123456789abcdef");
  const jwt_codec other("another-secret-0123456789abcdef");
  const std::string good = make_refresh_token(key, sid, 3);
  const std::string proof = good.substr(good.rfind('.') + 1);
  std::string flipped = good;
  flipped[flipped.size() - 2] = flipped[flipped.size() - 2] == 'A' ? 'B' : 'A';
  const std::vector<std::string> bad = {
      "",
      "garbage",
      sid,
      sid + ".3",
      sid + ".3.",
      flipped,
      sid + ".4." + proof,                                // another generation, same proof
      "1b7f3f5e-8a51-4f6c-9a53-2f7ad2d6c0de.3." + proof,  // another sign-in
      sid + ".03." + proof,                               // not canonical
      sid + ".+3." + proof,
      sid + ".-3." + proof,
      sid + ".3x." + proof,
      sid + ".99999999999999999999." + proof,  // out of range
      "../etc.3." + proof,                     // not an id this service makes
      sid + ".3." + proof + ".extra",
      std::string(300, 'a'),
      make_refresh_token(other, sid, 3),  // another key
  };
  for (const auto& t : bad) EXPECT_FALSE(read_refresh_token(key, t)) << t;
  // An access token is not a refresh token, and a refresh token's proof is no JWT signature.
  claims c;
  c.sub = sid;
  c.exp = 4102444800;
  EXPECT_FALSE(read_refresh_token(key, key.sign(c)));
  EXPECT_NE(key.verify(good, 0).status, token_status::ok);
}

}  // namespace
