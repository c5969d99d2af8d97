// The read cache: a byte budget it never exceeds, LRU eviction, the
// generation rule that keeps a read racing a write from re-inserting the old answer, and the
// product rows of a cached page following what this instance wrote.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "api/render.hpp"
#include "store/read_cache.hpp"
#include "util/config.hpp"

using fav::store::read_cache;
namespace core = fav::core;

namespace {

core::customer make_customer(int i) {
  return core::customer{"00000000-0000-4000-8000-" + std::to_string(100000000000 + i),
                        "Customer number " + std::to_string(i),
                        "customer" + std::to_string(i) + "@example.com",
                        "$argon2id$v=19$m=65536,t=3,p=1$c29tZXNhbHRzb21lc2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNo",
                        1,
                        2};
}

core::product make_product(std::int64_t id, core::micros fetched_at, std::string title = "") {
  core::product p;
  p.id = id;
  p.title = title.empty() ? "Product with a reasonably long title " + std::to_string(id) : title;
  p.image_url = "http://images.example.com/products/" + std::to_string(id) + "/large-picture.jpg";
  p.price_cents = 1999;
  p.fetched_at = fetched_at;
  return p;
}

core::page<core::favorite> make_page(int n, std::int64_t first_product) {
  core::page<core::favorite> page;
  for (int j = 0; j < n; ++j)
    page.items.push_back(core::favorite{first_product + j, 1000 - j, make_product(first_product + j, 5)});
  page.total = n;
  return page;
}

}  // namespace

// "The cache never exceeds its budget under a scan of many customers".
TEST(read_cache, a_scan_of_many_customers_never_exceeds_the_budget) {
  constexpr std::size_t budget = 256 * 1024;
  read_cache cache(budget);
  ASSERT_TRUE(cache.enabled());
  ASSERT_LE(cache.budget(), budget);
  std::size_t peak = 0;
  for (int i = 0; i < 20000; ++i) {
    const auto c = make_customer(i);
    cache.put_customer(c, cache.generation(c.id));
    cache.put_favorites(c.id, {1, 20}, make_page(20, i * 7), cache.generation(c.id));
    cache.put_favorites(c.id, {2, 20}, make_page(3, i * 7 + 20), cache.generation(c.id));
    peak = std::max(peak, cache.bytes());
    ASSERT_LE(cache.bytes(), budget) << "after customer " << i;
  }
  // The budget is used, not left idle, and the most recent customers are the ones held.
  EXPECT_GT(peak, budget / 2);
  const auto last = make_customer(19999);
  EXPECT_TRUE(cache.customer(last.id));
  EXPECT_TRUE(cache.favorites(last.id, {1, 20}));
  EXPECT_FALSE(cache.customer(make_customer(0).id)) << "the least recently used went first";
  // A value larger than the whole budget is never held (and does not flush the rest).
  const auto before = cache.entries();
  const auto big = make_customer(-1);
  cache.put_favorites(big.id, {1, 100000}, make_page(100000, 1), cache.generation(big.id));
  EXPECT_FALSE(cache.favorites(big.id, {1, 100000}));
  EXPECT_LE(cache.bytes(), budget);
  EXPECT_EQ(cache.entries(), before);
  EXPECT_TRUE(cache.favorites(last.id, {1, 20}));
}

TEST(read_cache, zero_budget_is_off) {
  read_cache cache(0);
  EXPECT_FALSE(cache.enabled());
  const auto c = make_customer(1);
  cache.put_customer(c, cache.generation(c.id));
  EXPECT_FALSE(cache.customer(c.id));
  EXPECT_EQ(cache.bytes(), 0u);
}

