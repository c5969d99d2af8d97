// See server.hpp. The session loop follows Beast's awaitable servers: a fresh parser per
// request, limits, timeouts, keep-alive, and a lingering close after errors so the client
// reads our answer instead of a reset.
#include "http/server.hpp"

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
#include <boost/beast/http/write.hpp>
#include <boost/url/parse.hpp>
#include <chrono>

#include "http/gzip.hpp"
#include "util/log.hpp"
#include "util/random.hpp"

namespace fav::http {

namespace beast = boost::beast;
using tcp = net::ip::tcp;
using net::use_awaitable;

struct server::conn {
  beast::tcp_stream stream;
  std::atomic<bool> idle{true};  // no complete request yet: waiting for or reading one
  explicit conn(tcp::socket s) : stream(std::move(s)) {}
};

namespace {

constexpr std::size_t gzip_min_bytes = 500;
constexpr const char* cors_methods = "GET, POST, PATCH, DELETE";
constexpr const char* cors_headers = "Content-Type, Authorization, x-aiqfome-api-key, x-correlation-id";

std::chrono::steady_clock::duration seconds(double s) {
  return std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::duration<double>(s));
}

// Contract §1: 1–64 chars of [A-Za-z0-9._-], else a fresh UUID.
std::string correlation_id(const bhttp::request<bhttp::string_body>& r) {
  for (auto name : {"x-correlation-id", "x-request-id"}) {
    auto it = r.find(name);
    if (it == r.end()) continue;
    auto v = it->value();
    bool ok = !v.empty() && v.size() <= 64;
    for (char c : v) ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-');
    if (ok) return std::string(v);
  }
  return util::request_uuid();
}

// Splits the target into path and percent-decoded query pairs; false when it is not origin-form.
bool parse_target(std::string_view target, request& req) {
  auto u = boost::urls::parse_origin_form(target);
  if (!u) return false;
  req.path = u->encoded_path();
  for (auto p : u->params()) req.query.emplace_back(p.key, p.has_value ? p.value : std::string{});
  return true;
}

}  // namespace

