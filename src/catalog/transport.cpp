// See transport.hpp. Each attempt runs on its connection's strand under one deadline.
#include "catalog/transport.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/url/parse.hpp>
#include <mutex>
#include <stdexcept>
#include <vector>

#include "catalog/parse.hpp"
#include "http/bounded_read.hpp"
#include "util/deadline.hpp"

namespace fav::catalog::detail {

namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;
using error_code = boost::system::error_code;

namespace {

constexpr auto idle_limit = std::chrono::seconds(30);  // servers drop idle keep-alives after 5–60 s
constexpr auto dns_ttl = std::chrono::seconds(60);
// A catalog answer's status line and header fields at most, and so the read buffer's size
// (contract §8 "Request bytes": the catalog client bounds what it reads like the server).
constexpr std::size_t header_limit = 8 * 1024;

struct base_url {
  bool tls = false;
  bool host_is_name = false;  // SNI is only sent for names, never for IP literals
  std::string host;           // as resolved and verified: name or bare address
  std::string port;
  std::string host_header;  // host[:port] as the Host header wants it
  std::string prefix;       // path prefix without trailing '/', e.g. "" or "/api/v1"
};

base_url parse_base_url(const std::string& text) {
  namespace urls = boost::urls;
  const auto bad = [&](const char* why) {
    return std::invalid_argument("PRODUCT_CATALOG_API_BASE_URL: " + std::string(why) + ": " + text);
  };
  const auto parsed = urls::parse_uri(text);
  if (!parsed) throw bad("not a URL");
  const urls::url_view& u = *parsed;
  base_url b;
  if (u.scheme_id() == urls::scheme::https)
    b.tls = true;
  else if (u.scheme_id() != urls::scheme::http)
    throw bad("scheme must be http or https");
  switch (u.host_type()) {
    case urls::host_type::name:
      b.host = u.host_name();
      b.host_is_name = true;
      break;
    case urls::host_type::ipv4:
    case urls::host_type::ipv6: b.host = u.host_address(); break;
    default: throw bad("no usable host");
  }
  if (b.host.empty()) throw bad("no host");
  const std::string default_port = b.tls ? "443" : "80";
  b.port = u.has_port() && !u.port().empty() ? std::string(u.port()) : default_port;
  b.host_header = u.host_type() == urls::host_type::ipv6 ? "[" + b.host + "]" : b.host;
  if (b.port != default_port) b.host_header += ":" + b.port;
  b.prefix = std::string(u.encoded_path());
  while (!b.prefix.empty() && b.prefix.back() == '/') b.prefix.pop_back();
  return b;
}

// One kept-alive connection. All its I/O runs on its own strand: Beast's timeout handler and
// the coroutine driving the stream must not run at once on a multi-threaded io_context.
struct connection {
  explicit connection(const net::any_io_executor& ex) : strand(net::make_strand(ex)) {}

  net::strand<net::any_io_executor> strand;
  std::optional<beast::tcp_stream> plain;
  std::optional<ssl::stream<beast::tcp_stream>> tls;
  // Bounded: a line or trailer that never ends fills it and fails the attempt, not the memory.
  beast::flat_buffer buffer{fav::http::read_buffer_limit(header_limit)};
  bool connected = false;
  clock_type::time_point idle_since{};

  beast::tcp_stream& lowest() { return tls ? tls->next_layer() : *plain; }

  // Drops the socket (and the TLS session, which cannot be reused on a new socket).
  void close() {
    if (plain || tls) lowest().close();
    plain.reset();
    tls.reset();
    buffer.clear();
    connected = false;
  }
};

// The peer closed a kept-alive connection while it sat in the pool.
bool closed_by_peer(const error_code& ec) {
  return ec == net::error::eof || ec == http::error::end_of_stream || ec == net::error::connection_reset ||
         ec == net::error::broken_pipe || ec == net::error::connection_aborted || ec == ssl::error::stream_truncated;
}

using resolve_results = tcp::resolver::results_type;
using resolve_handler = net::any_completion_handler<void(error_code, resolve_results)>;

// One lookup that can be abandoned: its handler is called once, by the resolver or by a
// cancellation, whichever comes first.
struct resolve_state {
  // The handler is moved in by construction only: Boost 1.81's any_completion_handler move
  // assignment recurses forever (it re-wraps itself).
  resolve_state(const net::any_io_executor& strand, net::any_io_executor handler_ex, resolve_handler&& h)
      : resolver(strand), handler_ex(std::move(handler_ex)), handler(std::move(h)) {}

  static void finish(const std::shared_ptr<resolve_state>& s, error_code ec, resolve_results r) {
    if (s->done) return;
    s->done = true;
    net::post(s->handler_ex,
              [h = std::move(s->handler), ec, r = std::move(r)]() mutable { std::move(h)(ec, std::move(r)); });
  }

