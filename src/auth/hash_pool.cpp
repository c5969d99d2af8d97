// See hash_pool.hpp.
#include "auth/hash_pool.hpp"

#include <algorithm>
#include <boost/asio/async_result.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <exception>
#include <memory>

#include "auth/password.hpp"
#include "util/log.hpp"

namespace fav::auth {

namespace {
// How often a full queue may write its warning (with the count of refusals since the last one).
constexpr double refusal_log_interval_s = 10;

double steady_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
}  // namespace

// --- fair_queue -------------------------------------------------------------------------------

fair_queue::fair_queue(int slots, int waiting_limit, int per_client)
    : slots_(std::max(1, slots)), waiting_limit_(std::max(0, waiting_limit)), per_client_(std::max(1, per_client)) {}

fair_queue::verdict fair_queue::push(const std::string& client, job& j) {
  auto it = clients_.find(client);
  if (it != clients_.end() && it->second.places >= per_client_) return verdict::client_full;
  const bool run_now = running_ < slots_ && waiting_ == 0;
  if (!run_now && waiting_ >= waiting_limit_) return verdict::queue_full;
  if (it == clients_.end()) it = clients_.emplace(client, client_state{}).first;
  auto& st = it->second;
  ++st.places;
  if (run_now) {
    ++running_;
    return verdict::run;
  }
  if (st.waiting.empty()) turn_.push_back(client);  // joins the round at its end
  st.waiting.push_back(std::move(j));
  ++waiting_;
  return verdict::wait;
}

std::optional<fair_queue::job> fair_queue::finish(const std::string& client) {
  --running_;
  if (auto it = clients_.find(client); it != clients_.end() && --it->second.places <= 0) clients_.erase(it);
  if (turn_.empty()) return std::nullopt;
  std::string next = std::move(turn_.front());
  turn_.pop_front();
  auto& st = clients_.at(next);
  job j = std::move(st.waiting.front());
  st.waiting.pop_front();
  --waiting_;
  ++running_;
  if (!st.waiting.empty()) turn_.push_back(std::move(next));  // its next job waits for the next round
  return j;
}

void fair_queue::clear() {
  for (auto it = clients_.begin(); it != clients_.end();) {
    it->second.places -= static_cast<int>(it->second.waiting.size());
    it->second.waiting.clear();
    it = it->second.places <= 0 ? clients_.erase(it) : std::next(it);
  }
  turn_.clear();
  waiting_ = 0;
}

// --- refusal_log ------------------------------------------------------------------------------

std::optional<refusal_log::counts> refusal_log::refused(bool over_client_share, double now_s) {
  ++(over_client_share ? pending_.over_client_share : pending_.queue_full);
  if (logged_ && now_s - last_s_ < interval_s_) return std::nullopt;
  logged_ = true;
  last_s_ = now_s;
  return std::exchange(pending_, counts{});
}

// --- hash_pool --------------------------------------------------------------------------------

hash_pool::hash_pool(int workers, int queue_limit, int per_client, std::function<double()> clock)
    : clock_(clock ? std::move(clock) : steady_seconds),
      queue_(workers, queue_limit, per_client),
      refusals_(refusal_log_interval_s),
      // The fair queue hands the pool at most `workers` jobs at once: the pool never refuses one.
      pool_(workers, std::max(1, workers)) {}

int hash_pool::queued() const {
  std::lock_guard lk(mu_);
  return queue_.waiting();
}

void hash_pool::stop() {
  {
    std::lock_guard lk(mu_);
    stopping_ = true;
    queue_.clear();  // their awaiting coroutines are never resumed: for process exit only
  }
  pool_.stop(false);
}

bool hash_pool::admit(const std::string& client, fair_queue::job j) {
  // The job gives its place back when it has run (on the worker, before the next one starts).
  fair_queue::job wrapped = [this, client, j = std::move(j)] {
    j();
    finished(client);
  };
  fair_queue::verdict v;
  std::optional<refusal_log::counts> to_log;
  {
    std::lock_guard lk(mu_);
    if (stopping_) return false;
    v = queue_.push(client, wrapped);
    if (v == fair_queue::verdict::client_full || v == fair_queue::verdict::queue_full)
      to_log = refusals_.refused(v == fair_queue::verdict::client_full, clock_());
  }
  switch (v) {
    case fair_queue::verdict::run: return pool_.submit(std::move(wrapped));
    case fair_queue::verdict::wait: return true;
    case fair_queue::verdict::client_full:
    case fair_queue::verdict::queue_full: break;
  }
  if (to_log)
    util::log(util::log_level::warning, "password hash queue full: sign-ins answered 503 server_busy",
              {{"refused_over_client_share", to_log->over_client_share},
               {"refused_queue_full", to_log->queue_full},
               {"interval_s", refusal_log_interval_s}});
  return false;
}

void hash_pool::finished(const std::string& client) {
  std::optional<fair_queue::job> next;
  {
    std::lock_guard lk(mu_);
    next = queue_.finish(client);
  }
  if (next) pool_.submit(std::move(*next));  // refused only when stopping (process exit)
}

// Like util::offload, through the fair queue: nullopt when `client` may not queue now.
template <class R, class F>
net::awaitable<std::optional<R>> hash_pool::run(std::string client, F f) {
  return util::offload_with<R>(
      [this, who = std::move(client)](std::function<void()> job) { return admit(who, std::move(job)); }, std::move(f));
}

net::awaitable<std::optional<std::string>> hash_pool::hash(std::string client, std::string password) {
  return run<std::string>(std::move(client), [pw = std::move(password)] { return hash_password(pw); });
}

net::awaitable<std::optional<bool>> hash_pool::verify(std::string client, std::string phc, std::string password) {
  return run<bool>(std::move(client),
                   [phc = std::move(phc), pw = std::move(password)] { return verify_password(phc, pw); });
}

}  // namespace fav::auth
