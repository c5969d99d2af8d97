// libFuzzer target: bytes off the socket as the server reads them. Beast's request parser with
// the server's header and body limits, then what the server and the handlers do with a parsed
// request: origin-form target and query decoding (the server's parse_target), the route table's
// matcher, product ids, pagination and GET /customers' filters (RFC 3339), Accept-Encoding, the
// presented token (Authorization / cookie), and the body through the JSON body reader.
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "api/handlers.hpp"
#include "api/json_body.hpp"
#include "auth/policy.hpp"
#include "core/validate.hpp"
#include "http/gzip.hpp"
#include "http/router.hpp"
#include "http/server.hpp"
#include "routes.hpp"

namespace bhttp = boost::beast::http;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const std::vector<fav::http::path_pattern> patterns = [] {
    std::vector<fav::http::path_pattern> out;
    for (const auto& r : fav::route_table()) out.emplace_back(r.pattern);
    return out;
  }();
  bhttp::request_parser<bhttp::string_body, fav::http::fields_allocator> parser;
  parser.body_limit(64 * 1024);
  parser.header_limit(8 * 1024);
  parser.eager(true);
  boost::system::error_code ec;
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  std::size_t used = 0;
  while (used < in.size() && !parser.is_done()) {
    const std::size_t n = parser.put(boost::asio::buffer(in.data() + used, in.size() - used), ec);
    if (ec == bhttp::error::need_more) break;
    if (ec) return 0;
    if (n == 0) break;
    used += n;
  }
  if (!parser.is_done()) return 0;

  fav::http::request req;
  req.raw = &parser.get();
  if (!fav::http::parse_target(req.raw->target(), req)) return 0;  // the server's own split

  fav::http::path_params params;
  for (const auto& p : patterns) {
    if (p.match(req.path, params)) {
      for (const auto& [name, v] : params) (void)fav::core::parse_product_id(v);
    }
  }
  (void)fav::core::parse_page(req.query_value("page"), req.query_value("per_page"), 200);
  (void)fav::api::parse_customer_filter(req);  // GET /customers: name, email, created_from/to
  (void)fav::http::accepts_gzip(req.header("accept-encoding"));
  (void)fav::auth::presented_token(req);

  auto body = fav::api::read_object(req);
  if (auto* o = std::get_if<boost::json::object>(&body)) {
    std::vector<fav::api::field_error> errors;
    for (auto name : {"name", "email", "password", "refresh_token"}) {
      if (auto v = fav::api::string_field(*o, name, true, errors)) {
        (void)fav::core::parse_email(*v);
        (void)fav::core::parse_name(*v);
      }
    }
  }
  return 0;
}
