// The catalog client: kept-alive HTTP/1.1 connections (plain or TLS), each attempt run on its
// connection's strand under one deadline; retries with backoff, a concurrency cap, single-flight.
#include "catalog/client.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/url/parse.hpp>
#include <chrono>
#include <cmath>
#include <iostream>
#include <mutex>
#include <random>
#include <stdexcept>
#include <unordered_map>

#include "catalog/async_sync.hpp"
#include "catalog/parse.hpp"

namespace fav::catalog {

namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;
using error_code = boost::system::error_code;
using clock_type = std::chrono::steady_clock;
using util::bump;

namespace {

constexpr std::size_t product_body_limit = 1 << 20;  // one product is a few hundred bytes
constexpr std::size_t catalog_body_limit = 64 << 20;
constexpr auto idle_limit = std::chrono::seconds(30);  // servers drop idle keep-alives after 5–60 s
constexpr auto dns_ttl = std::chrono::seconds(60);

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
  beast::flat_buffer buffer;
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

// What one HTTP attempt produced: a transport error, or a complete response.
struct http_outcome {
  error_code ec;
  unsigned status = 0;
  std::string body;
  std::optional<double> retry_after;
  bool reusable = false;  // the connection may go back to the pool
};

// The peer closed a kept-alive connection while it sat in the pool.
bool closed_by_peer(const error_code& ec) {
  return ec == net::error::eof || ec == http::error::end_of_stream || ec == net::error::connection_reset ||
         ec == net::error::broken_pipe || ec == net::error::connection_aborted || ec == ssl::error::stream_truncated;
}

// TLS protocol and certificate failures, and an oversized body, do not heal in seconds: not
// worth a retry.
bool permanent(const error_code& ec) {
  return ec.category() == net::error::get_ssl_category() || ec == http::error::body_limit;
}

double jitter01() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return std::uniform_real_distribution<double>(0.0, 1.0)(rng);
}

clock_type::duration seconds(double s) {
  return std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(std::max(0.0, s)));
}

using resolve_results = tcp::resolver::results_type;
using resolve_handler = net::any_completion_handler<void(error_code, resolve_results)>;

// One bounded lookup: whichever of the resolver and the timer completes first wins.
struct resolve_state {
  // The handler is moved in by construction only: Boost 1.81's any_completion_handler move
  // assignment recurses forever (it re-wraps itself).
  resolve_state(const net::any_io_executor& strand, net::any_io_executor handler_ex, resolve_handler&& h)
      : resolver(strand), timer(strand), handler_ex(std::move(handler_ex)), handler(std::move(h)) {}

  static void finish(const std::shared_ptr<resolve_state>& s, error_code ec, resolve_results r) {
    if (s->done) return;
    s->done = true;
    s->timer.cancel();
    net::post(s->handler_ex,
              [h = std::move(s->handler), ec, r = std::move(r)]() mutable { std::move(h)(ec, std::move(r)); });
  }

  tcp::resolver resolver;
  net::steady_timer timer;
  bool done = false;
  net::any_io_executor handler_ex;
  resolve_handler handler;
};

// async_resolve bounded by `deadline`. Asio cannot cancel a running getaddrinfo, so a slow
// lookup is abandoned (it finishes in the background) rather than awaited. `strand` must be a
// strand: both completions run on it, which is what guards `done`.
template <class Token>
auto async_resolve_until(net::any_io_executor strand, std::string host, std::string port,
                         clock_type::time_point deadline, Token&& token) {
  return net::async_initiate<Token, void(error_code, resolve_results)>(
      [](auto handler, net::any_io_executor strand, std::string host, std::string port,
         clock_type::time_point deadline) {
        auto handler_ex = net::get_associated_executor(handler, strand);
        auto st = std::make_shared<resolve_state>(strand, std::move(handler_ex), resolve_handler(std::move(handler)));
        st->timer.expires_at(deadline);
        st->resolver.async_resolve(
            host, port, [st](error_code ec, resolve_results r) { resolve_state::finish(st, ec, std::move(r)); });
        st->timer.async_wait([st](error_code ec) {
          if (!ec) resolve_state::finish(st, net::error::timed_out, {});
        });
      },
      token, std::move(strand), std::move(host), std::move(port), deadline);
}

