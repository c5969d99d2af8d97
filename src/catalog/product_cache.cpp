// Stale-while-revalidate product cache (see product_cache.hpp). The only spawns are for work
// nobody awaits, members of the background task group: background refreshes and the warm-up loop.
// One listing's fetches run as a parallel group that the listing awaits.
#include "catalog/product_cache.hpp"

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/experimental/parallel_group.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <charconv>
#include <chrono>
#include <iostream>
#include <string>

namespace fav::catalog {

using util::bump;

product_cache::product_cache(store::store& db, client& c, const util::config& cfg, util::metrics& m,
                             util::task_group& bg, net::any_io_executor ex, std::function<core::micros()> clock,
                             std::function<void(std::string_view)> log, store::change_feed* feed)
    : db_(db),
      client_(c),
      cfg_(cfg),
      metrics_(m),
      bg_(bg),
      ex_(std::move(ex)),
      clock_(std::move(clock)),
      log_(std::move(log)),
      missing_(util::to_micros(cfg.cache_missing_ttl), 100000),
      feed_(feed) {
  if (!feed_) return;
  // A row another instance refreshed (or anything, after the feed was down) is read again.
  feed_->subscribe([rows = fresh_](const store::change& c) {
    if (c.what == store::change::kind::all) rows->clear();
    if (c.what != store::change::kind::product) return;
    // This instance wrote the row (a favoriting's fetch, a refresh, the warm-up): kept as written.
    if (c.row) return rows->written(*c.row);
    std::int64_t id = 0;
    const auto* end = c.id.data() + c.id.size();
    if (std::from_chars(c.id.data(), end, id).ptr == end) rows->forget(id);
  });
}

steady_clock::time_point product_cache::request_deadline() const {
  return steady_clock::now() + std::max(cfg_.catalog_request_deadline, util::duration::zero());
}

net::awaitable<fetch_result> product_cache::get_for_favorite(std::int64_t id, log_context ctx, std::string customer) {
  const std::optional<core::product> cached = co_await db_.get_cached_product(id);
  decision d = co_await decide_for_favorite(id, cached, std::move(ctx), std::move(customer));
  // No braced list inside co_await (CONTRIBUTING.md, "Compiler notes").
  if (d.save) co_await save(std::vector<core::product>(1, *d.r.product));
  co_return std::move(d.r);
}

net::awaitable<favoriting> product_cache::favorite(core::customer_id customer, std::int64_t id, log_context ctx) {
  using outcome = favoriting::outcome;
  favoriting out;
  const auto answer = [&out](store::insert_result r, const core::product& p) {
    switch (r) {
      case store::insert_result::added:
        out.what = outcome::added;
        out.product = p;
        break;
      case store::insert_result::duplicate: out.what = outcome::duplicate; break;
      case store::insert_result::no_customer: out.what = outcome::no_customer; break;
    }
    return out;
  };
  const core::micros now = clock_();
  if (auto hit = fresh_in_memory(id, now)) {
    bump(metrics_.cache_fresh);
    out.favorited_at = now;
    std::optional<core::product> no_row;  // named: CONTRIBUTING.md, "Compiler notes"
    const auto r = co_await db_.write_favoriting(customer, id, now, std::move(no_row));
    co_return answer(r, *hit);
  }

  const std::uint64_t generation = fresh_->generation();
  const store::store::favoriting_reads reads = co_await db_.read_for_favoriting(customer, id);
  // Already there: 409 without asking the catalog; the write below still decides races.
  if (reads.already) {
    out.what = outcome::duplicate;
    co_return out;
  }
  if (reads.cached &&
      classify_age(now - reads.cached->fetched_at, cfg_.cache_soft_ttl, cfg_.cache_hard_ttl) == freshness::fresh)
    fresh_->put(*reads.cached, generation);
  decision d = co_await decide_for_favorite(id, reads.cached, std::move(ctx), customer.str());
  if (d.r.status == fetch_status::not_found) {
    out.what = outcome::not_found;
    co_return out;
  }
  if (d.r.status == fetch_status::unavailable) {
    out.what = outcome::unavailable;
    out.retry_after_s = d.r.retry_after_s;
    co_return out;
  }

  const core::product& product = *d.r.product;
  out.favorited_at = clock_();
  std::optional<core::product> fetched;
  if (d.save) fetched = product;
  std::optional<store::insert_result> r;
  try {
    r = co_await db_.write_favoriting(customer, id, out.favorited_at, std::move(fetched));
  } catch (const store::unavailable&) {
    throw;
  } catch (const std::exception& e) {
    if (!d.save) throw;
    // The row could not be stored (get_for_favorite only logs that too): the favorite alone.
    warn(std::string("product cache: could not store fetched products: ") + e.what());
  }
  // A row stored with the favorite is now held fresh: the store published it (fresh_rows::written).
  if (!r) {
    std::optional<core::product> no_row;  // named: CONTRIBUTING.md, "Compiler notes"
    r = co_await db_.write_favoriting(customer, id, out.favorited_at, std::move(no_row));
  }
  co_return answer(*r, product);
}

net::awaitable<product_cache::decision> product_cache::decide_for_favorite(std::int64_t id,
                                                                           const std::optional<core::product>& cached,
                                                                           log_context ctx, std::string customer) {
  decision d;
  std::optional<freshness> state;
  if (cached) {
    state = classify_and_count(*cached, clock_());
    if (*state == freshness::fresh) {
      d.r = found(*cached);
      co_return d;
    }
  } else {
    bump(metrics_.cache_miss);
  }

  fetch_result r;
  if (missing_.contains(id, clock_())) {
    bump(metrics_.missing_cache_hits);
    r.status = fetch_status::not_found;  // the catalog said so a moment ago: no call
  } else {
    // share_recent: a request that read the cache just before another's first answer was
    // saved shares that answer instead of a second call (single-flight's window).
    const auto deadline = request_deadline();
    const auto no_slot_deadline = steady_clock::time_point::max();
    r = co_await client_.fetch_product(id, std::move(ctx), deadline, no_slot_deadline, true, std::move(customer));
    if (r.status == fetch_status::not_found) missing_.remember(id, clock_());
  }
  d.r = std::move(r);
  switch (d.r.status) {
    case fetch_status::found:
      d.r.product->fetched_at = clock_();
      d.save = true;
      break;
    case fetch_status::not_found:
      // A product the catalog dropped recently can still be favorited until its row expires.
      if (cached && *state == freshness::stale) d.r = found(*cached);
      break;
    case fetch_status::unavailable:
      if (cached) d.r = found(*cached);  // stale-if-error
      break;
  }
  co_return d;
}

std::optional<core::product> product_cache::fresh_in_memory(std::int64_t id, core::micros now) {
  if (!feed_ || !feed_->live()) return std::nullopt;
  auto p = fresh_->get(id);
  if (!p) return std::nullopt;
  if (classify_age(now - p->fetched_at, cfg_.cache_soft_ttl, cfg_.cache_hard_ttl) == freshness::fresh) return p;
  fresh_->forget(id);  // no longer fresh: favoritings read the row again
  return std::nullopt;
}

std::uint64_t product_cache::fresh_rows::generation() const {
  std::lock_guard lk(mu_);
  return generation_;
}

void product_cache::fresh_rows::put(const core::product& p, std::uint64_t generation) {
  std::lock_guard lk(mu_);
  if (generation != generation_) return;
  // An older copy (by fetched_at) never replaces a newer one.
  if (const auto* held = rows_.peek(p.id); held && held->fetched_at > p.fetched_at) return;
  rows_.put(p.id, p);
}

std::optional<core::product> product_cache::fresh_rows::get(std::int64_t id) {
  std::lock_guard lk(mu_);
  const auto* p = rows_.get(id);
  if (!p) return std::nullopt;
  return *p;
}

void product_cache::fresh_rows::written(const core::product& p) {
  std::lock_guard lk(mu_);
  ++generation_;  // a read that raced this write keeps nothing older
  if (const auto* held = rows_.peek(p.id); held && held->fetched_at > p.fetched_at) return;
  rows_.put(p.id, p);
}

void product_cache::fresh_rows::forget(std::int64_t id) {
  std::lock_guard lk(mu_);
  ++generation_;
  rows_.erase(id);
}

void product_cache::fresh_rows::clear() {
  std::lock_guard lk(mu_);
  ++generation_;
  rows_.clear();
}

net::awaitable<std::vector<std::optional<core::product>>> product_cache::resolve(
    const std::vector<core::favorite>& favs, log_context ctx) {
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

  // Products known to be missing are not asked for again: their cached copy (or "unavailable").
  std::erase_if(to_fetch, [&](std::size_t i) {
    if (!missing_.contains(favs[i].product_id, now)) return false;
    bump(metrics_.missing_cache_hits);
    out[i] = favs[i].cached;
    return true;
  });
  if (to_fetch.empty()) co_return out;
  // An expired product with a cached copy may queue for a catalog slot only briefly: when the
  // catalog's slots are all taken (a flood of lookups of unknown ids, §8), the listing serves the
  // copy (stale-if-error) instead of waiting out the request deadline behind the flood. Once it
  // holds a slot it waits for the answer as usual, so a merely slow catalog still refreshes it.
  constexpr auto stale_copy_slot_wait = std::chrono::milliseconds(100);
  std::vector<std::int64_t> ids;
  std::vector<steady_clock::time_point> slot_deadlines;
  ids.reserve(to_fetch.size());
  slot_deadlines.reserve(to_fetch.size());
  const auto copy_slot_deadline = steady_clock::now() + stale_copy_slot_wait;
  for (const auto i : to_fetch) {
    ids.push_back(favs[i].product_id);
    slot_deadlines.push_back(favs[i].cached ? copy_slot_deadline : steady_clock::time_point::max());
  }
  std::vector<fetch_result> fetched =
      co_await fetch_many(std::move(ids), std::move(slot_deadlines), ctx, request_deadline());

  std::vector<core::product> rows;
  const core::micros fetched_at = clock_();
  for (std::size_t j = 0; j < to_fetch.size(); ++j) {
    const auto i = to_fetch[j];
    if (fetched[j].status == fetch_status::found) {
      fetched[j].product->fetched_at = fetched_at;
      out[i] = fetched[j].product;
      rows.push_back(std::move(*fetched[j].product));
    } else {
      if (fetched[j].status == fetch_status::not_found) missing_.remember(favs[i].product_id, fetched_at);
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
  bump(metrics_.warmups);
  co_return true;
}

void product_cache::start_warmup() {
  bg_.spawn(util::new_strand(ex_), warm_loop());
}

fetch_result product_cache::found(const core::product& p) {
  fetch_result r;
  r.status = fetch_status::found;
  r.product = p;
  return r;
}

freshness product_cache::classify_and_count(const core::product& p, core::micros now) {
  const freshness f = classify_age(now - p.fetched_at, cfg_.cache_soft_ttl, cfg_.cache_hard_ttl);
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
  bg_.spawn(util::new_strand(ex_), background_refresh(id, refreshing_));
}

net::awaitable<void> product_cache::background_refresh(std::int64_t id, std::shared_ptr<refresh_set> set) {
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
    // No request to tell: the client logs its trouble without ids. (Named arguments, not
    // temporaries inside co_await: CONTRIBUTING.md, "Compiler notes".)
    const log_context none;
    const auto deadline = steady_clock::time_point::max();
    fetch_result r = co_await client_.fetch_product(id, none, deadline);
    // not_found keeps the row (listings go on showing the last data); unavailable waits for a
    // later read to try again.
    if (r.status == fetch_status::not_found) missing_.remember(id, clock_());
    if (r.status == fetch_status::found) {
      r.product->fetched_at = clock_();
      std::vector<core::product> rows;
      rows.push_back(std::move(*r.product));
      co_await save(std::move(rows));
    }
  } catch (const std::exception& e) {
    warn("product cache: background refresh of " + std::to_string(id) + " failed: " + e.what());
  }
}

net::awaitable<std::vector<fetch_result>> product_cache::fetch_many(
    std::vector<std::int64_t> ids, std::vector<steady_clock::time_point> slot_deadlines, const log_context& ctx,
    steady_clock::time_point deadline) {
  if (ids.size() == 1) {
    std::vector<fetch_result> one(1);
    one[0] = co_await client_.fetch_product(ids.front(), ctx, deadline, slot_deadlines.front());
    co_return one;
  }
  // One operation per id, awaited together (no frame outlives this call).
  using op_type = decltype(net::co_spawn(ex_, client_.fetch_product(0, ctx, deadline, deadline), net::deferred));
  std::vector<op_type> ops;
  ops.reserve(ids.size());
  for (std::size_t j = 0; j < ids.size(); ++j)
    ops.push_back(net::co_spawn(ex_, client_.fetch_product(ids[j], ctx, deadline, slot_deadlines[j]), net::deferred));
  auto group = net::experimental::make_parallel_group(std::move(ops));  // named: see background_refresh
  auto [order, errors, results] = co_await group.async_wait(net::experimental::wait_for_all(), net::use_awaitable);
  (void)order;
  for (std::size_t j = 0; j < results.size(); ++j)
    if (errors[j]) results[j] = fetch_result{};  // fetch_product does not throw; if it did: unavailable
  co_return std::move(results);
}

net::awaitable<void> product_cache::warm_loop() {
  while (!bg_.stopping()) {
    bool ok = false;
    try {
      ok = co_await warm_all();
    } catch (const std::exception& e) {
      warn(std::string("product cache: warm-up failed: ") + e.what());
    }
    const util::duration interval = cfg_.catalog_warm_interval;
    if (interval <= util::duration::zero()) co_return;
    const util::duration wait = ok ? interval : std::min<util::duration>(interval, std::chrono::minutes(1));
    // Shutdown (bg_.stop()) ends the wait at once, so it never waits out a ten-minute interval.
    if (!co_await bg_.pause(wait)) co_return;
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
