// The HTTP/1.1 server: accept loop, one coroutine per connection (body/header limits, timeouts,
// keep-alive), and the middleware every response passes through (correlation id, CORS, gzip,
// access log). It knows nothing about favorites: routing happens in the dispatcher it is given.
#pragma once
#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/errc.hpp"
#include "http/message.hpp"

namespace fav::http {

namespace net = boost::asio;

struct server_options {
  std::string host = "0.0.0.0";
  unsigned short port = 8080;
  std::int64_t body_limit = 64 * 1024;
  std::uint32_t header_limit = 8 * 1024;
  double request_timeout_s = 30;
  double idle_timeout_s = 60;
  std::vector<std::string> cors_origins{"*"};
};

// Routes and handles a request; never throws (the one `try` lives inside it).
using dispatcher = std::function<net::awaitable<response>(request&)>;
// Renders an error produced by the server itself (413, 431, 400) as the app renders errors.
using error_renderer = std::function<response(core::errc)>;
// Called once per finished request for metrics.
using request_observer = std::function<void(const request&, int status, double seconds)>;

class server {
 public:
  server(net::io_context& ioc, server_options opts, dispatcher d, error_renderer e, request_observer o);
  ~server();
  // Binds and listens; returns the port (useful with port 0).
  unsigned short listen();
  // Starts accepting on the io_context.
  void start();
  // Stops accepting; every connection closes after its current or next request, which is
  // answered with `Connection: close` (a load balancer learns it without a failed request).
  // Connections that have not delivered a complete request are closed at once, after the grace
  // when idle between requests (close_idle()). Safe from any thread.
  void begin_shutdown();
  // Closes the connections that are idle between requests (after begin_shutdown's grace).
  void close_idle();
  int active_requests() const { return active_requests_.load(); }
  int open_connections() const { return open_connections_.load(); }

 private:
  struct conn;
  net::awaitable<void> accept_loop();
  net::awaitable<void> session(net::ip::tcp::socket sock);

  net::io_context& ioc_;
  server_options opts_;
  dispatcher dispatch_;
  error_renderer render_error_;
  request_observer observe_;
  net::ip::tcp::acceptor acceptor_;
  std::atomic<bool> draining_{false};
  std::atomic<int> active_requests_{0};
  std::atomic<int> open_connections_{0};
  std::mutex conns_mu_;
  std::vector<std::weak_ptr<conn>> conns_;
};

}  // namespace fav::http
