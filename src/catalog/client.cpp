// The catalog client: single-flight, the concurrency cap (a channel used as a semaphore), retries
// with backoff and the verdict on each answer. The HTTP exchange itself is transport.cpp's.
#include "catalog/client.hpp"

#include <algorithm>
#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/concurrent_channel.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cmath>
#include <iostream>
#include <mutex>
#include <random>
#include <unordered_map>

#include "catalog/admission.hpp"
#include "catalog/parse.hpp"
#include "catalog/transport.hpp"
#include "http/trace_context.hpp"
#include "util/deadline.hpp"

namespace fav::catalog {

using error_code = boost::system::error_code;
using clock_type = steady_clock;
using util::bump;
using signal_channel = net::experimental::concurrent_channel<void(error_code)>;

namespace {

constexpr std::size_t product_body_limit = 1 << 20;  // one product is a few hundred bytes
constexpr std::size_t catalog_body_limit = 64 << 20;
// Bounds of the per-customer shares' map (§8 "Bounded state"); past them a lookup answers 503.
constexpr std::size_t max_customers_with_shares = 10000;
constexpr std::size_t max_share_waiters_per_customer = 1000;

double jitter01() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return std::uniform_real_distribution<double>(0.0, 1.0)(rng);
}

clock_type::duration seconds(double s) {
  return std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(std::max(0.0, s)));
}

// `d` in seconds, for the admission rules (backoff, breaker, Retry-After), which count in seconds.
double in_seconds(util::duration d) {
  return std::chrono::duration<double>(d).count();
}

enum class step { done, retry, fail };

// The retry rule for every catalog call, applied to what the caller's judge left open: a
// transport error is retried unless it cannot heal in seconds; 429 and 5xx are retried; any other
// status fails at once.
step retry_rule(const detail::http_outcome& o) {
  if (o.ec) return detail::permanent(o.ec) ? step::fail : step::retry;
  return o.status == 429 || o.status >= 500 ? step::retry : step::fail;
}

}  // namespace

client_options options_from(const util::config& cfg) {
  client_options o;
  o.base_url = cfg.catalog_base_url;
  o.timeout = cfg.catalog_timeout;
  o.max_retries = cfg.catalog_max_retries;
  o.max_concurrency = cfg.catalog_max_concurrency;
  o.backoff_base_s = in_seconds(cfg.catalog_backoff_base);
  o.backoff_cap_s = in_seconds(cfg.catalog_backoff_cap);
  o.breaker_failures = cfg.catalog_breaker_failures;
  o.breaker_open_s = in_seconds(cfg.catalog_breaker_open);
  o.max_concurrency_per_customer = cfg.catalog_max_concurrency_per_customer;
  // Long enough for any caller that raced the first answer's save (milliseconds, more under
  // load); a tenth of the soft TTL at most, so a product due for a refresh is really asked for.
  o.linger = std::clamp(cfg.cache_soft_ttl / 10, util::duration::zero(), util::duration(std::chrono::seconds(1)));
  return o;
}

struct client::impl : std::enable_shared_from_this<impl> {
  impl(net::any_io_executor ex, client_options o, util::metrics& m)
      : ex_(std::move(ex)),
        opts_(std::move(o)),
        metrics_(m),
        transport_(ex_, opts_.base_url, static_cast<std::size_t>(std::max(1, opts_.max_concurrency))),
        slots_(ex_, static_cast<std::size_t>(std::max(1, opts_.max_concurrency))),
        breaker_(opts_.breaker_failures, opts_.breaker_open_s),
        shares_(opts_.max_concurrency_per_customer, max_customers_with_shares, max_share_waiters_per_customer),
        landed_(util::to_micros(std::max(opts_.linger, util::duration::zero())),
                std::min<std::size_t>(4096, std::max<std::size_t>(1, opts_.max_flights))) {}

  static double now_s() { return std::chrono::duration<double>(clock_type::now().time_since_epoch()).count(); }
  static std::int64_t now_us() {
    return std::chrono::duration_cast<std::chrono::microseconds>(clock_type::now().time_since_epoch()).count();
  }

