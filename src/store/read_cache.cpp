// See read_cache.hpp.
#include "store/read_cache.hpp"

#include <algorithm>
#include <functional>

namespace fav::store {

namespace {

std::string customer_key(const std::string& id) {
  return "c" + id;
}
std::string favorites_key(const std::string& id) {
  return "f" + id;
}
std::string product_key(std::int64_t id) {
  return "p" + std::to_string(id);
}

// A node of the map (key, entry, hash and next pointers, its bucket slot) and of the recency
// list (two pointers and the key's address), beside what the key and value own; the key's heap
// is charged twice, a margin that keeps the estimate on the safe side.
constexpr std::size_t node_overhead = 96;

std::size_t heap(const std::string& s) {
  // Short strings live inside the object.
  return s.capacity() > 15 ? s.capacity() + 1 : 0;
}

}  // namespace

read_cache::read_cache(std::size_t budget_bytes) : per_shard_(budget_bytes / 16) {
  for (auto& s : shards_) s.map = util::lru_map<std::string, value>(per_shard_);
}

read_cache::shard& read_cache::shard_for(const std::string& id) {
  return shards_[std::hash<std::string>{}(id) % shards_.size()];
}

std::size_t read_cache::cost_of(const std::string& key, const value& v) {
  // The map's entry: the value, its cost and its place in the recency list.
  std::size_t n = node_overhead + sizeof(std::string) + sizeof(value) + 2 * sizeof(std::size_t) + 2 * heap(key);
  if (const auto* c = std::get_if<core::customer>(&v)) {
    n += heap(c->id) + heap(c->name) + heap(c->email) + heap(c->password_hash);
  } else if (const auto* f = std::get_if<fav_pages>(&v)) {
    n += f->pages.capacity() * sizeof(fav_page);
    for (const auto& p : f->pages) n += p.rows.capacity() * sizeof(fav_row);
    n += f->singles.capacity() * sizeof(fav_single);
  } else if (const auto* p = std::get_if<core::product>(&v)) {
    n += heap(p->title) + heap(p->image_url);
  }
  return n;
}

void read_cache::store_locked(shard& s, const std::string& key, value v) {
  const std::size_t cost = cost_of(key, v);
  s.map.put(key, std::move(v), cost);  // larger than the whole shard: never held
}

std::uint64_t read_cache::generation(const std::string& customer_id) {
  auto& s = shard_for(customer_id);
  std::lock_guard lk(s.mu);
  return s.generation;
}

std::optional<core::customer> read_cache::customer(const std::string& id) {
  if (!enabled()) return std::nullopt;
  auto& s = shard_for(id);
  std::lock_guard lk(s.mu);
  const value* v = s.map.get(customer_key(id));
  if (!v) {
    misses_.fetch_add(1, std::memory_order_relaxed);
    return std::nullopt;
  }
  hits_.fetch_add(1, std::memory_order_relaxed);
  return std::get<core::customer>(*v);
}

void read_cache::put_customer(const core::customer& c, std::uint64_t generation) {
  if (!enabled()) return;
  auto& s = shard_for(c.id);
  std::lock_guard lk(s.mu);
  if (s.generation != generation) return;  // changed while it was read
  store_locked(s, customer_key(c.id), c);
}

std::optional<core::product> read_cache::product(std::int64_t id) {
  const std::string key = product_key(id);
  auto& s = shard_for(key);
  std::lock_guard lk(s.mu);
  const value* v = s.map.get(key);
  if (!v) return std::nullopt;
  return std::get<core::product>(*v);
}

std::optional<core::page<core::favorite>> read_cache::favorites(const std::string& customer_id, core::page_req p) {
  if (!enabled()) return std::nullopt;
  std::vector<fav_row> rows;
  core::page<core::favorite> out;
  {
    auto& s = shard_for(customer_id);
    std::lock_guard lk(s.mu);
    const std::string key = favorites_key(customer_id);
    const fav_page* found = nullptr;
    if (const value* v = s.map.peek(key)) {
      for (const auto& pg : std::get<fav_pages>(*v).pages)
        if (pg.req.page == p.page && pg.req.per_page == p.per_page) found = &pg;
    }
    if (!found) {
      misses_.fetch_add(1, std::memory_order_relaxed);
      return std::nullopt;
    }
    s.map.touch(key);
    rows = found->rows;
    out.total = found->total;
  }
  // The product rows, outside the page's lock (they live in other shards).
  out.items.reserve(rows.size());
  for (const auto& r : rows) {
    core::favorite f{r.product_id, r.favorited_at, product(r.product_id)};
    if (r.had_product && !f.cached) {  // evicted meanwhile: read the page again
      misses_.fetch_add(1, std::memory_order_relaxed);
      return std::nullopt;
    }
    out.items.push_back(std::move(f));
  }
  hits_.fetch_add(1, std::memory_order_relaxed);
  return out;
}

void read_cache::put_favorites(const std::string& customer_id, core::page_req p, const core::page<core::favorite>& page,
                               std::uint64_t generation) {
  if (!enabled()) return;
  // A page that could never be held leaves everything else (its products too) where it is.
  if (page.items.size() * sizeof(fav_row) + node_overhead > per_shard_) return;
  // Products first: a page found without its products is a miss anyway.
  std::vector<core::product> products;
  fav_page fp{p, page.total, {}};
  fp.rows.reserve(page.items.size());
  for (const auto& f : page.items) {
    fp.rows.push_back(fav_row{f.product_id, f.favorited_at, f.cached.has_value()});
    if (f.cached) products.push_back(*f.cached);
  }
  put_products(products);
  auto& s = shard_for(customer_id);
  std::lock_guard lk(s.mu);
  if (s.generation != generation) return;  // changed while it was read
  const std::string key = favorites_key(customer_id);
  fav_pages pages;
  if (const value* v = s.map.peek(key)) pages = std::get<fav_pages>(*v);
  std::erase_if(pages.pages, [&](const fav_page& x) { return x.req.page == p.page && x.req.per_page == p.per_page; });
  if (pages.pages.size() >= pages_per_customer) pages.pages.erase(pages.pages.begin());
  pages.pages.push_back(std::move(fp));
  store_locked(s, key, std::move(pages));
}

std::optional<std::optional<core::favorite>> read_cache::favorite(const std::string& customer_id,
                                                                  std::int64_t product_id) {
  if (!enabled()) return std::nullopt;
  std::optional<std::optional<fav_row>> found;
  {
    auto& s = shard_for(customer_id);
    std::lock_guard lk(s.mu);
    const std::string key = favorites_key(customer_id);
    if (const value* v = s.map.peek(key)) {
      const auto& held = std::get<fav_pages>(*v);
      for (const auto& x : held.singles)
        if (x.product_id == product_id) found = x.row;
      for (const auto& pg : held.pages)
        for (const auto& r : pg.rows)
          if (r.product_id == product_id) found = r;
      if (found) s.map.touch(key);
    }
  }
  if (!found) {
    misses_.fetch_add(1, std::memory_order_relaxed);
    return std::nullopt;
  }
  std::optional<core::favorite> out;
  if (const auto& r = *found) {
    out = core::favorite{r->product_id, r->favorited_at, product(r->product_id)};
    if (r->had_product && !out->cached) {  // evicted meanwhile: read it again
      misses_.fetch_add(1, std::memory_order_relaxed);
      return std::nullopt;
    }
  }
  hits_.fetch_add(1, std::memory_order_relaxed);
  return out;
}

void read_cache::put_favorite(const std::string& customer_id, std::int64_t product_id,
                              const std::optional<core::favorite>& f, std::uint64_t generation) {
  if (!enabled()) return;
  if (f && f->cached) put_products({*f->cached});
  auto& s = shard_for(customer_id);
  std::lock_guard lk(s.mu);
  if (s.generation != generation) return;  // changed while it was read
  const std::string key = favorites_key(customer_id);
  fav_pages held;
  if (const value* v = s.map.peek(key)) held = std::get<fav_pages>(*v);
  std::erase_if(held.singles, [&](const fav_single& x) { return x.product_id == product_id; });
  if (held.singles.size() >= singles_per_customer) held.singles.erase(held.singles.begin());
  std::optional<fav_row> row;
  if (f) row = fav_row{f->product_id, f->favorited_at, f->cached.has_value()};
  held.singles.push_back(fav_single{product_id, row});
  store_locked(s, key, std::move(held));
}

void read_cache::put_products(const std::vector<core::product>& products) {
  if (!enabled()) return;
  for (const auto& p : products) {
    const std::string key = product_key(p.id);
    auto& s = shard_for(key);
    std::lock_guard lk(s.mu);
    if (const value* v = s.map.peek(key); v && std::get<core::product>(*v).fetched_at > p.fetched_at)
      continue;  // what is held is newer
    store_locked(s, key, p);
  }
}

void read_cache::forget_customer(const std::string& id) {
  auto& s = shard_for(id);
  std::lock_guard lk(s.mu);
  ++s.generation;
  s.map.erase(customer_key(id));
  s.map.erase(favorites_key(id));
}

void read_cache::forget_favorites(const std::string& customer_id) {
  auto& s = shard_for(customer_id);
  std::lock_guard lk(s.mu);
  ++s.generation;
  s.map.erase(favorites_key(customer_id));
}

void read_cache::forget_product(std::int64_t id) {
  const std::string key = product_key(id);
  auto& s = shard_for(key);
  std::lock_guard lk(s.mu);
  s.map.erase(key);
}

void read_cache::clear() {
  for (auto& s : shards_) {
    std::lock_guard lk(s.mu);
    ++s.generation;
    s.map.clear();
  }
}

std::size_t read_cache::bytes() const {
  std::size_t n = 0;
  for (const auto& s : shards_) {
    std::lock_guard lk(s.mu);
    n += s.map.cost();
  }
  return n;
}

std::size_t read_cache::entries() const {
  std::size_t n = 0;
  for (const auto& s : shards_) {
    std::lock_guard lk(s.mu);
    n += s.map.size();
  }
  return n;
}

}  // namespace fav::store
