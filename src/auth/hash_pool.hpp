// Password hashing off the I/O threads, on a worker pool whose size bounds memory (each argon2id
// hash takes 64 MiB) and whose bounded queue answers "busy" at once (→ 503 server_busy).
#pragma once
#include <boost/asio/awaitable.hpp>
#include <optional>
#include <string>

#include "util/worker_pool.hpp"

namespace fav::auth {

namespace net = boost::asio;

class hash_pool {
 public:
  hash_pool(int workers, int queue_limit) : pool_(workers, queue_limit) {}

  // A new argon2id PHC string for `password`; nullopt when the queue is full.
  net::awaitable<std::optional<std::string>> hash(std::string password);
  // Whether `password` matches `phc`; nullopt when the queue is full. Unknown emails verify
  // against dummy_hash() so they cost the same.
  net::awaitable<std::optional<bool>> verify(std::string phc, std::string password);

  int queued() const { return pool_.queued(); }
  int running() const { return pool_.running(); }
  // At exit: finishes running hashes, drops queued ones (the drain timeout has passed).
  void stop() { pool_.stop(false); }

 private:
  util::worker_pool pool_;
};

}  // namespace fav::auth
