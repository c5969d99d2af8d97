// Unit tests for src/catalog: freshness, backoff, Retry-After and fakestore parsing with plain
// values; then the client against a tiny scripted HTTP server on 127.0.0.1:0 (single-flight,
// retries, timeouts, keep-alive, TLS failure). No test sleeps to let time pass.
#include <gtest/gtest.h>

#include <unistd.h>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "catalog/admission.hpp"
#include "catalog/client.hpp"
#include "catalog/freshness.hpp"
#include "catalog/parse.hpp"
#include "catalog/product_cache.hpp"
#include "store/change_feed.hpp"
#include "store/sqlite_store.hpp"
#include "util/deadline.hpp"
#include "util/metrics.hpp"
#include "util/random.hpp"
#include "util/task_group.hpp"

namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
using tcp = net::ip::tcp;
using namespace fav::catalog;
using namespace std::chrono_literals;

// ---------------------------------------------------------------------------------------------
// Pure helpers

TEST(freshness, classifies_by_soft_and_hard_ttl) {
  EXPECT_EQ(classify(0, 300, 1800), freshness::fresh);
  EXPECT_EQ(classify(299.9, 300, 1800), freshness::fresh);
  EXPECT_EQ(classify(300, 300, 1800), freshness::fresh);  // exactly soft: still fresh
  EXPECT_EQ(classify(300.001, 300, 1800), freshness::stale);
  EXPECT_EQ(classify(1800, 300, 1800), freshness::stale);  // exactly hard: still stale
  EXPECT_EQ(classify(1800.001, 300, 1800), freshness::expired);
  EXPECT_EQ(classify(-5, 300, 1800), freshness::fresh);  // clock skew
}

TEST(freshness, zero_ttls) {
  EXPECT_EQ(classify(0, 0, 0), freshness::fresh);
  EXPECT_EQ(classify(0.001, 0, 0), freshness::expired);
  EXPECT_EQ(classify(0.001, 0, 10), freshness::stale);
  EXPECT_EQ(classify(10, 0, 10), freshness::stale);
  EXPECT_EQ(classify(std::nan(""), 300, 1800), freshness::expired);
}

TEST(backoff, doubles_up_to_the_cap) {
  // jitter01 = 1 gives the nominal schedule 1, 2, 4, 4, ...
  EXPECT_DOUBLE_EQ(backoff_delay(0, 1, 4, 1), 1);
  EXPECT_DOUBLE_EQ(backoff_delay(1, 1, 4, 1), 2);
  EXPECT_DOUBLE_EQ(backoff_delay(2, 1, 4, 1), 4);
  EXPECT_DOUBLE_EQ(backoff_delay(3, 1, 4, 1), 4);
  EXPECT_DOUBLE_EQ(backoff_delay(1000, 1, 4, 1), 4);
  // jitter01 = 0 gives half of it.
  EXPECT_DOUBLE_EQ(backoff_delay(0, 1, 4, 0), 0.5);
  EXPECT_DOUBLE_EQ(backoff_delay(3, 1, 4, 0), 2);
}

TEST(backoff, jitter_stays_within_half_and_full) {
  const double nominal[] = {1, 2, 4, 4, 4};
  for (int attempt = 0; attempt < 5; ++attempt)
    for (double j = 0; j <= 1.0; j += 0.125) {
      const double d = backoff_delay(attempt, 1, 4, j);
      EXPECT_GE(d, nominal[attempt] / 2);
      EXPECT_LE(d, nominal[attempt]);
    }
  EXPECT_DOUBLE_EQ(backoff_delay(0, 1, 4, 7), 1);  // out-of-range jitter is clamped
  EXPECT_DOUBLE_EQ(backoff_delay(0, 1, 4, -7), 0.5);
  EXPECT_DOUBLE_EQ(backoff_delay(0, 0, 4, 1), 0);  // no base → no wait
  EXPECT_DOUBLE_EQ(backoff_delay(5, 0.01, 0.02, 1), 0.02);
}

TEST(retry_after, delta_seconds_only) {
  EXPECT_EQ(parse_retry_after("120"), 120.0);
  EXPECT_EQ(parse_retry_after(" 0 "), 0.0);
  EXPECT_EQ(parse_retry_after("1.5"), 1.5);
  EXPECT_EQ(parse_retry_after(""), std::nullopt);
  EXPECT_EQ(parse_retry_after("-1"), std::nullopt);
  EXPECT_EQ(parse_retry_after("1e3"), std::nullopt);
  EXPECT_EQ(parse_retry_after("abc"), std::nullopt);
  EXPECT_EQ(parse_retry_after("1.2.3"), std::nullopt);
  EXPECT_EQ(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), std::nullopt);
}

TEST(decimal_to_hundredths, rounds_half_away_from_zero) {
  EXPECT_EQ(decimal_to_hundredths("109.95"), 10995);
  EXPECT_EQ(decimal_to_hundredths("22.3"), 2230);
  EXPECT_EQ(decimal_to_hundredths("7"), 700);
  EXPECT_EQ(decimal_to_hundredths("0.285"), 29);
  EXPECT_EQ(decimal_to_hundredths("0.2849"), 28);
  EXPECT_EQ(decimal_to_hundredths("-1.005"), -101);
  EXPECT_EQ(decimal_to_hundredths(".5"), 50);
  EXPECT_EQ(decimal_to_hundredths(""), std::nullopt);
  EXPECT_EQ(decimal_to_hundredths("."), std::nullopt);
  EXPECT_EQ(decimal_to_hundredths("1,5"), std::nullopt);
  EXPECT_EQ(decimal_to_hundredths("99999999999999999999"), std::nullopt);
}

