// libFuzzer target: the values clients put in paths and queries: RFC 3339 timestamps (the
// created_from/created_to filters), pagination, product ids, names and emails. A timestamp that
// parses must survive a format/parse round trip at microsecond precision.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "core/validate.hpp"
#include "util/time.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string in(reinterpret_cast<const char*>(data), size);
  if (auto t = fav::util::parse_rfc3339(in)) {
    const std::string db = fav::util::format_db_time(*t);
    auto back = fav::util::parse_rfc3339(db);
    if (!back || *back != *t) std::abort();  // stored timestamps must read back exactly
  }
  const auto cut = in.find('&');
  const std::string page = in.substr(0, cut), per_page = cut == std::string::npos ? "" : in.substr(cut + 1);
  (void)fav::core::parse_page(&page, &per_page, 200);
  (void)fav::core::parse_page(&page, nullptr, 200);
  (void)fav::core::parse_product_id(in);
  (void)fav::core::parse_email(in);
  (void)fav::core::parse_name(in);
  return 0;
}