  // --- the concurrency cap: a slot is a message buffered in slots_ ------------------------

  // True with a slot held; false when the deadline passed first or the client shut down.
  net::awaitable<bool> acquire(clock_type::time_point deadline) {
    bool held = false;
    // `held`, not the deadline's verdict, says whether the slot was taken: a send that completes
    // just as the deadline fires still holds one, which must not leak.
    auto send = take_slot(held);  // named: CONTRIBUTING.md, "Compiler notes"
    co_await util::with_deadline(std::move(send), deadline);
    co_return held;
  }
  net::awaitable<void> take_slot(bool& held) {
    auto [ec] = co_await slots_.async_send(error_code{}, net::as_tuple(net::use_awaitable));
    held = !ec;
  }
  void release() {
    slots_.try_receive([](error_code) {});
  }

  struct permit {
    impl* self;
    ~permit() { self->release(); }
  };

  // --- single-flight ----------------------------------------------------------------------

  struct flight {
    explicit flight(const net::any_io_executor& ex) : done(ex, 0) {}
    signal_channel done;  // closed once `result` is written
    fetch_result result;
  };

  // Publishes the leader's result to the joiners; if the leader's frame dies first (cancelled,
  // io_context torn down) the joiners still wake, with unavailable.
  struct flight_finisher {
    impl* self;
    std::int64_t id;
    std::shared_ptr<flight> f;
    bool finished = false;

    void finish(const fetch_result& r) {
      finished = true;
      {
        // Leave the map first: a call arriving after this shares a found product for
        // `linger` (put under the same lock, so no call sees neither), then starts a new fetch.
        std::lock_guard lk(self->flights_mu_);
        if (auto it = self->flights_.find(id); it != self->flights_.end() && it->second == f) self->flights_.erase(it);
        if (r.status == fetch_status::found && r.product) self->landed_.put(id, *r.product, now_us());
      }
      f->result = r;
      f->done.close();  // wakes every joiner (the close is ordered after the write above)
    }
    ~flight_finisher() {
      if (!finished) finish(self->unavailable(std::nullopt));
    }
  };

  // --- per-customer shares (§8 "Fair shares") ---------------------------------------------

  // Waits until `deadline` for one of `customer`'s shares; false when the deadline came first,
  // a bound was reached or the client is shutting down (nothing is held then).
  net::awaitable<bool> take_share(const std::string& customer, clock_type::time_point deadline) {
    if (stopping_.load()) co_return false;
    auto w = std::make_shared<customer_shares::waiter>();
    auto woken = std::make_shared<signal_channel>(ex_, 1);
    w->wake = [woken] { woken->try_send(error_code{}); };
    switch (shares_.take(customer, w)) {
      case customer_shares::take_result::granted: co_return true;
      case customer_shares::take_result::refused: co_return false;
      case customer_shares::take_result::waiting: break;
    }
    auto wake = woken->async_receive(net::as_tuple(net::use_awaitable));  // named: see acquire()
    const auto woke = co_await util::with_deadline(std::move(wake), deadline);
    if (woke && !std::get<0>(*woke)) co_return true;
    if (shares_.withdraw(customer, w)) co_return false;
    shares_.give_back(customer);  // handed over just as the deadline came: it passes on
    co_return false;
  }

  struct share_held {
    share_held(impl* s, std::string c) : self(s), customer(std::move(c)) {}
    share_held(const share_held&) = delete;
    share_held& operator=(const share_held&) = delete;
    ~share_held() { self->shares_.give_back(customer); }
    impl* self;
    std::string customer;
  };

