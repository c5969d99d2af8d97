// See errors.hpp.
#include "api/errors.hpp"

#include "core/json_text.hpp"

namespace fav::api {

using core::errc;
using st = http::status;

http::status status_of(errc e) {
  switch (e) {
    case errc::not_found:
    case errc::customer_not_found:
    case errc::product_not_found:
    case errc::product_not_in_favorites: return st::not_found;
    case errc::method_not_allowed: return st::method_not_allowed;
    case errc::invalid_body:
    case errc::invalid_pagination:
    case errc::invalid_filter:
    case errc::invalid_product_id:
    case errc::invalid_email:
    case errc::invalid_name:
    case errc::invalid_password: return st::unprocessable_entity;
    case errc::payload_too_large: return st::payload_too_large;
    case errc::request_header_too_large: return st::request_header_fields_too_large;
    case errc::unsupported_media_type: return st::unsupported_media_type;
    case errc::bad_request: return st::bad_request;
    case errc::email_already_exists:
    case errc::product_already_in_favorites: return st::conflict;
    case errc::invalid_credentials:
    case errc::missing_token:
    case errc::invalid_token:
    case errc::token_expired:
    case errc::invalid_refresh_token:
    case errc::missing_api_key:
    case errc::invalid_api_key: return st::unauthorized;
    case errc::forbidden:
    case errc::cross_site_request: return st::forbidden;
    case errc::catalog_unavailable:
    case errc::database_unavailable:
    case errc::server_busy: return st::service_unavailable;
    case errc::too_many_attempts: return st::too_many_requests;
    case errc::request_timeout: return st::request_timeout;
    case errc::not_implemented: return st::not_implemented;
    case errc::rate_limited: return st::too_many_requests;
    case errc::internal_error: return st::internal_server_error;
  }
  return st::internal_server_error;
}

// RFC 9457 `title`: a short English sentence per code (contract §10).
std::string_view title_of(errc e) {
  switch (e) {
    case errc::not_found: return "No such resource.";
    case errc::method_not_allowed: return "This method is not allowed on this resource.";
    case errc::invalid_body: return "The request body is not valid.";
    case errc::payload_too_large: return "The request body is too large.";
    case errc::request_header_too_large: return "The request headers are too large.";
    case errc::unsupported_media_type: return "The request body must be JSON.";
    case errc::bad_request: return "The request is malformed.";
    case errc::invalid_pagination: return "The pagination parameters are not valid.";
    case errc::invalid_filter: return "A filter value is not valid.";
    case errc::invalid_product_id: return "The product id is not valid.";
    case errc::invalid_email: return "The email address is not valid.";
    case errc::invalid_name: return "The name is not valid.";
    case errc::invalid_password: return "The password is not valid.";
    case errc::email_already_exists: return "The email address is already in use.";
    case errc::invalid_credentials: return "The email or password is wrong.";
    case errc::missing_token: return "No access token was sent.";
    case errc::invalid_token: return "The access token is not valid.";
    case errc::token_expired: return "The access token has expired.";
    case errc::invalid_refresh_token: return "The refresh token is not valid.";
    case errc::forbidden: return "This resource belongs to another customer.";
    case errc::cross_site_request: return "A cookie-authenticated write from another site is refused.";
    case errc::missing_api_key: return "No API key was sent.";
    case errc::invalid_api_key: return "The API key is not valid.";
    case errc::customer_not_found: return "No such customer.";
    case errc::product_not_found: return "The catalog has no such product.";
    case errc::product_already_in_favorites: return "The product is already a favorite.";
    case errc::product_not_in_favorites: return "The product is not a favorite.";
    case errc::catalog_unavailable: return "The product catalog cannot be reached.";
    case errc::database_unavailable: return "The database cannot be reached.";
    case errc::server_busy: return "The server is busy.";
    case errc::too_many_attempts: return "Too many failed sign-ins; try again later.";
    case errc::request_timeout: return "The request took too long to arrive.";
    case errc::not_implemented: return "This transfer encoding is not supported.";
    case errc::rate_limited: return "Too many requests; slow down.";
    case errc::internal_error: return "Internal error.";
  }
  return "Internal error.";
}

http::response fail(errc e, std::optional<http::status> override_status, const std::vector<field_error>& errors,
                    int retry_after_s) {
  const auto code = override_status.value_or(status_of(e));
  // RFC 9457 problem details: `detail` keeps the contract's code; `status` and `title` added.
  std::string body;
  core::json_writer w(body);
  w.begin_object();
  w.key("detail").str(core::code(e));
  w.key("status").num(static_cast<int>(code));
  w.key("title").str(title_of(e));
  if (!errors.empty()) {
    w.key("errors").begin_array();
    for (auto& f : errors) w.begin_object().key("field").str(f.field).key("code").str(f.code).end_object();
    w.end_array();
  }
  w.end_object();
  auto res = http::json(code, std::move(body));
  if (res.code == st::service_unavailable || e == errc::too_many_attempts)
    res.header("Retry-After", std::to_string(std::max(1, retry_after_s)));
  if (e == errc::missing_token || e == errc::invalid_token || e == errc::token_expired)
    res.header("WWW-Authenticate", "Bearer");
  return res;
}

http::response fail(http::failure f) {
  switch (f) {
    case http::failure::too_large: return fail(errc::payload_too_large);
    case http::failure::headers_too_large: return fail(errc::request_header_too_large);
    case http::failure::request_timeout: return fail(errc::request_timeout);
    case http::failure::not_implemented: return fail(errc::not_implemented);
    case http::failure::rate_limited: return fail(errc::rate_limited);  // the server adds Retry-After
    case http::failure::bad_request: break;
  }
  return fail(errc::bad_request);
}

}  // namespace fav::api
