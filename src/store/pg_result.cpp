#include "store/pg_result.hpp"

#include <charconv>

namespace fav::store {

pg_error::pg_error(std::string state, const std::string& message)
    : std::runtime_error(message), sqlstate(std::move(state)) {}

std::int64_t pg_result::affected() const {
  if (!r_) return 0;
  const char* n = PQcmdTuples(r_.get());
  std::int64_t v = 0;
  std::from_chars(n, n + std::char_traits<char>::length(n), v);
  return v;
}

std::string pg_result::text(int r, int c) const {
  return std::string(PQgetvalue(r_.get(), r, c), static_cast<std::size_t>(PQgetlength(r_.get(), r, c)));
}

std::int64_t pg_result::int64(int r, int c) const {
  const char* v = PQgetvalue(r_.get(), r, c);
  const char* end = v + PQgetlength(r_.get(), r, c);
  std::int64_t out = 0;
  if (std::from_chars(v, end, out).ec != std::errc{}) {
    throw std::runtime_error("postgresql: not an integer: " + std::string(v, end));
  }
  return out;
}

std::optional<std::int64_t> pg_result::opt_int64(int r, int c) const {
  if (is_null(r, c)) return std::nullopt;
  return int64(r, c);
}

bool pg_result::boolean(int r, int c) const {
  return PQgetvalue(r_.get(), r, c)[0] == 't';
}

std::optional<pg_error> pg_error_of(const PGresult* r) {
  const ExecStatusType st = PQresultStatus(r);
  if (st != PGRES_FATAL_ERROR && st != PGRES_BAD_RESPONSE && st != PGRES_NONFATAL_ERROR) return std::nullopt;
  const char* state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
  return pg_error(state ? state : "", pg_message(PQresultErrorMessage(r)));
}

bool pg_is_outage(std::string_view sqlstate) {
  // Connection exceptions, insufficient resources, operator intervention (shutdown, cancel),
  // system errors, and transaction rollbacks (serialization failure, deadlock).
  const std::string_view cls = sqlstate.substr(0, 2);
  return cls == "08" || cls == "53" || cls == "57" || cls == "58" || cls == "40";
}

std::string pg_message(const char* msg) {
  std::string s = msg ? msg : "";
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

}  // namespace fav::store
