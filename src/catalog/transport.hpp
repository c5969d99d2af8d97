// The catalog's HTTP transport: kept-alive HTTP/1.1 connections (plain or TLS) to one base URL,
// a small DNS cache, connect with a bounded lookup, and one GET exchange under a deadline. It
// knows nothing of products, retries or verdicts (client.cpp does). Internal to src/catalog.
#pragma once
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/system/error_code.hpp>
#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>

namespace fav::catalog::detail {

namespace net = boost::asio;
using clock_type = std::chrono::steady_clock;

// What one HTTP attempt produced: a transport error, or a complete response.
struct http_outcome {
  boost::system::error_code ec;
  unsigned status = 0;
  std::string body;
  std::optional<double> retry_after;  // the response's Retry-After, in seconds
  std::string error_text;             // when the attempt threw: what it said
  bool reusable = false;              // the connection went back to the pool
};

// TLS protocol and certificate failures, and an oversized body or framing (header fields,
// chunk-size lines, trailers), do not heal in seconds: not worth a retry.
bool permanent(const boost::system::error_code& ec);

class transport {
 public:
  // Throws std::invalid_argument when base_url is not an http:// or https:// URL with a host.
  // `max_idle` bounds the pooled idle connections.
  transport(net::any_io_executor ex, const std::string& base_url, std::size_t max_idle);
  ~transport();
  transport(const transport&) = delete;
  transport& operator=(const transport&) = delete;

  // The base URL's path prefix without trailing '/', e.g. "" or "/api/v1".
  const std::string& prefix() const;

  // GET `target` on a pooled (or new) connection, everything (lookup, connect, TLS, write,
  // read) done by `deadline`; a body over `limit` bytes, a header block over 8 KiB, or framing
  // (header, chunk-size lines, trailers) over 8 KiB + `limit` is an error. A pooled connection the
  // server had closed is replaced once within the same call. `traceparent`, when not empty, is
  // sent as that header (W3C trace context, contract §10). Never throws.
  net::awaitable<http_outcome> get(std::string target, clock_type::time_point deadline, std::size_t limit,
                                   std::string traceparent = {});

  // Closes the idle connections; later connections are not pooled.
  void shutdown();

 private:
  struct state;
  std::shared_ptr<state> s_;
};

}  // namespace fav::catalog::detail
