// libFuzzer target: catalog response bodies (one product, the product list) and Retry-After.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "catalog/parse.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  (void)fav::catalog::parse_product(in);
  int skipped = 0;
  (void)fav::catalog::parse_product_list(in, skipped);
  (void)fav::catalog::decimal_to_hundredths(in);
  (void)fav::catalog::parse_retry_after(in);
  return 0;
}