TEST(read_cache, a_page_comes_back_as_stored_with_its_products) {
  read_cache cache(1 << 20);
  const auto c = make_customer(1);
  auto page = make_page(3, 10);
  page.items[1].cached.reset();  // a favorite whose product is not in products_cache
  page.total = 42;
  cache.put_favorites(c.id, {2, 3}, page, cache.generation(c.id));
  EXPECT_FALSE(cache.favorites(c.id, {1, 3})) << "another page is not this one";
  auto got = cache.favorites(c.id, {2, 3});
  ASSERT_TRUE(got);
  EXPECT_EQ(got->total, 42);
  ASSERT_EQ(got->items.size(), 3u);
  EXPECT_EQ(got->items[0].product_id, 10);
  EXPECT_EQ(got->items[0].favorited_at, 1000);
  ASSERT_TRUE(got->items[0].cached);
  EXPECT_EQ(got->items[0].cached->title, page.items[0].cached->title);
  EXPECT_FALSE(got->items[1].cached);
  // This instance refreshed the products: the page shows the new rows; an older copy never
  // replaces a newer one.
  cache.put_products({make_product(10, 50, "New title"), make_product(11, 50, "Now cached")});
  cache.put_products({make_product(10, 40, "Older title")});
  got = cache.favorites(c.id, {2, 3});
  ASSERT_TRUE(got);
  EXPECT_EQ(got->items[0].cached->title, "New title");
  ASSERT_TRUE(got->items[1].cached);
  EXPECT_EQ(got->items[1].cached->title, "Now cached");
}

TEST(read_cache, forgetting_takes_the_entries_and_refuses_reads_that_began_before) {
  read_cache cache(1 << 20);
  const auto c = make_customer(1);
  cache.put_customer(c, cache.generation(c.id));
  cache.put_favorites(c.id, {1, 20}, make_page(2, 1), cache.generation(c.id));

  // A read began (generation taken), then a write forgot the favorites: the read's answer
  // (from before the write) is not stored.
  const auto gen = cache.generation(c.id);
  cache.forget_favorites(c.id);
  EXPECT_FALSE(cache.favorites(c.id, {1, 20}));
  EXPECT_TRUE(cache.customer(c.id)) << "a favorite change leaves the customer's record";
  cache.put_favorites(c.id, {1, 20}, make_page(2, 1), gen);
  EXPECT_FALSE(cache.favorites(c.id, {1, 20})) << "a stale read re-inserted";

  cache.put_favorites(c.id, {1, 20}, make_page(2, 1), cache.generation(c.id));
  cache.forget_customer(c.id);
  EXPECT_FALSE(cache.customer(c.id));
  EXPECT_FALSE(cache.favorites(c.id, {1, 20})) << "a deleted customer's favorites go with it";

  cache.put_customer(c, cache.generation(c.id));
  const auto gen2 = cache.generation(c.id);
  cache.clear();
  EXPECT_FALSE(cache.customer(c.id));
  EXPECT_EQ(cache.bytes(), 0u);
  cache.put_customer(c, gen2);
  EXPECT_FALSE(cache.customer(c.id)) << "a read from before the flush re-inserted";
}

TEST(read_cache, an_evicted_product_makes_its_page_a_miss) {
  // Small enough that products of later pages push the first page's products out.
  read_cache cache(16 * 1024);
  const auto c = make_customer(1);
  cache.put_favorites(c.id, {1, 5}, make_page(5, 1), cache.generation(c.id));
  ASSERT_TRUE(cache.favorites(c.id, {1, 5}));
  for (int i = 0; i < 500; ++i) cache.put_products({make_product(1000 + i, 5)});
  // Either the page went too, or it is found without a product it had: then a miss, never a
  // page with a product silently missing.
  auto got = cache.favorites(c.id, {1, 5});
  if (got) {
    for (const auto& f : got->items) EXPECT_TRUE(f.cached);
  }
}

// Rendered pages (README, "Rendered pages"): kept bytes under a tag from the entry's version,
// gone with the customer's favorites or with any product row they show.
namespace {
std::vector<core::product> shown_of(const core::page<core::favorite>& page) {
  std::vector<core::product> out;
  for (const auto& f : page.items) out.push_back(*f.cached);
  return out;
}
}  // namespace

