// The embedded SQLite backend: WAL, foreign keys, synchronous=FULL. Reads run on worker threads
// that own one connection each (in parallel, off the I/O threads); every write goes through the
// process's one writer, which group-commits (store/sqlite_writer.hpp).
#pragma once
#include <boost/asio/any_io_executor.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "store/store.hpp"

namespace fav::store {

// Opens (creating the file and its folder) the database at `path`; throws unavailable when it
// cannot. `threads` reader connections serve the reads, one writer connection the writes. Every
// call has `statement_timeout` (DATABASE_STATEMENT_TIMEOUT_SECONDS) from the moment it is
// queued: lock waits and running statements past it fail with unavailable and leave nothing
// applied.
std::unique_ptr<store> make_sqlite_store(
    net::any_io_executor ex, std::string path, int threads,
    std::chrono::steady_clock::duration statement_timeout = std::chrono::seconds(10));

// Since the store opened: write batches committed and the writes answered successfully in them
// (zeros for a store of another backend).
struct write_stats {
  std::uint64_t commits = 0;
  std::uint64_t writes = 0;
};
write_stats sqlite_write_stats(const store& s);

}  // namespace fav::store
