// See sign_in_sweep.hpp.
#include "auth/sign_in_sweep.hpp"

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>

#include "util/log.hpp"
#include "util/time.hpp"

namespace fav::auth {
namespace {

namespace net = boost::asio;
using steady = std::chrono::steady_clock;

net::awaitable<void> sweep_loop(store::store& db, util::task_tracker& background, double interval_s,
                                [[maybe_unused]] util::task_tracker::guard hold) {
  using namespace std::chrono_literals;
  net::steady_timer timer(co_await net::this_coro::executor);
  while (!background.stopping()) {
    try {
      const std::int64_t deleted = co_await db.sweep_sign_ins(util::now_micros());
      if (deleted > 0) util::log(util::log_level::info, "expired sign-ins deleted", {{"deleted", deleted}});
    } catch (const std::exception& e) {
      util::log(util::log_level::warning, "sign-in sweep failed", {{"error", e.what()}});
    }
    // Sleep in short slices: task_tracker has no wake-up signal, and shutdown must not wait out
    // an hour's interval.
    const auto until =
        steady::now() + std::chrono::duration_cast<steady::duration>(std::chrono::duration<double>(interval_s));
    while (!background.stopping() && steady::now() < until) {
      timer.expires_after(std::min<steady::duration>(250ms, until - steady::now()));
      boost::system::error_code ignored;
      co_await timer.async_wait(net::redirect_error(net::use_awaitable, ignored));
    }
  }
}

}  // namespace

void start_sign_in_sweep(net::any_io_executor ex, store::store& db, util::task_tracker& background, double interval_s) {
  net::co_spawn(ex, sweep_loop(db, background, interval_s, background.hold()), net::detached);
}

}  // namespace fav::auth