// Pages read at random by more customers than the budget holds, each miss reading the page
// (put_favorites) and keeping it rendered (put_rendered), all showing the same few products: the
// LRU answers about the share of customers it holds, and the product rows every page needs are
// not lost to the customers' churn (one evicted row would make every page showing it a miss).
TEST(read_cache, random_reads_over_more_customers_than_fit_are_answered_in_proportion) {
  read_cache cache(1 << 20);
  constexpr int customers = 1000;
  const std::string body(2300, 'x');
  std::mt19937 pick(7);
  std::uniform_int_distribution<int> any(0, customers - 1);
  int answered = 0, asked = 0;
  for (int i = 0; i < 20000; ++i) {
    const auto id = make_customer(any(pick)).id;
    const bool measured = i >= 5000;
    if (measured) ++asked;
    if (cache.rendered(id, {1, 10}, 100) || cache.favorites(id, {1, 10})) {
      if (measured) ++answered;
      continue;
    }
    const auto gen = cache.generation(id);
    const auto page = make_page(10, 1);
    cache.put_favorites(id, {1, 10}, page, gen);
    cache.put_rendered(id, {1, 10}, gen, shown_of(page), 100, body, 10);
  }
  const double held = static_cast<double>(cache.entries()) / customers;
  const double ratio = static_cast<double>(answered) / asked;
  EXPECT_GT(held, 0.2) << "the budget holds a good share of the customers";
  EXPECT_LT(held, 1.0) << "the test must overflow the budget";
  EXPECT_GT(ratio, held * 0.7) << "answered " << answered << " of " << asked << " with " << cache.entries()
                               << " entries held";
  EXPECT_LE(cache.bytes(), cache.budget());
}

// The default budget (README, READ_CACHE_BYTES) holds the benchmark's working set: 10,000
// customers' records and first pages of 10 favorites with the bytes answered for them (2,347 in
// bench/RESULTS.md). A request cycling through them, as bench/run.sh does, is the LRU's worst
// case: when they do not all fit, every request misses.
TEST(read_cache, the_default_budget_holds_ten_thousand_customers_first_pages) {
  read_cache cache(static_cast<std::size_t>(fav::util::load_config({}).read_cache_bytes));
  constexpr int customers = 10000;
  const std::string body(2347, 'x');
  for (int i = 0; i < customers; ++i) {
    const auto c = make_customer(i);
    cache.put_customer(c, cache.generation(c.id));
    const auto page = make_page(10, i % 20 + 1);
    cache.put_favorites(c.id, {1, 10}, page, cache.generation(c.id));
    ASSERT_TRUE(cache.put_rendered(c.id, {1, 10}, cache.generation(c.id), shown_of(page), 100, body, 10));
  }
  int answered = 0;
  for (int i = 0; i < customers; ++i) {
    const auto id = make_customer(i).id;
    if (cache.rendered(id, {1, 10}, 100) && cache.customer(id)) ++answered;
  }
  EXPECT_EQ(answered, customers) << cache.bytes() << " bytes held of " << cache.budget();
}

