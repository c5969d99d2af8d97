// The product catalog client (contract §4, §8 "Catalog admission"): single-flight per product id,
// a concurrency cap, retries with backoff, one deadline per caller; the HTTP transport (pooled
// kept-alive connections, DNS cache) is in transport.cpp. Beast and OpenSSL stay out of this
// header (it is in app.hpp).
#pragma once
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/types.hpp"
#include "util/config.hpp"
#include "util/metrics.hpp"

namespace fav::catalog {

namespace net = boost::asio;
using steady_clock = std::chrono::steady_clock;

enum class fetch_status { found, not_found, unavailable };

// The one catalog result, from the client up to the handler.
struct fetch_result {
  fetch_status status = fetch_status::unavailable;
  std::optional<core::product> product;  // set when found
  // When unavailable: whole seconds ≥ 1 for the Retry-After header (the catalog's own
  // Retry-After when it sent one, else the backoff cap). Computed once, in the client.
  int retry_after_s = 1;
};

// Who asked, so the catalog logs its trouble with the request's ids. Empty outside requests.
struct log_context {
  std::string correlation_id;
  std::string trace_id;            // W3C trace id of the request (empty outside requests): catalog calls carry it
  std::string trace_flags = "00";  // the request's trace flags, passed on with the trace id
};

// Receives the catalog's warnings (a failed call, a body that is not a product).
using log_sink = std::function<void(std::string_view message, const log_context& ctx)>;

struct client_options {
  std::string base_url;                                      // http(s)://host[:port][/prefix]
  steady_clock::duration timeout = std::chrono::seconds(5);  // one attempt: resolve + connect + TLS + write + read
  int max_retries = 3;                                       // extra attempts after the first
  int max_concurrency = 10;                                  // attempts in flight at once, over all callers
  int max_concurrency_per_customer = 2;                      // lookups one customer leads at once (§8 "Fair shares")
  double backoff_base_s = 1.0;
  double backoff_cap_s = 4.0;
  std::size_t max_flights = 10000;  // distinct products being looked up at once; past it → unavailable
  int breaker_failures = 5;         // consecutive failed lookups that open the breaker (0: off)
  double breaker_open_s = 30;       // how long it stays open before one probe decides
  // A product found by a fetch is shared with calls for it that arrive up to `linger` after
  // that fetch landed (0: none). It closes single-flight's window: a caller that read the
  // product cache just before the first answer was saved and asks just after its flight landed.
  steady_clock::duration linger{};
  log_sink log = {};  // empty → one line on stderr
};

// The options the configuration asks for (contract §6 names).
client_options options_from(const util::config& cfg);

class client {
 public:
  // `ex` is the io_context's executor (it may be run by several threads). Throws
  // std::invalid_argument when base_url is not an http:// or https:// URL with a host.
  client(net::any_io_executor ex, client_options opts, util::metrics& m);
  ~client();
  client(const client&) = delete;
  client& operator=(const client&) = delete;

  // GET {base}/products/{id}. found; not_found for 404, an empty or `null` body, or a body that
  // is not a product (logged); unavailable after timeouts/resets/429/5xx outlast the retries, or
  // at once for other statuses and TLS failures. Concurrent calls for one id share one fetch.
  // Nothing (queueing for a slot, attempts, backoff, joining another caller's fetch) waits past
  // `deadline`: the call answers unavailable then. While the circuit breaker is open the call
  // answers unavailable at once, with the time left as Retry-After. Never throws.
  // `share_recent`: a product found less than `linger` ago is answered without a call. Only
  // favoriting asks for it (its cache read may have raced the first answer's save); a refresh
  // of a row the cache holds as stale or expired always asks the catalog.
  // `slot_deadline` bounds the wait for a free connection slot before the first attempt (a
  // caller holding a stale copy gives up early when the catalog is saturated, §8).
  // `customer`, when not empty, is who the lookup is for (§8 "Fair shares"): a lookup that
  // needs a new call waits (within `deadline`) for one of that customer's
  // `max_concurrency_per_customer` shares, so one customer's flood never holds every slot. A
  // lookup cut by `deadline` (queueing, or an attempt the catalog had not yet answered) is not a
  // failure for the breaker; only the catalog's own errors and timeouts are.
  net::awaitable<fetch_result> fetch_product(std::int64_t id, log_context ctx = {},
                                             steady_clock::time_point deadline = steady_clock::time_point::max(),
                                             steady_clock::time_point slot_deadline = steady_clock::time_point::max(),
                                             bool share_recent = false, std::string customer = {});

  // GET {base}/products: the whole catalog (for warm-up); nullopt on any failure. Never throws.
  net::awaitable<std::optional<std::vector<core::product>>> fetch_all();

  // True while the breaker refuses lookups (for tests and metrics).
  bool breaker_open() const;

  // Closes idle connections and makes every later or waiting call answer unavailable at once.
  void shutdown();

 private:
  struct impl;
  // Shared with running coroutines, so a frame destroyed late never touches a dead client.
  std::shared_ptr<impl> impl_;
};

}  // namespace fav::catalog
