// Numbered PostgreSQL schema migrations: applied in order, each once, never dropping data.
#pragma once
#include <boost/asio/awaitable.hpp>

#include "store/pg_conn.hpp"

namespace fav::store {

// Applies the pending migrations in one transaction under a database-wide advisory lock, so
// instances starting together apply each exactly once. Throws unavailable or pg_error.
net::awaitable<void> run_pg_migrations(pg_conn& c, pg_clock::duration timeout);

}  // namespace fav::store
