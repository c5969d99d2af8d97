// The only place where an errc becomes an HTTP status and a JSON error body (contract §1).
#pragma once
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/errc.hpp"
#include "http/message.hpp"

namespace fav::api {

struct field_error {
  std::string field;
  std::string code;  // missing, not_a_string, invalid, ...
};

// Status for `e` from the table (per-route overrides are passed to fail()).
http::status status_of(core::errc e);
// RFC 9457 `title` of a code: one short English sentence.
std::string_view title_of(core::errc e);
// {"detail": code, "status", "title"} with the table's status, or `override_status` when the contract wants another
// on this route (invalid_email: 422 at sign-up, 400 on PATCH). 503s carry Retry-After.
http::response fail(core::errc e, std::optional<http::status> override_status = std::nullopt,
                    const std::vector<field_error>& errors = {}, int retry_after_s = 1);
// The same for a request the HTTP server refused itself.
http::response fail(http::failure f);

}  // namespace fav::api
