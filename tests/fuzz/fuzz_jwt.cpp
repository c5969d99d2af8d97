// libFuzzer target: a presented token through decode and verify. The input is tried twice:
// as the token itself (header, base64url and signature checks), and as the payload of a token
// signed with the right key, so the claims parser behind the signature check is reached too.
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "auth/jwt.hpp"
#include "util/base64url.hpp"

namespace {
const std::string secret = "fuzz-secret-0123456789abcdef0123456789";
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const fav::auth::jwt_codec codec(secret);
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  (void)codec.verify(in, 1'700'000'000);

  const std::string signing_input =
      fav::util::base64url_encode(R"({"alg":"HS256","typ":"JWT"})") + "." + fav::util::base64url_encode(in);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(signing_input.data()), signing_input.size(), mac, &mac_len);
  const std::string token =
      signing_input + "." + fav::util::base64url_encode(std::string_view(reinterpret_cast<const char*>(mac), mac_len));
  (void)codec.verify(token, 1'700'000'000);
  return 0;
}