TEST(read_cache, a_rendered_page_comes_back_with_its_tag_until_it_changes) {
  read_cache cache(1 << 20);
  const auto c = make_customer(1);
  const auto page = make_page(3, 10);
  cache.put_favorites(c.id, {1, 3}, page, cache.generation(c.id));
  const auto kept = cache.put_rendered(c.id, {1, 3}, cache.generation(c.id), shown_of(page), 100, "body one", 3);
  ASSERT_TRUE(kept);
  EXPECT_EQ(kept->etag.front(), '"');
  EXPECT_EQ(kept->etag.back(), '"');
  auto hit = cache.rendered(c.id, {1, 3}, 100);
  ASSERT_TRUE(hit);
  EXPECT_EQ(hit->body(), "body one");
  EXPECT_EQ(hit->etag, kept->etag);
  EXPECT_EQ(hit->total, 3);
  EXPECT_FALSE(cache.rendered(c.id, {2, 3}, 100)) << "another page is not this one";
  EXPECT_FALSE(cache.rendered(c.id, {1, 3}, 101)) << "answered past the time its first product turns stale";

  // The same row written again (the same fetched_at and data) leaves the page standing.
  cache.put_products({page.items[0].cached.value()});
  EXPECT_TRUE(cache.rendered(c.id, {1, 3}, 100));
  // A product it shows replaced (a refresh) or forgotten (another instance's): rendered again.
  cache.put_products({make_product(11, 50, "Refreshed")});
  EXPECT_FALSE(cache.rendered(c.id, {1, 3}, 100));
  const auto again = make_page(3, 10);
  auto shown = shown_of(again);
  shown[1] = make_product(11, 50, "Refreshed");
  const auto second = cache.put_rendered(c.id, {1, 3}, cache.generation(c.id), shown, 100, "body two", 3);
  ASSERT_TRUE(second);
  EXPECT_NE(second->etag, kept->etag) << "a new body under the old tag";
  cache.forget_product(12);
  EXPECT_FALSE(cache.rendered(c.id, {1, 3}, 100));

  // The customer's favorites changed: the page goes.
  cache.put_products(shown_of(make_page(1, 20)));
  ASSERT_TRUE(cache.put_rendered(c.id, {1, 3}, cache.generation(c.id), shown_of(make_page(1, 20)), 100, "b", 1));
  ASSERT_TRUE(cache.rendered(c.id, {1, 3}, 100));
  cache.forget_favorites(c.id);
  EXPECT_FALSE(cache.rendered(c.id, {1, 3}, 100));
}

// README, "Rendered pages": a page is kept in pieces, the bytes each product row renders to held
// once for every page kept from that row. What comes back is the body given, byte for byte.
TEST(read_cache, a_page_kept_in_pieces_comes_back_byte_for_byte_and_shares_its_products) {
  read_cache cache(1 << 20);
  struct kept_page {
    std::string body;
    std::shared_ptr<const read_cache::rendered_page> page;
  };
  // Customer i's page shows products 10..12 (the same rows), favorited at other times, and
  // customer 2's also product 20, first.
  auto keep = [&](int i, std::vector<std::int64_t> ids) {
    const auto c = make_customer(i);
    core::page<core::favorite> page;
    page.total = static_cast<std::int64_t>(ids.size());
    for (auto id : ids)
      page.items.push_back(core::favorite{id, 1000 * i + id, make_product(id, 5, "T\"" + std::to_string(id))});
    cache.put_favorites(c.id, {1, 10}, page, cache.generation(c.id));
    std::vector<std::optional<core::product>> products;
    for (const auto& f : page.items) products.push_back(f.cached);
    std::vector<fav::api::product_span> spans;
    kept_page k{fav::api::render_favorites_page(page.items, products, {1, 10}, page.total, &spans), nullptr};
    std::vector<std::string_view> bytes;
    for (const auto& s : spans) bytes.push_back(std::string_view(k.body).substr(s.offset, s.length));
    k.page = cache.put_rendered(c.id, {1, 10}, cache.generation(c.id), shown_of(page), 100, k.body, page.total, bytes);
    return k;
  };
  const auto one = keep(1, {10, 11, 12});
  const auto two = keep(2, {20, 10, 11, 12});
  ASSERT_TRUE(one.page && two.page);
  for (const auto* k : {&one, &two}) {
    const int i = k == &one ? 1 : 2;
    const auto hit = cache.rendered(make_customer(i).id, {1, 10}, 100);
    ASSERT_TRUE(hit);
    EXPECT_EQ(hit->body(), k->body);
    EXPECT_EQ(hit->size(), k->body.size());
    std::string appended = "prefix:";
    hit->append_body(appended);
    EXPECT_EQ(appended, "prefix:" + k->body);
    // What each item alone holds: its favorited_at and the separators, not the product's bytes.
    EXPECT_LT(hit->own_size(), k->body.size() / 2) << k->body;
  }
  EXPECT_TRUE(one.page->shares_bytes_with(*two.page)) << "the rows 10..12 are held once";
  const auto alone = keep(3, {20});
  EXPECT_TRUE(alone.page->shares_bytes_with(*two.page));
  EXPECT_FALSE(alone.page->shares_bytes_with(*one.page));

  // A row replaced (a refresh): the pages kept from then on hold its new bytes, not the old.
  cache.put_products({make_product(10, 50, "Refreshed")});
  EXPECT_FALSE(cache.rendered(make_customer(1).id, {1, 10}, 100));
  EXPECT_TRUE(cache.rendered(make_customer(3).id, {1, 10}, 100)) << "a page not showing it stands";
}

