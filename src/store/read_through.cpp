// See read_through.hpp.
#include "store/read_through.hpp"

#include <charconv>

namespace fav::store {

read_through::read_through(store& primary, change_feed& feed, std::size_t budget_bytes, store* standby)
    : primary_(primary), standby_(standby), feed_(feed), memory_(budget_bytes) {
  if (!memory_.enabled()) return;
  feed_.subscribe([this](const change& c) {
    switch (c.what) {
      case change::kind::customer: memory_.forget_customer(c.id); break;
      case change::kind::favorites: memory_.forget_favorites(c.id); break;
      case change::kind::all: memory_.clear(); break;
      case change::kind::product: {
        // This instance wrote it: pages show the row as written. Another instance refreshed it (or
        // this one's write failed): forget this instance's copy, so pages that show it are read
        // again (a page read racing this may put the older row back; it is then refreshed like any
        // stale row, by its fetched_at).
        if (c.row) {
          memory_.put_products({*c.row});
          break;
        }
        std::int64_t id = 0;
        const auto* end = c.id.data() + c.id.size();
        if (std::from_chars(c.id.data(), end, id).ptr == end) memory_.forget_product(id);
        break;
      }
      case change::kind::signin: break;
    }
  });
}

template <class T, class F>
net::awaitable<T> read_through::either(F call, bool& from_standby) {
  if (!standby_) co_return co_await call(primary_);
  try {
    co_return co_await call(primary_);
  } catch (const unavailable&) {
    // Falls through: no co_await inside a handler.
  }
  standby_reads_.fetch_add(1, std::memory_order_relaxed);
  from_standby = true;
  co_return co_await call(*standby_);
}

net::awaitable<std::optional<core::customer>> read_through::find_customer(core::customer_id id) {
  const bool use = trusted();
  std::uint64_t gen = 0;
  if (use) {
    if (auto hit = memory_.customer(id.str())) co_return hit;
    gen = memory_.generation(id.str());
  }
  bool standby = false;
  auto found = co_await either<std::optional<core::customer>>([&id](store& s) { return s.find_customer(id); }, standby);
  // Its GET never shows the hash: neither held (a sixth of the record's memory) nor handed on.
  if (found) found->password_hash = std::string();
  // Kept only if the feed stayed live and nothing about this customer changed meanwhile.
  if (use && !standby && found && feed_.live()) memory_.put_customer(*found, gen);
  co_return found;
}

net::awaitable<core::page<core::favorite>> read_through::list_favorites(core::customer_id customer_id,
                                                                        core::page_req p) {
  const bool use = trusted();
  std::uint64_t gen = 0;
  if (use) {
    if (auto hit = memory_.favorites(customer_id.str(), p)) co_return std::move(*hit);
    gen = memory_.generation(customer_id.str());
  }
  bool standby = false;
  auto page = co_await either<core::page<core::favorite>>(
      [&customer_id, p](store& s) { return s.list_favorites(customer_id, p); }, standby);
  if (use && !standby && feed_.live()) memory_.put_favorites(customer_id.str(), p, page, gen);
  co_return page;
}

net::awaitable<std::optional<core::favorite>> read_through::get_favorite(core::customer_id customer_id,
                                                                         std::int64_t product_id) {
  const bool use = trusted();
  std::uint64_t gen = 0;
  if (use) {
    if (auto hit = memory_.favorite(customer_id.str(), product_id)) co_return std::move(*hit);
    gen = memory_.generation(customer_id.str());
  }
  bool standby = false;
  auto found = co_await either<std::optional<core::favorite>>(
      [&customer_id, product_id](store& s) { return s.get_favorite(customer_id, product_id); }, standby);
  if (use && !standby && feed_.live()) memory_.put_favorite(customer_id.str(), product_id, found, gen);
  co_return found;
}

net::awaitable<auth_state> read_through::check_token(core::customer_id customer_id, std::string jti,
                                                     std::string sign_in_key) {
  bool standby = false;
  co_return co_await either<auth_state>([&](store& s) { return s.check_token(customer_id, jti, sign_in_key); },
                                        standby);
}

}  // namespace fav::store
