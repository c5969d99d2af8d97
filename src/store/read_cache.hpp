// In-memory answers for the hot GETs (README, "Running several instances"): customer records,
// pages of a customer's favorites (product ids, favorited_at, total) and the products_cache rows
// those pages show. One LRU per shard with a byte budget (READ_CACHE_BYTES, split evenly over the
// shards, so the whole never holds more); 0 turns it off.
// An LRU: requests cycling through more customers than it holds are all misses (each entry is
// evicted just before its turn comes again), so the budget is meant to hold the working set
// (README, READ_CACHE_BYTES: about 3.8 KB charged for a first page of 10 favorites, rendered bytes included).
//
// Coherence is the caller's (read_through): every write forgets what it touched at once, the
// change feed tells about other instances' writes, and nothing is trusted while the feed is down.
// A value read from the database is stored only if no invalidation reached its shard while it
// was being read (generation()), so a read that raced a write never re-inserts the old answer.
//
// A page of favorites is also kept as the bytes GET .../favorites answered (rendered pages), with
// a strong ETag made of this instance's nonce and the entry's version (one version, one body), so
// an unchanged page is answered like a static file. It goes with the customer's favorites, and
// is not answered once a product it shows was replaced or forgotten here, or would be stale.
#pragma once
#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "core/types.hpp"
#include "util/lru_map.hpp"

namespace fav::store {

class read_cache {
 public:
  explicit read_cache(std::size_t budget_bytes);

  bool enabled() const { return per_shard_ > 0; }
  std::size_t budget() const { return per_shard_ * shards_.size(); }

  // Taken before reading the database for `customer_id`; handed back to put_*.
  std::uint64_t generation(const std::string& customer_id);

  std::optional<core::customer> customer(const std::string& id);
  void put_customer(const core::customer& c, std::uint64_t generation);

  // The page as the store would answer it (each favorite's `cached` product from the product
  // rows held here), or nullopt when the page or one of its products is not held.
  std::optional<core::page<core::favorite>> favorites(const std::string& customer_id, core::page_req p);
  void put_favorites(const std::string& customer_id, core::page_req p, const core::page<core::favorite>& page,
                     std::uint64_t generation);

  // One favorite as get_favorite answers it: nullopt when not held; a held nullopt when the
  // customer does not have it. A row of a held page answers too.
  std::optional<std::optional<core::favorite>> favorite(const std::string& customer_id, std::int64_t product_id);
  void put_favorite(const std::string& customer_id, std::int64_t product_id, const std::optional<core::favorite>& f,
                    std::uint64_t generation);

  // products_cache rows as written (or read) by this instance; an older copy (by fetched_at)
  // never replaces a newer one.
  void put_products(const std::vector<core::product>& products);

  // A page of favorites exactly as answered: the body, its strong ETag (quoted) and the page's
  // total (for the Link header). The body is held in pieces: the bytes a product row renders to
  // are the same on every page showing that row, so pages kept from the same held row share one
  // copy of them; the rest (favorited_at, separators, pagination) is the page's own. Answering
  // copies the pieces out in order, as a whole body was copied before; 10,000 first pages of the
  // benchmark's 20 products take about a third of the memory whole bodies took.
  class rendered_page {
   public:
    std::string etag;
    std::int64_t total = 0;

    std::size_t size() const { return size_; }
    // Appends the body (exactly the bytes given to put_rendered) to `out`.
    void append_body(std::string& out) const;
    std::string body() const {
      std::string out;
      append_body(out);
      return out;
    }
    // Of the body: the bytes this page holds alone (the rest it shares with pages kept from the
    // same product rows), and whether it holds some product's bytes in the same copy as `other`.
    std::size_t own_size() const { return own_.size(); }
    bool shares_bytes_with(const rendered_page& other) const;

