// See base64url.hpp. libsodium (already linked for the password hashes and token bytes) does the
// work: its URL-safe, unpadded variant rejects padding, foreign characters, impossible lengths
// and non-zero trailing bits, which is the one-spelling rule the header promises.
#include "util/base64url.hpp"

#include <sodium.h>

namespace fav::util {

std::string base64url_encode(std::string_view bytes) {
  constexpr int variant = sodium_base64_VARIANT_URLSAFE_NO_PADDING;
  std::string out(sodium_base64_encoded_len(bytes.size(), variant), '\0');  // counts the final NUL
  sodium_bin2base64(out.data(), out.size(), reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(),
                    variant);
  out.resize(out.size() - 1);
  return out;
}

std::optional<std::string> base64url_decode(std::string_view text) {
  std::string out(text.size() / 4 * 3 + 3, '\0');
  std::size_t len = 0;
  // No `ignore` set and no end pointer: the whole text must be base64url, or -1.
  if (sodium_base642bin(reinterpret_cast<unsigned char*>(out.data()), out.size(), text.data(), text.size(), nullptr,
                        &len, nullptr, sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0)
    return std::nullopt;
  out.resize(len);
  return out;
}

std::string hex_encode(std::string_view bytes) {
  std::string out(bytes.size() * 2 + 1, '\0');
  sodium_bin2hex(out.data(), out.size(), reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
  out.resize(out.size() - 1);
  return out;
}

}  // namespace fav::util
