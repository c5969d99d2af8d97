// open-loop: a fixed-rate HTTP/1.1 load generator for bench/run.sh's tail latencies. wrk sends
// the next request only when the previous one answered, so a stall delays the requests that would
// have been sent meanwhile and they are never measured (coordinated omission). Here every request
// has an intended send time on a fixed schedule (start + i / rate), and its latency is measured
// from that time: a request that waited for a free connection counts the wait.
//
//   open-loop --port P --tokens FILE --scenario favorites|customer|add_remove
//             --rate R --duration S [--warmup W] [--connections C] [--host 127.0.0.1]
//
// --rate 0 is a closed loop instead (each connection sends when its previous answer arrived,
// latency from the send), for the maximum throughput of add_remove: wrk's Lua pair pipelines the
// POST and DELETE and reports a p99 of 0 for slow pairs.
// FILE is bench-seed's token file ("id token free_product email" per line). add_remove sends the
// POST and then the DELETE of one pair on one connection: one scheduled slot, one latency, two
// requests. Prints one line, `BENCH_RESULT {json}`, with the same keys as the wrk scenarios'
// (bench/lua/common.lua; requests and latencies of the measured window only) plus the rate asked
// for, the slots measured and those dropped because the run fell more than 10 s behind.
// Loopback only: the host must be a 127.0.0.0/8 or ::1 address.
#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = net::ip::tcp;
using clock_type = std::chrono::steady_clock;

namespace {

struct customer {
  std::string id, token, free_product;
};

struct options {
  std::string host = "127.0.0.1";
  unsigned short port = 0;
  std::string tokens;
  std::string scenario = "favorites";
  double rate = 1000;
  double duration_s = 10;
  double warmup_s = 0;
  int connections = 64;
};

// What every connection records; one io_context thread, so no locking.
struct tally {
  std::vector<std::uint32_t> latencies_us;  // measured slots only, bounded by rate × duration
  std::uint64_t requests = 0;
  std::uint64_t bytes = 0;
  std::uint64_t status_errors = 0;
  std::uint64_t connect_errors = 0;
  std::uint64_t read_errors = 0;
  std::uint64_t write_errors = 0;
  std::uint64_t missed = 0;  // slots dropped because the run fell more than 10 s behind its schedule
};

struct schedule {
  clock_type::time_point start, measure_from, end;
  clock_type::duration interval;
  std::uint64_t next = 0;            // the next slot to take
  clock_type::time_point last_done;  // the last measured answer
  // A slot's intended send time; in a closed loop (no interval) every slot is due at once.
  clock_type::time_point at(std::uint64_t slot) const {
    if (interval == clock_type::duration::zero()) return start;
    return start + std::chrono::duration_cast<clock_type::duration>(interval * static_cast<double>(slot));
  }
};

std::vector<customer> read_customers(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::vector<customer> out;
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    customer c;
    std::string email;
    if (fields >> c.id >> c.token >> c.free_product >> email) out.push_back(std::move(c));
  }
  if (out.empty()) throw std::runtime_error("no customers in " + path);
  return out;
}

bhttp::request<bhttp::empty_body> make(bhttp::verb v, const std::string& target, const customer& c,
                                       const std::string& host) {
  bhttp::request<bhttp::empty_body> req{v, target, 11};
  req.set(bhttp::field::host, host);
  req.set(bhttp::field::authorization, "Bearer " + c.token);
  req.keep_alive(true);
  req.prepare_payload();
  return req;
}

// One exchange on `stream`; false on a transport error (the caller reconnects).
net::awaitable<bool> exchange(beast::tcp_stream& stream, beast::flat_buffer& buf,
                              bhttp::request<bhttp::empty_body>& req, unsigned expected, tally& t, bool measured) {
  boost::system::error_code ec;
  stream.expires_after(std::chrono::seconds(30));
  co_await bhttp::async_write(stream, req, net::redirect_error(net::use_awaitable, ec));
  if (ec) {
    ++t.write_errors;
    co_return false;
  }
  bhttp::response<bhttp::string_body> res;
  co_await bhttp::async_read(stream, buf, res, net::redirect_error(net::use_awaitable, ec));
  if (ec) {
    ++t.read_errors;
    co_return false;
  }
  if (measured) {
    ++t.requests;
    t.bytes += res.body().size();
    if (res.result_int() != expected) ++t.status_errors;
  }
  co_return res.keep_alive();
}

