// struct app: the complete list of what a handler may touch, built once in main.
#pragma once
#include <boost/asio/any_io_executor.hpp>
#include <memory>

#include "auth/hash_pool.hpp"
#include "auth/jwt.hpp"
#include "auth/token_cache.hpp"
#include "catalog/product_cache.hpp"
#include "store/change_feed.hpp"
#include "store/read_through.hpp"
#include "store/store.hpp"
#include "util/config.hpp"
#include "util/metrics.hpp"
#include "util/task_group.hpp"

namespace fav {

struct app {
  const util::config& cfg;
  store::store& db;  // the database; its writes are published to `feed`
  auth::jwt_codec& jwt;
  auth::hash_pool& hashes;
  auth::token_cache& tokens;  // per-request revocation / existence check
  catalog::product_cache& products;
  util::metrics& metrics;
  util::task_group& background;       // detached work that shutdown drains
  store::change_feed& feed;           // invalidations from every instance (contract §9)
  store::read_through& read_through;  // the three hot GETs' reads, from memory when they can
};

}  // namespace fav
