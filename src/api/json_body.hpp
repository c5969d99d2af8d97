// Reading a JSON object body and its fields, with contract §1's errors (415, 422 invalid_body).
#pragma once
#include <boost/json/object.hpp>
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

}  // namespace fav::api
