// See pg_write_batch.hpp. An item's state changes only under mu_; its result and error are
// written by the leader before the state becomes `done` and read by its owner only after it saw
// `done` under mu_, so the channel only wakes and never carries data.
#include "store/pg_write_batch.hpp"

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <optional>
#include <utility>

namespace fav::store {

pg_write_batch::pg_write_batch(pg_pool& pool, int max_leaders, std::size_t max_batch, std::size_t max_queued)
    : pool_(pool),
      max_leaders_(std::max(max_leaders, 1)),
      max_batch_(std::max<std::size_t>(max_batch, 1)),
      max_queued_(max_queued) {}

std::size_t pg_write_batch::queued() const {
  std::lock_guard lk(mu_);
  return queue_.size();
}

std::uint64_t pg_write_batch::batches() const {
  std::lock_guard lk(mu_);
  return batches_;
}

std::uint64_t pg_write_batch::statements() const {
  std::lock_guard lk(mu_);
  return statements_;
}

std::shared_ptr<pg_write_batch::item> pg_write_batch::pass_lead() {
  if (queue_.empty()) {
    --leaders_;
    return nullptr;
  }
  auto next = std::move(queue_.front());
  queue_.pop_front();
  next->at = state::promoted;
  return next;
}

net::awaitable<pg_result> pg_write_batch::run(const pg_statement& st, std::vector<pg_param> params,
                                              std::string lock_order) {
  auto it = std::make_shared<item>(co_await net::this_coro::executor, st, std::move(params), std::move(lock_order));
  bool leading = false;
  {
    std::lock_guard lk(mu_);
    if (leaders_ < max_leaders_) {
      ++leaders_;
      leading = true;
    } else if (queue_.size() >= max_queued_) {
      throw unavailable("postgresql: too many writes waiting for a batch");
    } else {
      queue_.push_back(it);
    }
  }
  if (!leading) {
    // Woken when a leader answered it or handed it the lead. A leader's wait is bounded (the
    // pool's acquire timeout, then the statement timeout), so this one is too.
    (void)co_await it->wake.async_receive(net::as_tuple(net::use_awaitable));
    std::lock_guard lk(mu_);
    if (it->at == state::queued) {
      // Cancelled while queued: it was never sent.
      queue_.erase(std::find(queue_.begin(), queue_.end(), it));
      throw unavailable("postgresql: the write was cancelled before it was sent");
    }
    if (it->at == state::in_flight) throw unavailable("postgresql: the write was cancelled while it ran");
    leading = it->at == state::promoted;
  }
  if (leading) co_await lead(it);
  // `done` now; from here on only this coroutine touches `it`.
  switch (it->how) {
    case outcome::result: co_return std::move(it->result);
    case outcome::error: std::rethrow_exception(it->error);
    case outcome::alone:
    case outcome::none: break;
  }
  // Its batch failed for another statement's sake (rolled back, nothing applied): alone.
  auto c = co_await pool_.acquire();
  co_return co_await c->query(*it->st, std::move(it->params), pool_.limits().query_timeout);
}

net::awaitable<void> pg_write_batch::lead(std::shared_ptr<item> own) {
  std::optional<pg_pool::lease> conn;
  std::exception_ptr no_conn;
  bool outage = false;
  try {
    conn.emplace(co_await pool_.acquire());
  } catch (const unavailable&) {
    no_conn = std::current_exception();
    outage = true;
  } catch (...) {
    no_conn = std::current_exception();
  }

  std::vector<std::shared_ptr<item>> batch{own};
  {
    std::lock_guard lk(mu_);
    // Without a connection, what is queued would find none either: it fails now, never sent,
    // rather than each in turn after the acquire timeout. Any other failure is the leader's own.
    const std::size_t take = no_conn ? (outage ? queue_.size() : 0) : std::min(queue_.size(), max_batch_ - 1);
    for (std::size_t i = 0; i < take; ++i) {
      batch.push_back(std::move(queue_.front()));
      queue_.pop_front();
    }
    for (auto& i : batch) i->at = state::in_flight;
  }

  if (no_conn) {
    for (auto& i : batch) {
      i->how = outcome::error;
      i->error = no_conn;
    }
  } else {
    std::stable_sort(batch.begin(), batch.end(),
                     [](const auto& a, const auto& b) { return a->lock_order < b->lock_order; });
    std::vector<pg_call> calls(batch.size());
    for (std::size_t i = 0; i < batch.size(); ++i) {
      calls[i].st = batch[i]->st;
      calls[i].params = batch[i]->params;  // kept: run alone again if the batch fails
    }
    try {
      // One round trip, one transaction (the pipeline's implicit one, committed at its sync).
      std::vector<pg_result> results = co_await (*conn)->pipeline(std::move(calls), pool_.limits().query_timeout);
      for (std::size_t i = 0; i < batch.size(); ++i) {
        batch[i]->how = outcome::result;
        batch[i]->result = std::move(results[i]);
      }
    } catch (const pg_error&) {
      // One statement's error rolled the whole batch back: each runs again alone and meets its
      // own outcome. A batch of one already has its own.
      for (auto& i : batch) {
        i->how = batch.size() == 1 ? outcome::error : outcome::alone;
        i->error = std::current_exception();
      }
    } catch (...) {
      for (auto& i : batch) {
        i->how = outcome::error;
        i->error = std::current_exception();
      }
    }
    conn.reset();  // back to the pool before anyone woken below needs it
  }

  std::shared_ptr<item> next;
  {
    std::lock_guard lk(mu_);
    for (auto& i : batch) i->at = state::done;
    if (batch.front()->how == outcome::result) {  // committed
      ++batches_;
      statements_ += batch.size();
    }
    next = pass_lead();
  }
  for (auto& i : batch)
    if (i != own) i->wake.try_send(boost::system::error_code{});
  if (next) next->wake.try_send(boost::system::error_code{});
}

}  // namespace fav::store
