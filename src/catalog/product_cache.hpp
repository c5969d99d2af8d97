// Stale-while-revalidate over products_cache and the catalog client (contract §4): fresh rows
// are served, stale ones served and refreshed in the background, expired or absent ones fetched;
// when the catalog fails any cached copy is served (stale-if-error). A favoriting goes through
// here whole (favorite()): its reads, the catalog when the row asks for it, and its one write.
#pragma once
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "catalog/admission.hpp"
#include "catalog/client.hpp"
#include "catalog/freshness.hpp"
#include "core/types.hpp"
#include "store/change_feed.hpp"
#include "store/store.hpp"
#include "util/config.hpp"
#include "util/lru_map.hpp"
#include "util/metrics.hpp"
#include "util/task_group.hpp"

namespace fav::catalog {

// What a favoriting came to (product_cache::favorite).
struct favoriting {
  enum class outcome { added, duplicate, no_customer, not_found, unavailable };
  outcome what = outcome::unavailable;
  std::optional<core::product> product;  // added: the product to show
  core::micros favorited_at = 0;         // added: as stored
  int retry_after_s = 1;                 // unavailable: the Retry-After hint
};

class product_cache {
 public:
  // `clock` gives "now" (injected so tests and the TTL rules never depend on the wall clock);
  // `log` receives warnings (empty → stderr). Everything referenced must outlive the drain of `bg`.
  // `feed`, when given, keeps the memory of fresh rows that spares a favoriting its read
  // coherent (see favorite()); without one there is no such memory.
  product_cache(store::store& db, client& c, const util::config& cfg, util::metrics& m, util::task_group& bg,
                net::any_io_executor ex, std::function<core::micros()> clock,
                std::function<void(std::string_view)> log = {}, store::change_feed* feed = nullptr);

  // POST /customers/{id}/favorites/{product_id}, in the fewest database round trips:
  // - the product fresh in this instance's memory (rows it read or wrote, forgotten when the
  //   change feed says another instance refreshed one, and trusted only while the feed is live):
  //   one round trip, the insert itself (a duplicate is the insert's answer);
  // - else "already a favorite?" and the products_cache row in one round trip (409 without
  //   asking the catalog), then get_for_favorite's rules on that row, then one write that stores
  //   a row fetched from the catalog with the favorite (a failed row write is logged and the
  //   favorite inserted alone, as get_for_favorite only logs it).
  // Every outcome of the write is the database's (contract §9). Throws store::unavailable.
  net::awaitable<favoriting> favorite(core::customer_id customer, std::int64_t id, log_context ctx);

  // For favoriting: fresh → as is; stale → refreshed before answering (the stale copy if the
  // catalog fails); expired/absent → fetched. A product the catalog said does not exist is
  // remembered for PRODUCT_CACHE_MISSING_TTL_MINUTES and answered without a call (§8); the
  // catalog part never waits past PRODUCT_CATALOG_REQUEST_DEADLINE_SECONDS. Catalog unreachable → any cached copy, else
  // unavailable (with a Retry-After hint). Catalog says gone → not_found when the cached row is
  // past the hard TTL or absent, else the cached copy. Throws store::unavailable if the database
  // cannot be read (a failed cache write is only logged). Catalog trouble is logged with `ctx`.
  // `customer` is who favorites: its lookups that need a catalog call share its
  // PRODUCT_CATALOG_MAX_CONCURRENCY_PER_CUSTOMER shares (§8 "Fair shares"; empty: no share).
  net::awaitable<fetch_result> get_for_favorite(std::int64_t id, log_context ctx, std::string customer = {});

  // For listing/reading favorites (rows already joined with the cache): the product to show for
  // each entry, in order. fresh → as is; stale → as is plus one background refresh per product;
  // expired/absent → fetched first (concurrently, bounded by the client's cap, within one request
  // deadline; products remembered as missing are not asked for); on failure the
  // cached copy of any age, or nullopt meaning "unavailable". Never throws because of the catalog;
  // its trouble is logged with `ctx`. `favs` is read across suspensions: the caller keeps it
  // alive by awaiting the call.
  net::awaitable<std::vector<std::optional<core::product>>> resolve(const std::vector<core::favorite>& favs,
                                                                    log_context ctx = {});

  // One GET /products, upserting every product it lists (cached or not) with fetched_at = now.
  // False when the catalog or the database failed; the per-id path keeps working either way.
  net::awaitable<bool> warm_all();

  // Spawns a loop in `bg`: warm_all() now, then every cfg.catalog_warm_interval (0 → only now),
  // a failed one again after at most a minute. bg.stop() ends its wait at once; a round under way
  // is finished.
  void start_warmup();

 private:
  struct refresh_set {
    std::mutex mu;
    std::unordered_set<std::int64_t> ids;
  };

  // get_for_favorite's rules on `cached`, the row just read; `save` set when the answer was
  // fetched from the catalog now and is to be stored.
  struct decision {
    fetch_result r;
    bool save = false;
  };
  net::awaitable<decision> decide_for_favorite(std::int64_t id, const std::optional<core::product>& cached,
                                               log_context ctx, std::string customer);

  // Rows known fresh on this instance, for favorite(). Bounded; coherent through the feed.
  class fresh_rows {
   public:
    explicit fresh_rows(std::size_t max_entries) : rows_(max_entries) {}
    // Taken before a row is read; a put with an older generation is dropped (a refresh raced it).
    std::uint64_t generation() const;
    void put(const core::product& p, std::uint64_t generation);
    std::optional<core::product> get(std::int64_t id);
    // A row this instance has just written (the change feed's in-process notice).
    void written(const core::product& p);
    void forget(std::int64_t id);
    void clear();

   private:
    mutable std::mutex mu_;
    util::lru_map<std::int64_t, core::product> rows_;
    std::uint64_t generation_ = 0;
  };
  // A row of fresh_ that is still fresh now, while the feed is live.
  std::optional<core::product> fresh_in_memory(std::int64_t id, core::micros now);

  static fetch_result found(const core::product& p);
  freshness classify_and_count(const core::product& p, core::micros now);
  void refresh_in_background(std::int64_t id);
  net::awaitable<void> background_refresh(std::int64_t id, std::shared_ptr<refresh_set> set);
  // `slot_deadlines[j]` bounds how long `ids[j]` may queue for a catalog slot (see resolve()).
  net::awaitable<std::vector<fetch_result>> fetch_many(std::vector<std::int64_t> ids,
                                                       std::vector<steady_clock::time_point> slot_deadlines,
                                                       const log_context& ctx, steady_clock::time_point deadline);
  steady_clock::time_point request_deadline() const;
  net::awaitable<void> warm_loop();
  // Writes freshly fetched rows; a database failure is logged, not thrown (the answer stands).
  net::awaitable<void> save(std::vector<core::product> rows);
  void warn(std::string_view message) const;

  store::store& db_;
  client& client_;
  const util::config& cfg_;
  util::metrics& metrics_;
  util::task_group& bg_;
  net::any_io_executor ex_;
  std::function<core::micros()> clock_;
  std::function<void(std::string_view)> log_;
  // Products with a background refresh in flight; shared so a late frame never outlives it.
  std::shared_ptr<refresh_set> refreshing_ = std::make_shared<refresh_set>();
  // Products the catalog said do not exist (bounded; oldest dropped first).
  missing_products missing_;
  store::change_feed* feed_;
  // Shared with the feed's handler, which may outlive this cache (a feed never unsubscribes).
  std::shared_ptr<fresh_rows> fresh_ = std::make_shared<fresh_rows>(4096);
};

}  // namespace fav::catalog
