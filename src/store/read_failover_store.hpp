// Reads through a failover (contract §11): while the primary cannot be reached, the reads of
// GET /customers/{id}, GET /customers/{id}/favorites and GET /customers/{id}/favorites/{product_id}
// and the token checks in front of them are answered by a second store on DATABASE_READ_URL
// (standbys, which may lag the primary by their replay lag).
// Only a call the primary answered store::unavailable is asked again of the standbys: while the
// primary answers, every read is the primary's (read-your-writes), and a write never goes there.
// Outermost decorator: the read cache inside it is neither filled nor consulted by these reads.
#pragma once
#include <atomic>
#include <memory>

#include "store/forwarding_store.hpp"

namespace fav::store {

class read_failover_store final : public forwarding_store {
 public:
  // `primary`: the whole store (migrations, writes, every other read); `standby`: a store on the
  // read URL, never migrated nor written to.
  read_failover_store(std::unique_ptr<store> primary, std::unique_ptr<store> standby);

  void close() override;

  net::awaitable<std::optional<core::customer>> find_customer(core::customer_id id) override;
  net::awaitable<std::optional<core::customer>> find_customer_checked(token_check* check,
                                                                      core::customer_id id) override;
  net::awaitable<core::page<core::favorite>> list_favorites(core::customer_id customer_id, core::page_req p) override;
  net::awaitable<core::page<core::favorite>> list_favorites_checked(token_check* check, core::customer_id customer_id,
                                                                    core::page_req p) override;
  net::awaitable<std::optional<core::favorite>> get_favorite(core::customer_id customer_id,
                                                             std::int64_t product_id) override;
  net::awaitable<auth_state> check_token(core::customer_id customer_id, std::string jti,
                                         std::string sign_in_key) override;

  // Calls the standbys answered after the primary failed (tests).
  std::uint64_t standby_reads() const { return standby_reads_.load(std::memory_order_relaxed); }

 private:
  // `call(s)` on the primary; when that throws unavailable, on the standbys (whose own failure
  // then propagates: 503 as before).
  template <class T, class F>
  net::awaitable<T> either(F call);

  std::unique_ptr<store> standby_;
  std::atomic<std::uint64_t> standby_reads_{0};
};

}  // namespace fav::store
