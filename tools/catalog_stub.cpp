// catalog-stub: a fakestoreapi.com-compatible product catalog for tests, benchmarks and
// the demo, with run-time fault injection and call counters under /__admin (CONTRACT §4).
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <deque>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
using tcp = asio::ip::tcp;
using asio::awaitable;
using asio::use_awaitable;
using namespace std::chrono_literals;
using Request = http::request<http::string_body>;
using Response = http::response<http::string_body>;

namespace {

// Boost.JSON prints doubles as 1.0995E2; the client under test should see what fakestore
// sends (109.95), so serialize ourselves with shortest round-trip doubles.
void write_json(std::string& out, const json::value& v) {
  switch (v.kind()) {
    case json::kind::double_: {
      char buf[32];
      auto r = std::to_chars(buf, buf + sizeof buf, v.get_double());
      out.append(buf, r.ptr);
      return;
    }
    case json::kind::array: {
      out += '[';
      for (const auto& e : v.get_array()) {
        if (&e != v.get_array().begin()) out += ',';
        write_json(out, e);
      }
      out += ']';
      return;
    }
    case json::kind::object: {
      out += '{';
      bool first = true;
      for (const auto& kv : v.get_object()) {
        if (!first) out += ',';
        first = false;
        out += json::serialize(kv.key());
        out += ':';
        write_json(out, kv.value());
      }
      out += '}';
      return;
    }
    default: out += json::serialize(v); return;
  }
}

std::string to_json(const json::value& v) {
  std::string s;
  write_json(s, v);
  return s;
}

// Strict decimal integer (optionally negative); anything else is "not an integer id".
std::optional<std::int64_t> parse_id(std::string_view s) {
  std::int64_t v{};
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc{} || p != s.data() + s.size()) return std::nullopt;
  return v;
}

struct Faults {
  std::int64_t latency_ms = 0, hang_count = 0, reset_count = 0, fail_count = 0, rate_limit_count = 0, fail_status = 500,
               retry_after_s = 1;
  std::string not_found_style = "empty";
  // The next `flood_count` catalog answers never end: a chunk extension, a trailer, a header
  // field or chunked body data that goes on until the peer hangs up (a hostile catalog).
  std::int64_t flood_count = 0;
  std::string flood_style = "chunk_extension";
  std::set<std::int64_t> only_ids;  // empty: faults apply to every catalog request

  json::object to_json() const {
    json::value ids = nullptr;
    if (!only_ids.empty()) ids = json::array(only_ids.begin(), only_ids.end());
    return {
        {"latency_ms", latency_ms},       {"hang_count", hang_count},           {"reset_count", reset_count},
        {"fail_count", fail_count},       {"fail_status", fail_status},         {"rate_limit_count", rate_limit_count},
        {"retry_after_s", retry_after_s}, {"not_found_style", not_found_style}, {"only_ids", ids},
        {"flood_count", flood_count},     {"flood_style", flood_style}};
  }
};

