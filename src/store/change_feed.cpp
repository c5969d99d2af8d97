// See change_feed.hpp.
#include "store/change_feed.hpp"

#include "util/random.hpp"

namespace fav::store {

std::string change::encode() const {
  const char tag = what == kind::customer    ? 'c'
                   : what == kind::signin    ? 's'
                   : what == kind::favorites ? 'f'
                   : what == kind::product   ? 'p'
                                             : 'a';
  std::string out;
  out.reserve(origin.size() + id.size() + 3);
  if (!origin.empty()) {
    out += origin;
    out += '/';
  }
  out += tag;
  out += ':';
  out += id;
  return out;
}

std::optional<change> change::decode(std::string_view payload) {
  std::string_view origin;
  if (payload.size() >= 2 && payload[1] != ':') {  // "<origin>/<tag>:<id>"
    const auto slash = payload.find('/');
    if (slash == std::string_view::npos) return std::nullopt;
    origin = payload.substr(0, slash);
    payload.remove_prefix(slash + 1);
  }
  if (payload.size() < 2 || payload[1] != ':') return std::nullopt;
  kind k;
  switch (payload[0]) {
    case 'c': k = kind::customer; break;
    case 's': k = kind::signin; break;
    case 'f': k = kind::favorites; break;
    case 'p': k = kind::product; break;
    case 'a': k = kind::all; break;
    default: return std::nullopt;
  }
  return change{k, std::string(payload.substr(2)), std::string(origin)};
}

change_feed::change_feed(bool live) : instance_(util::request_hex(8)), live_(live) {}

void change_feed::deliver(const change& c) {
  if (!c.origin.empty() && c.origin == instance_) {
    echoes_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  received_.fetch_add(1, std::memory_order_relaxed);
  publish(c);
}

void change_feed::subscribe(handler h) {
  std::lock_guard lk(mu_);
  handlers_.push_back(std::move(h));
}

void change_feed::publish(const change& c) {
  if (c.what != change::kind::favorites && c.what != change::kind::product)
    auth_epoch_.fetch_add(1, std::memory_order_acq_rel);
  std::lock_guard lk(mu_);
  for (const auto& h : handlers_) h(c);
}

void change_feed::set_down() {
  if (live_.exchange(false, std::memory_order_acq_rel)) auth_epoch_.fetch_add(1, std::memory_order_acq_rel);
}

void change_feed::set_up() {
  // Still not live while the flush runs: nothing can be cached from a read that began before.
  auth_epoch_.fetch_add(1, std::memory_order_acq_rel);
  publish(change{change::kind::all, {}});
  reconnects_.fetch_add(1, std::memory_order_relaxed);
  live_.store(true, std::memory_order_release);
}

}  // namespace fav::store