template <class Stream>
net::awaitable<error_code> round_trip(Stream& s, beast::flat_buffer& buffer, const http::request<http::empty_body>& req,
                                      http::response_parser<http::string_body>& parser) {
  error_code ec;
  co_await http::async_write(s, req, net::redirect_error(net::use_awaitable, ec));
  if (!ec) co_await http::async_read(s, buffer, parser, net::redirect_error(net::use_awaitable, ec));
  co_return ec;
}

enum class step { done, retry, fail };

}  // namespace

client_options options_from(const util::config& cfg) {
  client_options o;
  o.base_url = cfg.catalog_base_url;
  o.timeout_s = cfg.catalog_timeout_s;
  o.max_retries = cfg.catalog_max_retries;
  o.max_concurrency = cfg.catalog_max_concurrency;
  o.backoff_base_s = cfg.catalog_backoff_base_s;
  o.backoff_cap_s = cfg.catalog_backoff_cap_s;
  return o;
}

struct client::impl : std::enable_shared_from_this<impl> {
  impl(net::any_io_executor ex, client_options o, util::metrics& m)
      : ex_(std::move(ex)),
        opts_(std::move(o)),
        metrics_(m),
        url_(parse_base_url(opts_.base_url)),
        slots_(opts_.max_concurrency) {
    if (url_.tls) {
      tls_ctx_.emplace(ssl::context::tls_client);
      tls_ctx_->set_default_verify_paths();
      tls_ctx_->set_verify_mode(ssl::verify_peer);
      SSL_CTX_set_min_proto_version(tls_ctx_->native_handle(), TLS1_2_VERSION);
    }
  }

  // --- single-flight ----------------------------------------------------------------------

  struct flight {
    detail::async_event done;
    fetch_result result;  // written before done.set()
  };

  // Publishes the leader's result to the joiners; if the leader's frame dies first (cancelled,
  // io_context torn down) the joiners still wake, with unavailable.
  struct flight_finisher {
    impl* self;
    std::int64_t id;
    std::shared_ptr<flight> f;
    bool finished = false;

    void finish(const fetch_result& r) {
      finished = true;
      {
        // Leave the map first: a call arriving after this starts a new fetch, never reads an old one.
        std::lock_guard lk(self->flights_mu_);
        if (auto it = self->flights_.find(id); it != self->flights_.end() && it->second == f) self->flights_.erase(it);
      }
      f->result = r;
      f->done.set();
    }
    ~flight_finisher() {
      if (!finished) finish(self->unavailable(std::nullopt));
    }
  };

  net::awaitable<fetch_result> fetch_product(std::int64_t id) {
    std::shared_ptr<flight> f;
    bool leader = false;
    {
      std::lock_guard lk(flights_mu_);
      auto& slot = flights_[id];
      if (!slot) {
        slot = std::make_shared<flight>();
        leader = true;
      }
      f = slot;
    }
    if (!leader) {
      bump(metrics_.singleflight_joins);
      co_await f->done.wait();
      co_return f->result;
    }
    flight_finisher fin{this, id, f};
    fetch_result r;
    try {
      r = co_await fetch_product_now(id);
    } catch (const std::exception& e) {
      r = unavailable(std::nullopt);
      r.note = "catalog: fetching product " + std::to_string(id) + " failed: " + e.what();
    }
    fin.finish(r);
    co_return r;
  }

  // --- one fetch, with its retries --------------------------------------------------------