// data/fakestore-products.json, found from the usual build/run directories.
std::string fakestore_file() {
  std::vector<std::string> candidates;
  if (const char* dir = std::getenv("FAV_SOURCE_DIR"))
    candidates.push_back(std::string(dir) + "/data/fakestore-products.json");
#ifdef FAV_SOURCE_DIR
  candidates.push_back(std::string(FAV_SOURCE_DIR) + "/data/fakestore-products.json");
#endif
  for (const char* rel : {"data/", "../data/", "../../data/", "../../../data/"})
    candidates.push_back(std::string(rel) + "fakestore-products.json");
  for (const auto& path : candidates) {
    std::ifstream in(path);
    if (!in) continue;
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  return {};
}

// Product 1 exactly as fakestoreapi.com serves GET /products/1.
constexpr const char* fakestore_product_1 =
    R"({"id":1,"title":"Fjallraven - Foldsack No. 1 Backpack, Fits 15 Laptops","price":109.95,)"
    R"("description":"Your perfect pack for everyday use and walks in the forest.","category":"men's clothing",)"
    R"("image":"https://fakestoreapi.com/img/81fPKd-2AYL._AC_SL1500_t.png","rating":{"rate":3.9,"count":120}})";

void expect_product_1(const parse_result& r) {
  ASSERT_EQ(r.kind, parse_kind::product) << r.detail;
  const auto& p = *r.product;
  EXPECT_EQ(p.id, 1);
  EXPECT_EQ(p.title, "Fjallraven - Foldsack No. 1 Backpack, Fits 15 Laptops");
  EXPECT_EQ(p.image_url, "https://fakestoreapi.com/img/81fPKd-2AYL._AC_SL1500_t.png");
  EXPECT_EQ(p.price_cents, 10995);
  EXPECT_EQ(p.review_rate_cents, 390);
  EXPECT_EQ(p.review_count, 120);
  EXPECT_EQ(p.fetched_at, 0);
}

TEST(parse_product, fakestore_product_1_as_served) {
  expect_product_1(parse_product(fakestore_product_1));
}

TEST(parse_product, fakestore_file_product_1) {
  const std::string text = fakestore_file();
  if (text.empty()) GTEST_SKIP() << "data/fakestore-products.json not found (set FAV_SOURCE_DIR)";
  const json::value all = json::parse(text);
  expect_product_1(parse_product(json::serialize(all.as_array().at(0))));
  int skipped = -1;
  const auto list = parse_product_list(text, skipped);
  ASSERT_TRUE(list);
  EXPECT_EQ(list->size(), all.as_array().size());
  EXPECT_EQ(skipped, 0);
  EXPECT_EQ(list->front().price_cents, 10995);
}

TEST(parse_product, not_found_kinds) {
  EXPECT_EQ(parse_product("").kind, parse_kind::not_found_empty);
  EXPECT_EQ(parse_product(" \r\n").kind, parse_kind::not_found_empty);
  EXPECT_EQ(parse_product("null").kind, parse_kind::not_found_null);
  EXPECT_EQ(parse_product(" null\n").kind, parse_kind::not_found_null);
  EXPECT_EQ(parse_product("[]").kind, parse_kind::not_product);
  EXPECT_EQ(parse_product(R"({"title":"x"})").kind, parse_kind::not_product);
  EXPECT_EQ(parse_product("<html>oops</html>").kind, parse_kind::not_product);
  EXPECT_EQ(parse_product(R"({"id":"5"})").kind, parse_kind::not_product);
  EXPECT_EQ(parse_product(R"({"id":0})").kind, parse_kind::not_product);
  EXPECT_EQ(parse_product(R"({"id":-3})").kind, parse_kind::not_product);
  EXPECT_EQ(parse_product(R"({"id":2.5})").kind, parse_kind::not_product);
  EXPECT_EQ(parse_product(R"({"id":1,"title":7})").kind, parse_kind::not_product);
  EXPECT_EQ(parse_product(R"({"id":1,"price":-1})").kind, parse_kind::not_product);
  EXPECT_EQ(parse_product("42").kind, parse_kind::not_product);
  EXPECT_FALSE(parse_product("[]").detail.empty());
}

// products_cache keeps the reference's column types (price DECIMAL(10,2), review_count INT): a
// product past them is no product to cache (one such row used to fail PostgreSQL's whole warm-up
// batch), and a rating past them only drops the review.
TEST(parse_product, values_the_cache_cannot_hold) {
  EXPECT_EQ(parse_product(R"({"id":1,"price":1e9})").kind, parse_kind::not_product);
  EXPECT_EQ(parse_product(R"({"id":1,"price":100000000})").kind, parse_kind::not_product);
  auto r = parse_product(R"({"id":1,"price":99999999.99})");
  ASSERT_EQ(r.kind, parse_kind::product);
  EXPECT_EQ(r.product->price_cents, 9'999'999'999);
  r = parse_product(R"({"id":1,"price":1,"rating":{"rate":1e12,"count":3000000000}})");
  ASSERT_EQ(r.kind, parse_kind::product);
  EXPECT_EQ(r.product->review_rate_cents, std::nullopt);
  EXPECT_EQ(r.product->review_count, std::nullopt);
}

TEST(parse_product, missing_or_partial_rating) {
  auto r = parse_product(R"({"id":9,"title":"t","price":5,"image":"i"})");
  ASSERT_EQ(r.kind, parse_kind::product);
  EXPECT_EQ(r.product->price_cents, 500);
  EXPECT_EQ(r.product->review_rate_cents, std::nullopt);
  EXPECT_EQ(r.product->review_count, std::nullopt);

  r = parse_product(R"({"id":9,"price":"12.5","rating":null})");
  ASSERT_EQ(r.kind, parse_kind::product);
  EXPECT_EQ(r.product->price_cents, 1250);
  EXPECT_EQ(r.product->review_rate_cents, std::nullopt);

  r = parse_product(R"({"id":9,"price":0.1,"rating":{"rate":4,"count":"many"}})");
  ASSERT_EQ(r.kind, parse_kind::product);
  EXPECT_EQ(r.product->price_cents, 10);
  EXPECT_EQ(r.product->review_rate_cents, 400);
  EXPECT_EQ(r.product->review_count, std::nullopt);
}

TEST(parse_product_list, rejects_non_arrays_and_skips_non_products) {
  int skipped = 0;
  EXPECT_FALSE(parse_product_list("{}", skipped));
  EXPECT_FALSE(parse_product_list("", skipped));
  const auto list = parse_product_list(R"([{"id":1},null,{"title":"x"},{"id":2}])", skipped);
  ASSERT_TRUE(list);
  EXPECT_EQ(list->size(), 2u);
  EXPECT_EQ(skipped, 2);
  // The warm-up's list: one product priced past what the cache holds is skipped, the rest kept.
  skipped = 0;
  const auto warm = parse_product_list(R"([{"id":1,"price":3},{"id":2,"price":1e9},{"id":3,"price":4}])", skipped);
  ASSERT_TRUE(warm);
  EXPECT_EQ(warm->size(), 2u);
  EXPECT_EQ(skipped, 1);
}

// ---------------------------------------------------------------------------------------------
// A scripted HTTP/1.1 server on 127.0.0.1:0, one thread, keep-alive.

struct plan {
  unsigned status = 200;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  int delay_ms = 0;
  bool hang = false;        // never answer
  bool drop_after = false;  // answer (claiming keep-alive), then close the socket
};

plan reply(unsigned status, std::string body, std::vector<std::pair<std::string, std::string>> headers = {}) {
  plan p;
  p.status = status;
  p.body = std::move(body);
  p.headers = std::move(headers);
  return p;
}

plan hang_forever() {
  plan p;
  p.hang = true;
  return p;
}

// The n-th request (1-based) and its target → what to answer.
using script = std::function<plan(int n, const std::string& target)>;

std::string product_json(std::int64_t id) {
  return R"({"id":)" + std::to_string(id) + R"(,"title":"Product )" + std::to_string(id) +
         R"(","price":12.34,"image":"https://img/)" + std::to_string(id) + R"(.png","rating":{"rate":4.5,"count":7}})";
}

// The id at the end of "/.../products/{id}", or 0.
std::int64_t id_of(const std::string& target) {
  const auto slash = target.rfind('/');
  return std::atoll(target.c_str() + slash + 1);
}

plan ok_product(const std::string& target) {
  return reply(200, product_json(id_of(target)));
}

