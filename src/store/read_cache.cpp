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
// list (a second copy of the key, two pointers), beside what the key and value own.
constexpr std::size_t node_overhead = 96;

std::size_t heap(const std::string& s) {
  // Short strings live inside the object.
  return s.capacity() > 15 ? s.capacity() + 1 : 0;
}

}  // namespace

read_cache::read_cache(std::size_t budget_bytes) : per_shard_(budget_bytes / 16) {}

read_cache::shard& read_cache::shard_for(const std::string& id) {
  return shards_[std::hash<std::string>{}(id) % shards_.size()];
}

std::size_t read_cache::cost_of(const std::string& key, const value& v) {
  std::size_t n = node_overhead + sizeof(std::string) + sizeof(entry) + 2 * heap(key);
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

void read_cache::erase_locked(shard& s, std::unordered_map<std::string, entry>::iterator it) {
  s.bytes -= it->second.cost;
  s.lru.erase(it->second.lru);
  s.map.erase(it);
}

void read_cache::store_locked(shard& s, const std::string& key, value v) {
  if (auto it = s.map.find(key); it != s.map.end()) erase_locked(s, it);
  const std::size_t cost = cost_of(key, v);
  if (cost > per_shard_) return;  // larger than the whole shard: never held
  while (s.bytes + cost > per_shard_ && !s.lru.empty()) erase_locked(s, s.map.find(s.lru.back()));
  s.lru.push_front(key);
  s.map.emplace(key, entry{std::move(v), cost, s.lru.begin()});
  s.bytes += cost;
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
  auto it = s.map.find(customer_key(id));
  if (it == s.map.end()) {
    misses_.fetch_add(1, std::memory_order_relaxed);
    return std::nullopt;
  }
  s.lru.splice(s.lru.begin(), s.lru, it->second.lru);
  hits_.fetch_add(1, std::memory_order_relaxed);
  return std::get<core::customer>(it->second.v);
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
  auto it = s.map.find(key);
  if (it == s.map.end()) return std::nullopt;
  s.lru.splice(s.lru.begin(), s.lru, it->second.lru);
  return std::get<core::product>(it->second.v);
}

std::optional<core::page<core::favorite>> read_cache::favorites(const std::string& customer_id, core::page_req p) {
  if (!enabled()) return std::nullopt;
  std::vector<fav_row> rows;
  core::page<core::favorite> out;
  {
    auto& s = shard_for(customer_id);
    std::lock_guard lk(s.mu);
    auto it = s.map.find(favorites_key(customer_id));
    const fav_page* found = nullptr;
    if (it != s.map.end()) {
      for (const auto& pg : std::get<fav_pages>(it->second.v).pages)
        if (pg.req.page == p.page && pg.req.per_page == p.per_page) found = &pg;
    }
    if (!found) {
      misses_.fetch_add(1, std::memory_order_relaxed);
      return std::nullopt;
    }
    s.lru.splice(s.lru.begin(), s.lru, it->second.lru);
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
  if (auto it = s.map.find(key); it != s.map.end()) pages = std::get<fav_pages>(it->second.v);
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
    auto it = s.map.find(favorites_key(customer_id));
    if (it != s.map.end()) {
      const auto& held = std::get<fav_pages>(it->second.v);
      for (const auto& x : held.singles)
        if (x.product_id == product_id) found = x.row;
      for (const auto& pg : held.pages)
        for (const auto& r : pg.rows)
          if (r.product_id == product_id) found = r;
      if (found) s.lru.splice(s.lru.begin(), s.lru, it->second.lru);
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
  if (auto it = s.map.find(key); it != s.map.end()) held = std::get<fav_pages>(it->second.v);
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
    if (auto it = s.map.find(key); it != s.map.end() && std::get<core::product>(it->second.v).fetched_at > p.fetched_at)
      continue;  // what is held is newer
    store_locked(s, key, p);
  }
}

void read_cache::forget_customer(const std::string& id) {
  auto& s = shard_for(id);
  std::lock_guard lk(s.mu);
  ++s.generation;
  if (auto it = s.map.find(customer_key(id)); it != s.map.end()) erase_locked(s, it);
  if (auto it = s.map.find(favorites_key(id)); it != s.map.end()) erase_locked(s, it);
}

void read_cache::forget_favorites(const std::string& customer_id) {
  auto& s = shard_for(customer_id);
  std::lock_guard lk(s.mu);
  ++s.generation;
  if (auto it = s.map.find(favorites_key(customer_id)); it != s.map.end()) erase_locked(s, it);
}

void read_cache::forget_product(std::int64_t id) {
  const std::string key = product_key(id);
  auto& s = shard_for(key);
  std::lock_guard lk(s.mu);
  if (auto it = s.map.find(key); it != s.map.end()) erase_locked(s, it);
}

void read_cache::clear() {
  for (auto& s : shards_) {
    std::lock_guard lk(s.mu);
    ++s.generation;
    s.map.clear();
    s.lru.clear();
    s.bytes = 0;
  }
}

std::size_t read_cache::bytes() const {
  std::size_t n = 0;
  for (const auto& s : shards_) {
    std::lock_guard lk(s.mu);
    n += s.bytes;
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