  net::awaitable<fetch_result> fetch_product(std::int64_t id, log_context ctx, clock_type::time_point deadline,
                                             clock_type::time_point slot_deadline, bool share_recent,
                                             std::string customer) {
    std::shared_ptr<flight> f;
    bool leader = false;
    std::optional<core::product> landed;
    // A customer's lookup takes one of its shares only to lead a new call: joining a flight or
    // sharing a product found a moment ago costs the catalog nothing. The share is taken before
    // the flight is registered, so nobody joins a lookup that is still waiting for its share.
    std::optional<share_held> share;
    for (;;) {
      bool need_share = false;
      {
        std::lock_guard lk(flights_mu_);
        if (auto it = flights_.find(id); it != flights_.end()) {
          f = it->second;
        } else if (share_recent && (landed = landed_.get(id, now_us()))) {
          // found a moment ago: shared like a flight's result
        } else if (!customer.empty() && !share) {
          need_share = true;
        } else if (flights_.size() < std::max<std::size_t>(1, opts_.max_flights)) {
          f = flights_[id] = std::make_shared<flight>(ex_);
          leader = true;
        }
      }
      if (!need_share) break;
      // Its own share did not come in time: unavailable, and not the catalog's fault.
      if (!co_await take_share(customer, deadline)) co_return unavailable(std::nullopt);
      share.emplace(this, customer);
      // A share handed over as the deadline came (the lookup before it was cut by the same
      // deadline) leaves no time for a call: unavailable, and the share passes on.
      if (clock_type::now() >= deadline) co_return unavailable(std::nullopt);
    }
    if (!leader) share.reset();  // joining or sharing: the share goes to the customer's next lookup
    if (landed) {
      bump(metrics_.singleflight_joins);
      fetch_result r;
      r.status = fetch_status::found;
      r.product = std::move(landed);
      co_return r;
    }
    if (!f) {
      warn("catalog: too many products being looked up at once; product " + std::to_string(id) + " refused", ctx);
      co_return unavailable(1.0);
    }
    if (!leader) {
      bump(metrics_.singleflight_joins);
      auto landed_wait = f->done.async_receive(net::as_tuple(net::use_awaitable));  // named: see acquire()
      const auto done = co_await util::with_deadline(std::move(landed_wait), deadline);
      if (!done || std::get<0>(*done) != net::experimental::error::channel_closed)
        co_return unavailable(std::nullopt);  // deadline first
      co_return f->result;                    // the channel was closed: the result is written
    }
    flight_finisher fin{this, id, f};
    fetch_result r;
    // The breaker decides before anything waits (§8): open → 503 at once with the time left.
    const auto admitted = breaker_.admit(now_s());
    if (!admitted.allowed) {
      bump(metrics_.catalog_breaker_refusals);
      r = unavailable(admitted.retry_after_s);
      fin.finish(r);
      co_return r;
    }
    // The catalog itself failed an attempt (an error, or its own timeout). A lookup that never
    // reached it, or was only cut by the request's deadline, says nothing about its health (§8).
    bool faulted = false;
    try {
      r = co_await fetch_product_now(id, ctx, deadline, slot_deadline, faulted);
    } catch (const std::exception& e) {
      r = unavailable(std::nullopt);
      warn("catalog: fetching product " + std::to_string(id) + " failed: " + e.what(), ctx);
    }
    if (r.status != fetch_status::unavailable) {
      breaker_.on_success();
    } else if (faulted && !stopping_.load()) {
      const bool was_open = breaker_.open(now_s());
      breaker_.on_failure(now_s());
      if (!was_open && breaker_.open(now_s()))
        warn("catalog: " + std::to_string(opts_.breaker_failures) + " lookups failed in a row; not asking for " +
                 std::to_string(opts_.breaker_open_s) + " s",
             ctx);
    } else {
      breaker_.on_abandoned(admitted);
    }
    fin.finish(r);
    co_return r;
  }

  // --- one fetch, with its retries --------------------------------------------------------

