// The HTTP/1.1 server: accept loop, one coroutine per connection (body/header limits, timeouts,
// keep-alive). Every response then passes through http/middleware.hpp. It knows nothing about
// favorites: routing happens in the request handler it is given (the app's api_router), error
// bodies in the renderer.
#pragma once
#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/system/error_code.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "http/message.hpp"
#include "http/rate_limit.hpp"
#include "util/cidr.hpp"
#include "util/task_group.hpp"

namespace fav::http {

namespace net = boost::asio;

// Splits an origin-form target into the path and the percent-decoded query pairs; false when it
// is not origin-form (the server answers 400). Public for the fuzz target.
bool parse_target(std::string_view target, request& req);

struct server_options {
  std::string host = "0.0.0.0";
  unsigned short port = 8080;
  std::int64_t body_limit = 64 * 1024;
  std::uint32_t header_limit = 8 * 1024;
  std::chrono::steady_clock::duration header_timeout = std::chrono::seconds(10);   // headers, from the first byte
  std::chrono::steady_clock::duration request_timeout = std::chrono::seconds(30);  // the whole request, likewise
  std::chrono::steady_clock::duration idle_timeout = std::chrono::seconds(60);
  int max_connections = 10000;  // past it a new connection is closed at once
  // Per client key, peers in trusted_proxies exempt; past it that client's new connection is closed.
  int max_connections_per_client = 256;
  std::vector<std::string> cors_origins{"*"};
  // Token bucket per client address (burst 0: off); exempt paths take no token.
  double rate_per_second = 0;
  double rate_burst = 0;
  std::vector<util::cidr> trusted_proxies;
  std::vector<std::string> rate_limit_exempt;
};

// Routes and handles a request; never throws (the one `try` lives inside it).
using request_handler = std::function<net::awaitable<response>(request&)>;
// Renders a failure of the server's own as the app renders errors (it picks code and status).
using error_renderer = std::function<response(failure)>;
// Called once per finished request for metrics.
using request_observer = std::function<void(const request&, int status, double seconds)>;

class server {
 public:
  server(net::io_context& ioc, server_options opts, request_handler h, error_renderer e, request_observer o);
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
  // One task per open connection: the drain awaits it empty.
  util::task_group& sessions() { return sessions_; }
  const server_options& options() const { return opts_; }

 private:
  struct conn;
  struct incoming;
  net::awaitable<void> accept_loop();
  // `key`: the peer's client key as counted in per_client_, or empty when not counted.
  // Per request: read_request, serve, write_response; then keep alive, close, or linger.
  net::awaitable<void> session(net::ip::tcp::socket sock, net::ip::address peer, std::string key);
  // idle_end: no request began (idle timeout, peer closed, close_idle); ended: the connection
  // ended mid-request with nothing to answer; ready: `in` holds a request or a refusal to answer.
  enum class read_status { idle_end, ended, ready };
  // Waits for a request and reads it under the header and request deadlines. A refusal (408,
  // 413, 431, 400, 501) is left in `in` to be answered.
  net::awaitable<read_status> read_request(const std::shared_ptr<conn>& c, incoming& in);
  // The header, then the rest of the request (after "100 Continue" when asked for); `framing`
  // counts the framing bytes read (§8 "Request bytes"). Each runs under read_request's deadline.
  net::awaitable<boost::system::error_code> read_header(conn& c, incoming& in, std::size_t& framing);
  net::awaitable<boost::system::error_code> read_body(conn& c, incoming& in, std::size_t& framing);
  // Fills `req` and `res`: the refusal, or the rate limit and the request handler's answer; returns
  // whether the connection closes after this response.
  net::awaitable<bool> serve(incoming& in, const net::ip::address& peer, request& req, response& res);
  // Runs the middleware over `res` and writes it (the header alone for HEAD).
  net::awaitable<boost::system::error_code> write_response(conn& c, const request& req, response& res,
                                                           bool close_after);
  static net::awaitable<void> linger_close(conn& c);
  // A token from the bucket of `req`'s client address; nullopt when limits are off or the path is exempt.
  std::optional<rate_decision> take_token(const request& req);
  // Logs, at most once an hour per client, that an untrusted peer sent X-Forwarded-For.
  void note_untrusted_forwarding(const net::ip::address& peer);

  net::io_context& ioc_;
  server_options opts_;
  request_handler handle_;
  error_renderer render_error_;
  request_observer observe_;
  std::optional<rate_limiter> limiter_;
  client_counts per_client_;
  rate_limiter forwarding_notes_;  // one token an hour per client key: the warning's budget
  net::ip::tcp::acceptor acceptor_;
  std::atomic<bool> draining_{false};
  // Set by close_idle(): from then on a connection back at its idle wait closes instead of
  // waiting (before it, a kept-alive connection stays open for the drain's grace).
  std::atomic<bool> idle_closed_{false};
  std::atomic<int> active_requests_{0};
  util::task_group sessions_;
  std::mutex conns_mu_;
  std::vector<std::weak_ptr<conn>> conns_;
};

}  // namespace fav::http
