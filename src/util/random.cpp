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
  const std::string hex = hex_encode(std::string_view(reinterpret_cast<const char*>(b.data()), b.size()));
  std::string out;
  out.reserve(36);
  out.append(hex, 0, 8).append(1, '-').append(hex, 8, 4).append(1, '-').append(hex, 12, 4).append(1, '-');
  out.append(hex, 16, 4).append(1, '-').append(hex, 20, 12);
  return out;
}

// A per-thread generator seeded once from the OS: ids only need to be unique, not secret,
// and this saves a getrandom() call per request.
std::mt19937_64& request_generator() {
  thread_local std::mt19937_64 gen = [] {
    init_sodium();
    std::seed_seq seq{randombytes_random(), randombytes_random(), randombytes_random(), randombytes_random()};
    return std::mt19937_64(seq);
  }();
  return gen;
}

// `n` bytes from the per-thread generator.
void request_bytes(unsigned char* out, std::size_t n) {
  auto& gen = request_generator();
  for (std::size_t i = 0; i < n; i += 8) {
    std::uint64_t v = gen();
    for (std::size_t j = 0; j < 8 && i + j < n; ++j, v >>= 8) out[i + j] = static_cast<unsigned char>(v);
  }
}
}  // namespace

std::string uuid_v4() {
  init_sodium();
  std::array<unsigned char, 16> b{};
  randombytes_buf(b.data(), b.size());
  return format_uuid(b);
}

std::string request_uuid() {
  std::array<unsigned char, 16> b{};
  request_bytes(b.data(), b.size());
  return format_uuid(b);
}

std::string request_hex(std::size_t bytes) {
  std::string raw(bytes, '\0');
  do {
    request_bytes(reinterpret_cast<unsigned char*>(raw.data()), raw.size());
  } while (bytes > 0 && raw.find_first_not_of('\0') == std::string::npos);
  return hex_encode(raw);
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
