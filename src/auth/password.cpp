// argon2id PHC strings: new hashes with libargon2 at the reference's m=65536,t=3,p=4; verification
// with libsodium, which checks multi-lane (p=4) strings by itself (pinned by a unit test) and
// uses SIMD where the CPU has it.
#include "auth/password.hpp"

#include <argon2.h>
#include <sodium.h>

#include <array>
#include <stdexcept>

#include "util/random.hpp"

namespace fav::auth {
namespace {

constexpr std::string_view argon2id_prefix = "$argon2id$";

}  // namespace

void init_crypto() {
  util::init_sodium();
}

std::string hash_password(std::string_view password) {
  init_crypto();
  // The reference's exact parameters (m=65536, t=3, p=4) through libargon2: libsodium can verify
  // p=4 but only writes p=1, and contract §3 names the p=4 string. One thread computes the four
  // lanes, so each hash-pool worker stays on one core.
  std::array<unsigned char, 16> salt{};
  randombytes_buf(salt.data(), salt.size());
  constexpr std::uint32_t t_cost = 3, m_cost_kib = 65536, lanes = 4, hash_len = 32;
  std::array<unsigned char, hash_len> raw{};
  argon2_context ctx{};
  ctx.out = raw.data();
  ctx.outlen = hash_len;
  ctx.pwd = reinterpret_cast<std::uint8_t*>(const_cast<char*>(password.data()));
  ctx.pwdlen = static_cast<std::uint32_t>(password.size());
  ctx.salt = salt.data();
  ctx.saltlen = static_cast<std::uint32_t>(salt.size());
  ctx.t_cost = t_cost;
  ctx.m_cost = m_cost_kib;
  ctx.lanes = lanes;
  ctx.threads = 1;
  ctx.version = ARGON2_VERSION_13;
  ctx.flags = ARGON2_DEFAULT_FLAGS;
  int rc = argon2id_ctx(&ctx);
  if (rc != ARGON2_OK) throw std::runtime_error(std::string("argon2id hashing failed: ") + argon2_error_message(rc));
  // PHC string: standard base64 without padding, as argon2-cffi writes it.
  auto b64 = [](const unsigned char* p, std::size_t n) {
    std::array<char, 128> buf{};
    sodium_bin2base64(buf.data(), buf.size(), p, n, sodium_base64_VARIANT_ORIGINAL_NO_PADDING);
    return std::string(buf.data());
  };
  std::string out = "$argon2id$v=19$m=" + std::to_string(m_cost_kib) + ",t=" + std::to_string(t_cost) +
                    ",p=" + std::to_string(lanes) + "$" + b64(salt.data(), salt.size()) + "$" +
                    b64(raw.data(), raw.size());
  sodium_memzero(raw.data(), raw.size());
  return out;
}

bool verify_password(std::string_view phc, std::string_view password) {
  init_crypto();
  // libsodium reads a NUL-terminated string of at most STRBYTES-1 characters, so copy into a
  // zeroed buffer; a longer string or an embedded NUL cannot be a hash we wrote.
  std::array<char, crypto_pwhash_STRBYTES> str{};
  if (phc.size() >= str.size() || phc.find('\0') != std::string_view::npos ||
      phc.substr(0, argon2id_prefix.size()) != argon2id_prefix) {
    return false;
  }
  phc.copy(str.data(), phc.size());
  return crypto_pwhash_str_verify(str.data(), password.data(), password.size()) == 0;
}

const std::string& dummy_hash() {
  // The password is random and thrown away: nothing can ever match this hash.
  static const std::string hash = hash_password(util::random_token(32));
  return hash;
}

}  // namespace fav::auth
