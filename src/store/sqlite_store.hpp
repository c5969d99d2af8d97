// The embedded SQLite backend: WAL, foreign keys, busy timeout; each worker thread owns one
// connection, so calls leave the I/O threads and readers run in parallel.
#pragma once
#include <boost/asio/any_io_executor.hpp>
#include <chrono>
#include <memory>
#include <string>

#include "store/store.hpp"

namespace fav::store {

// Opens (creating the file and its folder) the database at `path`; throws unavailable when it
// cannot. `threads` worker connections serve the calls. Every call has `statement_timeout`
// (DATABASE_STATEMENT_TIMEOUT_SECONDS) from the moment it is queued: lock waits and running
// statements past it fail with unavailable and leave nothing applied.
std::unique_ptr<store> make_sqlite_store(
    net::any_io_executor ex, std::string path, int threads,
    std::chrono::steady_clock::duration statement_timeout = std::chrono::seconds(10));

}  // namespace fav::store
