// The product catalog client (contract §4): async HTTP/1.1 over http:// or https:// with kept-alive
// pooled connections, a per-attempt timeout, retries with backoff, a concurrency cap and
// single-flight per product id. Beast and OpenSSL stay in client.cpp (this header is in app.hpp).
#pragma once
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
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

enum class fetch_status { found, not_found, unavailable };

struct fetch_result {
  fetch_status status = fetch_status::unavailable;
  std::optional<core::product> product;  // set when found; fetched_at is left 0 for the caller
  // When unavailable: whole seconds ≥ 1 to suggest in a Retry-After header (the catalog's own
  // Retry-After when it sent one, else the backoff cap).
  double retry_after_s = 0;
  // What went wrong (a failed call, a body that is not a product), for the caller to log with
  // its request's correlation id; empty when there is nothing to say.
  std::string note;
};

struct client_options {
  std::string base_url;      // http(s)://host[:port][/prefix]
  double timeout_s = 5.0;    // one attempt: resolve + connect + TLS + write + read
  int max_retries = 3;       // extra attempts after the first
  int max_concurrency = 10;  // attempts in flight at once, over all callers
  double backoff_base_s = 1.0;
  double backoff_cap_s = 4.0;
  // Where warnings go (a non-product body, a final failure); empty → one line on stderr.
  std::function<void(std::string_view)> log_warning = {};
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
  // Never throws.
  net::awaitable<fetch_result> fetch_product(std::int64_t id);

  // GET {base}/products: the whole catalog (for warm-up); nullopt on any failure. Never throws.
  net::awaitable<std::optional<std::vector<core::product>>> fetch_all();

  // Closes idle connections and makes every later or waiting call answer unavailable at once.
  void shutdown();

 private:
  struct impl;
  // Shared with running coroutines, so a frame destroyed late never touches a dead client.
  std::shared_ptr<impl> impl_;
};

}  // namespace fav::catalog