class scripted_server {
 public:
  explicit scripted_server(script s)
      : script_(std::move(s)),
        acceptor_(ioc_, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0)),
        port_(acceptor_.local_endpoint().port()) {
    net::co_spawn(ioc_, accept_loop(), net::detached);
    thread_ = std::thread([this] { ioc_.run(); });
  }
  ~scripted_server() {
    ioc_.stop();
    thread_.join();
  }

  std::string url(const std::string& scheme = "http", const std::string& prefix = "") const {
    return scheme + "://127.0.0.1:" + std::to_string(port_) + prefix;
  }
  int calls() const { return calls_.load(); }
  int connections() const { return connections_.load(); }
  int max_in_flight() const { return max_in_flight_.load(); }
  std::vector<std::string> targets() const {
    std::lock_guard lk(mu_);
    return targets_;
  }

 private:
  net::awaitable<void> accept_loop() {
    for (;;) {
      auto socket = co_await acceptor_.async_accept(net::use_awaitable);
      ++connections_;
      net::co_spawn(ioc_, session(std::move(socket)), net::detached);
    }
  }

  net::awaitable<void> session(tcp::socket socket) {
    beast::flat_buffer buffer;
    boost::system::error_code ec;
    for (;;) {
      http::request<http::string_body> req;
      co_await http::async_read(socket, buffer, req, net::redirect_error(net::use_awaitable, ec));
      if (ec) co_return;  // closed, or not HTTP (e.g. a TLS ClientHello)
      const std::string target(req.target());
      {
        std::lock_guard lk(mu_);
        targets_.push_back(target);
      }
      const plan p = script_(++calls_, target);
      max_in_flight_.store(std::max(max_in_flight_.load(), ++in_flight_));
      net::steady_timer timer(ioc_);
      if (p.hang) {
        timer.expires_after(1h);
        co_await timer.async_wait(net::redirect_error(net::use_awaitable, ec));
        co_return;
      }
      if (p.delay_ms > 0) {
        timer.expires_after(std::chrono::milliseconds(p.delay_ms));
        co_await timer.async_wait(net::redirect_error(net::use_awaitable, ec));
      }
      http::response<http::string_body> res{static_cast<http::status>(p.status), 11};
      res.set(http::field::content_type, "application/json");
      for (const auto& [name, value] : p.headers) res.set(name, value);
      res.body() = p.body;
      res.keep_alive(req.keep_alive());
      res.prepare_payload();
      --in_flight_;
      co_await http::async_write(socket, res, net::redirect_error(net::use_awaitable, ec));
      if (ec || p.drop_after || !res.keep_alive()) {
        socket.close(ec);
        co_return;
      }
    }
  }

  script script_;
  net::io_context ioc_;
  tcp::acceptor acceptor_;
  unsigned short port_;
  std::thread thread_;
  std::atomic<int> calls_{0}, connections_{0}, in_flight_{0}, max_in_flight_{0};
  mutable std::mutex mu_;
  std::vector<std::string> targets_;
};

// The client runs on an io_context driven by two threads, as in the service.
class catalog_client : public ::testing::Test {
 protected:
  void SetUp() override {
    for (int i = 0; i < 2; ++i) threads_.emplace_back([this] { ioc_.run(); });
  }
  void TearDown() override {
    work_.reset();
    ioc_.stop();
    for (auto& t : threads_) t.join();
  }

  client_options options(const std::string& base) {
    client_options o;
    o.base_url = base;
    o.timeout = 2s;
    o.max_retries = 3;
    o.max_concurrency = 10;
    o.backoff_base_s = 0.01;  // keeps the retry tests fast; the schedule itself is tested above
    o.backoff_cap_s = 0.02;
    o.log = [this](std::string_view m, const log_context& ctx) {
      std::lock_guard lk(log_mu_);
      logs_.emplace_back(m);
      log_ids_.push_back(ctx.correlation_id);
    };
    return o;
  }

  template <class T>
  T run(net::awaitable<T> a) {
    return net::co_spawn(ioc_, std::move(a), net::use_future).get();
  }

  std::size_t log_count() {
    std::lock_guard lk(log_mu_);
    return logs_.size();
  }
  std::vector<std::string> logs() {
    std::lock_guard lk(log_mu_);
    return logs_;
  }
  std::vector<std::string> log_ids() {
    std::lock_guard lk(log_mu_);
    return log_ids_;
  }

  net::io_context ioc_;
  net::executor_work_guard<net::io_context::executor_type> work_ = net::make_work_guard(ioc_);
  std::vector<std::thread> threads_;
  fav::util::metrics metrics_;
  std::mutex log_mu_;
  std::vector<std::string> logs_;
  std::vector<std::string> log_ids_;
};

TEST_F(catalog_client, concurrent_fetches_of_one_id_share_one_call) {
  scripted_server server([](int, const std::string& t) {
    plan p = ok_product(t);
    p.delay_ms = 300;  // long enough for all ten callers to join
    return p;
  });
  client c(ioc_.get_executor(), options(server.url()), metrics_);
  std::vector<std::future<fetch_result>> results;
  for (int i = 0; i < 10; ++i) results.push_back(net::co_spawn(ioc_, c.fetch_product(5), net::use_future));
  for (auto& f : results) {
    const auto r = f.get();
    ASSERT_EQ(r.status, fetch_status::found);
    EXPECT_EQ(r.product->id, 5);
    EXPECT_EQ(r.product->price_cents, 1234);
  }
  EXPECT_EQ(server.calls(), 1);
  EXPECT_EQ(metrics_.singleflight_joins.load(), 9u);
  EXPECT_EQ(metrics_.catalog_ok.load(), 1u);
  // Once the flight has landed, a new call fetches again (no result is kept around).
  EXPECT_EQ(run(c.fetch_product(5)).status, fetch_status::found);
  EXPECT_EQ(server.calls(), 2);
}

// The single-flight window: a caller that read the product cache just before the first answer
// was saved, and asks just after its flight landed, shares that answer instead of a second call.
TEST_F(catalog_client, a_product_found_a_moment_ago_is_shared_for_linger) {
  scripted_server server([](int, const std::string& t) { return ok_product(t); });
  auto opts = options(server.url());
  opts.linger = 60s;  // longer than this test: the expiry itself is expiring_map's test
  client c(ioc_.get_executor(), opts, metrics_);
  const auto none = steady_clock::time_point::max();
  ASSERT_EQ(run(c.fetch_product(5)).status, fetch_status::found);
  const auto again = run(c.fetch_product(5, {}, none, none, true));
  ASSERT_EQ(again.status, fetch_status::found);
  EXPECT_EQ(again.product->price_cents, 1234);
  EXPECT_EQ(server.calls(), 1);
  EXPECT_EQ(metrics_.singleflight_joins.load(), 1u);
  // A caller that does not ask to share (a refresh of a stale row) is answered by the catalog.
  ASSERT_EQ(run(c.fetch_product(5)).status, fetch_status::found);
  EXPECT_EQ(server.calls(), 2);
  // Only found products linger: another id is asked for.
  ASSERT_EQ(run(c.fetch_product(6, {}, none, none, true)).status, fetch_status::found);
  EXPECT_EQ(server.calls(), 3);
}

TEST(client_options, linger_is_a_tenth_of_the_soft_ttl_at_most_a_second) {
  fav::util::config cfg;
  cfg.catalog_base_url = "http://127.0.0.1:1";
  cfg.cache_soft_ttl = 300s;
  EXPECT_EQ(options_from(cfg).linger, 1s);
  cfg.cache_soft_ttl = 1s;
  EXPECT_EQ(options_from(cfg).linger, 100ms);
  cfg.cache_soft_ttl = 0s;
  EXPECT_EQ(options_from(cfg).linger, 0s);
}

TEST_F(catalog_client, server_errors_are_retried_until_success) {
  scripted_server server([](int n, const std::string& t) { return n <= 2 ? reply(500, "oops") : ok_product(t); });
  client c(ioc_.get_executor(), options(server.url()), metrics_);
  const auto r = run(c.fetch_product(3));
  ASSERT_EQ(r.status, fetch_status::found);
  EXPECT_EQ(r.product->id, 3);
  EXPECT_EQ(server.calls(), 3);
  EXPECT_EQ(metrics_.catalog_retry.load(), 2u);
  EXPECT_EQ(metrics_.catalog_ok.load(), 1u);
  EXPECT_EQ(metrics_.catalog_failure.load(), 0u);
}

