// Password hashing off the I/O threads, on a worker pool whose size bounds memory (each argon2id
// hash takes 64 MiB), behind a queue that is fair between clients (contract §8 "Fair shares"):
// each client address holds at most PASSWORD_HASH_QUEUE_PER_CLIENT places (waiting or hashing),
// at most PASSWORD_HASH_QUEUE_LIMIT sign-ins wait in all, and waiting clients are served in turn.
// A refused sign-in answers 503 server_busy at once; refusals are logged once per interval.
#pragma once
#include <boost/asio/awaitable.hpp>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "util/worker_pool.hpp"

namespace fav::auth {

namespace net = boost::asio;

// The queue's bookkeeping: places per client, each client's waiting jobs, and the turn in which
// waiting clients are served (round robin: one job per client per round). Its maps hold only
// clients with a place, so they never exceed `slots + waiting_limit` entries. Not thread-safe
// (hash_pool holds a lock around it); unit-tested on its own.
class fair_queue {
 public:
  using job = std::function<void()>;
  // `slots`: jobs run at once (the workers); `waiting_limit`: jobs waiting in all;
  // `per_client`: places (waiting or running) one client may hold.
  fair_queue(int slots, int waiting_limit, int per_client);

  enum class verdict { run, wait, client_full, queue_full };
  // A new job of `client`. run: a slot was free, the caller runs `j` now; wait: `j` was moved in
  // and comes back from a later finish(); client_full / queue_full: refused, `j` untouched.
  verdict push(const std::string& client, job& j);
  // A running job of `client` ended. Returns the next job to run, from the next client in turn.
  std::optional<job> finish(const std::string& client);
  // Drops every waiting job (at exit).
  void clear();

  int running() const { return running_; }
  int waiting() const { return waiting_; }
  std::size_t clients() const { return clients_.size(); }

 private:
  struct client_state {
    int places = 0;
    std::deque<job> waiting;
  };
  int slots_, waiting_limit_, per_client_;
  int running_ = 0, waiting_ = 0;
  std::unordered_map<std::string, client_state> clients_;
  std::deque<std::string> turn_;  // clients with a waiting job, the next one first
};

// Refusals counted between log lines: a full queue is logged at most once per `interval_s`
// with how many sign-ins it refused, not once per request. Times are the caller's seconds.
class refusal_log {
 public:
  explicit refusal_log(double interval_s) : interval_s_(interval_s) {}
  struct counts {
    int over_client_share = 0;
    int queue_full = 0;
  };
  // One refusal at `now_s`: the counts to log now (this one included), or nullopt while the
  // last line is younger than the interval (the refusal is counted for the next line).
  std::optional<counts> refused(bool over_client_share, double now_s);

 private:
  double interval_s_;
  bool logged_ = false;
  double last_s_ = 0;
  counts pending_;
};

class hash_pool {
 public:
  // `clock` gives seconds for the refusal log (injected for tests; default: steady clock).
  hash_pool(int workers, int queue_limit, int per_client, std::function<double()> clock = {});

  // A new argon2id PHC string for `password`; nullopt when `client` may not queue now.
  net::awaitable<std::optional<std::string>> hash(std::string client, std::string password);
  // Whether `password` matches `phc`; nullopt when `client` may not queue now. Unknown emails
  // verify against dummy_hash() so they cost the same.
  net::awaitable<std::optional<bool>> verify(std::string client, std::string phc, std::string password);

  int queued() const;
  int running() const { return pool_.running(); }
  // At exit: finishes running hashes, drops queued ones (the drain timeout has passed).
  void stop();

 private:
  template <class R, class F>
  net::awaitable<std::optional<R>> run(std::string client, F f);
  // Queues `j` for `client` (or runs it at once); false when refused (counted for the log).
  bool admit(const std::string& client, fair_queue::job j);
  // The job of `client` finished on a worker: its place goes to the next client in turn.
  void finished(const std::string& client);

  std::function<double()> clock_;
  mutable std::mutex mu_;
  fair_queue queue_;
  refusal_log refusals_;
  bool stopping_ = false;
  util::worker_pool pool_;  // last: its threads stop first
};

}  // namespace fav::auth
