// Stale-while-revalidate product cache (see product_cache.hpp). The only co_spawn here is for
// work nobody awaits: background refreshes and the warm-up loop (both held by the task tracker),
// plus the fan-out of one listing's fetches, which its caller awaits.
#include "catalog/product_cache.hpp"

#include <algorithm>
#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <iostream>
#include <string>

#include "catalog/async_sync.hpp"

namespace fav::catalog {

using util::bump;

namespace {

// The results of one listing's concurrent fetches; shared with the spawned fetches.
struct batch {
  explicit batch(std::size_t n) : results(n), remaining(n) {}
  std::vector<fetch_result> results;
  std::atomic<std::size_t> remaining;
  detail::async_event done;
};

net::awaitable<void> fetch_into(client& c, std::shared_ptr<batch> b, std::size_t slot, std::int64_t id) {
  try {
    b->results[slot] = co_await c.fetch_product(id);
  } catch (...) {
    // fetch_product does not throw; if it ever did, the slot stays "unavailable".
  }
  if (b->remaining.fetch_sub(1) == 1) b->done.set();
}

}  // namespace

product_cache::product_cache(store::store& db, client& c, const util::config& cfg, util::metrics& m,
                             util::task_tracker& bg, net::any_io_executor ex, std::function<core::micros()> clock,
                             std::function<void(std::string_view)> log)
    : db_(db),
      client_(c),
      cfg_(cfg),
      metrics_(m),
      bg_(bg),
      ex_(std::move(ex)),
      clock_(std::move(clock)),
      log_(std::move(log)) {}

net::awaitable<lookup_result> product_cache::get_for_favorite(std::int64_t id) {
  const std::optional<core::product> cached = co_await db_.get_cached_product(id);
  std::optional<freshness> state;
  if (cached) {
    state = classify_and_count(*cached, clock_());
    if (*state == freshness::fresh) co_return lookup_result{lookup_status::found, cached, 0, {}};
  } else {
    bump(metrics_.cache_miss);
  }

  fetch_result r = co_await client_.fetch_product(id);
  switch (r.status) {
    case fetch_status::found: {
      core::product p = std::move(*r.product);
      p.fetched_at = clock_();
      // (no braced list inside co_await: g++ 12 rejects it, "array used as initializer")
      co_await save(std::vector<core::product>(1, p));
      co_return lookup_result{lookup_status::found, std::move(p), 0, {}};
    }
    case fetch_status::not_found:
      // A product the catalog dropped recently can still be favorited until its row expires.
      if (cached && *state == freshness::stale) co_return lookup_result{lookup_status::found, cached, 0, r.note};
      co_return lookup_result{lookup_status::not_found, std::nullopt, 0, r.note};
    case fetch_status::unavailable: break;
  }
  if (cached) co_return lookup_result{lookup_status::found, cached, 0, r.note};  // stale-if-error
  co_return lookup_result{lookup_status::unavailable, std::nullopt, r.retry_after_s, r.note};
}

net::awaitable<std::vector<std::optional<core::product>>> product_cache::resolve(
    const std::vector<core::favorite>& favs, std::vector<std::string>* notes) {
  std::vector<std::optional<core::product>> out(favs.size());
  std::vector<std::size_t> to_fetch;  // indexes into favs
  const core::micros now = clock_();
  for (std::size_t i = 0; i < favs.size(); ++i) {
    const auto& cached = favs[i].cached;
    if (!cached) {
      bump(metrics_.cache_miss);
      to_fetch.push_back(i);
      continue;
    }
    switch (classify_and_count(*cached, now)) {
      case freshness::fresh: out[i] = cached; break;
      case freshness::stale:
        out[i] = cached;
        refresh_in_background(favs[i].product_id);
        break;
      case freshness::expired: to_fetch.push_back(i); break;
    }
  }
  if (to_fetch.empty()) co_return out;

  std::vector<std::int64_t> ids;
  ids.reserve(to_fetch.size());
  for (const auto i : to_fetch) ids.push_back(favs[i].product_id);
  std::vector<fetch_result> fetched = co_await fetch_many(std::move(ids));

  std::vector<core::product> rows;
  const core::micros fetched_at = clock_();
  for (std::size_t j = 0; j < to_fetch.size(); ++j) {
    const auto i = to_fetch[j];
    if (notes && !fetched[j].note.empty()) notes->push_back(std::move(fetched[j].note));
    if (fetched[j].status == fetch_status::found) {
      fetched[j].product->fetched_at = fetched_at;
      out[i] = fetched[j].product;
      rows.push_back(std::move(*fetched[j].product));
    } else {
      // Gone or unreachable: the last cached data of any age, else "unavailable" (nullopt).
      out[i] = favs[i].cached;
    }
  }
  if (!rows.empty()) co_await save(std::move(rows));
  co_return out;
}

net::awaitable<bool> product_cache::warm_all() {
  auto all = co_await client_.fetch_all();
  if (!all) co_return false;
  const core::micros now = clock_();
  for (auto& p : *all) p.fetched_at = now;
  try {
    co_await db_.upsert_products(std::move(*all));
  } catch (const std::exception& e) {
    warn(std::string("product cache: warm-up could not be stored: ") + e.what());
    co_return false;
  }
  co_return true;
}

void product_cache::start_warmup() {
  net::co_spawn(ex_, warm_loop(bg_.hold()), net::detached);
}

freshness product_cache::classify_and_count(const core::product& p, core::micros now) {
  const double age_s = static_cast<double>(now - p.fetched_at) / 1e6;
  const freshness f = classify(age_s, cfg_.cache_soft_ttl_s, cfg_.cache_hard_ttl_s);
  switch (f) {
    case freshness::fresh: bump(metrics_.cache_fresh); break;
    case freshness::stale: bump(metrics_.cache_stale); break;
    case freshness::expired: bump(metrics_.cache_expired); break;
  }
  return f;
}

void product_cache::refresh_in_background(std::int64_t id) {
  if (bg_.stopping()) return;
  {
    std::lock_guard lk(refreshing_->mu);
    if (!refreshing_->ids.insert(id).second) return;  // one refresh per product at a time
  }
  bump(metrics_.background_refreshes);
  net::co_spawn(ex_, background_refresh(id, bg_.hold(), refreshing_), net::detached);
}

net::awaitable<void> product_cache::background_refresh(std::int64_t id, [[maybe_unused]] util::task_tracker::guard hold,
                                                       std::shared_ptr<refresh_set> set) {
  // Leaves the in-flight set however the frame ends (finished, threw, or destroyed at teardown).
  struct leave_set {
    std::shared_ptr<refresh_set> set;
    std::int64_t id;
    ~leave_set() {
      std::lock_guard lk(set->mu);
      set->ids.erase(id);
    }
  } leave{std::move(set), id};

  try {
    fetch_result r = co_await client_.fetch_product(id);
    // not_found keeps the row (listings go on showing the last data); unavailable waits for a
    // later read to try again.
    if (r.status == fetch_status::found) {
      r.product->fetched_at = clock_();
      std::vector<core::product> rows;
      rows.push_back(std::move(*r.product));
      co_await save(std::move(rows));
    }
    if (!r.note.empty()) warn("product cache: background refresh: " + r.note);  // no request to tell
  } catch (const std::exception& e) {
    warn("product cache: background refresh of " + std::to_string(id) + " failed: " + e.what());
  }
}

net::awaitable<std::vector<fetch_result>> product_cache::fetch_many(std::vector<std::int64_t> ids) {
  if (ids.size() == 1) {
    std::vector<fetch_result> one(1);
    one[0] = co_await client_.fetch_product(ids.front());
    co_return one;
  }
  auto b = std::make_shared<batch>(ids.size());
  for (std::size_t j = 0; j < ids.size(); ++j) net::co_spawn(ex_, fetch_into(client_, b, j, ids[j]), net::detached);
  co_await b->done.wait();
  co_return std::move(b->results);
}

net::awaitable<void> product_cache::warm_loop([[maybe_unused]] util::task_tracker::guard hold) {
  using namespace std::chrono_literals;
  using steady = std::chrono::steady_clock;
  net::steady_timer timer(ex_);
  while (!bg_.stopping()) {
    bool ok = false;
    try {
      ok = co_await warm_all();
    } catch (const std::exception& e) {
      warn(std::string("product cache: warm-up failed: ") + e.what());
    }
    const double interval = cfg_.catalog_warm_interval_s;
    if (!(interval > 0)) co_return;
    const double wait_s = ok ? interval : std::min(interval, 60.0);
    // Sleep in short slices: task_tracker has no wake-up signal, and shutdown must not wait out
    // a ten-minute interval.
    const auto until =
        steady::now() + std::chrono::duration_cast<steady::duration>(std::chrono::duration<double>(wait_s));
    while (!bg_.stopping() && steady::now() < until) {
      timer.expires_after(std::min<steady::duration>(250ms, until - steady::now()));
      boost::system::error_code ignored;
      co_await timer.async_wait(net::redirect_error(net::use_awaitable, ignored));
    }
  }
}

net::awaitable<void> product_cache::save(std::vector<core::product> rows) {
  try {
    co_await db_.upsert_products(std::move(rows));
  } catch (const std::exception& e) {
    warn(std::string("product cache: could not store fetched products: ") + e.what());
  }
}

void product_cache::warn(std::string_view message) const {
  if (log_)
    log_(message);
  else
    std::cerr << message << '\n';
}

}  // namespace fav::catalog