TEST_F(catalog_client, retries_run_out) {
  scripted_server server([](int, const std::string&) { return reply(502, ""); });
  auto o = options(server.url());
  o.max_retries = 2;
  client c(ioc_.get_executor(), o, metrics_);
  const auto r = run(c.fetch_product(3, log_context{"req-7", {}}));
  EXPECT_EQ(r.status, fetch_status::unavailable);
  EXPECT_GE(r.retry_after_s, 1);
  EXPECT_EQ(server.calls(), 3);
  EXPECT_EQ(metrics_.catalog_retry.load(), 2u);
  EXPECT_EQ(metrics_.catalog_failure.load(), 1u);
  // The final failure is logged by the client, with the request's correlation id.
  ASSERT_EQ(logs().size(), 1u);
  EXPECT_NE(logs()[0].find("failed after 3 attempt(s)"), std::string::npos) << logs()[0];
  EXPECT_EQ(log_ids()[0], "req-7");
}

TEST_F(catalog_client, a_hanging_server_times_out_each_attempt) {
  scripted_server server([](int, const std::string&) { return hang_forever(); });
  auto o = options(server.url());
  o.timeout = 200ms;
  o.max_retries = 2;
  client c(ioc_.get_executor(), o, metrics_);
  const auto start = std::chrono::steady_clock::now();
  const auto r = run(c.fetch_product(8));
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(r.status, fetch_status::unavailable);
  EXPECT_EQ(server.calls(), 3);
  EXPECT_GE(elapsed, 0.55);
  EXPECT_LE(elapsed, 0.2 * 3 + 0.02 * 2 + 1.0);  // timeout·(retries+1) + backoff + slack for a busy CI
  EXPECT_EQ(metrics_.catalog_failure.load(), 1u);
}

TEST_F(catalog_client, not_found_404_is_not_retried) {
  scripted_server server([](int, const std::string&) { return reply(404, R"({"detail":"nope"})"); });
  client c(ioc_.get_executor(), options(server.url()), metrics_);
  const auto r = run(c.fetch_product(999));
  EXPECT_EQ(r.status, fetch_status::not_found);
  EXPECT_FALSE(r.product);
  EXPECT_EQ(server.calls(), 1);
  EXPECT_EQ(metrics_.catalog_not_found.load(), 1u);
  EXPECT_EQ(metrics_.catalog_retry.load(), 0u);
}

TEST_F(catalog_client, bodies_that_are_not_products_mean_not_found) {
  // Per id: 1 empty, 2 null, 3 array, 4 object without id, 5 garbage, 6 another product's id.
  scripted_server server([](int, const std::string& t) {
    switch (id_of(t)) {
      case 1: return reply(200, "");
      case 2: return reply(200, "null");
      case 3: return reply(200, "[]");
      case 4: return reply(200, R"({"title":"x"})");
      case 5: return reply(200, "<html>");
      default: return reply(200, product_json(77));
    }
  });
  client c(ioc_.get_executor(), options(server.url()), metrics_);
  for (std::int64_t id = 1; id <= 6; ++id) {
    const auto before = log_count();
    const auto r = run(c.fetch_product(id, log_context{"id-" + std::to_string(id), {}}));
    EXPECT_EQ(r.status, fetch_status::not_found) << id;
    // Only non-products are logged, with the request's correlation id.
    EXPECT_EQ(log_count() - before, id <= 2 ? 0u : 1u) << id;
    if (id > 2) {
      EXPECT_EQ(log_ids().back(), "id-" + std::to_string(id));
    }
  }
  EXPECT_EQ(server.calls(), 6);
  EXPECT_EQ(metrics_.catalog_not_found.load(), 6u);
}

TEST_F(catalog_client, other_4xx_is_unavailable_without_retry) {
  scripted_server server([](int, const std::string&) { return reply(400, "bad"); });
  client c(ioc_.get_executor(), options(server.url()), metrics_);
  EXPECT_EQ(run(c.fetch_product(1)).status, fetch_status::unavailable);
  EXPECT_EQ(server.calls(), 1);
  EXPECT_EQ(metrics_.catalog_failure.load(), 1u);
}

TEST_F(catalog_client, retry_after_is_honoured_or_passed_on) {
  // Within the cap: waited for, then retried.
  scripted_server server([](int n, const std::string& t) {
    if (id_of(t) == 1 && n == 1) return reply(429, "", {{"Retry-After", "0"}});
    if (id_of(t) == 2) return reply(503, "", {{"Retry-After", "100"}});
    return ok_product(t);
  });
  client c(ioc_.get_executor(), options(server.url()), metrics_);
  EXPECT_EQ(run(c.fetch_product(1)).status, fetch_status::found);
  EXPECT_EQ(server.calls(), 2);
  // Beyond the cap: no retry, the catalog's own hint goes back to the caller.
  const auto r = run(c.fetch_product(2));
  EXPECT_EQ(r.status, fetch_status::unavailable);
  EXPECT_EQ(r.retry_after_s, 100);
  EXPECT_EQ(server.calls(), 3);
}

TEST_F(catalog_client, https_to_a_plain_server_is_unavailable) {
  scripted_server server([](int, const std::string& t) { return ok_product(t); });
  auto o = options(server.url("https"));
  o.max_retries = 1;
  client c(ioc_.get_executor(), o, metrics_);
  const auto r = run(c.fetch_product(1));
  EXPECT_EQ(r.status, fetch_status::unavailable);
  EXPECT_EQ(server.calls(), 0);
}

TEST_F(catalog_client, connections_are_kept_alive_and_reused) {
  scripted_server server([](int, const std::string& t) { return ok_product(t); });
  client c(ioc_.get_executor(), options(server.url()), metrics_);
  for (std::int64_t id = 1; id <= 3; ++id) EXPECT_EQ(run(c.fetch_product(id)).status, fetch_status::found);
  EXPECT_EQ(server.calls(), 3);
  EXPECT_EQ(server.connections(), 1);
}

TEST_F(catalog_client, a_connection_closed_by_the_server_is_replaced_once) {
  scripted_server server([](int n, const std::string& t) {
    plan p = ok_product(t);
    p.drop_after = n == 1;  // the pooled connection is dead by the time it is reused
    return p;
  });
  client c(ioc_.get_executor(), options(server.url()), metrics_);
  EXPECT_EQ(run(c.fetch_product(1)).status, fetch_status::found);
  EXPECT_EQ(run(c.fetch_product(2)).status, fetch_status::found);
  EXPECT_EQ(server.calls(), 2);
  EXPECT_EQ(server.connections(), 2);
  EXPECT_EQ(metrics_.catalog_retry.load(), 0u);  // a reconnect is not a retry
}

TEST_F(catalog_client, base_url_path_prefix_is_kept) {
  scripted_server server([](int, const std::string& t) { return ok_product(t); });
  client c(ioc_.get_executor(), options(server.url("http", "/api/v1/")), metrics_);
  EXPECT_EQ(run(c.fetch_product(7)).status, fetch_status::found);
  ASSERT_EQ(server.targets().size(), 1u);
  EXPECT_EQ(server.targets()[0], "/api/v1/products/7");
}

TEST_F(catalog_client, concurrency_is_capped) {
  scripted_server server([](int, const std::string& t) {
    plan p = ok_product(t);
    p.delay_ms = 100;
    return p;
  });
  auto o = options(server.url());
  o.max_concurrency = 2;
  client c(ioc_.get_executor(), o, metrics_);
  std::vector<std::future<fetch_result>> results;
  for (std::int64_t id = 1; id <= 6; ++id) results.push_back(net::co_spawn(ioc_, c.fetch_product(id), net::use_future));
  for (auto& f : results) EXPECT_EQ(f.get().status, fetch_status::found);
  EXPECT_EQ(server.calls(), 6);
  EXPECT_EQ(server.max_in_flight(), 2);
  EXPECT_LE(server.connections(), 2);
}

