// gzip for response bodies (zlib); see contract §1: bodies ≥ 500 bytes when accepted.
#pragma once
#include <optional>
#include <string>
#include <string_view>

namespace fav::http {

// True when an Accept-Encoding value accepts gzip (token present, q not 0).
bool accepts_gzip(std::string_view accept_encoding);
// The gzip member for `data`, or nullopt if zlib fails.
std::optional<std::string> gzip_compress(std::string_view data);

}  // namespace fav::http