  net::awaitable<fetch_result> fetch_product_now(std::int64_t id) {
    const std::string target = url_.prefix + "/products/" + std::to_string(id);
    fetch_result r;
    const auto judge = [&](const http_outcome& o) {
      if (o.ec) return permanent(o.ec) ? step::fail : step::retry;
      if (o.status == 404) {
        r.status = fetch_status::not_found;
        bump(metrics_.catalog_not_found);
        return step::done;
      }
      if (o.status >= 200 && o.status < 300) {
        auto p = parse_product(o.body);
        if (p.kind == parse_kind::product && p.product->id != id) {
          p.kind = parse_kind::not_product;
          p.detail = "it describes product " + std::to_string(p.product->id);
        }
        if (p.kind == parse_kind::product) {
          r.status = fetch_status::found;
          r.product = std::move(p.product);
          bump(metrics_.catalog_ok);
          return step::done;
        }
        if (p.kind == parse_kind::not_product)
          r.note = "catalog: GET " + target + " answered a body that is not a product (" + p.detail +
                   "); treated as no such product";
        r.status = fetch_status::not_found;
        bump(metrics_.catalog_not_found);
        return step::done;
      }
      if (o.status == 429 || o.status >= 500) return step::retry;
      return step::fail;
    };
    std::string failure;
    const auto hint = co_await run_attempts(target, product_body_limit, judge, failure);
    if (hint) {
      auto u = unavailable(*hint);
      u.note = std::move(failure);
      co_return u;
    }
    co_return r;
  }

  net::awaitable<std::optional<std::vector<core::product>>> fetch_all() {
    const std::string target = url_.prefix + "/products";
    std::optional<std::vector<core::product>> all;
    const auto judge = [&](const http_outcome& o) {
      if (o.ec) return permanent(o.ec) ? step::fail : step::retry;
      if (o.status >= 200 && o.status < 300) {
        int skipped = 0;
        all = parse_product_list(o.body, skipped);
        if (!all) {
          warn("catalog: GET " + target + " answered something that is not a JSON array");
          return step::fail;
        }
        if (skipped > 0)
          warn("catalog: GET " + target + " listed " + std::to_string(skipped) + " entries that are not products");
        bump(metrics_.catalog_ok);
        return step::done;
      }
      if (o.status == 429 || o.status >= 500) return step::retry;
      return step::fail;
    };
    try {
      std::string failure;
      if (co_await run_attempts(target, catalog_body_limit, judge, failure)) {
        warn(failure);  // warm-up runs outside any request: log here
        co_return std::nullopt;
      }
    } catch (const std::exception& e) {
      warn(std::string("catalog: fetching the whole catalog failed: ") + e.what());
      co_return std::nullopt;
    }
    co_return all;
  }

  // Runs attempts until `judge` says done (→ nullopt) or fail, or retries run out (→ the
  // Retry-After hint for the caller). Counts catalog_retry / catalog_failure; `judge` counts
  // the successes. Retry-After (429/503) is honoured when it is within the backoff cap: we wait
  // max(it, our backoff). A longer one ends the retries at once — holding a user request that
  // long is worse than answering 503 with the catalog's own Retry-After.
  template <class Judge>
  net::awaitable<std::optional<double>> run_attempts(const std::string& target, std::size_t limit, const Judge& judge,
                                                     std::string& failure) {
    std::optional<double> server_hint;
    std::string last_error = "client shut down";
    const int max_retries = std::max(0, opts_.max_retries);
    int attempt = 0;
    for (;; ++attempt) {
      if (stopping_.load() || !co_await slots_.acquire()) break;
      http_outcome o;
      {
        detail::permit held(slots_);
        auto conn = take_connection();
        const auto deadline = clock_type::now() + seconds(opts_.timeout_s);
        try {
          o = co_await net::co_spawn(conn->strand, exchange(*conn, target, deadline, limit), net::use_awaitable);
        } catch (const std::exception& e) {
          o = {};
          o.ec = net::error::fault;
          last_error = e.what();
          conn->close();
        }
        if (o.reusable) give_back(std::move(conn));
      }
      const step verdict = judge(o);
      if (verdict == step::done) co_return std::nullopt;

      if (o.ec && o.ec != net::error::fault)
        last_error = o.ec.message();
      else if (!o.ec)
        last_error = "HTTP " + std::to_string(o.status);
      std::optional<double> retry_after;
      if (!o.ec && (o.status == 429 || o.status == 503) && o.retry_after) retry_after = server_hint = o.retry_after;
      const bool retry = verdict == step::retry && attempt < max_retries && !stopping_.load() &&
                         !(retry_after && *retry_after > opts_.backoff_cap_s);
      if (!retry) break;
      bump(metrics_.catalog_retry);
      double delay = backoff_delay(attempt, opts_.backoff_base_s, opts_.backoff_cap_s, jitter01());
      if (retry_after) delay = std::max(delay, *retry_after);
      net::steady_timer timer(co_await net::this_coro::executor, seconds(delay));
      error_code ignored;
      co_await timer.async_wait(net::redirect_error(net::use_awaitable, ignored));
    }
    bump(metrics_.catalog_failure);
    failure = "catalog: GET " + target + " failed after " + std::to_string(attempt + 1) + " attempt(s): " + last_error;
    co_return server_hint.value_or(opts_.backoff_cap_s);
  }

