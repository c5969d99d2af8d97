// See server.hpp. The session loop follows Beast's awaitable servers: a fresh parser per
// request, limits, deadlines, keep-alive, and a lingering close after errors so the client
// reads our answer instead of a reset. Contract §8 lives here too: the connection caps (global
// and per client) and the accept back-off, the header/request deadlines (408), framing
// (501/400), request bytes (a bounded read buffer, 431/413) and rate limits (429).
#include "http/server.hpp"

#include <array>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/serializer.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/url/parse.hpp>
#include <chrono>
#include <memory_resource>

#include "http/bounded_read.hpp"
#include "http/middleware.hpp"
#include "util/deadline.hpp"
#include "util/log.hpp"

namespace fav::http {

namespace beast = boost::beast;
using tcp = net::ip::tcp;
using net::use_awaitable;
using steady = std::chrono::steady_clock;

// One client connection.
struct server::conn {
  beast::tcp_stream stream;
  beast::flat_buffer buffer;  // kept across requests: it may hold the next one's first bytes
  std::any auth_memo;         // request::connection_auth: the auth policy's per-connection state
  // The header fields of the request being served and of its response: every request on the
  // connection reuses this space (released before the next one), so a typical exchange's fields
  // take no allocation; bigger ones spill to the heap for that request only.
  std::array<std::byte, 3072> fields_space;
  std::pmr::monotonic_buffer_resource fields_arena{fields_space.data(), fields_space.size()};
  std::atomic<bool> idle{true};  // no complete request yet: waiting for or reading one

