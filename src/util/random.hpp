// Identifiers and secrets from the OS CSPRNG (libsodium), and SHA-256 digests.
#pragma once
#include <cstddef>
#include <string>
#include <string_view>

namespace fav::util {

// Initialises libsodium once (thread-safe, idempotent); throws std::runtime_error if it cannot.
// Every function below calls it itself; main calls it early only to fail fast.
void init_sodium();

// A fresh random UUID version 4, lowercase canonical form (36 characters).
std::string uuid_v4();
// A UUIDv4 for correlation ids: unique, not secret (a seeded per-thread PRNG, no syscall).
std::string request_uuid();

// `bytes` random bytes as lowercase hex, never all zeros (trace and span ids): unique, not secret,
// from the same kind of per-thread generator as request_uuid().
std::string request_hex(std::size_t bytes);

// base64url (unpadded) of `bytes` random bytes: opaque tokens such as refresh tokens.
std::string random_token(std::size_t bytes = 32);

// Lowercase hex SHA-256 of data (64 characters): how opaque tokens are stored.
std::string sha256_hex(std::string_view data);

}  // namespace fav::util