net::awaitable<void> connection(const options& o, const std::vector<customer>& customers, schedule& s, tally& t,
                                tcp::endpoint ep, std::size_t first) {
  auto ex = co_await net::this_coro::executor;
  beast::tcp_stream stream(ex);
  beast::flat_buffer buf;
  net::steady_timer timer(ex);
  bool connected = false;
  std::size_t who = first;
  const std::string host = o.host + ":" + std::to_string(o.port);
  for (;;) {
    const std::uint64_t slot = s.next++;
    const auto intended = s.at(slot);
    if (intended >= s.end) break;
    // Overloaded past any use: the slots still waiting count as missed rather than run forever.
    if (o.rate > 0 && clock_type::now() > s.end + std::chrono::seconds(10)) {
      ++t.missed;
      continue;
    }
    if (o.rate > 0 && clock_type::now() < intended) {
      timer.expires_at(intended);
      boost::system::error_code ignored;
      co_await timer.async_wait(net::redirect_error(net::use_awaitable, ignored));
    }
    if (!connected) {
      boost::system::error_code ec;
      stream.expires_after(std::chrono::seconds(10));
      co_await stream.async_connect(ep, net::redirect_error(net::use_awaitable, ec));
      if (ec) {
        ++t.connect_errors;
        // Closed loop: the end is only checked before a send, and a refused connect sends
        // nothing (a service that is down made this spin past --duration for good).
        if (o.rate == 0 && clock_type::now() >= s.end) break;
        continue;
      }
      stream.socket().set_option(tcp::no_delay(true), ec);
      buf.clear();
      connected = true;
    }
    // Closed loop (--rate 0): the next request goes when the previous answered, timed from its send.
    const auto sent = o.rate > 0 ? intended : clock_type::now();
    if (o.rate == 0 && sent >= s.end) break;
    const bool measured = sent >= s.measure_from;
    const customer& c = customers[who];
    who = (who + 1) % customers.size();
    bool ok;
    if (o.scenario == "add_remove") {
      const std::string path = "/customers/" + c.id + "/favorites/" + c.free_product;
      auto add = make(bhttp::verb::post, path, c, host);
      ok = co_await exchange(stream, buf, add, 201, t, measured);
      if (ok) {
        auto remove = make(bhttp::verb::delete_, path, c, host);
        ok = co_await exchange(stream, buf, remove, 204, t, measured);
      }
    } else {
      const std::string path = o.scenario == "customer" ? "/customers/" + c.id : "/customers/" + c.id + "/favorites";
      auto get = make(bhttp::verb::get, path, c, host);
      ok = co_await exchange(stream, buf, get, 200, t, measured);
    }
    const auto done = clock_type::now();
    if (measured) {
      s.last_done = std::max(s.last_done, done);
      auto us = std::chrono::duration_cast<std::chrono::microseconds>(done - sent).count();
      t.latencies_us.push_back(static_cast<std::uint32_t>(std::min<std::int64_t>(us, UINT32_MAX)));
    }
    if (!ok) {
      boost::system::error_code ignored;
      stream.socket().close(ignored);
      connected = false;
    }
  }
}

std::uint32_t percentile(const std::vector<std::uint32_t>& sorted, double p) {
  if (sorted.empty()) return 0;
  auto i = static_cast<std::size_t>(p / 100.0 * static_cast<double>(sorted.size() - 1) + 0.5);
  return sorted[std::min(i, sorted.size() - 1)];
}

