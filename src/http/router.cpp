// See router.hpp.
#include "http/router.hpp"

#include <algorithm>
#include <stdexcept>

namespace fav::http {

namespace {
// Splits "/a/b" into {"a","b"}; "/" into {}; keeps empty segments ("//") so they never match.
template <class Out>
void split(std::string_view path, Out&& emit) {
  if (!path.empty() && path.front() == '/') path.remove_prefix(1);
  if (path.empty()) return;
  for (;;) {
    auto slash = path.find('/');
    emit(path.substr(0, slash));
    if (slash == std::string_view::npos) return;
    path.remove_prefix(slash + 1);
  }
}
bool is_param(std::string_view s) {
  return s.size() >= 2 && s.front() == '{' && s.back() == '}';
}
}  // namespace

path_pattern::path_pattern(std::string_view pattern) {
  split(pattern, [&](std::string_view s) { segments_.emplace_back(s); });
  if (std::count_if(segments_.begin(), segments_.end(), [](const auto& s) { return is_param(s); }) >
      static_cast<std::ptrdiff_t>(path_params::capacity))
    throw std::invalid_argument("route pattern with too many parameters: " + std::string(pattern));
}

bool path_pattern::match(std::string_view path, path_params& params) const {
  params.clear();
  std::size_t i = 0;
  bool ok = true;
  split(path, [&](std::string_view seg) {
    if (!ok) return;
    if (i >= segments_.size()) {
      ok = false;
      return;
    }
    const auto& want = segments_[i++];
    if (is_param(want)) {
      if (seg.empty())
        ok = false;
      else
        params.add(std::string_view(want).substr(1, want.size() - 2), seg);
    } else if (want != seg) {
      ok = false;
    }
  });
  return ok && i == segments_.size();
}

}  // namespace fav::http