  net::awaitable<fetch_result> fetch_product_now(std::int64_t id, const log_context& ctx,
                                                 clock_type::time_point deadline, clock_type::time_point slot_deadline,
                                                 bool& faulted) {
    const std::string target = transport_.prefix() + "/products/" + std::to_string(id);
    fetch_result r;
    const auto judge = [&](const detail::http_outcome& o) -> std::optional<step> {
      if (o.status == 404) {
        r.status = fetch_status::not_found;
        bump(metrics_.catalog_not_found);
        return step::done;
      }
      if (o.status >= 200 && o.status < 300) {
        auto p = parse_product(o.body);
        if (p.kind == parse_kind::product && p.product->id != id) {
          p.kind = parse_kind::not_product;
          p.detail = "it describes product " + std::to_string(p.product->id);
        }
        if (p.kind == parse_kind::product) {
          r.status = fetch_status::found;
          r.product = std::move(p.product);
          bump(metrics_.catalog_ok);
          return step::done;
        }
        if (p.kind == parse_kind::not_product)
          warn("catalog: GET " + target + " answered a body that is not a product (" + p.detail +
                   "); treated as no such product",
               ctx);
        r.status = fetch_status::not_found;
        bump(metrics_.catalog_not_found);
        return step::done;
      }
      return std::nullopt;
    };
    int made = 0;
    const auto hint =
        co_await run_attempts(target, product_body_limit, judge, ctx, deadline, made, slot_deadline, &faulted);
    if (hint) co_return unavailable(*hint);
    co_return r;
  }

  net::awaitable<std::optional<std::vector<core::product>>> fetch_all() {
    const std::string target = transport_.prefix() + "/products";
    const log_context none;
    std::optional<std::vector<core::product>> all;
    const auto judge = [&](const detail::http_outcome& o) -> std::optional<step> {
      if (o.status >= 200 && o.status < 300) {
        int skipped = 0;
        all = parse_product_list(o.body, skipped);
        if (!all) {
          warn("catalog: GET " + target + " answered something that is not a JSON array", none);
          return step::fail;
        }
        if (skipped > 0)
          warn("catalog: GET " + target + " listed " + std::to_string(skipped) + " entries that are not products",
               none);
        bump(metrics_.catalog_ok);
        return step::done;
      }
      return std::nullopt;
    };
    try {
      int made = 0;
      if (co_await run_attempts(target, catalog_body_limit, judge, none, clock_type::time_point::max(), made))
        co_return std::nullopt;
    } catch (const std::exception& e) {
      warn(std::string("catalog: fetching the whole catalog failed: ") + e.what(), none);
      co_return std::nullopt;
    }
    co_return all;
  }

