// Numbered SQLite schema migrations: applied in order, each once, never dropping data.
#pragma once

#include "store/sqlite_conn.hpp"

namespace fav::store {

// Applies the pending migrations inside one savepoint on `c` (the writer's connection), so a
// failed one leaves nothing half-done. Throws as sqlite::connection::fail does.
void run_sqlite_migrations(sqlite::connection& c);

}  // namespace fav::store