  tcp::resolver resolver;
  bool done = false;
  net::any_io_executor handler_ex;
  resolve_handler handler;
};

// async_resolve that a cancellation (util::with_deadline's, at its deadline) ends at once with
// operation_aborted. Asio cannot cancel a running getaddrinfo, so a slow lookup is abandoned (it
// finishes in the background) rather than awaited. `strand` must be a strand that the caller runs
// on: both completions run on it, which is what guards `done`.
template <class Token>
auto async_resolve_abandonable(net::any_io_executor strand, std::string host, std::string port, Token&& token) {
  return net::async_initiate<Token, void(error_code, resolve_results)>(
      [](auto handler, net::any_io_executor strand, std::string host, std::string port) {
        auto slot = net::get_associated_cancellation_slot(handler);
        auto handler_ex = net::get_associated_executor(handler, strand);
        auto st = std::make_shared<resolve_state>(strand, std::move(handler_ex), resolve_handler(std::move(handler)));
        // The awaiting coroutine clears the slot once resumed, which frees this hold on `st`.
        if (slot.is_connected())
          slot.assign([st](net::cancellation_type) { resolve_state::finish(st, net::error::operation_aborted, {}); });
        st->resolver.async_resolve(
            host, port, [st](error_code ec, resolve_results r) { resolve_state::finish(st, ec, std::move(r)); });
      },
      token, std::move(strand), std::move(host), std::move(port));
}

// One request and its answer. The answer's framing (header, chunk-size lines, trailers) may
// take the header limit plus as many bytes as the body may: a large list sent in small chunks
// is still read, and what one answer sends is bounded either way.
template <class Stream>
net::awaitable<error_code> round_trip(Stream& s, beast::flat_buffer& buffer, const http::request<http::empty_body>& req,
                                      http::response_parser<http::string_body>& parser, std::size_t body_limit) {
  error_code ec;
  co_await http::async_write(s, req, net::redirect_error(net::use_awaitable, ec));
  std::size_t framing = 0;
  if (!ec) ec = co_await fav::http::read_bounded(s, buffer, parser, header_limit + body_limit, framing);
  co_return ec;
}

}  // namespace

bool permanent(const error_code& ec) {
  return ec.category() == net::error::get_ssl_category() || ec == http::error::body_limit ||
         ec == http::error::header_limit || ec == http::error::buffer_overflow;
}

struct transport::state {
  state(net::any_io_executor ex, const std::string& base, std::size_t max_idle)
      : ex_(std::move(ex)), url_(parse_base_url(base)), max_idle_(std::max<std::size_t>(1, max_idle)) {
    if (url_.tls) {
      tls_ctx_.emplace(ssl::context::tls_client);
      tls_ctx_->set_default_verify_paths();
      tls_ctx_->set_verify_mode(ssl::verify_peer);
      SSL_CTX_set_min_proto_version(tls_ctx_->native_handle(), TLS1_2_VERSION);
    }
  }

  net::awaitable<http_outcome> get(std::string target, clock_type::time_point deadline, std::size_t limit,
                                   std::string traceparent) {
    auto conn = take_connection();
    http_outcome o;
    try {
      o = co_await net::co_spawn(conn->strand,
                                 exchange(*conn, std::move(target), deadline, limit, std::move(traceparent)),
                                 net::use_awaitable);
    } catch (const std::exception& e) {
      o = {};
      o.ec = net::error::fault;
      o.error_text = e.what();
      conn->close();
    }
    if (o.reusable) give_back(std::move(conn));
    co_return o;
  }

  // One HTTP exchange (runs on the connection's strand).

  net::awaitable<http_outcome> exchange(connection& c, std::string target, clock_type::time_point deadline,
                                        std::size_t limit, std::string traceparent) {
    http_outcome out;
    const bool reused = c.connected;
    for (int round = 0; round < 2; ++round) {
      if (!c.connected) {
        out.ec = co_await connect(c, deadline);
        if (out.ec) {
          c.close();
          co_return out;
        }
      }
      // One deadline for the whole attempt: Beast closes the socket when it passes.
      c.lowest().expires_at(deadline);
      http::request<http::empty_body> req{http::verb::get, target, 11};
      req.set(http::field::host, url_.host_header);
      req.set(http::field::user_agent, "favorites-api");
      req.set(http::field::accept, "application/json");
      if (!traceparent.empty()) req.set("traceparent", traceparent);
      http::response_parser<http::string_body> parser;
      parser.body_limit(limit);
      parser.header_limit(header_limit);
      const error_code ec = c.tls ? co_await round_trip(*c.tls, c.buffer, req, parser, limit)
                                  : co_await round_trip(*c.plain, c.buffer, req, parser, limit);
      if (ec && round == 0 && reused && !parser.got_some() && closed_by_peer(ec)) {
        c.close();  // a pooled connection the server had closed: reconnect once, same attempt
        continue;
      }
      if (ec) {
        c.close();
        out.ec = ec;
        co_return out;
      }
      c.lowest().expires_never();
      auto res = parser.release();
      out.status = res.result_int();
      if (const auto it = res.find(http::field::retry_after); it != res.end())
        out.retry_after = parse_retry_after(std::string_view(it->value().data(), it->value().size()));
      out.body = std::move(res.body());
      // Bytes past the response would be misread as the next one: such a connection is not reused.
      out.reusable = res.keep_alive() && c.buffer.size() == 0;
      if (!out.reusable) c.close();
      co_return out;
    }
    co_return out;  // not reached: the second round always returns
  }