int usage(const char* why) {
  std::cerr << "open-loop: " << why
            << "\nusage: open-loop --port P --tokens FILE --scenario favorites|customer|add_remove --rate R"
               " --duration S [--warmup W] [--connections C] [--host 127.0.0.1]\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--host")
      o.host = v;
    else if (k == "--port")
      o.port = static_cast<unsigned short>(std::stoi(v));
    else if (k == "--tokens")
      o.tokens = v;
    else if (k == "--scenario")
      o.scenario = v;
    else if (k == "--rate")
      o.rate = std::stod(v);
    else if (k == "--duration")
      o.duration_s = std::stod(v);
    else if (k == "--warmup")
      o.warmup_s = std::stod(v);
    else if (k == "--connections")
      o.connections = std::stoi(v);
    else
      return usage(("unknown option " + k).c_str());
  }
  if (argc % 2 == 0) return usage("every option takes a value");
  if (o.port == 0 || o.tokens.empty()) return usage("--port and --tokens are required");
  if (o.scenario != "favorites" && o.scenario != "customer" && o.scenario != "add_remove")
    return usage("unknown scenario");
  if (!(o.rate >= 0 && o.rate <= 1e6) || !(o.duration_s > 0 && o.duration_s <= 600) || o.warmup_s < 0 ||
      o.warmup_s > 600 || o.connections < 1 || o.connections > 10000)
    return usage("rate 0 (closed loop)..1e6, duration 0..600 s, warm-up 0..600 s, connections 1..10000");
  boost::system::error_code ec;
  auto addr = net::ip::make_address(o.host, ec);
  if (ec || !addr.is_loopback()) return usage("the host must be a loopback address");

  try {
    const auto customers = read_customers(o.tokens);
    net::io_context ioc(1);
    tally t;
    t.latencies_us.reserve(static_cast<std::size_t>(std::min(o.rate * o.duration_s, 5e7)));
    schedule s;
    s.interval = o.rate > 0
                     ? std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(1.0 / o.rate))
                     : clock_type::duration::zero();
    s.start = clock_type::now() + std::chrono::milliseconds(50);
    s.measure_from =
        s.start + std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(o.warmup_s));
    s.end =
        s.measure_from + std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(o.duration_s));
    const tcp::endpoint ep(addr, o.port);
    for (int i = 0; i < o.connections; ++i) {
      auto first = static_cast<std::size_t>(i) * customers.size() / static_cast<std::size_t>(o.connections);
      net::co_spawn(ioc, connection(o, customers, s, t, ep, first), net::detached);
    }
    ioc.run();
    // The measured window: from the first measured slot's intended time to the last answer.
    const auto window = std::max(s.last_done, s.end) - s.measure_from;
    auto& l = t.latencies_us;
    std::sort(l.begin(), l.end());
    double mean = 0;
    for (auto v : l) mean += v;
    if (!l.empty()) mean /= static_cast<double>(l.size());
    std::printf(
        "BENCH_RESULT {\"requests\":%llu,\"duration_us\":%lld,\"bytes\":%llu,\"status_errors\":%llu,"
        "\"connect_errors\":%llu,\"read_errors\":%llu,\"write_errors\":%llu,\"timeouts\":0,"
        "\"mean_us\":%.1f,\"p50_us\":%u,\"p90_us\":%u,\"p99_us\":%u,\"p999_us\":%u,\"max_us\":%u,"
        "\"rate\":%.1f,\"measured\":%zu,\"missed\":%llu}\n",
        static_cast<unsigned long long>(t.requests),
        static_cast<long long>(std::chrono::duration_cast<std::chrono::microseconds>(window).count()),
        static_cast<unsigned long long>(t.bytes), static_cast<unsigned long long>(t.status_errors),
        static_cast<unsigned long long>(t.connect_errors), static_cast<unsigned long long>(t.read_errors),
        static_cast<unsigned long long>(t.write_errors), mean, percentile(l, 50), percentile(l, 90), percentile(l, 99),
        percentile(l, 99.9), l.empty() ? 0 : l.back(), o.rate, l.size(), static_cast<unsigned long long>(t.missed));
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "open-loop: " << e.what() << "\n";
    return 1;
  }
}
