// See cached_store.hpp.
#include "store/cached_store.hpp"

#include <charconv>

namespace fav::store {

cached_store::cached_store(std::unique_ptr<store> inner, change_feed& feed, std::size_t budget_bytes)
    : forwarding_store(std::move(inner)), feed_(feed), cache_(budget_bytes) {
  if (!cache_.enabled()) return;
  feed_.subscribe([this](const change& c) {
    switch (c.what) {
      case change::kind::customer: cache_.forget_customer(c.id); break;
      case change::kind::favorites: cache_.forget_favorites(c.id); break;
      case change::kind::all: cache_.clear(); break;
      case change::kind::product: {
        // Another instance refreshed a product: forget this instance's copy, so pages that show
        // it are read again (a page read racing this may put the older row back; it is then
        // refreshed like any stale row, by its fetched_at).
        std::int64_t id = 0;
        const auto* end = c.id.data() + c.id.size();
        if (std::from_chars(c.id.data(), end, id).ptr == end) cache_.forget_product(id);
        break;
      }
      case change::kind::signin: break;
    }
  });
}

net::awaitable<std::optional<core::customer>> cached_store::find_customer(core::customer_id id) {
  return find_customer_checked(nullptr, std::move(id));
}

net::awaitable<std::optional<core::customer>> cached_store::find_customer_checked(token_check* check,
                                                                                  core::customer_id id) {
  const bool use = trusted();
  std::uint64_t gen = 0;
  if (use) {
    if (auto hit = cache_.customer(id.str())) {
      co_await run_token_check(check);
      co_return hit;
    }
    gen = cache_.generation(id.str());
  }
  auto found = co_await inner_->find_customer_checked(check, id);
  // Stored only if the feed stayed live and nothing about this customer changed meanwhile.
  if (use && found && feed_.live()) cache_.put_customer(*found, gen);
  co_return found;
}

net::awaitable<core::page<core::favorite>> cached_store::list_favorites(core::customer_id customer_id,
                                                                        core::page_req p) {
  return list_favorites_checked(nullptr, std::move(customer_id), p);
}

net::awaitable<core::page<core::favorite>> cached_store::list_favorites_checked(token_check* check,
                                                                                core::customer_id customer_id,
                                                                                core::page_req p) {
  const bool use = trusted();
  std::uint64_t gen = 0;
  if (use) {
    if (auto hit = cache_.favorites(customer_id.str(), p)) {
      co_await run_token_check(check);
      co_return std::move(*hit);
    }
    gen = cache_.generation(customer_id.str());
  }
  auto page = co_await inner_->list_favorites_checked(check, customer_id, p);
  if (use && feed_.live()) cache_.put_favorites(customer_id.str(), p, page, gen);
  co_return page;
}

net::awaitable<std::optional<core::favorite>> cached_store::get_favorite(core::customer_id customer_id,
                                                                         std::int64_t product_id) {
  const bool use = trusted();
  std::uint64_t gen = 0;
  if (use) {
    if (auto hit = cache_.favorite(customer_id.str(), product_id)) co_return std::move(*hit);
    gen = cache_.generation(customer_id.str());
  }
  auto found = co_await inner_->get_favorite(customer_id, product_id);
  if (use && feed_.live()) cache_.put_favorite(customer_id.str(), product_id, found, gen);
  co_return found;
}

// Writes: what they touched is forgotten once they return, and also when they throw (a write
// whose outcome is unknown may have been applied). The feed_store below publishes the same to
// the feed's other subscribers; forgetting twice is harmless.
net::awaitable<update_result> cached_store::update_customer(core::customer_id id, customer_patch patch, micros now) {
  try {
    auto r = co_await inner_->update_customer(id, std::move(patch), now);
    cache_.forget_customer(id.str());
    co_return r;
  } catch (...) {
    cache_.forget_customer(id.str());
    throw;
  }
}

net::awaitable<bool> cached_store::delete_customer(core::customer_id id) {
  try {
    bool r = co_await inner_->delete_customer(id);
    cache_.forget_customer(id.str());
    co_return r;
  } catch (...) {
    cache_.forget_customer(id.str());
    throw;
  }
}

net::awaitable<insert_result> cached_store::insert_favorite(core::customer_id customer_id, std::int64_t product_id,
                                                            micros now) {
  try {
    const insert_result r = co_await inner_->insert_favorite(customer_id, product_id, now);
    cache_.forget_favorites(customer_id.str());
    co_return r;
  } catch (...) {
    cache_.forget_favorites(customer_id.str());
    throw;
  }
}

net::awaitable<insert_result> cached_store::write_favoriting(core::customer_id customer_id, std::int64_t product_id,
                                                             micros now, std::optional<core::product> fetched) {
  const bool stores_product = fetched.has_value();
  std::vector<core::product> written;
  if (stores_product) written.push_back(*fetched);
  try {
    const insert_result r = co_await inner_->write_favoriting(customer_id, product_id, now, std::move(fetched));
    cache_.forget_favorites(customer_id.str());
    // The product row was written with the favorite (as upsert_products: copies follow it).
    if (stores_product && r != insert_result::no_customer) cache_.put_products(written);
    co_return r;
  } catch (...) {
    cache_.forget_favorites(customer_id.str());
    throw;
  }
}

net::awaitable<delete_result> cached_store::delete_favorite(core::customer_id customer_id, std::int64_t product_id) {
  try {
    const delete_result r = co_await inner_->delete_favorite(customer_id, product_id);
    cache_.forget_favorites(customer_id.str());
    co_return r;
  } catch (...) {
    cache_.forget_favorites(customer_id.str());
    throw;
  }
}

net::awaitable<void> cached_store::upsert_products(std::vector<core::product> products) {
  co_await inner_->upsert_products(products);
  // This instance's copies follow what it wrote (pages show current product data).
  cache_.put_products(products);
}

}  // namespace fav::store