TEST_F(catalog_client, fetch_all_reads_the_whole_catalog) {
  std::string catalog = fakestore_file();
  if (catalog.empty()) catalog = "[" + product_json(1) + "," + product_json(2) + "]";
  const auto expected = json::parse(catalog).as_array().size();
  scripted_server server(
      [&](int, const std::string& t) { return t == "/products" ? reply(200, catalog) : reply(404, ""); });
  client c(ioc_.get_executor(), options(server.url()), metrics_);
  const auto all = run(c.fetch_all());
  ASSERT_TRUE(all);
  EXPECT_EQ(all->size(), expected);
}

TEST_F(catalog_client, fetch_all_fails_on_a_non_array) {
  scripted_server server([](int, const std::string&) { return reply(200, "{}"); });
  client c(ioc_.get_executor(), options(server.url()), metrics_);
  EXPECT_FALSE(run(c.fetch_all()));
  EXPECT_EQ(server.calls(), 1);
}

TEST_F(catalog_client, after_shutdown_calls_fail_fast) {
  scripted_server server([](int, const std::string& t) { return ok_product(t); });
  client c(ioc_.get_executor(), options(server.url()), metrics_);
  EXPECT_EQ(run(c.fetch_product(1)).status, fetch_status::found);
  c.shutdown();
  EXPECT_EQ(run(c.fetch_product(2)).status, fetch_status::unavailable);
  EXPECT_EQ(server.calls(), 1);
}

TEST_F(catalog_client, bad_base_urls_are_rejected_at_construction) {
  for (const char* bad : {"", "fakestoreapi.com", "ftp://host", "http://", "not a url"})
    EXPECT_THROW(client(ioc_.get_executor(), options(bad), metrics_), std::invalid_argument) << bad;
  EXPECT_NO_THROW(client(ioc_.get_executor(), options("https://fakestoreapi.com"), metrics_));
  EXPECT_NO_THROW(client(ioc_.get_executor(), options("http://[::1]:8080/x"), metrics_));
}

// ---------------------------------------------------------------------------------------------
// The product cache (contract §4) over a real SQLite file and the scripted catalog, with an
// injected clock: every age below is a plain number, nothing sleeps to let a TTL pass.

constexpr fav::core::micros second = 1'000'000;
constexpr fav::core::micros t0 = 1'800'000'000 * second;  // when the cached rows were fetched

