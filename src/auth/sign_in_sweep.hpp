// The sweep of expired sign-ins (contract §8 "Token rows": rows whose tokens have all expired are
// deleted, at least daily): once at start, then every AUTH_SIGN_IN_SWEEP_INTERVAL_SECONDS.
#pragma once
#include <boost/asio/any_io_executor.hpp>

#include "store/store.hpp"
#include "util/config.hpp"
#include "util/task_group.hpp"

namespace fav::auth {

// Spawns the sweep loop on `ex` in `background` (its stop() ends the wait between sweeps). Each
// sweep that deleted rows logs "expired sign-ins deleted" with the count; a failed one logs a
// warning and the next interval tries again. `db` must outlive the loop.
void start_sign_in_sweep(boost::asio::any_io_executor ex, store::store& db, util::task_group& background,
                         util::duration interval);

}  // namespace fav::auth
