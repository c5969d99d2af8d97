// Unit tests for fav::auth password hashing: the reference's argon2-cffi hashes (p=4) verify,
// our hashes have the agreed parameters and verify in libargon2 too, bad strings are refused;
// the hash queue serves clients in turn and logs its refusals once per interval.
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

#include "auth/hash_pool.hpp"
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

// ---------------------------------------------------------------------------------------------
// The hash queue's fairness (contract §8 "Fair shares"): "at most `PASSWORD_HASH_QUEUE_PER_CLIENT`
// (default 4) of the password-hash queue's places (sign-ins and sign-ups, waiting or hashing);
// past it that client's next one answers 503 `server_busy` with `Retry-After` at once, and the
// queue serves clients in turn, so another client's sign-in never waits behind one client's flood".

namespace {

// A job that records its name when it runs.
fair_queue::job named(std::vector<std::string>& ran, std::string name) {
  return [&ran, name] { ran.push_back(name); };
}

// Runs what finish() hands out, one job at a time, as a single worker would. Returns the order
// in which the waiting jobs ran.
std::vector<std::string> drain(fair_queue& q, std::vector<std::string>& ran, std::string running_client) {
  ran.clear();
  for (int guard = 0; guard < 100; ++guard) {
    auto next = q.finish(running_client);
    if (!next) break;
    (*next)();
    running_client = ran.back().substr(0, 1);  // jobs are named "<client><n>"
  }
  return ran;
}

}  // namespace

TEST(fair_queue, serves_waiting_clients_in_turn) {
  fair_queue q(1, 64, 4);
  std::vector<std::string> ran;
  auto first = named(ran, "A0");
  ASSERT_EQ(q.push("A", first), fair_queue::verdict::run);  // the one worker was free
  for (auto name : {"A1", "A2", "A3"}) {
    auto j = named(ran, name);
    ASSERT_EQ(q.push("A", j), fair_queue::verdict::wait);
  }
  for (auto name : {"B1", "B2"}) {
    auto j = named(ran, name);
    ASSERT_EQ(q.push("B", j), fair_queue::verdict::wait);
  }
  auto c1 = named(ran, "C1");
  ASSERT_EQ(q.push("C", c1), fair_queue::verdict::wait);
  EXPECT_EQ(q.waiting(), 6);
  EXPECT_EQ(q.running(), 1);
  // One job per client per round: B and C never wait behind A's whole flood.
  EXPECT_EQ(drain(q, ran, "A"), (std::vector<std::string>{"A1", "B1", "C1", "A2", "B2", "A3"}));
  EXPECT_EQ(q.waiting(), 0);
  EXPECT_EQ(q.running(), 0);
  EXPECT_EQ(q.clients(), 0u);  // every entry went when its client held no place
}

TEST(fair_queue, a_client_holds_at_most_its_places_waiting_or_running) {
  fair_queue q(2, 64, 4);
  std::vector<std::string> ran;
  for (int i = 0; i < 4; ++i) {
    auto j = named(ran, "A" + std::to_string(i));
    EXPECT_EQ(q.push("A", j), i < 2 ? fair_queue::verdict::run : fair_queue::verdict::wait) << i;
  }
  auto fifth = named(ran, "A4");
  EXPECT_EQ(q.push("A", fifth), fair_queue::verdict::client_full);
  EXPECT_TRUE(static_cast<bool>(fifth));  // a refused job is left with the caller
  // Another client still gets a place (waiting: both workers are busy).
  auto b = named(ran, "B0");
  EXPECT_EQ(q.push("B", b), fair_queue::verdict::wait);
  // One of A's places frees: A waited first, so its next job runs, and A may queue one more.
  auto next = q.finish("A");
  ASSERT_TRUE(next);
  (*next)();
  EXPECT_EQ(ran.back(), "A2");
  auto again = named(ran, "A5");
  EXPECT_EQ(q.push("A", again), fair_queue::verdict::wait);
  // The next place goes to B, whose turn it is, before A's other waiting jobs.
  next = q.finish("A");
  ASSERT_TRUE(next);
  (*next)();
  EXPECT_EQ(ran.back(), "B0");
}

TEST(fair_queue, the_whole_queue_keeps_its_limit) {
  fair_queue q(1, 2, 4);
  std::vector<std::string> ran;
  auto a = named(ran, "A"), b = named(ran, "B"), c = named(ran, "C"), d = named(ran, "D");
  EXPECT_EQ(q.push("a", a), fair_queue::verdict::run);
  EXPECT_EQ(q.push("b", b), fair_queue::verdict::wait);
  EXPECT_EQ(q.push("c", c), fair_queue::verdict::wait);
  EXPECT_EQ(q.push("d", d), fair_queue::verdict::queue_full);
  EXPECT_EQ(q.clients(), 3u);  // a refused client leaves no entry behind
  q.clear();
  EXPECT_EQ(q.waiting(), 0);
  EXPECT_EQ(q.clients(), 1u);  // "a" still runs
  EXPECT_FALSE(q.finish("a"));
  EXPECT_EQ(q.clients(), 0u);
}

TEST(fair_queue, no_waiting_room_means_run_or_refuse) {
  fair_queue q(1, 0, 4);
  std::vector<std::string> ran;
  auto a = named(ran, "A"), b = named(ran, "B");
  EXPECT_EQ(q.push("a", a), fair_queue::verdict::run);
  EXPECT_EQ(q.push("b", b), fair_queue::verdict::queue_full);
}

// "Log a full queue once per interval with a count": times are plain seconds.
TEST(refusal_log, one_line_per_interval_with_the_counts_since_the_last) {
  refusal_log log(10);
  auto first = log.refused(true, 100);
  ASSERT_TRUE(first);  // the first refusal is told at once
  EXPECT_EQ(first->over_client_share, 1);
  EXPECT_EQ(first->queue_full, 0);
  for (int i = 0; i < 500; ++i) EXPECT_FALSE(log.refused(i % 2 == 0, 100 + i * 0.01)) << i;
  auto next = log.refused(false, 110);  // the interval has passed
  ASSERT_TRUE(next);
  EXPECT_EQ(next->over_client_share, 250);
  EXPECT_EQ(next->queue_full, 251);
  EXPECT_FALSE(log.refused(true, 119.9));
  auto third = log.refused(true, 120);
  ASSERT_TRUE(third);
  EXPECT_EQ(third->over_client_share, 2);
}
