// Runs a callable when the scope ends, however it ends (return, co_return or an exception):
// for work that must follow an operation whatever its outcome. Boost 1.81 has no Boost.Scope.
#pragma once
#include <utility>

namespace fav::util {

template <class F>
class scope_exit {
 public:
  explicit scope_exit(F f) : f_(std::move(f)) {}
  scope_exit(const scope_exit&) = delete;
  scope_exit& operator=(const scope_exit&) = delete;
  ~scope_exit() { f_(); }  // `f` must not throw

 private:
  F f_;
};

}  // namespace fav::util