  conn(tcp::socket s, std::size_t buffer_limit) : stream(std::move(s)), buffer(buffer_limit) {}
};

bool parse_target(std::string_view target, request& req) {
  auto u = boost::urls::parse_origin_form(target);
  if (!u) return false;
  req.path = u->encoded_path();
  for (auto p : u->params()) req.query.emplace_back(p.key, p.has_value ? p.value : std::string{});
  return true;
}

namespace {

// A condition logged at most once per `period`, with how often it happened in between.
struct log_budget {
  steady::duration period = std::chrono::seconds(10);
  steady::time_point next{};
  long suppressed = 0;
  // The number of occurrences to report (≥ 1) when a line is due now; 0 when it is not.
  long due() {
    ++suppressed;
    auto now = steady::now();
    if (now < next) return 0;
    next = now + period;
    return std::exchange(suppressed, 0);
  }
};

// Accept errors that mean "out of descriptors or memory": the connection stays queued in the
// kernel, so accepting again at once would spin.
bool resource_exhausted(const boost::system::error_code& ec) {
  return ec == net::error::no_descriptors || ec == boost::system::errc::too_many_files_open_in_system ||
         ec == net::error::no_buffer_space || ec == net::error::no_memory;
}

}  // namespace

server::server(net::io_context& ioc, server_options opts, request_handler h, error_renderer e, request_observer o)
    : ioc_(ioc),
      opts_(std::move(opts)),
      handle_(std::move(h)),
      render_error_(std::move(e)),
      observe_(std::move(o)),
      per_client_(static_cast<std::size_t>(std::max(0, opts_.max_connections_per_client))),
      forwarding_notes_(1.0 / 3600, 1, 1024),
      acceptor_(net::make_strand(ioc)),
      sessions_(ioc.get_executor()) {
  if (opts_.rate_burst >= 1 && opts_.rate_per_second > 0) limiter_.emplace(opts_.rate_per_second, opts_.rate_burst);
}

server::~server() = default;

unsigned short server::listen() {
  tcp::endpoint ep(net::ip::make_address(opts_.host), opts_.port);
  acceptor_.open(ep.protocol());
  acceptor_.set_option(net::socket_base::reuse_address(true));
  acceptor_.bind(ep);
  acceptor_.listen(net::socket_base::max_listen_connections);
  return acceptor_.local_endpoint().port();
}

void server::start() {
  net::co_spawn(acceptor_.get_executor(), accept_loop(), net::detached);
}

net::awaitable<void> server::accept_loop() {
  net::steady_timer backoff(acceptor_.get_executor());
  auto pause = std::chrono::milliseconds(0);
  log_budget failed_log, full_log, client_full_log;
  for (;;) {
    boost::system::error_code ec;
    tcp::socket sock(net::make_strand(ioc_));
    co_await acceptor_.async_accept(sock, net::redirect_error(use_awaitable, ec));
    if (ec) {
      if (ec == net::error::operation_aborted || !acceptor_.is_open()) co_return;
      if (ec == net::error::connection_aborted) continue;  // the client gave up while queued
      // Out of descriptors (or anything else that would fail again at once): wait, growing
      // 50 ms → 1 s, while the open connections go on being served; then try again.
      pause = resource_exhausted(ec)
                  ? std::clamp(pause * 2, std::chrono::milliseconds(50), std::chrono::milliseconds(1000))
                  : std::chrono::milliseconds(10);
      if (auto n = failed_log.due())
        util::log(util::log_level::warning, "accept failed; backing off",
                  {{"error", ec.message()},
                   {"times", static_cast<std::int64_t>(n)},
                   {"backoff_ms", static_cast<std::int64_t>(pause.count())},
                   {"connections", static_cast<std::int64_t>(sessions_.active())}});
      backoff.expires_after(pause);
      co_await backoff.async_wait(net::redirect_error(use_awaitable, ec));
      continue;
    }
    pause = std::chrono::milliseconds(0);
    if (sessions_.active() >= static_cast<std::size_t>(std::max(0, opts_.max_connections))) {
      sock.close(ec);  // past the cap: closed at once
      if (auto n = full_log.due())
        util::log(util::log_level::warning, "connection limit reached; closing new connections",
                  {{"times", static_cast<std::int64_t>(n)}, {"max_connections", opts_.max_connections}});
      continue;
    }
    auto peer = sock.remote_endpoint(ec).address();
    if (ec) {
      sock.close(ec);  // gone before we looked at it
      continue;
    }
    peer = util::unmapped(peer);
    // Fair shares (§8): one client holds at most its cap of the slots; a trusted proxy carries
    // many clients, so it is not counted.
    std::string key;
    if (!is_trusted(peer, opts_.trusted_proxies)) {
      key = client_key(peer);
      if (!per_client_.try_add(key)) {
        sock.close(ec);
        if (auto n = client_full_log.due())
          util::log(util::log_level::warning, "per-client connection limit reached; closing its new connections",
                    {{"client", key},
                     {"times", static_cast<std::int64_t>(n)},
                     {"max_connections_per_client", opts_.max_connections_per_client}});
        continue;
      }
    }
    sock.set_option(tcp::no_delay(true), ec);
    auto ex = sock.get_executor();  // the connection's strand
    sessions_.spawn(ex, session(std::move(sock), peer, std::move(key)), [](std::exception_ptr ep) {
      try {
        std::rethrow_exception(ep);
      } catch (const std::exception& e) {
        util::log(util::log_level::error, "session failed", {{"error", e.what()}});
      }
    });
  }
}

void server::begin_shutdown() {
  draining_ = true;
  net::dispatch(acceptor_.get_executor(), [this] {
    boost::system::error_code ec;
    acceptor_.close(ec);
  });
}

void server::close_idle() {
  idle_closed_ = true;  // before the dispatches below: a session reaching its idle wait later sees it
  std::lock_guard lk(conns_mu_);
  for (auto& w : conns_) {
    if (auto c = w.lock()) {
      // Runs on the connection's strand, so it never races the session's own socket use.
      net::dispatch(c->stream.get_executor(), [c] {
        boost::system::error_code ignored;  // the socket may already be closed
        if (c->idle) c->stream.socket().cancel(ignored);
      });
    }
  }
}

std::optional<rate_decision> server::take_token(const request& req) {
  if (!limiter_) return std::nullopt;
  for (auto& p : opts_.rate_limit_exempt)
    if (req.path == p) return std::nullopt;
  auto now = std::chrono::duration<double>(steady::now().time_since_epoch()).count();
  return limiter_->take(req.client_address(), now);
}

void server::note_untrusted_forwarding(const net::ip::address& peer) {
  auto now = std::chrono::duration<double>(steady::now().time_since_epoch()).count();
  if (forwarding_notes_.take(client_key(peer), now).allowed)
    util::log(util::log_level::warning,
              "X-Forwarded-For from a peer not in TRUSTED_PROXIES: ignored, so per-client limits count that peer",
              {{"peer", peer.to_string()}});
}

// What reading one request left: its parser (header and body as far as they came) and, when the
// server refuses it before serving, why.
struct server::incoming {
  explicit incoming(fields_allocator a) : parser(std::piecewise_construct, std::make_tuple(), std::make_tuple(a)) {}
  bhttp::request_parser<bhttp::string_body, fields_allocator> parser;
  std::optional<failure> refused;
  raw_request empty;  // stands for the request when no header was parsed
};

// After an error answer: stop sending, then read and discard what the client still sends
// (bounded) so it sees our response rather than a connection reset.
net::awaitable<void> server::linger_close(conn& c) {
  boost::system::error_code ec;
  auto& stream = c.stream;
  stream.socket().shutdown(tcp::socket::shutdown_send, ec);
  stream.expires_after(std::chrono::seconds(2));
  std::size_t drained = 0;
  char sink[16384];
  while (drained < 16 * 1024 * 1024) {
    auto n = co_await stream.async_read_some(net::buffer(sink), net::redirect_error(use_awaitable, ec));
    if (ec) break;
    drained += n;
  }
  stream.socket().close(ec);
}

net::awaitable<boost::system::error_code> server::read_header(conn& c, incoming& in, std::size_t& framing) {
  boost::system::error_code ec;
  framing = co_await bhttp::async_read_header(c.stream, c.buffer, in.parser, net::redirect_error(use_awaitable, ec));
  co_return ec;
}

net::awaitable<boost::system::error_code> server::read_body(conn& c, incoming& in, std::size_t& framing) {
  boost::system::error_code ec;
  auto& parser = in.parser;
  // curl and others wait for "100 Continue" before sending a body.
  auto expect = parser.get().find(bhttp::field::expect);
  if (expect != parser.get().end() && beast::iequals(expect->value(), "100-continue")) {
    bhttp::response<bhttp::empty_body> cont{status::continue_, 11};
    co_await bhttp::async_write(c.stream, cont, net::redirect_error(use_awaitable, ec));
    if (ec) co_return ec;
  }
  co_return co_await read_bounded(c.stream, c.buffer, parser, opts_.header_limit, framing);
}

net::awaitable<server::read_status> server::read_request(const std::shared_ptr<conn>& c, incoming& in) {
  auto& stream = c->stream;
  auto& buffer = c->buffer;
  // Draining does not close a kept-alive connection here: a request the balancer sends on it
  // during the grace is still answered (with `Connection: close`, contract §9). Breaking on
  // `draining_` raced the answer just written before SIGTERM, resetting the next request.
  // close_idle() ends the grace; on the strand, so it cannot slip between check and wait.
  if (idle_closed_) co_return read_status::idle_end;
  // Idle keep-alive wait: no request bytes yet.
  if (buffer.size() == 0) {
    c->idle = true;
    boost::system::error_code ec;
    stream.expires_after(opts_.idle_timeout);
    auto n = co_await stream.async_read_some(buffer.prepare(8192), net::redirect_error(use_awaitable, ec));
    if (ec) co_return read_status::idle_end;  // closed, timed out, or cancelled by shutdown
    buffer.commit(n);
  }
  // Deadlines from the request's first byte: headers, then the whole request (§8). A deadline
  // cancels the read, not the socket, so the session can still answer 408.
  const auto first_byte = steady::now();
  const auto request_deadline = first_byte + opts_.request_timeout;
  const auto header_deadline = std::min(first_byte + opts_.header_timeout, request_deadline);
  stream.expires_never();

  auto& parser = in.parser;
  parser.body_limit(static_cast<std::uint64_t>(opts_.body_limit));
  parser.header_limit(opts_.header_limit);
  std::size_t framing = 0;
  // Named, not temporaries inside co_await (CONTRIBUTING.md, "Compiler notes").
  auto header = read_header(*c, in, framing);
  std::optional<boost::system::error_code> got = co_await util::with_deadline(std::move(header), header_deadline);
  if (got && !*got) in.refused = framing_failure(parser.get());
  if (got && !*got && !in.refused && !parser.is_done()) {
    auto body = read_body(*c, in, framing);
    got = co_await util::with_deadline(std::move(body), request_deadline);
  }
  if (!got) {
    in.refused = failure::request_timeout;
  } else if (const auto ec = *got) {
    if (ec == bhttp::error::end_of_stream || ec == beast::error::timeout || ec == net::error::eof ||
        ec == net::error::connection_reset || ec == net::error::operation_aborted)
      co_return read_status::ended;
    if (ec == bhttp::error::body_limit)
      in.refused = failure::too_large;
    else if (ec == bhttp::error::header_limit || ec == bhttp::error::buffer_overflow)
      in.refused = failure::headers_too_large;  // framing past the header limit, or a line past the buffer
    else
      in.refused = failure::bad_request;
  }
  co_return read_status::ready;
}

net::awaitable<bool> server::serve(incoming& in, const net::ip::address& peer, request& req, response& res) {
  bool close_after = false;
  req.raw = in.parser.is_header_done() ? &in.parser.get() : &in.empty;
  std::optional<rate_decision> limit;
  if (in.refused) {
    // The server's own refusals close the connection: what follows cannot be trusted.
    res = render_error_(*in.refused);
    close_after = true;
  } else if ((req.raw->version() >= 11 && req.raw->find(bhttp::field::host) == req.raw->end()) ||
             !parse_target(req.raw->target(), req)) {
    // RFC 9112 §3.2: an HTTP/1.1 request without Host is a bad request.
    res = render_error_(failure::bad_request);
    close_after = !req.raw->keep_alive() || draining_;
  } else {
    req.correlation_id = correlation_id(*req.raw);
    // Contract §10: the request's trace, continued from a valid `traceparent` or started here.
    req.trace = continue_or_start(req.header("traceparent"));
    std::vector<std::string_view> forwarded;
    for (auto [it, end] = req.raw->equal_range("x-forwarded-for"); it != end; ++it) forwarded.push_back(it->value());
    // §8: a balancer left out of TRUSTED_PROXIES makes every client one; say so (rarely).
    if (!forwarded.empty() && !is_trusted(peer, opts_.trusted_proxies)) note_untrusted_forwarding(peer);
    req.client_addr = client_address(peer, forwarded, opts_.trusted_proxies);
    for (const auto& c : opts_.trusted_proxies)
      req.from_trusted_proxy = req.from_trusted_proxy || c.contains(util::unmapped(peer));
    limit = take_token(req);
    if (limit && !limit->allowed) {
      res = render_error_(failure::rate_limited);
      res.header("Retry-After", std::to_string(limit->retry_after_s));
    } else {
      res = co_await handle_(req);
    }
    close_after = !req.raw->keep_alive() || draining_;
  }
  if (req.correlation_id.empty()) req.correlation_id = correlation_id(*req.raw);
  if (req.trace.trace_id.empty()) req.trace = continue_or_start(req.header("traceparent"));
  if (limit) {
    res.header("RateLimit-Limit", std::to_string(limit->limit));
    res.header("RateLimit-Remaining", std::to_string(limit->remaining));
    res.header("RateLimit-Reset", std::to_string(limit->reset_s));
  }
  co_return close_after;
}

net::awaitable<boost::system::error_code> server::write_response(conn& c, const request& req, response& res,
                                                                 bool close_after) {
  boost::system::error_code ec;
  // Middleware, in this order, on every response (errors included).
  raw_response out{std::piecewise_construct, std::make_tuple(), std::make_tuple(fields_allocator(&c.fields_arena))};
  out.result(res.code);
  out.version(11);
  apply_response_headers(res, req.correlation_id, out);
  apply_problem_type(*req.raw, out);
  apply_cors(opts_.cors_origins, *req.raw, out);
  apply_gzip(*req.raw, res, out);
  apply_date(out);
  out.body() = std::move(res.body);
  out.keep_alive(!close_after);
  out.prepare_payload();
  if (res.code == status::no_content || res.code == status::not_modified) out.erase(bhttp::field::content_length);

  c.stream.expires_after(opts_.request_timeout);
  // Here rather than inside async_write(message), which allocates one for every response.
  bhttp::response_serializer<bhttp::string_body, fields> writer{out};
  if (req.raw->method() == verb::head) {
    // Contract §10: the answer to a HEAD is its header alone, whatever its status, with the
    // Content-Length the body would have had; a body here would be read by a kept-alive client
    // as the start of the next response.
    co_await bhttp::async_write_header(c.stream, writer, net::redirect_error(use_awaitable, ec));
  } else {
    co_await bhttp::async_write(c.stream, writer, net::redirect_error(use_awaitable, ec));
  }
  co_return ec;
}

net::awaitable<void> server::session(tcp::socket sock, net::ip::address peer, std::string key) {
  // Bounded (§8 "Request bytes"): a line or trailer that never ends fills the read buffer and is refused.
  auto c = std::make_shared<conn>(std::move(sock), read_buffer_limit(opts_.header_limit));
  {
    std::lock_guard lk(conns_mu_);
    std::erase_if(conns_, [](auto& w) { return w.expired(); });
    conns_.push_back(c);
  }
  struct closer {
    client_counts& per_client;
    const std::string& key;
    ~closer() {
      if (!key.empty()) per_client.remove(key);
    }
  } closer_{per_client_, key};  // counted up by the accept loop

  for (;;) {
    // The previous request's fields are gone (its objects ended with the loop's last turn).
    c->fields_arena.release();
    incoming in{fields_allocator(&c->fields_arena)};
    auto got = co_await read_request(c, in);
    if (got == read_status::idle_end) break;
    // Only now is it a request being handled: until here a shutdown closes the connection at
    // once (a client that sent one byte must not hold the drain), from here it is awaited.
    c->idle = false;
    ++active_requests_;
    struct active_guard {
      std::atomic<int>& n;
      ~active_guard() { --n; }
    } guard{active_requests_};
    if (got == read_status::ended) break;

    auto started = steady::now();
    request req;
    req.connection_auth = &c->auth_memo;
    response res;
    bool close_after = co_await serve(in, peer, req, res);
    auto ec = co_await write_response(*c, req, res, close_after);

    double elapsed = std::chrono::duration<double>(steady::now() - started).count();
    int st = static_cast<int>(res.code);
    log_access(req, st, elapsed);
    if (observe_) observe_(req, st, elapsed);

    if (ec) break;
    if (in.refused) {
      co_await linger_close(*c);
      co_return;
    }
    if (close_after) break;
  }
  boost::system::error_code ec;
  c->stream.socket().shutdown(tcp::socket::shutdown_send, ec);
  c->stream.socket().close(ec);
}

}  // namespace fav::http
