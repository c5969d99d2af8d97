// See read_cache.hpp.
#include "store/read_cache.hpp"

#include <algorithm>
#include <functional>

#include "util/random.hpp"

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

// The same row as far as a page shows it (and as old).
bool same_row(const core::product& a, const core::product& b) {
  return a.id == b.id && a.fetched_at == b.fetched_at && a.price_cents == b.price_cents &&
         a.review_rate_cents == b.review_rate_cents && a.review_count == b.review_count && a.title == b.title &&
         a.image_url == b.image_url;
}

}  // namespace

// The nonce keeps tags apart across instances and restarts (versions start again at 1).
read_cache::read_cache(std::size_t budget_bytes) : per_shard_(budget_bytes / 16), nonce_(util::request_hex(8)) {
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
    // A rendered page is charged to every entry holding it (copies share it), and so are the
    // product bytes it shares with other pages: on the safe side, whatever is shared.
    n += f->rendered.capacity() * sizeof(std::shared_ptr<const rendered_entry>);
    for (const auto& r : f->rendered) {
      n += node_overhead + sizeof(rendered_entry) + heap(r->page.own_) + heap(r->page.etag) +
           r->shows.capacity() * sizeof(r->shows[0]) + r->page.pieces_.capacity() * sizeof(r->page.pieces_[0]);
      for (const auto& piece : r->page.pieces_) n += heap(*piece.shared);
    }
  } else if (const auto* p = std::get_if<held_product>(&v)) {
    n += heap(p->row.title) + heap(p->row.image_url);
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
  return std::get<held_product>(*v).row;
}

std::uint64_t read_cache::product_version(std::int64_t id) {
  const std::string key = product_key(id);
  auto& s = shard_for(key);
  std::lock_guard lk(s.mu);
  const value* v = s.map.get(key);  // a page answered keeps its products warm too
  return v ? std::get<held_product>(*v).version : 0;
}

std::shared_ptr<const read_cache::rendered_page> read_cache::rendered(const std::string& customer_id, core::page_req p,
                                                                      core::micros now) {
  if (!enabled()) return nullptr;
  std::shared_ptr<const rendered_entry> found;
  {
    auto& s = shard_for(customer_id);
    std::lock_guard lk(s.mu);
    const std::string key = favorites_key(customer_id);
    if (const value* v = s.map.peek(key)) {
      for (const auto& r : std::get<fav_pages>(*v).rendered)
        if (r->req.page == p.page && r->req.per_page == p.per_page) found = r;
    }
    if (!found || now > found->fresh_until) return nullptr;  // the data path reads (and counts) it
    s.map.touch(key);
  }
  // Each product row it shows must still be the one held (outside the page's lock: they live
  // in other shards); a row replaced or forgotten since means the page is rendered again.
  for (const auto& [id, version] : found->shows)
    if (product_version(id) != version) return nullptr;
  hits_.fetch_add(1, std::memory_order_relaxed);
  return std::shared_ptr<const rendered_page>(found, &found->page);
}

void read_cache::rendered_page::append_body(std::string& out) const {
  out.reserve(out.size() + size_);
  std::size_t at = 0;
  for (const auto& piece : pieces_) {
    out.append(own_, at, piece.own_end - at);
    out.append(*piece.shared);
    at = piece.own_end;
  }
  out.append(own_, at);
}

bool read_cache::rendered_page::shares_bytes_with(const rendered_page& other) const {
  for (const auto& mine : pieces_)
    for (const auto& theirs : other.pieces_)
      if (mine.shared == theirs.shared) return true;
  return false;
}

std::shared_ptr<const read_cache::rendered_page> read_cache::put_rendered(
    const std::string& customer_id, core::page_req p, std::uint64_t generation, const std::vector<core::product>& shown,
    core::micros fresh_until, std::string_view body, std::int64_t total,
    const std::vector<std::string_view>& shown_bytes) {
  if (!enabled()) return nullptr;
  // The shared bytes must be views into `body`, one per product, in order and apart.
  std::size_t own_size = body.size();
  if (!shown_bytes.empty()) {
    if (shown_bytes.size() != shown.size()) return nullptr;
    const char* at = body.data();
    std::size_t shared = 0;
    for (const auto& bytes : shown_bytes) {
      shared += bytes.size();
      if (bytes.data() < at || bytes.data() + bytes.size() > body.data() + body.size()) return nullptr;
      at = bytes.data() + bytes.size();
    }
    own_size = body.size() - shared;
  }
  auto entry = std::make_shared<rendered_entry>();
  entry->req = p;
  entry->fresh_until = fresh_until;
  entry->shows.reserve(shown.size());
  entry->page.pieces_.reserve(shown_bytes.size());
  entry->page.own_.reserve(own_size);
  std::size_t own_from = 0;  // in body: where the page's own bytes not yet taken begin
  for (std::size_t i = 0; i < shown.size(); ++i) {
    const auto& product = shown[i];
    const std::string key = product_key(product.id);
    auto& s = shard_for(key);
    std::lock_guard lk(s.mu);
    value* v = s.map.peek(key);
    if (!v || !same_row(std::get<held_product>(*v).row, product)) return nullptr;
    auto& held = std::get<held_product>(*v);
    entry->shows.emplace_back(product.id, held.version);
    if (shown_bytes.empty()) continue;
    // The copy the other pages kept from this row, or the first one.
    const std::string_view bytes = shown_bytes[i];
    auto shared = held.rendered.lock();
    if (!shared || *shared != bytes) {
      shared = std::make_shared<const std::string>(bytes);
      if (held.rendered.expired()) held.rendered = shared;
    }
    const auto offset = static_cast<std::size_t>(bytes.data() - body.data());
    entry->page.own_.append(body.substr(own_from, offset - own_from));
    entry->page.pieces_.push_back({std::move(shared), entry->page.own_.size()});
    own_from = offset + bytes.size();
  }
  entry->page.own_.append(body.substr(own_from));
  entry->page.size_ = body.size();
  entry->page.total = total;
  entry->page.etag = "\"" + nonce_ + "-" + std::to_string(versions_.fetch_add(1, std::memory_order_relaxed) + 1) + "\"";
  if (entry->shows.size() * sizeof(entry->shows[0]) + body.size() + node_overhead > per_shard_) return nullptr;

  auto& s = shard_for(customer_id);
  std::lock_guard lk(s.mu);
  if (s.generation != generation) return nullptr;  // changed while it was read
  const std::string key = favorites_key(customer_id);
  fav_pages pages;
  if (const value* v = s.map.peek(key)) pages = std::get<fav_pages>(*v);
  std::erase_if(pages.rendered, [&](const auto& r) { return r->req.page == p.page && r->req.per_page == p.per_page; });
  if (pages.rendered.size() >= pages_per_customer) pages.rendered.erase(pages.rendered.begin());
  pages.rendered.push_back(entry);
  store_locked(s, key, std::move(pages));
  return std::shared_ptr<const rendered_page>(entry, &entry->page);
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
    if (const value* v = s.map.peek(key)) {
      const auto& held = std::get<held_product>(*v).row;
      // What is held is newer, or the same row (which keeps its version: pages showing it stand).
      if (held.fetched_at > p.fetched_at || same_row(held, p)) continue;
    }
    store_locked(s, key, held_product{p, versions_.fetch_add(1, std::memory_order_relaxed) + 1, {}});
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