  fetch_result unavailable(std::optional<double> hint) const {
    fetch_result r;
    r.status = fetch_status::unavailable;
    r.retry_after_s = std::max(1.0, std::ceil(hint.value_or(opts_.backoff_cap_s)));
    return r;
  }

  // --- one HTTP exchange (runs on the connection's strand) --------------------------------

  net::awaitable<http_outcome> exchange(connection& c, std::string target, clock_type::time_point deadline,
                                        std::size_t limit) {
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
      http::response_parser<http::string_body> parser;
      parser.body_limit(limit);
      const error_code ec = c.tls ? co_await round_trip(*c.tls, c.buffer, req, parser)
                                  : co_await round_trip(*c.plain, c.buffer, req, parser);
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
      endpoints = co_await async_resolve_until(c.strand, url_.host, url_.port, deadline,
                                               net::redirect_error(net::use_awaitable, ec));
      if (ec) co_return ec;
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

  // --- pool and DNS cache -----------------------------------------------------------------

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
      if (!stopping_.load() && idle_.size() < static_cast<std::size_t>(std::max(1, opts_.max_concurrency))) {
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
    slots_.close();
    std::vector<std::unique_ptr<connection>> idle;
    {
      std::lock_guard lk(pool_mu_);
      idle.swap(idle_);
    }
    for (auto& c : idle) c->close();
  }

  void warn(const std::string& message) const {
    if (opts_.log_warning)
      opts_.log_warning(message);
    else
      std::cerr << message << '\n';
  }

  net::any_io_executor ex_;
  client_options opts_;
  util::metrics& metrics_;
  base_url url_;
  std::optional<ssl::context> tls_ctx_;
  detail::async_semaphore slots_;
  std::atomic<bool> stopping_{false};

  std::mutex pool_mu_;
  std::vector<std::unique_ptr<connection>> idle_;

  std::mutex dns_mu_;
  tcp::resolver::results_type dns_cache_;
  clock_type::time_point dns_expiry_{};

  std::mutex flights_mu_;
  std::unordered_map<std::int64_t, std::shared_ptr<flight>> flights_;
};

client::client(net::any_io_executor ex, client_options opts, util::metrics& m)
    : impl_(std::make_shared<impl>(std::move(ex), std::move(opts), m)) {}

client::~client() {
  impl_->shutdown();
}

net::awaitable<fetch_result> client::fetch_product(std::int64_t id) {
  auto self = impl_;  // keeps the state alive for as long as this frame exists
  co_return co_await self->fetch_product(id);
}

net::awaitable<std::optional<std::vector<core::product>>> client::fetch_all() {
  auto self = impl_;
  co_return co_await self->fetch_all();
}

void client::shutdown() {
  impl_->shutdown();
}

}  // namespace fav::catalog