class product_cache_test : public catalog_client {
 protected:
  void SetUp() override {
    catalog_client::SetUp();
    dir_ = std::filesystem::temp_directory_path() / ("fav-product-cache-" + std::to_string(::getpid()) + "-" +
                                                     ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    db_ = fav::store::make_sqlite_store(ioc_.get_executor(), (dir_ / "cache.db").string(), 1);
    run(db_->migrate());
    cfg_.cache_soft_ttl = 5min;
    cfg_.cache_hard_ttl = 30min;
  }
  void TearDown() override {
    // Background refreshes end before the store and the client go away.
    drained(5s);
    cache_.reset();
    client_.reset();
    db_.reset();
    catalog_client::TearDown();
    std::filesystem::remove_all(dir_);
  }

  product_cache& cache(const std::string& url, fav::store::change_feed* feed = nullptr) {
    client_ = std::make_unique<client>(ioc_.get_executor(), options(url), metrics_);
    cache_ = std::make_unique<product_cache>(
        *db_, *client_, cfg_, metrics_, bg_, ioc_.get_executor(), [this] { return now_.load(); },
        std::function<void(std::string_view)>(), feed);
    return *cache_;
  }
  // A customer in the database, for favoritings.
  fav::core::customer_id customer() {
    fav::core::customer c;
    c.id = fav::util::uuid_v4();
    c.name = "Fan";
    c.email = c.id + "@example.com";
    c.password_hash = "x";
    c.created_at = c.updated_at = t0;
    EXPECT_TRUE(run(db_->insert_customer(c)));
    return *fav::core::customer_id::parse(c.id);
  }

  // A cached row for `id`, fetched at t0, titled "cached".
  void seed(std::int64_t id) {
    fav::core::product p;
    p.id = id;
    p.title = "cached";
    p.price_cents = 100;
    p.fetched_at = t0;
    run(db_->upsert_products(std::vector<fav::core::product>(1, p)));
  }
  std::vector<fav::core::favorite> favorites_of(std::int64_t id) {
    fav::core::favorite f;
    f.product_id = id;
    f.cached = run(db_->get_cached_product(id));
    return {f};
  }
  // Waits (bounded) for the background refreshes to end: an event, not the passing of a TTL.
  void drain() { ASSERT_TRUE(drained(5s)); }
  bool drained(std::chrono::steady_clock::duration bound) {
    return run(fav::util::with_timeout(bg_.async_wait(net::use_awaitable), bound));
  }
  void at_age(double seconds) { now_.store(t0 + static_cast<fav::core::micros>(seconds * second)); }

  std::filesystem::path dir_;
  std::unique_ptr<fav::store::store> db_;
  fav::util::config cfg_;
  fav::util::task_group bg_{ioc_.get_executor()};
  std::atomic<fav::core::micros> now_{t0};
  std::unique_ptr<client> client_;
  std::unique_ptr<product_cache> cache_;
};

// "Age ≤ soft TTL (PRODUCT_CACHE_SOFT_TTL_MINUTES, default 5): served as is."
TEST_F(product_cache_test, fresh_is_served_as_is) {
  scripted_server server([](int, const std::string& t) { return ok_product(t); });
  auto& c = cache(server.url());
  seed(1);
  at_age(300);  // exactly the soft TTL: still fresh
  const auto r = run(c.get_for_favorite(1, {}));
  ASSERT_EQ(r.status, fetch_status::found);
  EXPECT_EQ(r.product->title, "cached");
  const auto listed = run(c.resolve(favorites_of(1)));
  EXPECT_EQ(listed[0]->title, "cached");
  drain();
  EXPECT_EQ(server.calls(), 0);
}

// "Soft < age ≤ hard TTL: served as is and refreshed in the background (at most one refresh per
// product at a time)."
TEST_F(product_cache_test, stale_listing_is_served_and_refreshed_once) {
  scripted_server server([](int, const std::string& t) {
    plan p = ok_product(t);
    p.delay_ms = 300;  // the refresh is still running while the other listings arrive
    return p;
  });
  auto& c = cache(server.url());
  seed(2);
  at_age(301);
  const auto favs = favorites_of(2);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(run(c.resolve(favs))[0]->title, "cached") << i;
  drain();
  EXPECT_EQ(server.calls(), 1);
  EXPECT_EQ(metrics_.background_refreshes.load(), 1u);
  const auto row = run(db_->get_cached_product(2));
  EXPECT_EQ(row->title, "Product 2");
  EXPECT_EQ(row->fetched_at, t0 + 301 * second);  // stamped with the injected clock
}

// "Favoriting a product with a stale entry refreshes it."
TEST_F(product_cache_test, stale_favoriting_refreshes_before_answering) {
  scripted_server server([](int, const std::string& t) { return ok_product(t); });
  auto& c = cache(server.url());
  seed(3);
  at_age(1800);  // the hard TTL itself is still stale
  const auto r = run(c.get_for_favorite(3, {}));
  ASSERT_EQ(r.status, fetch_status::found);
  EXPECT_EQ(r.product->title, "Product 3");
  EXPECT_EQ(server.calls(), 1);
}

// A favoriting answered from the row it read (or the one it fetched and stored), then from memory
// while that row is fresh: the next favoriting of the product sends only the insert. The memory
// follows the change feed: a product another instance refreshed ("p:<id>") is read again, and
// nothing is trusted while the feed is down. The insert's outcome stays the database's.
TEST_F(product_cache_test, favoriting_a_product_held_fresh_sends_only_the_insert) {
  scripted_server server([](int, const std::string& t) { return ok_product(t); });
  fav::store::change_feed feed(true);
  auto& c = cache(server.url(), &feed);
  using outcome = favoriting::outcome;
  seed(40);
  at_age(10);
  const auto a = customer(), b = customer(), d = customer();
  auto f = run(c.favorite(a, 40, {}));
  ASSERT_EQ(f.what, outcome::added);
  EXPECT_EQ(f.product->title, "cached");
  EXPECT_EQ(f.favorited_at, t0 + 10 * second);
  // The row changes behind the instance's back (no notification): the memory answers.
  fav::core::product other;
  other.id = 40;
  other.title = "changed";
  other.price_cents = 200;
  other.fetched_at = t0 + 5 * second;
  run(db_->upsert_products(std::vector<fav::core::product>(1, other)));
  f = run(c.favorite(b, 40, {}));
  ASSERT_EQ(f.what, outcome::added);
  EXPECT_EQ(f.product->title, "cached") << "the favoriting read the row again";
  EXPECT_EQ(run(c.favorite(b, 40, {})).what, outcome::duplicate) << "a duplicate is the insert's answer";
  // Another instance refreshed it: read again.
  feed.publish({fav::store::change::kind::product, "40"});
  f = run(c.favorite(d, 40, {}));
  ASSERT_EQ(f.what, outcome::added);
  EXPECT_EQ(f.product->title, "changed");
  // The feed down: the memory is not trusted (the row read again each time).
  run(db_->delete_favorite(d, 40));
  other.title = "changed again";
  run(db_->upsert_products(std::vector<fav::core::product>(1, other)));
  feed.set_down();
  f = run(c.favorite(d, 40, {}));
  ASSERT_EQ(f.what, outcome::added);
  EXPECT_EQ(f.product->title, "changed again");
  // No longer fresh: read again, refreshed from the catalog, the row stored with the favorite.
  feed.set_up();
  at_age(400);  // the row (fetched at 5 s) is stale
  const auto e = customer();
  f = run(c.favorite(e, 40, {}));
  ASSERT_EQ(f.what, outcome::added);
  EXPECT_EQ(f.product->title, "Product 40");
  EXPECT_EQ(run(db_->get_cached_product(40))->title, "Product 40");
  EXPECT_EQ(server.calls(), 1);
  EXPECT_EQ(run(c.favorite(e, 40, {})).what, outcome::duplicate);
  EXPECT_EQ(server.calls(), 1);
}

// "Age > hard TTL or absent: fetched before answering."
TEST_F(product_cache_test, expired_or_absent_is_fetched_first) {
  scripted_server server([](int, const std::string& t) { return ok_product(t); });
  auto& c = cache(server.url());
  seed(4);
  at_age(1801);
  EXPECT_EQ(run(c.resolve(favorites_of(4)))[0]->title, "Product 4");
  EXPECT_EQ(server.calls(), 1);
  const auto absent = run(c.resolve(favorites_of(5)));
  EXPECT_EQ(absent[0]->title, "Product 5");
  EXPECT_EQ(server.calls(), 2);
  EXPECT_EQ(run(db_->get_cached_product(5))->fetched_at, t0 + 1801 * second);
}

// "When the catalog cannot be reached, a cached copy of any age is served rather than failing
// (favoriting it answers 201) ... items that cannot be fetched and were never cached are listed
// ... unavailable."
TEST_F(product_cache_test, stale_if_error_serves_any_age) {
  scripted_server server([](int, const std::string&) { return reply(500, "down"); });
  auto& c = cache(server.url());
  seed(6);
  at_age(10 * 86400);  // ten days old
  const auto r = run(c.get_for_favorite(6, {}));
  ASSERT_EQ(r.status, fetch_status::found);
  EXPECT_EQ(r.product->title, "cached");
  EXPECT_EQ(run(c.resolve(favorites_of(6)))[0]->title, "cached");
  const auto never = run(c.get_for_favorite(7, {}));
  EXPECT_EQ(never.status, fetch_status::unavailable);
  EXPECT_GE(never.retry_after_s, 1);
  EXPECT_FALSE(run(c.resolve(favorites_of(7)))[0].has_value());
}

// "A product that the catalog now says is gone stays in the customer's list with its last
// cached data, but cannot be favorited anew once its cache entry is past the hard TTL."
TEST_F(product_cache_test, gone_past_the_hard_ttl_cannot_be_favorited) {
  scripted_server server([](int, const std::string&) { return reply(404, ""); });
  auto& c = cache(server.url());
  seed(8);
  at_age(1000);  // stale: the cached copy still stands
  EXPECT_EQ(run(c.get_for_favorite(8, {})).status, fetch_status::found);
  at_age(1801);  // past the hard TTL
  EXPECT_EQ(run(c.get_for_favorite(8, {})).status, fetch_status::not_found);
  EXPECT_EQ(run(c.resolve(favorites_of(8)))[0]->title, "cached");             // still listed
  EXPECT_EQ(run(c.get_for_favorite(9, {})).status, fetch_status::not_found);  // never cached
}

// ---------------------------------------------------------------------------------------------
// Catalog admission (contract §8): the breaker and the missing-product memory, plain numbers.

// "After PRODUCT_CATALOG_BREAKER_FAILURES (default 5) consecutive failed lookups (after their
// retries) the catalog counts as down for PRODUCT_CATALOG_BREAKER_OPEN_SECONDS (default 30):
// lookups that need it answer 503 catalog_unavailable at once, with Retry-After = the time left;
// ... then one probe call decides whether it is back."
TEST(breaker, opens_after_consecutive_failures_and_one_probe_decides) {
  breaker b(5, 30);
  for (int i = 0; i < 4; ++i) {
    EXPECT_TRUE(b.admit(100).allowed);
    b.on_failure(100);
  }
  b.on_success();  // not consecutive any more
  for (int i = 0; i < 4; ++i) b.on_failure(101);
  EXPECT_FALSE(b.open(101));
  b.on_failure(102);  // the fifth in a row
  EXPECT_TRUE(b.open(102));
  auto d = b.admit(112);
  EXPECT_FALSE(d.allowed);
  EXPECT_DOUBLE_EQ(d.retry_after_s, 20);  // the time left
  // Time's up: exactly one probe.
  auto probe = b.admit(132);
  EXPECT_TRUE(probe.allowed);
  EXPECT_TRUE(probe.probe);
  EXPECT_FALSE(b.admit(132.5).allowed);
  // The probe fails: open again for the full period.
  b.on_failure(133);
  EXPECT_FALSE(b.admit(150).allowed);
  EXPECT_DOUBLE_EQ(b.admit(150).retry_after_s, 13);
  probe = b.admit(163);
  ASSERT_TRUE(probe.probe);
  b.on_success();  // the probe succeeds: closed
  EXPECT_TRUE(b.admit(163.1).allowed);
  EXPECT_FALSE(b.admit(163.1).probe);
  EXPECT_FALSE(b.open(163.1));
}

TEST(breaker, an_abandoned_probe_lets_the_next_lookup_probe) {
  breaker b(1, 10);
  b.on_failure(0);
  const auto probe = b.admit(10);
  ASSERT_TRUE(probe.probe);
  b.on_abandoned(probe);  // e.g. its deadline passed while it queued for a slot
  EXPECT_TRUE(b.admit(10.5).probe);
}

TEST(breaker, late_failures_of_lookups_admitted_earlier_do_not_extend_it) {
  breaker b(2, 10);
  b.on_failure(0);
  b.on_failure(1);  // open until 11
  b.on_failure(5);  // a lookup admitted before it opened
  EXPECT_DOUBLE_EQ(b.admit(6).retry_after_s, 5);
}

TEST(breaker, zero_failures_turns_it_off) {
  breaker b(0, 30);
  for (int i = 0; i < 100; ++i) b.on_failure(i);
  EXPECT_TRUE(b.admit(100).allowed);
  EXPECT_FALSE(b.open(100));
}

// "A product the catalog said does not exist is remembered as missing for
// PRODUCT_CACHE_MISSING_TTL_MINUTES (default 5)."
TEST(missing_products, remembered_for_the_ttl_then_forgotten) {
  missing_products m(300 * second, 10);
  m.remember(7, t0);
  EXPECT_TRUE(m.contains(7, t0 + 299 * second));
  EXPECT_FALSE(m.contains(8, t0));
  EXPECT_FALSE(m.contains(7, t0 + 300 * second));
  EXPECT_EQ(m.size(), 0u);  // the expired entry went
  m.remember(7, t0);
  m.forget(7);  // the catalog has it again
  EXPECT_FALSE(m.contains(7, t0));
}

TEST(expiring_map, a_value_until_its_ttl_then_gone) {
  expiring_map<std::string> m(2 * second, 10);
  m.put(1, "one", t0);
  EXPECT_EQ(m.get(1, t0 + 2 * second - 1), "one");
  EXPECT_EQ(m.get(2, t0), std::nullopt);
  EXPECT_EQ(m.get(1, t0 + 2 * second), std::nullopt);
  EXPECT_EQ(m.size(), 0u);
  m.put(1, "one", t0);
  m.put(1, "uno", t0 + second);  // replaced, with a new expiry
  EXPECT_EQ(m.get(1, t0 + 2 * second), "uno");
  EXPECT_EQ(m.size(), 1u);
}

TEST(missing_products, bounded_oldest_first) {
  missing_products m(300 * second, 3);
  for (std::int64_t id = 1; id <= 5; ++id) m.remember(id, t0 + id);
  EXPECT_EQ(m.size(), 3u);
  EXPECT_FALSE(m.contains(1, t0 + 10));
  EXPECT_FALSE(m.contains(2, t0 + 10));
  EXPECT_TRUE(m.contains(5, t0 + 10));
  missing_products off(0, 3);
  off.remember(1, t0);
  EXPECT_FALSE(off.contains(1, t0));
}

// "favoriting it again meanwhile answers 404 with no catalog call."
TEST_F(product_cache_test, a_missing_product_is_not_asked_for_again) {
  scripted_server server([](int, const std::string&) { return reply(404, ""); });
  auto& c = cache(server.url());
  EXPECT_EQ(run(c.get_for_favorite(20, {})).status, fetch_status::not_found);
  EXPECT_EQ(run(c.get_for_favorite(20, {})).status, fetch_status::not_found);
  EXPECT_FALSE(run(c.resolve(favorites_of(20)))[0].has_value());
  EXPECT_EQ(server.calls(), 1);
  EXPECT_EQ(metrics_.missing_cache_hits.load(), 2u);
  at_age(300);  // the memory lapses: asked again
  EXPECT_EQ(run(c.get_for_favorite(20, {})).status, fetch_status::not_found);
  EXPECT_EQ(server.calls(), 2);
}

// "A favoriting request never waits on the catalog, queueing for a slot included, longer than
// PRODUCT_CATALOG_REQUEST_DEADLINE_SECONDS."
TEST_F(product_cache_test, no_lookup_waits_past_the_request_deadline) {
  scripted_server server([](int, const std::string&) { return hang_forever(); });
  cfg_.catalog_request_deadline = 1s;  // the first lookup holds the only slot this long
  cfg_.catalog_max_concurrency = 1;
  auto o = options(server.url());
  o.max_concurrency = 1;  // the second lookup queues behind the first
  o.timeout = 5s;
  client_ = std::make_unique<client>(ioc_.get_executor(), o, metrics_);
  cache_ = std::make_unique<product_cache>(*db_, *client_, cfg_, metrics_, bg_, ioc_.get_executor(),
                                           [this] { return now_.load(); });
  auto a = net::co_spawn(ioc_, cache_->get_for_favorite(30, {}), net::use_future);
  // Once the first lookup is at the catalog (bounded wait for that event, not for time to
  // pass), the second starts with a shorter deadline that ends well before the slot is freed.
  for (int i = 0; i < 400 && server.calls() < 1; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ASSERT_EQ(server.calls(), 1);
  cfg_.catalog_request_deadline = 100ms;
  const auto start = std::chrono::steady_clock::now();
  auto b = net::co_spawn(ioc_, cache_->get_for_favorite(31, {}), net::use_future);
  const auto rb = b.get();
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(rb.status, fetch_status::unavailable);
  EXPECT_GE(rb.retry_after_s, 1);
  EXPECT_LT(elapsed, 0.1 + 0.8);  // its own deadline plus slack for a loaded machine, not 5 s
  EXPECT_EQ(server.calls(), 1);   // the queued one never reached the catalog
  EXPECT_EQ(a.get().status, fetch_status::unavailable);
}

// The client's breaker over the scripted catalog: open → unavailable at once, no call.
TEST_F(catalog_client, an_open_breaker_answers_at_once_without_a_call) {
  scripted_server server([](int, const std::string&) { return reply(500, "down"); });
  auto o = options(server.url());
  o.max_retries = 0;
  o.breaker_failures = 2;
  o.breaker_open_s = 30;
  client c(ioc_.get_executor(), o, metrics_);
  EXPECT_EQ(run(c.fetch_product(1)).status, fetch_status::unavailable);
  EXPECT_FALSE(c.breaker_open());
  EXPECT_EQ(run(c.fetch_product(2)).status, fetch_status::unavailable);
  EXPECT_TRUE(c.breaker_open());
  const auto start = std::chrono::steady_clock::now();
  const auto r = run(c.fetch_product(3));
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), 0.5);
  EXPECT_EQ(r.status, fetch_status::unavailable);
  EXPECT_GE(r.retry_after_s, 29);
  EXPECT_LE(r.retry_after_s, 30);
  EXPECT_EQ(server.calls(), 2);
  EXPECT_EQ(metrics_.catalog_breaker_refusals.load(), 1u);
}

