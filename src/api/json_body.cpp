// See json_body.hpp.
#include "api/json_body.hpp"

#include <boost/json/parse.hpp>

#include "core/validate.hpp"

namespace fav::api {

namespace {
// application/json or any +json type; parameters (charset) ignored.
bool json_content_type(std::string_view ct) {
  auto semi = ct.find(';');
  std::string t = core::ascii_lower(core::trim(ct.substr(0, semi)));
  return t == "application/json" || (t.rfind("application/", 0) == 0 && t.size() > 5 && t.ends_with("+json"));
}
}  // namespace

std::variant<boost::json::object, http::response> read_object(const http::request& req) {
  auto ct = req.header("content-type");
  // An absent content type is accepted (curl without -H); a present non-JSON one is not.
  if (!ct.empty() && !json_content_type(ct)) return fail(core::errc::unsupported_media_type);
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(req.body(), ec);
  if (ec) return fail(core::errc::invalid_body, std::nullopt, {{"body", "malformed_json"}});
  if (!v.is_object()) return fail(core::errc::invalid_body, std::nullopt, {{"body", "not_an_object"}});
  return std::move(v.as_object());
}

std::optional<std::string> string_field(const boost::json::object& o, std::string_view name, bool required,
                                        std::vector<field_error>& errors) {
  auto it = o.find(name);
  if (it == o.end() || (it->value().is_null() && !required)) {
    if (required) errors.push_back({std::string(name), "missing"});
    return std::nullopt;
  }
  if (!it->value().is_string()) {
    errors.push_back({std::string(name), "not_a_string"});
    return std::nullopt;
  }
  auto& s = it->value().get_string();
  return std::string(s.data(), s.size());
}

}  // namespace fav::api
