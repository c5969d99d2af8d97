// argon2id password hashes as PHC strings, compatible both ways with the reference service
// (argon2-cffi). Each call costs ~64 MiB and ~0.1-0.3 s: run it off the I/O threads.
#pragma once
#include <string>
#include <string_view>

namespace fav::auth {

// Initialises libsodium (idempotent, thread-safe); throws std::runtime_error on failure.
// Every function below calls it itself; call it at start-up to fail fast.
void init_crypto();

// A new "$argon2id$v=19$m=65536,t=3,p=1$<salt>$<hash>" with a random salt.
// Throws std::runtime_error when the 64 MiB cannot be allocated.
std::string hash_password(std::string_view password);

// True only when phc is a well-formed argon2id PHC string (any m, t, p, e.g. the reference's
// p=4) and password matches it; false for anything else, never throws on bad input.
bool verify_password(std::string_view phc, std::string_view password);

// A fixed valid hash with hash_password's parameters (computed once on first use,
// thread-safe), verified against when an email is unknown so both failures cost the same.
const std::string& dummy_hash();

}  // namespace fav::auth