// Validates everything before touching `f`, so a bad request changes nothing.
std::optional<std::string> apply_faults(Faults& f, const json::object& o) {
  Faults n = f;
  for (const auto& kv : o) {
    const std::string_view k = kv.key();
    const json::value& v = kv.value();
    auto integer = [&](std::int64_t& dst, std::int64_t lo, std::int64_t hi) {
      boost::system::error_code ec;
      auto x = v.to_number<std::int64_t>(ec);
      if (ec || v.is_bool() || x < lo || x > hi) return false;
      dst = x;
      return true;
    };
    bool ok = true;
    if (k == "latency_ms")
      ok = integer(n.latency_ms, 0, 600'000);
    else if (k == "hang_count")
      ok = integer(n.hang_count, 0, 1'000'000'000);
    else if (k == "reset_count")
      ok = integer(n.reset_count, 0, 1'000'000'000);
    else if (k == "fail_count")
      ok = integer(n.fail_count, 0, 1'000'000'000);
    else if (k == "rate_limit_count")
      ok = integer(n.rate_limit_count, 0, 1'000'000'000);
    // 1xx/204/304 cannot carry the JSON body, and a "failure" should be an error.
    else if (k == "fail_status")
      ok = integer(n.fail_status, 400, 599);
    else if (k == "retry_after_s")
      ok = integer(n.retry_after_s, 0, 86'400);
    else if (k == "flood_count")
      ok = integer(n.flood_count, 0, 1'000'000'000);
    else if (k == "flood_style") {
      std::string s = v.is_string() ? std::string(v.get_string()) : "";
      ok = s == "chunk_extension" || s == "trailer" || s == "header" || s == "body";
      if (ok) n.flood_style = s;
    } else if (k == "not_found_style") {
      std::string s = v.is_string() ? std::string(v.get_string()) : v.is_int64() ? std::to_string(v.get_int64()) : "";
      ok = s == "empty" || s == "404" || s == "null";
      if (ok) n.not_found_style = s;
    } else if (k == "only_ids") {
      n.only_ids.clear();
      if (v.is_array()) {
        for (const auto& e : v.get_array()) {
          if (!e.is_int64()) return "only_ids must be an array of integers";
          n.only_ids.insert(e.get_int64());
        }
      } else
        ok = v.is_null();
    } else
      return "unknown field: " + std::string(k);
    if (!ok) return "invalid value for " + std::string(k);
  }
  f = std::move(n);
  return std::nullopt;
}

struct Override {
  bool gone = false;
  std::optional<json::string> title;
  std::optional<json::value> price;
};

enum class Action { serve, hang, reset, fail, rate_limit, flood };

struct Stub {
  std::mutex mu;  // guards everything below except `products` (read-only after load)
  std::map<std::int64_t, json::object> products;
  Faults initial, faults;
  std::map<std::int64_t, Override> overrides;
  std::int64_t total_calls = 0, list_calls = 0;
  std::map<std::int64_t, std::int64_t> product_calls;
  // The last catalog requests' paths and `traceparent` headers (tests of trace propagation), bounded.
  std::deque<std::pair<std::string, std::string>> recent;

  // What /products/{id} serves now, or nullopt for "not found". Caller holds `mu`.
  std::optional<json::object> effective(std::int64_t id) const {
    auto ov = overrides.find(id);
    auto base = products.find(id);
    if (ov != overrides.end() && ov->second.gone) return std::nullopt;
    json::object p;
    if (base != products.end())
      p = base->second;
    else if (ov != overrides.end() && ov->second.title && ov->second.price)
      p = {{"id", id},
           {"title", ""},
           {"price", 0},
           {"description", ""},
           {"category", ""},
           {"image", ""},
           {"rating", {{"rate", 0}, {"count", 0}}}};
    else
      return std::nullopt;
    if (ov != overrides.end()) {
      if (ov->second.title) p["title"] = *ov->second.title;
      if (ov->second.price) p["price"] = *ov->second.price;
    }
    return p;
  }
};

struct Outcome {
  Action action = Action::serve;
  std::int64_t latency_ms = 0;
  Response res;
  std::string flood_style;  // Action::flood: which part never ends
};

Response make_response(const Request& req, unsigned status, std::string body) {
  Response res;
  res.version(req.version());
  res.result(status);
  res.set(http::field::server, "catalog-stub");
  res.set(http::field::content_type, "application/json; charset=utf-8");
  res.keep_alive(req.keep_alive());
  res.body() = std::move(body);
  res.prepare_payload();
  return res;
}

Response message(const Request& req, unsigned status, std::string_view msg) {
  return make_response(req, status, to_json(json::object{{"message", msg}}));
}

std::optional<json::object> parse_object(const std::string& body) {
  boost::system::error_code ec;
  json::value v = json::parse(body, ec);
  if (ec || !v.is_object()) return std::nullopt;
  return std::move(v.get_object());
}

Outcome handle_catalog(Stub& st, const Request& req, std::string_view path) {
  // path is "/products" or "/products/<something>"
  const bool is_list = path == "/products";
  std::optional<std::int64_t> id;
  if (!is_list) id = parse_id(path.substr(std::string_view("/products/").size()));

  std::lock_guard lk(st.mu);
  ++st.total_calls;
  if (is_list)
    ++st.list_calls;
  else if (id)
    ++st.product_calls[*id];
  auto tp = req.find("traceparent");
  st.recent.emplace_back(std::string(path), tp == req.end() ? std::string() : std::string(tp->value()));
  if (st.recent.size() > 256) st.recent.pop_front();

  Outcome out;
  Faults& f = st.faults;
  const bool in_scope = f.only_ids.empty() || (id && f.only_ids.count(*id));
  if (in_scope) {
    // Decide at arrival (not after the latency sleep) so request order decides who
    // gets which fault.
    out.latency_ms = f.latency_ms;
    if (f.hang_count > 0) {
      --f.hang_count;
      out.action = Action::hang;
      return out;
    }
    if (f.reset_count > 0) {
      --f.reset_count;
      out.action = Action::reset;
      return out;
    }
    if (f.fail_count > 0) {
      --f.fail_count;
      out.action = Action::fail;
      out.res = make_response(req, static_cast<unsigned>(f.fail_status),
                              to_json(json::object{{"message", "injected failure"}, {"status", f.fail_status}}));
      return out;
    }
    if (f.flood_count > 0) {
      --f.flood_count;
      out.action = Action::flood;
      out.flood_style = f.flood_style;
      return out;
    }
    if (f.rate_limit_count > 0) {
      --f.rate_limit_count;
      out.action = Action::rate_limit;
      out.res = message(req, 429, "too many requests");
      out.res.set(http::field::retry_after, std::to_string(f.retry_after_s));
      return out;
    }
  }

  if (is_list) {
    json::array all;
    std::set<std::int64_t> ids;
    for (const auto& p : st.products) ids.insert(p.first);
    for (const auto& o : st.overrides) ids.insert(o.first);
    for (auto i : ids)
      if (auto p = st.effective(i)) all.emplace_back(std::move(*p));
    out.res = make_response(req, 200, to_json(all));
  } else if (!id) {
    out.res = message(req, 400, "product id must be an integer");
  } else if (auto p = st.effective(*id)) {
    out.res = make_response(req, 200, to_json(*p));
  } else if (f.not_found_style == "404") {
    out.res = message(req, 404, "not found");
  } else {
    out.res = make_response(req, 200, f.not_found_style == "null" ? "null" : "");
  }
  return out;
}

Response handle_admin(Stub& st, const Request& req, std::string_view path) {
  const bool get = req.method() == http::verb::get, post = req.method() == http::verb::post;
  std::lock_guard lk(st.mu);
  if (path == "/__admin/health" && get) return make_response(req, 200, R"({"status":"ok"})");
  if (path == "/__admin/faults" && (get || post)) {
    if (post) {
      auto body = parse_object(req.body());
      if (!body) return message(req, 400, "body must be a JSON object");
      if (auto err = apply_faults(st.faults, *body)) return message(req, 400, *err);
    }
    return make_response(req, 200, to_json(st.faults.to_json()));
  }
  if (path == "/__admin/reset" && post) {
    // Back to the state given on the command line, not to zero, so a stub started
    // with e.g. --latency-ms keeps that baseline across per-test resets.
    st.faults = st.initial;
    st.overrides.clear();
    st.total_calls = st.list_calls = 0;
    st.product_calls.clear();
    st.recent.clear();
    return make_response(req, 200, R"({"status":"ok"})");
  }
  if (path == "/__admin/calls" && get) {
    json::object per;
    for (auto [id, n] : st.product_calls) per[std::to_string(id)] = n;
    return make_response(req, 200,
                         to_json(json::object{{"total", st.total_calls}, {"list", st.list_calls}, {"products", per}}));
  }
  if (path == "/__admin/recent" && get) {
    json::array recent;
    for (auto& [p, tp] : st.recent) recent.push_back(json::object{{"path", p}, {"traceparent", tp}});
    return make_response(req, 200, to_json(json::object{{"recent", std::move(recent)}}));
  }
  constexpr std::string_view prod = "/__admin/products/";
  if (path.starts_with(prod) && post) {
    auto id = parse_id(path.substr(prod.size()));
    if (!id) return message(req, 400, "product id must be an integer");
    auto body = parse_object(req.body());
    if (!body) return message(req, 400, "body must be a JSON object");
    Override ov = st.overrides.count(*id) ? st.overrides[*id] : Override{};
    for (const auto& kv : *body) {
      const json::value& v = kv.value();
      if (kv.key() == "gone" && v.is_bool())
        ov.gone = v.get_bool();
      else if (kv.key() == "title" && (v.is_string() || v.is_null()))
        ov.title = v.is_null() ? std::nullopt : std::optional(v.get_string());
      else if (kv.key() == "price" && (v.is_number() || v.is_null()))
        ov.price = v.is_null() ? std::nullopt : std::optional(v);
      else
        return message(req, 400, "invalid field: " + std::string(kv.key()));
    }
    if (!st.products.count(*id) && (ov.title.has_value() != ov.price.has_value()))
      return message(req, 400, "a product not in the file needs both title and price");
    st.overrides[*id] = std::move(ov);
    auto p = st.effective(*id);
    return make_response(req, 200,
                         to_json(json::object{{"id", *id}, {"gone", !p}, {"product", p ? json::value(*p) : nullptr}}));
  }
  return message(req, 404, "not found");
}

// An answer served as is, at once.
Outcome served(Response res) {
  Outcome o;
  o.res = std::move(res);
  return o;
}

Outcome handle(Stub& st, const Request& req) {
  std::string_view target = req.target();
  std::string_view path = target.substr(0, target.find('?'));  // fakestore ignores unknown params
  try {
    if (path == "/products" || path.starts_with("/products/")) {
      if (req.method() != http::verb::get) return served(message(req, 405, "method not allowed"));
      return handle_catalog(st, req, path);
    }
    if (path.starts_with("/__admin/")) return served(handle_admin(st, req, path));
    return served(message(req, 404, "not found"));
  } catch (const std::exception& e) {  // never let one request take the stub down
    return served(message(req, 500, e.what()));
  }
}

// An answer that never ends in the part `style` names; stops when the peer hangs up, after 1 GiB
// or after 60 s.
awaitable<void> flood(beast::tcp_stream& stream, const std::string& style) {
  std::string head = "HTTP/1.1 200 OK\r\nServer: catalog-stub\r\nContent-Type: application/json; charset=utf-8\r\n";
  std::string fill(16384, 'a');
  if (style == "header") {
    head += "X-Flood: ";
  } else {
    head += "Transfer-Encoding: chunked\r\n\r\n";
    if (style == "chunk_extension")
      head += "1;";
    else if (style == "trailer")
      head += "2\r\n{}\r\n0\r\nX-Flood: ";
    else
      fill = "4000\r\n" + std::string(0x4000, ' ') + "\r\n";  // body: 16 KiB chunks for ever
  }
  boost::system::error_code ec;
  stream.expires_after(60s);
  co_await asio::async_write(stream, asio::buffer(head), asio::redirect_error(use_awaitable, ec));
  for (std::size_t sent = 0; !ec && sent < (std::size_t{1} << 30); sent += fill.size())
    co_await asio::async_write(stream, asio::buffer(fill), asio::redirect_error(use_awaitable, ec));
}

awaitable<void> session(Stub& st, beast::tcp_stream stream) {
  beast::flat_buffer buf;
  boost::system::error_code ec;
  auto with_ec = asio::redirect_error(use_awaitable, ec);
  for (;;) {
    http::request_parser<http::string_body> parser;
    parser.body_limit(1 << 20);
    stream.expires_after(120s);  // idle keep-alive connections are dropped eventually
    co_await http::async_read(stream, buf, parser, with_ec);
    if (ec) {
      if (ec.category() == http::make_error_code(http::error::bad_target).category() &&
          ec != http::error::end_of_stream && ec != http::error::partial_message) {
        stream.expires_after(5s);  // malformed request: say so, then hang up
        Request dummy;
        Response res = message(dummy, 400, "bad request");
        res.keep_alive(false);
        co_await http::async_write(stream, res, with_ec);
      }
      break;
    }
    Request req = parser.release();
    Outcome out = handle(st, req);

    if (out.latency_ms > 0) {
      asio::steady_timer t(co_await asio::this_coro::executor);
      t.expires_after(std::chrono::milliseconds(out.latency_ms));
      co_await t.async_wait(with_ec);
    }
    if (out.action == Action::hang) {
      // Swallow anything the peer sends until it gives up or 120 s pass; never answer.
      stream.expires_after(120s);
      ec = {};
      char sink[4096];
      while (!ec) co_await stream.async_read_some(asio::buffer(sink), with_ec);
      break;
    }
    if (out.action == Action::flood) {
      co_await flood(stream, out.flood_style);
      break;
    }
    if (out.action == Action::reset) {
      // SO_LINGER 0 makes close() send RST instead of FIN.
      stream.socket().set_option(tcp::socket::linger(true, 0), ec);
      stream.socket().close(ec);
      co_return;
    }
    stream.expires_after(30s);
    co_await http::async_write(stream, out.res, with_ec);
    if (ec || !out.res.keep_alive()) break;
  }
  stream.socket().shutdown(tcp::socket::shutdown_send, ec);
}

awaitable<void> listener(Stub& st, tcp::acceptor& acc, asio::io_context& ioc) {
  for (;;) {
    // One strand per connection: safe with --threads > 1 (tcp_stream's timer vs I/O).
    tcp::socket sock(asio::make_strand(ioc));
    boost::system::error_code ec;
    co_await acc.async_accept(sock, asio::redirect_error(use_awaitable, ec));
    if (ec == asio::error::operation_aborted) co_return;
    if (ec) {  // e.g. EMFILE: back off briefly instead of spinning
      asio::steady_timer t(ioc, 50ms);
      co_await t.async_wait(asio::redirect_error(use_awaitable, ec));
      continue;
    }
    auto ex = sock.get_executor();
    asio::co_spawn(ex, session(st, beast::tcp_stream(std::move(sock))), asio::detached);
  }
}

bool load_products(Stub& st, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::cerr << "catalog-stub: cannot open products file " << path << "\n";
    return false;
  }
  std::stringstream ss;
  ss << in.rdbuf();
  boost::system::error_code ec;
  json::value v = json::parse(ss.str(), ec);
  if (ec || !v.is_array()) {
    std::cerr << "catalog-stub: " << path << " is not a JSON array\n";
    return false;
  }
  for (auto& p : v.get_array()) {
    if (!p.is_object() || !p.get_object().contains("id") || !p.at("id").is_int64()) {
      std::cerr << "catalog-stub: every product needs an integer id\n";
      return false;
    }
    st.products[p.at("id").get_int64()] = p.get_object();
  }
  return true;
}

int usage() {
  std::cerr << "usage: catalog-stub [--host 127.0.0.1] [--port 0] [--products PATH]\n"
               "         [--not-found-style empty|404|null] [--latency-ms N] [--fail N]\n"
               "         [--fail-status 500] [--threads 1]\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string host = "127.0.0.1", products = "data/fakestore-products.json";
  unsigned short port = 0;
  int threads = 1;
  Stub st;  // declared before the io_context: suspended sessions reference it
  json::object init;
  try {
    for (int i = 1; i < argc; ++i) {
      std::string a = argv[i];
      if (a == "-h" || a == "--help") return usage(), 0;
      if (i + 1 >= argc) return usage();
      std::string v = argv[++i];
      if (a == "--host")
        host = v;
      else if (a == "--port")
        port = static_cast<unsigned short>(std::stoul(v));
      else if (a == "--products")
        products = v;
      else if (a == "--threads")
        threads = std::max(1, std::stoi(v));
      else if (a == "--not-found-style")
        init["not_found_style"] = v;
      else if (a == "--latency-ms")
        init["latency_ms"] = std::stoll(v);
      else if (a == "--fail")
        init["fail_count"] = std::stoll(v);
      else if (a == "--fail-status")
        init["fail_status"] = std::stoll(v);
      else
        return usage();
    }
  } catch (const std::exception&) {
    return usage();
  }
  if (auto err = apply_faults(st.initial, init)) {
    std::cerr << "catalog-stub: " << *err << "\n";
    return 2;
  }
  st.faults = st.initial;
  if (!load_products(st, products)) return 1;

  try {
    asio::io_context ioc(threads);
    tcp::acceptor acc(ioc, {asio::ip::make_address(host), port});
    std::cout << "catalog-stub listening on port " << acc.local_endpoint().port() << std::endl;

    asio::signal_set signals(ioc, SIGINT, SIGTERM);
    signals.async_wait([&](auto, auto) { ioc.stop(); });
    asio::co_spawn(ioc, listener(st, acc, ioc), asio::detached);

    std::vector<std::thread> pool;
    for (int i = 1; i < threads; ++i) pool.emplace_back([&] { ioc.run(); });
    ioc.run();
    for (auto& t : pool) t.join();
  } catch (const std::exception& e) {
    std::cerr << "catalog-stub: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
