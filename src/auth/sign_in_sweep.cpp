// See sign_in_sweep.hpp.
#include "auth/sign_in_sweep.hpp"

#include <boost/asio/strand.hpp>

#include "util/log.hpp"
#include "util/time.hpp"

namespace fav::auth {
namespace {

namespace net = boost::asio;

net::awaitable<void> sweep_loop(store::store& db, util::task_group& background, util::duration interval) {
  do {
    try {
      const std::int64_t deleted = co_await db.sweep_sign_ins(util::now_micros());
      if (deleted > 0) util::log(util::log_level::info, "expired sign-ins deleted", {{"deleted", deleted}});
    } catch (const std::exception& e) {
      util::log(util::log_level::warning, "sign-in sweep failed", {{"error", e.what()}});
    }
    // Shutdown (background.stop()) ends the wait at once, so it never waits out an hour.
  } while (co_await background.pause(interval));
}

}  // namespace

void start_sign_in_sweep(net::any_io_executor ex, store::store& db, util::task_group& background,
                         util::duration interval) {
  background.spawn(util::new_strand(ex), sweep_loop(db, background, interval));
}

}  // namespace fav::auth
