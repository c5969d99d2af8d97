// Base64url (RFC 4648 §5, unpadded) and lowercase hex: the encodings of JWTs, opaque tokens
// and digests.
#pragma once
#include <optional>
#include <string>
#include <string_view>

namespace fav::util {

// Encodes any bytes as base64url without '=' padding.
std::string base64url_encode(std::string_view bytes);

// Decodes unpadded base64url; nullopt on padding, a foreign character, an impossible length
// or non-zero unused trailing bits (so every byte string has exactly one accepted spelling).
std::optional<std::string> base64url_decode(std::string_view text);

// Encodes any bytes as lowercase hex, two characters per byte.
std::string hex_encode(std::string_view bytes);

}  // namespace fav::util
