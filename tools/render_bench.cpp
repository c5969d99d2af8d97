// render-bench: how long the favorites list's JSON takes to write, on the hot path of
// GET /customers/{id}/favorites: a page of 50 items (titles and URLs like the fakestore's, prices
// with and without cents, some reviews absent, one product unavailable), best of N runs.
//
//   render-bench [--items 50] [--runs 2000]
//
// Prints one line: `RENDER_BENCH {"items":..,"bytes":..,"best_us":..,"median_us":..}`.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "api/render.hpp"
#include "core/types.hpp"

namespace {

std::vector<fav::core::favorite> sample_page(int items) {
  std::vector<fav::core::favorite> out;
  for (int i = 0; i < items; ++i) {
    fav::core::favorite f;
    f.product_id = 1000 + i;
    f.favorited_at = 1'796'000'000'000'000 + i * 1'234'567;
    if (i != 7) {
      fav::core::product p;
      p.id = f.product_id;
      p.title = "Fjallraven - Foldsack No. " + std::to_string(i) + " Backpack, Fits 15 Laptops \"limited\"";
      p.image_url = "https://fakestoreapi.com/img/81fPKd-2AYL._AC_SL" + std::to_string(1500 + i) + "_.jpg";
      p.price_cents = 10995 + i * 7;
      if (i % 5 != 0) {
        p.review_rate_cents = 390 + i;
        p.review_count = 120 + i;
      }
      f.cached = std::move(p);
    }
    out.push_back(std::move(f));
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  int items = 50;
  int runs = 2000;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--items")) items = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--runs")) runs = std::atoi(argv[i + 1]);
  }
  const auto favs = sample_page(items);
  std::vector<std::optional<fav::core::product>> products;
  for (const auto& f : favs) products.push_back(f.cached);
  const fav::core::page_req req{1, items};

  std::vector<double> us;
  std::size_t bytes = 0;
  for (int r = 0; r < runs; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    const std::string body = fav::api::render_favorites_page(favs, products, req, 123);
    const auto t1 = std::chrono::steady_clock::now();
    bytes = body.size();
    us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
  }
  std::sort(us.begin(), us.end());
  std::printf("RENDER_BENCH {\"items\":%d,\"bytes\":%zu,\"best_us\":%.2f,\"median_us\":%.2f}\n", items, bytes,
              us.front(), us[us.size() / 2]);
}