  // Runs attempts until the verdict is done (→ nullopt) or fail, or retries or time run out (→ the
  // Retry-After hint for the caller; the failure is logged here with `ctx`). `judge` gives the
  // verdict on an answer it understands (and counts the successes); retry_rule() on the rest.
  // Counts catalog_retry / catalog_failure. Retry-After (429/503) is
  // honoured when it is within the backoff cap: we wait max(it, our backoff). A longer one ends
  // the retries at once — holding a user request that long is worse than answering 503 with the
  // catalog's own Retry-After. Neither a slot, an attempt nor a backoff outlasts `deadline`.
  template <class Judge>
  net::awaitable<std::optional<double>> run_attempts(
      const std::string& target, std::size_t limit, const Judge& judge, const log_context& ctx,
      clock_type::time_point deadline, int& made, clock_type::time_point slot_deadline = clock_type::time_point::max(),
      bool* faulted = nullptr) {
    std::optional<double> server_hint;
    std::string last_error = "client shut down";
    const int max_retries = std::max(0, opts_.max_retries);
    int attempt = 0;
    for (;; ++attempt) {
      if (stopping_.load()) break;
      if (!co_await acquire(attempt == 0 ? std::min(deadline, slot_deadline) : deadline)) {
        if (!stopping_.load()) last_error = "no free connection slot before the request's deadline";
        break;
      }
      detail::http_outcome o;
      bool cut = false;  // the attempt ended because the request's deadline came, not the catalog's
      {
        permit held{this};
        ++made;
        const auto own_deadline = clock_type::now() + opts_.timeout;
        const auto attempt_deadline = std::min(deadline, own_deadline);
        // Contract §10: a call made for a request carries its trace id with a new parent id.
        std::string traceparent;
        if (!ctx.trace_id.empty())
          traceparent = http::child_traceparent(http::trace_context{ctx.trace_id, {}, ctx.trace_flags});
        o = co_await transport_.get(target, attempt_deadline, limit, std::move(traceparent));
        cut = o.ec && deadline < own_deadline && clock_type::now() >= deadline;
      }
      std::optional<step> judged;
      if (!o.ec) judged = judge(o);
      const step verdict = judged ? *judged : retry_rule(o);
      if (verdict == step::done) co_return std::nullopt;

      if (!cut && faulted) *faulted = true;
      if (cut)
        last_error = "the request's deadline came first";
      else if (!o.error_text.empty())
        last_error = o.error_text;
      else if (o.ec)
        last_error = o.ec.message();
      else
        last_error = "HTTP " + std::to_string(o.status);
      std::optional<double> retry_after;
      if (!o.ec && (o.status == 429 || o.status == 503) && o.retry_after) retry_after = server_hint = o.retry_after;
      double delay = backoff_delay(attempt, opts_.backoff_base_s, opts_.backoff_cap_s, jitter01());
      if (retry_after) delay = std::max(delay, *retry_after);
      const bool retry = verdict == step::retry && attempt < max_retries && !stopping_.load() &&
                         !(retry_after && *retry_after > opts_.backoff_cap_s) &&
                         clock_type::now() + seconds(delay) < deadline;
      if (!retry) break;
      bump(metrics_.catalog_retry);
      net::steady_timer timer(co_await net::this_coro::executor, seconds(delay));
      error_code ignored;
      co_await timer.async_wait(net::redirect_error(net::use_awaitable, ignored));
    }
    bump(metrics_.catalog_failure);
    warn("catalog: GET " + target + " failed after " + std::to_string(made) + " attempt(s): " + last_error, ctx);
    co_return server_hint.value_or(opts_.backoff_cap_s);
  }

  fetch_result unavailable(std::optional<double> hint) const {
    fetch_result r;
    r.status = fetch_status::unavailable;
    r.retry_after_s = static_cast<int>(std::max(1.0, std::ceil(hint.value_or(opts_.backoff_cap_s))));
    return r;
  }

  void shutdown() {
    stopping_.store(true);
    slots_.close();
    transport_.shutdown();
  }

  void warn(const std::string& message, const log_context& ctx) const {
    if (opts_.log)
      opts_.log(message, ctx);
    else
      std::cerr << message << '\n';
  }

  net::any_io_executor ex_;
  client_options opts_;
  util::metrics& metrics_;
  detail::transport transport_;
  signal_channel slots_;
  breaker breaker_;
  customer_shares shares_;
  std::atomic<bool> stopping_{false};

  std::mutex flights_mu_;
  std::unordered_map<std::int64_t, std::shared_ptr<flight>> flights_;
  expiring_map<core::product> landed_;  // products found less than `linger` ago
};

client::client(net::any_io_executor ex, client_options opts, util::metrics& m)
    : impl_(std::make_shared<impl>(std::move(ex), std::move(opts), m)) {}

client::~client() {
  impl_->shutdown();
}

net::awaitable<fetch_result> client::fetch_product(std::int64_t id, log_context ctx, steady_clock::time_point deadline,
                                                   steady_clock::time_point slot_deadline, bool share_recent,
                                                   std::string customer) {
  auto self = impl_;  // keeps the state alive for as long as this frame exists
  co_return co_await self->fetch_product(id, std::move(ctx), deadline, slot_deadline, share_recent,
                                         std::move(customer));
}

net::awaitable<std::optional<std::vector<core::product>>> client::fetch_all() {
  auto self = impl_;
  co_return co_await self->fetch_all();
}

bool client::breaker_open() const {
  return impl_->breaker_.open(impl::now_s());
}

void client::shutdown() {
  impl_->shutdown();
}

}  // namespace fav::catalog
