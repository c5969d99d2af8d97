// Unit tests for fav::auth password hashing: the reference's argon2-cffi hashes (p=4) verify,
// our hashes have the agreed parameters and verify in libargon2 too, bad strings are refused.
#include <argon2.h>
#include <gtest/gtest.h>
#include <sodium.h>

#include <boost/json.hpp>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "auth/password.hpp"

namespace json = boost::json;
using namespace fav::auth;

namespace {

struct vector_entry {
  std::string password;
  std::string hash;
};

// The three argon2id vectors from tests/compat-vectors.json.
const std::vector<vector_entry>& reference_hashes() {
  static const std::vector<vector_entry> entries = [] {
    std::ifstream in(FAV_SOURCE_DIR "/tests/compat-vectors.json");
    if (!in) throw std::runtime_error("cannot open tests/compat-vectors.json");
    std::stringstream text;
    text << in.rdbuf();
    const json::value doc = json::parse(text.str());
    std::vector<vector_entry> out;
    for (const auto& v : doc.at("argon2id_seed_parameters").at("vectors").as_array()) {
      out.push_back({std::string(v.at("password").as_string()), std::string(v.at("hash").as_string())});
    }
    return out;
  }();
  return entries;
}

constexpr std::string_view our_prefix = "$argon2id$v=19$m=65536,t=3,";

}  // namespace

TEST(password, reference_hashes_verify_and_wrong_passwords_fail) {
  ASSERT_EQ(reference_hashes().size(), 3u);
  for (const auto& [password, hash] : reference_hashes()) {
    EXPECT_TRUE(verify_password(hash, password)) << hash;
    EXPECT_FALSE(verify_password(hash, password + "x")) << hash;
  }
}

// Pins the fact password.cpp relies on: libsodium alone handles multi-lane (p=4) strings,
// so no fallback to libargon2 is needed. If a libsodium change breaks this, this test says so.
TEST(password, libsodium_alone_verifies_p4_strings) {
  init_crypto();
  const auto& [password, hash] = reference_hashes().front();
  ASSERT_NE(hash.find(",p=4$"), std::string::npos);
  EXPECT_EQ(crypto_pwhash_str_verify(hash.c_str(), password.data(), password.size()), 0);
}

// Contract §3: "argon2id PHC string (`$argon2id$v=19$m=65536,t=3,p=4$...`, the reference's parameters)".
TEST(password, new_hash_has_the_reference_parameters_and_verifies) {
  const std::string hash = hash_password("correct horse battery staple");
  EXPECT_EQ(hash.substr(0, our_prefix.size()), our_prefix) << hash;
  EXPECT_NE(hash.find(",p=4$"), std::string::npos) << hash;
  // 16-byte salt and 32-byte hash in unpadded standard base64, like argon2-cffi.
  auto salt_at = hash.find("$", 30) + 1, hash_at = hash.rfind('$') + 1;
  EXPECT_EQ(hash_at - salt_at - 1, 22u) << hash;
  EXPECT_EQ(hash.size() - hash_at, 43u) << hash;
  EXPECT_TRUE(verify_password(hash, "correct horse battery staple"));
  EXPECT_FALSE(verify_password(hash, "correct horse battery stapler"));
  EXPECT_NE(hash_password("correct horse battery staple"), hash);  // fresh salt each time
}

// argon2-cffi (the reference) wraps libargon2: our hashes must verify there too.
TEST(password, new_hash_verifies_in_libargon2) {
  const std::string password = "pässwörd-ünïcode-✓";
  const std::string hash = hash_password(password);
  EXPECT_EQ(argon2id_verify(hash.c_str(), password.data(), password.size()), ARGON2_OK);
  EXPECT_NE(argon2id_verify(hash.c_str(), "nope", 4), ARGON2_OK);
}

TEST(password, malformed_or_foreign_strings_are_rejected) {
  const auto& [password, hash] = reference_hashes().front();
  std::string altered = hash;
  altered[altered.size() - 5] = altered[altered.size() - 5] == 'A' ? 'B' : 'A';
  std::string argon2i(crypto_pwhash_STRBYTES, '\0');
  ASSERT_EQ(crypto_pwhash_str_alg(argon2i.data(), password.data(), password.size(), 3, crypto_pwhash_MEMLIMIT_MIN * 8,
                                  crypto_pwhash_ALG_ARGON2I13),
            0);
  argon2i.resize(argon2i.find('\0'));
  ASSERT_EQ(argon2i.substr(0, 9), "$argon2i$");

  for (const std::string& bad : std::vector<std::string>{
           "", "garbage", "$argon2id$", altered, hash.substr(0, hash.size() - 10), hash + std::string(200, 'A'),
           argon2i, hash.substr(0, 20) + std::string(1, '\0') + hash.substr(20),
           "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW", "$argon2id$v=19$m=65536,t=3,p=4$!!!!$!!!!",
           "$ARGON2ID$" + hash.substr(10)}) {
    EXPECT_FALSE(verify_password(bad, password)) << bad;
  }
}

TEST(password, dummy_hash_is_stable_valid_and_matches_nothing) {
  std::vector<const std::string*> seen(2, nullptr);
  std::thread a([&] { seen[0] = &dummy_hash(); });
  std::thread b([&] { seen[1] = &dummy_hash(); });
  a.join();
  b.join();
  EXPECT_EQ(seen[0], seen[1]);
  EXPECT_EQ(seen[0], &dummy_hash());
  EXPECT_EQ(dummy_hash().substr(0, our_prefix.size()), our_prefix);
  EXPECT_FALSE(verify_password(dummy_hash(), ""));
  EXPECT_FALSE(verify_password(dummy_hash(), "password"));
}