server::server(net::io_context& ioc, server_options opts, dispatcher d, error_renderer e, request_observer o)
    : ioc_(ioc),
      opts_(std::move(opts)),
      dispatch_(std::move(d)),
      render_error_(std::move(e)),
      observe_(std::move(o)),
      acceptor_(net::make_strand(ioc)) {}

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
  for (;;) {
    boost::system::error_code ec;
    tcp::socket sock(net::make_strand(ioc_));
    co_await acceptor_.async_accept(sock, net::redirect_error(use_awaitable, ec));
    if (ec) {
      if (ec == net::error::operation_aborted || !acceptor_.is_open()) co_return;
      util::log(util::log_level::warning, "accept failed", {{"error", ec.message()}});
      continue;
    }
    sock.set_option(tcp::no_delay(true), ec);
    auto ex = sock.get_executor();
    net::co_spawn(ex, session(std::move(sock)), [](std::exception_ptr ep) {
      if (!ep) return;
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

net::awaitable<void> server::session(tcp::socket sock) {
  auto c = std::make_shared<conn>(std::move(sock));
  {
    std::lock_guard lk(conns_mu_);
    std::erase_if(conns_, [](auto& w) { return w.expired(); });
    conns_.push_back(c);
  }
  ++open_connections_;
  struct closer {
    std::atomic<int>& n;
    ~closer() { --n; }
  } closer_{open_connections_};

  auto& stream = c->stream;
  std::string peer_address;
  {
    boost::system::error_code pe;
    const auto ep = stream.socket().remote_endpoint(pe);
    if (!pe) peer_address = ep.address().to_string();
  }
  beast::flat_buffer buffer;
  boost::system::error_code ec;

  // After an error answer: stop sending, then read and discard what the client still sends
  // (bounded) so it sees our response rather than a connection reset.
  auto linger_close = [&]() -> net::awaitable<void> {
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
  };

  for (;;) {
    if (draining_) break;
    // Idle keep-alive wait: no request bytes yet.
    if (buffer.size() == 0) {
      c->idle = true;
      stream.expires_after(seconds(opts_.idle_timeout_s));
      auto n = co_await stream.async_read_some(buffer.prepare(8192), net::redirect_error(use_awaitable, ec));
      if (ec) break;  // closed, timed out, or cancelled by shutdown
      buffer.commit(n);
    }
    bhttp::request_parser<bhttp::string_body> parser;
    parser.body_limit(static_cast<std::uint64_t>(opts_.body_limit));
    parser.header_limit(opts_.header_limit);
    stream.expires_after(seconds(opts_.request_timeout_s));
    co_await bhttp::async_read_header(stream, buffer, parser, net::redirect_error(use_awaitable, ec));
    if (!ec && !parser.is_done()) {
      // curl and others wait for "100 Continue" before sending a body.
      auto expect = parser.get().find(bhttp::field::expect);
      if (expect != parser.get().end() && beast::iequals(expect->value(), "100-continue")) {
        bhttp::response<bhttp::empty_body> cont{status::continue_, 11};
        co_await bhttp::async_write(stream, cont, net::redirect_error(use_awaitable, ec));
      }
      if (!ec) co_await bhttp::async_read(stream, buffer, parser, net::redirect_error(use_awaitable, ec));
    }
    // Only now is it a request being handled: until here a shutdown closes the connection at
    // once (a client that sent one byte must not hold the drain), from here it is awaited.
    c->idle = false;
    ++active_requests_;
    struct active_guard {
      std::atomic<int>& n;
      ~active_guard() { --n; }
    } guard{active_requests_};

    auto started = std::chrono::steady_clock::now();
    request req;
    req.peer_address = peer_address;
    response res;
    bool close_after = false;
    bhttp::request<bhttp::string_body> empty_req;
    if (ec) {
      if (ec == bhttp::error::end_of_stream || ec == beast::error::timeout || ec == net::error::eof ||
          ec == net::error::connection_reset || ec == net::error::operation_aborted)
        break;
      core::errc code = ec == bhttp::error::body_limit     ? core::errc::payload_too_large
                        : ec == bhttp::error::header_limit ? core::errc::headers_too_large
                                                           : core::errc::bad_request;
      res = render_error_(code);
      close_after = true;
      req.raw = parser.is_header_done() ? &parser.get() : &empty_req;
      req.path = "";
    } else {
      req.raw = &parser.get();
      // RFC 9112 §3.2: an HTTP/1.1 request without Host is a bad request.
      if ((req.raw->version() >= 11 && req.raw->find(bhttp::field::host) == req.raw->end()) ||
          !parse_target(req.raw->target(), req)) {
        res = render_error_(core::errc::bad_request);
      } else {
        req.correlation_id = correlation_id(*req.raw);
        res = co_await dispatch_(req);
      }
      close_after = !req.raw->keep_alive() || draining_;
    }
    if (req.correlation_id.empty()) req.correlation_id = correlation_id(*req.raw);

    // Middleware: every response gets these, errors included.
    bhttp::response<bhttp::string_body> out{res.code, 11};
    out.set("x-correlation-id", req.correlation_id);
    if (!res.content_type.empty()) out.set(bhttp::field::content_type, res.content_type);
    for (auto& [k, v] : res.headers) out.insert(k, v);
    if (auto origin = req.raw->find(bhttp::field::origin); origin != req.raw->end()) {
      bool any = !opts_.cors_origins.empty() && opts_.cors_origins.front() == "*";
      bool listed = false;
      for (auto& o : opts_.cors_origins) listed = listed || o == origin->value();
      if (any) {
        out.set(bhttp::field::access_control_allow_origin, "*");
      } else if (listed) {
        out.set(bhttp::field::access_control_allow_origin, origin->value());
        out.set(bhttp::field::access_control_allow_credentials, "true");
        out.insert(bhttp::field::vary, "Origin");
      }
      if (any || listed) {
        if (req.raw->method() == verb::options) {
          out.set(bhttp::field::access_control_allow_methods, cors_methods);
          out.set(bhttp::field::access_control_allow_headers, cors_headers);
          out.set(bhttp::field::access_control_max_age, "600");
        } else {
          out.set(bhttp::field::access_control_expose_headers, "x-correlation-id, Location, Retry-After");
        }
      }
    }
    if (res.compressible && res.body.size() >= gzip_min_bytes) {
      out.insert(bhttp::field::vary, "Accept-Encoding");
      if (accepts_gzip(req.header("accept-encoding"))) {
        if (auto gz = gzip_compress(res.body)) {
          res.body = std::move(*gz);
          out.set(bhttp::field::content_encoding, "gzip");
        }
      }
    }
    out.body() = std::move(res.body);
    out.keep_alive(!close_after);
    out.prepare_payload();
    if (res.code == status::no_content || res.code == status::not_modified) out.erase(bhttp::field::content_length);

    stream.expires_after(seconds(opts_.request_timeout_s));
    co_await bhttp::async_write(stream, out, net::redirect_error(use_awaitable, ec));

    double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    int st = static_cast<int>(res.code);
    util::log(st >= 500 ? util::log_level::error : util::log_level::info, "request",
              {{"correlation_id", req.correlation_id},
               {"method", std::string_view(req.raw->method_string())},
               {"path", req.path.empty() ? std::string_view(req.raw->target()) : req.path},
               {"status", st},
               {"duration_ms", elapsed * 1000.0}});
    if (observe_) observe_(req, st, elapsed);

    if (ec) break;
    if (close_after) {
      if (ec == boost::system::error_code{} && parser.is_done() == false) {
        co_await linger_close();
        co_return;
      }
      break;
    }
  }
  stream.socket().shutdown(tcp::socket::shutdown_send, ec);
  stream.socket().close(ec);
}

}  // namespace fav::http
