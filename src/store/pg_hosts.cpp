// See pg_hosts.hpp. The split follows libpq's own rules for its multi-host form: `host` and
// `hostaddr` are comma-separated lists of the same length, `port` is one value for every host or
// a list of the same length.
#include "store/pg_hosts.hpp"

#include <libpq-fe.h>

#include <algorithm>

#include "store/store.hpp"

namespace fav::store {

namespace {

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  std::size_t start = 0;
  for (;;) {
    const std::size_t comma = s.find(',', start);
    out.push_back(s.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
    if (comma == std::string::npos) return out;
    start = comma + 1;
  }
}

std::string trimmed(const char* msg) {
  std::string s = msg ? msg : "";
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

}  // namespace

std::string* pg_params::find(std::string_view key) {
  for (std::size_t i = 0; i < keys.size(); ++i) {
    if (keys[i] == key) return &values[i];
  }
  return nullptr;
}

const std::string* pg_params::find(std::string_view key) const {
  return const_cast<pg_params*>(this)->find(key);
}

void pg_params::set(std::string_view key, std::string value) {
  if (std::string* v = find(key)) {
    *v = std::move(value);
    return;
  }
  keys.emplace_back(key);
  values.push_back(std::move(value));
}

void pg_params::erase(std::string_view key) {
  for (std::size_t i = 0; i < keys.size(); ++i) {
    if (keys[i] == key) {
      keys.erase(keys.begin() + static_cast<std::ptrdiff_t>(i));
      values.erase(values.begin() + static_cast<std::ptrdiff_t>(i));
      return;
    }
  }
}

pg_hosts::pg_hosts(const std::string& conninfo) {
  char* err = nullptr;
  PQconninfoOption* opts = PQconninfoParse(conninfo.c_str(), &err);
  if (!opts) {
    const std::string msg = err ? trimmed(err) : "out of memory";
    PQfreemem(err);
    throw unavailable("postgresql: invalid connection string: " + msg);
  }
  std::string host, hostaddr, port;
  for (PQconninfoOption* o = opts; o->keyword; ++o) {
    if (!o->val || !*o->val) continue;
    const std::string_view k = o->keyword;
    if (k == "host") {
      host = o->val;
    } else if (k == "hostaddr") {
      hostaddr = o->val;
    } else if (k == "port") {
      port = o->val;
    } else {
      common_.keys.emplace_back(k);
      common_.values.emplace_back(o->val);
    }
  }
  PQconninfoFree(opts);

  const std::vector<std::string> hs = host.empty() ? std::vector<std::string>{} : split_commas(host);
  const std::vector<std::string> as = hostaddr.empty() ? std::vector<std::string>{} : split_commas(hostaddr);
  const std::vector<std::string> ps = port.empty() ? std::vector<std::string>{} : split_commas(port);
  const std::size_t n = std::max<std::size_t>({hs.size(), as.size(), 1});
  if ((!hs.empty() && hs.size() != n) || (!as.empty() && as.size() != n)) {
    throw unavailable("postgresql: invalid connection string: host and hostaddr list different numbers of hosts");
  }
  if (ps.size() > 1 && ps.size() != n) {
    throw unavailable("postgresql: invalid connection string: port lists a different number of hosts");
  }
  for (std::size_t i = 0; i < n; ++i) {
    hosts_.push_back({hs.empty() ? "" : hs[i], as.empty() ? "" : as[i],
                      ps.empty()       ? ""
                      : ps.size() == 1 ? ps[0]
                                       : ps[i]});
  }
  if (const std::string* a = common_.find("target_session_attrs")) {
    attrs_ = *a;
  } else if (n > 1) {
    // Several hosts and no word on which: the pool writes, so only a primary will do.
    attrs_ = "read-write";
    common_.set("target_session_attrs", attrs_);
  }
  failed_at_.assign(n, clock::time_point::min());
}

pg_params pg_hosts::params_for(std::size_t i) const {
  pg_params p = common_;
  const host& h = hosts_.at(i);
  if (!h.host.empty()) p.set("host", h.host);
  if (!h.hostaddr.empty()) p.set("hostaddr", h.hostaddr);
  if (!h.port.empty()) p.set("port", h.port);
  return p;
}

std::string pg_hosts::label(std::size_t i) const {
  const host& h = hosts_.at(i);
  std::string out = !h.host.empty() ? h.host : !h.hostaddr.empty() ? h.hostaddr : "(default)";
  if (!h.port.empty()) out += ":" + h.port;
  return out;
}

std::vector<std::size_t> pg_hosts::order(clock::time_point now) const {
  std::vector<std::size_t> fresh, failed;
  std::lock_guard lk(mu_);
  for (std::size_t i = 0; i < hosts_.size(); ++i) {
    const bool recent = failed_at_[i] != clock::time_point::min() && now - failed_at_[i] < failure_memory;
    (recent ? failed : fresh).push_back(i);
  }
  std::stable_sort(failed.begin(), failed.end(),
                   [this](std::size_t a, std::size_t b) { return failed_at_[a] < failed_at_[b]; });
  fresh.insert(fresh.end(), failed.begin(), failed.end());
  return fresh;
}

void pg_hosts::failed(std::size_t i, clock::time_point now) {
  std::lock_guard lk(mu_);
  failed_at_.at(i) = now;
}

void pg_hosts::succeeded(std::size_t i) {
  std::lock_guard lk(mu_);
  failed_at_.at(i) = clock::time_point::min();
}

}  // namespace fav::store