   private:
    friend class read_cache;
    // own_[end of the previous piece's own bytes, own_end) then *shared; own_'s rest comes last.
    struct piece {
      std::shared_ptr<const std::string> shared;
      std::size_t own_end;
    };
    std::string own_;
    std::vector<piece> pieces_;
    std::size_t size_ = 0;
  };
  // The rendered page for (customer, p), or nullptr when not held, when `now` is past the time its
  // first product turns stale, or when a product it shows is no longer the row held here.
  std::shared_ptr<const rendered_page> rendered(const std::string& customer_id, core::page_req p, core::micros now);
  // Keeps `body` as the page for (customer, p) and returns it with its new ETag; nullptr (nothing
  // kept) when the customer's favorites changed since `generation`, or when `shown` (the products
  // the body shows, every item's) are not exactly the rows held here. `fresh_until`: the time the
  // first of them turns stale. `shown_bytes`, when given, are the bytes of `body` each of `shown`
  // renders to (views into `body`, in order, one per product), held once for every page showing
  // the same row; nothing is kept when they are not such views.
  std::shared_ptr<const rendered_page> put_rendered(const std::string& customer_id, core::page_req p,
                                                    std::uint64_t generation, const std::vector<core::product>& shown,
                                                    core::micros fresh_until, std::string_view body, std::int64_t total,
                                                    const std::vector<std::string_view>& shown_bytes = {});

  // A customer changed or was deleted: its record and its favorites go.
  void forget_customer(const std::string& id);
  void forget_favorites(const std::string& customer_id);
  // A cached products_cache row (pages showing it are then read again).
  void forget_product(std::int64_t id);
  void clear();

  // Bytes charged (approximate heap use of the entries and their bookkeeping) and entries held.
  std::size_t bytes() const;
  std::size_t entries() const;
  std::uint64_t hits() const { return hits_.load(std::memory_order_relaxed); }
  std::uint64_t misses() const { return misses_.load(std::memory_order_relaxed); }

  // Pages held per customer at most (the oldest goes first), and single favorites.
  static constexpr std::size_t pages_per_customer = 4;
  static constexpr std::size_t singles_per_customer = 8;

 private:
  struct fav_row {
    std::int64_t product_id;
    core::micros favorited_at;
    bool had_product;  // the row came with a products_cache row
  };
  struct fav_page {
    core::page_req req;
    std::int64_t total;
    std::vector<fav_row> rows;
  };
  struct fav_single {
    std::int64_t product_id;
    std::optional<fav_row> row;  // nullopt: not among the customer's favorites
  };
  // A rendered page and what it was rendered from: the version of each product row it shows.
  struct rendered_entry {
    rendered_page page;
    core::page_req req;
    core::micros fresh_until = 0;
    std::vector<std::pair<std::int64_t, std::uint64_t>> shows;  // product id, held row's version
  };
  struct fav_pages {
    std::vector<fav_page> pages;                                  // most recent last
    std::vector<fav_single> singles;                              // get_favorite's answers, most recent last
    std::vector<std::shared_ptr<const rendered_entry>> rendered;  // most recent last
  };
  // A products_cache row and its version here (every replacement gets a new one), and the bytes
  // it renders to on the pages kept from it while any such page is held (they own those bytes).
  struct held_product {
    core::product row;
    std::uint64_t version = 0;
    std::weak_ptr<const std::string> rendered;
  };
  using value = std::variant<core::customer, fav_pages, held_product>;
  struct shard {
    mutable std::mutex mu;
    util::lru_map<std::string, value> map;  // charged cost_of() bytes an entry
    std::uint64_t generation = 0;
  };

  static std::size_t cost_of(const std::string& key, const value& v);
  shard& shard_for(const std::string& key);
  // Inserts or replaces under the shard's lock (evicting the least recently used down to the budget).
  static void store_locked(shard& s, const std::string& key, value v);
  std::optional<core::product> product(std::int64_t id);

  // The version of a held product row: the one held now, or 0 when none is.
  std::uint64_t product_version(std::int64_t id);

  std::size_t per_shard_;
  std::array<shard, 16> shards_;
  const std::string nonce_;                 // this instance's, in every ETag it makes
  std::atomic<std::uint64_t> versions_{0};  // the last version given to an entry
  std::atomic<std::uint64_t> hits_{0};
  std::atomic<std::uint64_t> misses_{0};
};

}  // namespace fav::store
