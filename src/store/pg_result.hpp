// What a PostgreSQL statement answers: its rows (pg_result), or the error the server reported
// (pg_error), sorted into "a bug or a constraint" and "the database is not serving".
#pragma once
#include <libpq-fe.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include "store/store.hpp"

namespace fav::store {

// A statement refused because the server is read-only (SQLSTATE 25006: a standby, or a primary
// demoted by a switchover): answered 503 like any outage, and the pool drops the connection.
struct read_only_server : unavailable {
  using unavailable::unavailable;
};

// An error the server reported for a statement (a bug or a constraint), not an outage.
struct pg_error : std::runtime_error {
  pg_error(std::string state, const std::string& message);
  std::string sqlstate;  // e.g. "23505" unique_violation
};

// Owns one PGresult; accessors read row `r`, column `c` of a text-format result.
class pg_result {
 public:
  explicit pg_result(PGresult* r = nullptr) : r_(r, &PQclear) {}
  int rows() const { return r_ ? PQntuples(r_.get()) : 0; }
  // Rows touched by INSERT/UPDATE/DELETE (PQcmdTuples); 0 when not applicable.
  std::int64_t affected() const;
  bool is_null(int r, int c) const { return PQgetisnull(r_.get(), r, c) != 0; }
  std::string text(int r, int c) const;
  std::int64_t int64(int r, int c) const;
  std::optional<std::int64_t> opt_int64(int r, int c) const;
  bool boolean(int r, int c) const;

 private:
  std::unique_ptr<PGresult, decltype(&PQclear)> r_;
};

// The server's error in `r`, if it reports one.
std::optional<pg_error> pg_error_of(const PGresult* r);

// SQLSTATE classes that mean "the database is not serving", not "this request is wrong".
bool pg_is_outage(std::string_view sqlstate);

// libpq's message without its trailing newline (a log line should not have one).
std::string pg_message(const char* msg);

}  // namespace fav::store
