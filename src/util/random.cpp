// UUIDs, tokens and digests over libsodium's randombytes and crypto_hash_sha256.
#include "util/random.hpp"

#include <sodium.h>

#include <array>
#include <random>
#include <stdexcept>

#include "util/base64url.hpp"

namespace fav::util {

void init_sodium() {
  // A magic static makes the first call race-free and later calls a plain load.
  static const int rc = sodium_init();
  if (rc < 0) throw std::runtime_error("libsodium initialisation failed");
}

namespace {
std::string format_uuid(std::array<unsigned char, 16> b) {
  b[6] = static_cast<unsigned char>((b[6] & 0x0f) | 0x40);  // version 4
  b[8] = static_cast<unsigned char>((b[8] & 0x3f) | 0x80);  // RFC 4122 variant
  constexpr std::string_view digits = "0123456789abcdef";
  std::string out;
  out.reserve(36);
  for (std::size_t i = 0; i < b.size(); ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out += '-';
    out += digits[b[i] >> 4];
    out += digits[b[i] & 0x0f];
  }
  return out;
}
}  // namespace

std::string uuid_v4() {
  init_sodium();
  std::array<unsigned char, 16> b{};
  randombytes_buf(b.data(), b.size());
  return format_uuid(b);
}

std::string request_uuid() {
  // A per-thread generator seeded once from the OS: ids only need to be unique, not secret,
  // and this saves a getrandom() call per request.
  thread_local std::mt19937_64 gen = [] {
    init_sodium();
    std::seed_seq seq{randombytes_random(), randombytes_random(), randombytes_random(), randombytes_random()};
    return std::mt19937_64(seq);
  }();
  std::array<unsigned char, 16> b{};
  for (int half = 0; half < 2; ++half) {
    std::uint64_t v = gen();
    for (int i = 0; i < 8; ++i) b[static_cast<std::size_t>(half * 8 + i)] = static_cast<unsigned char>(v >> (8 * i));
  }
  return format_uuid(b);
}

std::string request_hex(std::size_t bytes) {
  thread_local std::mt19937_64 gen = [] {
    init_sodium();
    std::seed_seq seq{randombytes_random(), randombytes_random(), randombytes_random(), randombytes_random()};
    return std::mt19937_64(seq);
  }();
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  do {
    out.clear();
    for (std::size_t i = 0; i < bytes; i += 8) {
      std::uint64_t v = gen();
      for (std::size_t j = 0; j < 8 && i + j < bytes; ++j, v >>= 8) {
        out += hex[(v >> 4) & 15];
        out += hex[v & 15];
      }
    }
  } while (bytes > 0 && out.find_first_not_of('0') == std::string::npos);
  return out;
}

std::string random_token(std::size_t bytes) {
  init_sodium();
  std::string raw(bytes, '\0');
  randombytes_buf(raw.data(), raw.size());
  std::string token = base64url_encode(raw);
  sodium_memzero(raw.data(), raw.size());  // the raw bytes are the secret; don't leave a copy
  return token;
}

std::string sha256_hex(std::string_view data) {
  init_sodium();
  std::array<unsigned char, crypto_hash_sha256_BYTES> digest{};
  crypto_hash_sha256(digest.data(), reinterpret_cast<const unsigned char*>(data.data()), data.size());
  return hex_encode(std::string_view(reinterpret_cast<const char*>(digest.data()), digest.size()));
}

}  // namespace fav::util
