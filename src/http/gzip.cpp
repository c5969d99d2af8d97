// See gzip.hpp.
#include "http/gzip.hpp"

#include <zlib.h>

#include <cctype>

namespace fav::http {

bool accepts_gzip(std::string_view ae) {
  while (!ae.empty()) {
    auto comma = ae.find(',');
    auto item = ae.substr(0, comma);
    ae = comma == std::string_view::npos ? std::string_view{} : ae.substr(comma + 1);
    auto semi = item.find(';');
    auto token = item.substr(0, semi);
    while (!token.empty() && std::isspace(static_cast<unsigned char>(token.front()))) token.remove_prefix(1);
    while (!token.empty() && std::isspace(static_cast<unsigned char>(token.back()))) token.remove_suffix(1);
    bool gz = token.size() == 4;
    for (std::size_t i = 0; gz && i < 4; ++i) gz = std::tolower(static_cast<unsigned char>(token[i])) == "gzip"[i];
    if (!gz && token != "*") continue;
    if (semi == std::string_view::npos) return true;
    auto params = item.substr(semi + 1);
    auto q = params.find("q=");
    if (q == std::string_view::npos) return true;
    auto v = params.substr(q + 2);
    // q=0, q=0.0, q=0.00... refuse; anything else accepts.
    bool zero = !v.empty() && v[0] == '0';
    for (std::size_t i = 1; zero && i < v.size() && !std::isspace(static_cast<unsigned char>(v[i])); ++i)
      zero = v[i] == '.' || v[i] == '0';
    return !zero;
  }
  return false;
}

std::optional<std::string> gzip_compress(std::string_view data) {
  z_stream zs{};
  // 15 + 16: a gzip wrapper; level 4 trades a little size for much less CPU.
  if (deflateInit2(&zs, 4, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) return std::nullopt;
  std::string out;
  out.resize(deflateBound(&zs, static_cast<uLong>(data.size())) + 32);
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = static_cast<uInt>(data.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  int rc = deflate(&zs, Z_FINISH);
  deflateEnd(&zs);
  if (rc != Z_STREAM_END) return std::nullopt;
  out.resize(zs.total_out);
  return out;
}

}  // namespace fav::http
