// Reading a JSON object body and its fields, with contract §1's errors (415, 422 invalid_body).
#pragma once
#include <array>
#include <boost/json/object.hpp>
#include <cstddef>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "api/errors.hpp"
#include "http/message.hpp"

namespace fav::api {

// The body as a JSON object, or the error response to send (415 wrong content type,
// 422 invalid_body for malformed JSON, invalid UTF-8 or a non-object).
std::variant<boost::json::object, http::response> read_object(const http::request& req);

// A string field: absent → nullopt (+ "missing" in `errors` when required); present but not a
// string → nullopt + "not_a_string".
std::optional<std::string> string_field(const boost::json::object& o, std::string_view name, bool required,
                                        std::vector<field_error>& errors);

// One string field of a body: its name and whether it must be present.
struct field_spec {
  std::string_view name;
  bool required;
};
inline constexpr bool required = true;
inline constexpr bool optional_field = false;

// The JSON-body preamble of the handlers that take one: the object (read_object), then each
// field of `specs` as a string (string_field), every field error reported at once as 422
// invalid_body. The values come back in the order of `specs`:
//   auto fields = read_fields(req, {{"email", required}, {"password", required}});
//   if (auto* r = std::get_if<http::response>(&fields)) co_return std::move(*r);
//   auto& [email, password] = std::get<0>(fields);
template <std::size_t N>
std::variant<std::array<std::optional<std::string>, N>, http::response> read_fields(const http::request& req,
                                                                                    const field_spec (&specs)[N]) {
  auto parsed = read_object(req);
  if (auto* r = std::get_if<http::response>(&parsed)) return std::move(*r);
  const auto& obj = std::get<boost::json::object>(parsed);
  std::array<std::optional<std::string>, N> values;
  std::vector<field_error> errors;
  for (std::size_t i = 0; i < N; ++i) values[i] = string_field(obj, specs[i].name, specs[i].required, errors);
  if (!errors.empty()) return fail(core::errc::invalid_body, std::nullopt, errors);
  return values;
}

}  // namespace fav::api
