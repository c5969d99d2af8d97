// argon2id over libsodium. libsodium 1.0.18 verifies multi-lane (p=4) strings by itself
// (pinned by a unit test), so no second argon2 library is needed at run time.
#include "auth/password.hpp"

#include <sodium.h>

#include <array>
#include <stdexcept>

#include "util/random.hpp"

namespace fav::auth {
namespace {

// libsodium's argon2id13 at opslimit 3 / memlimit 64 MiB writes m=65536,t=3,p=1:
// the reference's memory and passes; its 4 lanes only split the same work across threads.
constexpr unsigned long long ops_limit = 3;
constexpr std::size_t mem_limit = 64u * 1024u * 1024u;

constexpr std::string_view argon2id_prefix = "$argon2id$";

}  // namespace

void init_crypto() { util::init_sodium(); }

std::string hash_password(std::string_view password) {
  init_crypto();
  std::array<char, crypto_pwhash_STRBYTES> out{};
  if (crypto_pwhash_str_alg(out.data(), password.data(), password.size(), ops_limit, mem_limit,
                            crypto_pwhash_ALG_ARGON2ID13) != 0) {
    throw std::runtime_error("argon2id hashing failed (out of memory)");
  }
  return std::string(out.data());
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