TEST_F(catalog_client, too_many_products_at_once_are_refused) {
  scripted_server server([](int, const std::string& t) {
    plan p = ok_product(t);
    p.delay_ms = 300;
    return p;
  });
  auto o = options(server.url());
  o.max_flights = 2;
  client c(ioc_.get_executor(), o, metrics_);
  auto a = net::co_spawn(ioc_, c.fetch_product(1), net::use_future);
  auto b = net::co_spawn(ioc_, c.fetch_product(2), net::use_future);
  // Both flights started (an event, polled with a bound).
  for (int i = 0; i < 1000 && server.calls() < 2; ++i) std::this_thread::sleep_for(1ms);
  ASSERT_EQ(server.calls(), 2);
  const auto refused = run(c.fetch_product(3));
  EXPECT_EQ(refused.status, fetch_status::unavailable);
  EXPECT_EQ(refused.retry_after_s, 1);
  EXPECT_EQ(run(c.fetch_product(1)).status, fetch_status::found);  // joining an existing flight is fine
  EXPECT_EQ(a.get().status, fetch_status::found);
  EXPECT_EQ(b.get().status, fetch_status::found);
}

// ---------------------------------------------------------------------------------------------
// Per-customer shares (contract §8 "Fair shares"): "one customer's favoritings hold at most
// `PRODUCT_CATALOG_MAX_CONCURRENCY_PER_CUSTOMER` (default 2) catalog lookups at once; its other
// lookups wait (within the request deadline) for its own share, and other customers' lookups
// never wait behind them."

