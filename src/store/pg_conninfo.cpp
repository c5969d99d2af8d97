#include "store/pg_conninfo.hpp"

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "store/store.hpp"

namespace fav::store {

void pg_add_statement_timeout(pg_params& params, std::chrono::steady_clock::duration timeout) {
  const auto ms = std::chrono::ceil<std::chrono::milliseconds>(timeout).count();
  const std::string opt = "-c statement_timeout=" + std::to_string(ms);
  if (std::string* o = params.find("options")) {
    *o += " " + opt;
  } else {
    params.set("options", opt);
  }
}

net::awaitable<void> pg_resolve_host(net::any_io_executor ex, pg_params& p) {
  std::string* host = p.find("host");
  if (!host || p.find("hostaddr") || host->empty() || host->front() == '/' || host->front() == '@' ||
      host->find(',') != std::string::npos) {
    co_return;
  }
  boost::system::error_code ec;
  (void)net::ip::make_address(*host, ec);
  if (!ec) co_return;  // already numeric
  const std::string name = *host;
  net::ip::tcp::resolver resolver(ex);
  auto [rec, results] = co_await resolver.async_resolve(name, "5432", net::as_tuple(net::use_awaitable));
  if (rec || results.empty()) {
    throw unavailable("postgresql: cannot resolve host " + name + ": " + rec.message());
  }
  std::string hosts, addrs;
  std::vector<net::ip::address> seen;  // one per address, not per socket type
  for (const auto& entry : results) {
    const net::ip::address a = entry.endpoint().address();
    if (std::find(seen.begin(), seen.end(), a) != seen.end()) continue;
    seen.push_back(a);
    hosts += (hosts.empty() ? "" : ",") + name;
    addrs += (addrs.empty() ? "" : ",") + a.to_string();
  }
  *p.find("host") = hosts;  // `host` stays a name: SSL verification and Kerberos use it
  p.keys.emplace_back("hostaddr");
  p.values.push_back(addrs);
}

pg_keywords::pg_keywords(const pg_params& params) {
  for (std::size_t i = 0; i < params.keys.size(); ++i) {
    keys.push_back(params.keys[i].c_str());
    values.push_back(params.values[i].c_str());
  }
  keys.push_back(nullptr);
  values.push_back(nullptr);
}

}  // namespace fav::store