// The shared bytes must be views into the body, one a product, in order: anything else keeps nothing.
TEST(read_cache, a_page_whose_product_bytes_are_not_views_of_its_body_is_not_kept) {
  read_cache cache(1 << 20);
  const auto c = make_customer(1);
  const auto page = make_page(2, 10);
  cache.put_favorites(c.id, {1, 2}, page, cache.generation(c.id));
  const std::string body = "[aaaa,bbbb]";
  const std::string_view v(body);
  const std::string elsewhere = "aaaa";
  const auto gen = cache.generation(c.id);
  const auto shown = shown_of(page);
  EXPECT_FALSE(cache.put_rendered(c.id, {1, 2}, gen, shown, 100, body, 2, {v.substr(1, 4)}))
      << "one view, two products";
  EXPECT_FALSE(cache.put_rendered(c.id, {1, 2}, gen, shown, 100, body, 2, {v.substr(6, 4), v.substr(1, 4)}))
      << "out of order";
  EXPECT_FALSE(cache.put_rendered(c.id, {1, 2}, gen, shown, 100, body, 2, {elsewhere, v.substr(6, 4)}))
      << "not in the body";
  EXPECT_FALSE(cache.put_rendered(c.id, {1, 2}, gen, shown, 100, body, 2, {v.substr(1, 4), v.substr(3, 4)}))
      << "overlapping";
  EXPECT_FALSE(cache.rendered(c.id, {1, 2}, 100));
  const auto kept = cache.put_rendered(c.id, {1, 2}, gen, shown, 100, body, 2, {v.substr(1, 4), v.substr(6, 4)});
  ASSERT_TRUE(kept);
  EXPECT_EQ(kept->body(), body);
  EXPECT_EQ(kept->own_size(), 3u);
}

TEST(read_cache, a_rendered_page_is_kept_only_as_read) {
  read_cache cache(1 << 20);
  const auto c = make_customer(1);
  const auto page = make_page(2, 10);
  cache.put_favorites(c.id, {1, 2}, page, cache.generation(c.id));
  // A write forgot the favorites while the page was being rendered.
  const auto gen = cache.generation(c.id);
  cache.forget_favorites(c.id);
  EXPECT_FALSE(cache.put_rendered(c.id, {1, 2}, gen, shown_of(page), 100, "old", 2));
  EXPECT_FALSE(cache.rendered(c.id, {1, 2}, 100));
  // Rendered from a row that is not the one held (refreshed meanwhile), or not held at all.
  cache.put_products({make_product(10, 60, "Newer")});
  EXPECT_FALSE(cache.put_rendered(c.id, {1, 2}, cache.generation(c.id), shown_of(page), 100, "old", 2));
  EXPECT_FALSE(cache.put_rendered(c.id, {1, 2}, cache.generation(c.id), {make_product(99, 5)}, 100, "x", 1));
  // An empty page shows no product and is kept.
  EXPECT_TRUE(cache.put_rendered(c.id, {5, 2}, cache.generation(c.id), {}, 100, "empty", 2));
  // Off: nothing kept.
  read_cache off(0);
  EXPECT_FALSE(off.put_rendered(c.id, {1, 2}, off.generation(c.id), {}, 100, "x", 0));
}