std::shared_ptr<customer_shares::waiter> counting_waiter(std::atomic<int>& woken) {
  auto w = std::make_shared<customer_shares::waiter>();
  w->wake = [&woken] { ++woken; };
  return w;
}

TEST(customer_shares, a_customer_waits_for_its_own_share_only) {
  customer_shares shares(2, 100, 100);
  std::atomic<int> woken{0};
  auto w1 = counting_waiter(woken), w2 = counting_waiter(woken), other = counting_waiter(woken);
  EXPECT_EQ(shares.take("a", w1), customer_shares::take_result::granted);
  EXPECT_EQ(shares.take("a", w1), customer_shares::take_result::granted);
  EXPECT_EQ(shares.take("a", w1), customer_shares::take_result::waiting);
  EXPECT_EQ(shares.take("a", w2), customer_shares::take_result::waiting);
  EXPECT_EQ(shares.take("b", other), customer_shares::take_result::granted);  // never behind "a"
  EXPECT_EQ(shares.customers(), 2u);
  // A share given back goes to "a"'s oldest waiter.
  shares.give_back("a");
  EXPECT_EQ(woken.load(), 1);
  EXPECT_TRUE(w1->granted);
  EXPECT_FALSE(w2->granted);
  // The second waiter's deadline comes: it leaves holding nothing.
  EXPECT_TRUE(shares.withdraw("a", w2));
  shares.give_back("a");
  shares.give_back("a");
  EXPECT_EQ(woken.load(), 1);
  shares.give_back("b");
  EXPECT_EQ(shares.customers(), 0u);  // idle entries go
}

TEST(customer_shares, a_share_handed_over_as_the_deadline_came_is_held) {
  customer_shares shares(1, 100, 100);
  std::atomic<int> woken{0};
  auto w = counting_waiter(woken), next = counting_waiter(woken);
  EXPECT_EQ(shares.take("a", w), customer_shares::take_result::granted);
  EXPECT_EQ(shares.take("a", w), customer_shares::take_result::waiting);
  EXPECT_EQ(shares.take("a", next), customer_shares::take_result::waiting);
  shares.give_back("a");                  // handed to w...
  EXPECT_FALSE(shares.withdraw("a", w));  // ...whose deadline came meanwhile: it holds the share
  shares.give_back("a");                  // and passes it on
  EXPECT_TRUE(next->granted);
  shares.give_back("a");
  EXPECT_EQ(shares.customers(), 0u);
}

TEST(customer_shares, bounded_in_customers_and_waiters) {
  customer_shares shares(1, 2, 1);
  std::atomic<int> woken{0};
  auto w = counting_waiter(woken);
  EXPECT_EQ(shares.take("a", w), customer_shares::take_result::granted);
  EXPECT_EQ(shares.take("b", w), customer_shares::take_result::granted);
  EXPECT_EQ(shares.take("c", w), customer_shares::take_result::refused);  // two customers at most
  EXPECT_EQ(shares.take("a", w), customer_shares::take_result::waiting);
  EXPECT_EQ(shares.take("a", w), customer_shares::take_result::refused);  // one waiter at most
  EXPECT_EQ(shares.customers(), 2u);
}

// The client end to end: one customer's lookups hold at most its shares of the catalog's slots,
// and another customer's lookup goes first.
TEST_F(catalog_client, one_customer_holds_at_most_its_shares) {
  scripted_server server([](int, const std::string& t) {
    plan p = ok_product(t);
    p.delay_ms = 300;
    return p;
  });
  auto o = options(server.url());
  o.max_concurrency = 4;
  o.max_concurrency_per_customer = 2;
  client c(ioc_.get_executor(), o, metrics_);
  const auto none = steady_clock::time_point::max();
  const auto deadline = steady_clock::now() + 10s;
  std::vector<std::future<fetch_result>> flood;
  for (std::int64_t id = 1; id <= 12; ++id)
    flood.push_back(net::co_spawn(ioc_, c.fetch_product(id, {}, deadline, none, false, "a"), net::use_future));
  for (int i = 0; i < 1000 && server.calls() < 2; ++i) std::this_thread::sleep_for(1ms);
  ASSERT_EQ(server.calls(), 2);
  const auto start = steady_clock::now();
  EXPECT_EQ(run(c.fetch_product(100, {}, deadline, none, false, "b")).status, fetch_status::found);
  const double waited = std::chrono::duration<double>(steady_clock::now() - start).count();
  // One call's time with slack for a loaded machine; behind "a"'s flood it would be ≥ 1.2 s.
  EXPECT_LT(waited, 0.8);
  for (auto& f : flood) EXPECT_EQ(f.get().status, fetch_status::found);
  EXPECT_LE(server.max_in_flight(), 3);  // "a"'s two and "b"'s one, never all four slots
  EXPECT_EQ(server.calls(), 13);
}

TEST_F(catalog_client, a_customer_waiting_past_the_deadline_is_unavailable_and_not_a_failure) {
  scripted_server server([](int, const std::string&) { return hang_forever(); });
  auto o = options(server.url());
  o.max_concurrency_per_customer = 1;
  o.max_retries = 0;
  o.timeout = 5s;
  o.breaker_failures = 1;  // one failed lookup would open it
  client c(ioc_.get_executor(), o, metrics_);
  const auto none = steady_clock::time_point::max();
  const auto deadline = steady_clock::now() + 300ms;
  auto held = net::co_spawn(ioc_, c.fetch_product(1, {}, deadline, none, false, "a"), net::use_future);
  const auto start = steady_clock::now();
  const auto r = run(c.fetch_product(2, {}, deadline, none, false, "a"));
  EXPECT_EQ(r.status, fetch_status::unavailable);
  EXPECT_GE(r.retry_after_s, 1);
  EXPECT_LT(std::chrono::duration<double>(steady_clock::now() - start).count(), 0.3 + 0.8);
  // The first lookup was cut by the request's deadline while the catalog still had 5 s: the
  // catalog did not fail, so the breaker stays closed.
  EXPECT_EQ(held.get().status, fetch_status::unavailable);
  EXPECT_EQ(server.calls(), 1);
  EXPECT_FALSE(c.breaker_open());
}

TEST_F(catalog_client, the_catalogs_own_timeout_is_a_failure) {
  scripted_server server([](int, const std::string&) { return hang_forever(); });
  auto o = options(server.url());
  o.max_retries = 0;
  o.timeout = 200ms;  // the catalog's own timeout comes before the request's deadline
  o.breaker_failures = 1;
  client c(ioc_.get_executor(), o, metrics_);
  const auto deadline = steady_clock::now() + 5s;
  EXPECT_EQ(run(c.fetch_product(1, {}, deadline, steady_clock::time_point::max(), false, "a")).status,
            fetch_status::unavailable);
  EXPECT_TRUE(c.breaker_open());
}

}  // namespace
