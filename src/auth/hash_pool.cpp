// See hash_pool.hpp.
#include "auth/hash_pool.hpp"

#include "auth/password.hpp"

namespace fav::auth {

net::awaitable<std::optional<std::string>> hash_pool::hash(std::string password) {
  return util::offload<std::string>(pool_, [pw = std::move(password)] { return hash_password(pw); });
}

net::awaitable<std::optional<bool>> hash_pool::verify(std::string phc, std::string password) {
  return util::offload<bool>(pool_,
                             [phc = std::move(phc), pw = std::move(password)] { return verify_password(phc, pw); });
}

}  // namespace fav::auth
