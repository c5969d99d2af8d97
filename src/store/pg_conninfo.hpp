// One host's connection parameters made ready for libpq's asynchronous connect: the session's
// startup options added, a DNS host name resolved off the I/O threads, and the keyword/value
// arrays PQconnectStartParams takes. (pg_hosts takes the connection string apart host by host.)
#pragma once
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <string>
#include <vector>

#include "store/pg_hosts.hpp"

namespace fav::store {

namespace net = boost::asio;

// Adds `-c statement_timeout=<ms>` to the startup `options` (after any options already given):
// sent in the startup packet, no extra round trip.
void pg_add_statement_timeout(pg_params& params, std::chrono::steady_clock::duration timeout);

// libpq resolves host names with a blocking getaddrinfo inside PQconnectPoll, so a single DNS
// host name is resolved here, on Asio's resolver thread, and handed over as `hostaddr`: every
// address, in order, so libpq still falls back from one to the next. IP literals, socket
// directories and multi-host lists are left to libpq. Throws unavailable for a name that does
// not resolve.
net::awaitable<void> pg_resolve_host(net::any_io_executor ex, pg_params& params);

// Null-terminated keyword and value arrays pointing into `params` (which must outlive them).
struct pg_keywords {
  explicit pg_keywords(const pg_params& params);
  std::vector<const char*> keys, values;
};

}  // namespace fav::store