  net::awaitable<error_code> connect(connection& c, clock_type::time_point deadline) {
    c.close();
    error_code ec;
    auto endpoints = cached_endpoints();
    if (endpoints.empty()) {
      // Named, not a temporary inside co_await (CONTRIBUTING.md, "Compiler notes").
      auto lookup = async_resolve_abandonable(c.strand, url_.host, url_.port, net::as_tuple(net::use_awaitable));
      auto found = co_await util::with_deadline(std::move(lookup), deadline);
      if (!found) co_return net::error::timed_out;
      if (std::get<0>(*found)) co_return std::get<0>(*found);
      endpoints = std::move(std::get<1>(*found));
      remember_endpoints(endpoints);
    }
    if (tls_ctx_)
      c.tls.emplace(c.strand, *tls_ctx_);
    else
      c.plain.emplace(c.strand);
    c.lowest().expires_at(deadline);
    co_await c.lowest().async_connect(endpoints, net::redirect_error(net::use_awaitable, ec));
    if (ec) {
      remember_endpoints({});  // the address may have moved: look it up again next time
      co_return ec;
    }
    c.lowest().socket().set_option(tcp::no_delay(true), ec);  // best effort
    if (c.tls) {
      if (url_.host_is_name && !SSL_set_tlsext_host_name(c.tls->native_handle(), url_.host.c_str()))
        co_return error_code(static_cast<int>(::ERR_get_error()), net::error::get_ssl_category());
      c.tls->set_verify_mode(ssl::verify_peer);
      c.tls->set_verify_callback(ssl::host_name_verification(url_.host));
      ec = {};
      co_await c.tls->async_handshake(ssl::stream_base::client, net::redirect_error(net::use_awaitable, ec));
      if (ec) co_return ec;
    }
    c.connected = true;
    co_return error_code{};
  }

  // The pool of idle connections and the DNS cache.

  std::unique_ptr<connection> take_connection() {
    std::vector<std::unique_ptr<connection>> expired;
    std::unique_ptr<connection> found;
    {
      std::lock_guard lk(pool_mu_);
      const auto now = clock_type::now();
      while (!idle_.empty() && !found) {
        auto c = std::move(idle_.back());
        idle_.pop_back();
        if (now - c->idle_since < idle_limit)
          found = std::move(c);
        else
          expired.push_back(std::move(c));
      }
    }
    for (auto& c : expired) c->close();  // no operation is pending on an idle connection
    return found ? std::move(found) : std::make_unique<connection>(ex_);
  }

  void give_back(std::unique_ptr<connection> c) {
    c->idle_since = clock_type::now();
    {
      std::lock_guard lk(pool_mu_);
      if (!stopping_.load() && idle_.size() < max_idle_) {
        idle_.push_back(std::move(c));
        return;
      }
    }
    c->close();
  }

  tcp::resolver::results_type cached_endpoints() {
    std::lock_guard lk(dns_mu_);
    return clock_type::now() < dns_expiry_ ? dns_cache_ : tcp::resolver::results_type{};
  }

  void remember_endpoints(tcp::resolver::results_type r) {
    std::lock_guard lk(dns_mu_);
    dns_expiry_ = r.empty() ? clock_type::time_point{} : clock_type::now() + dns_ttl;
    dns_cache_ = std::move(r);
  }

  void shutdown() {
    stopping_.store(true);
    std::vector<std::unique_ptr<connection>> idle;
    {
      std::lock_guard lk(pool_mu_);
      idle.swap(idle_);
    }
    for (auto& c : idle) c->close();
  }

  net::any_io_executor ex_;
  base_url url_;
  std::size_t max_idle_;
  std::optional<ssl::context> tls_ctx_;
  std::atomic<bool> stopping_{false};

  std::mutex pool_mu_;
  std::vector<std::unique_ptr<connection>> idle_;

  std::mutex dns_mu_;
  tcp::resolver::results_type dns_cache_;
  clock_type::time_point dns_expiry_{};
};

transport::transport(net::any_io_executor ex, const std::string& base_url, std::size_t max_idle)
    : s_(std::make_shared<state>(std::move(ex), base_url, max_idle)) {}

transport::~transport() {
  s_->shutdown();
}

const std::string& transport::prefix() const {
  return s_->url_.prefix;
}

net::awaitable<http_outcome> transport::get(std::string target, clock_type::time_point deadline, std::size_t limit,
                                            std::string traceparent) {
  auto s = s_;  // keeps the state alive for as long as this frame exists
  co_return co_await s->get(std::move(target), deadline, limit, std::move(traceparent));
}

void transport::shutdown() {
  s_->shutdown();
}

}  // namespace fav::catalog::detail
