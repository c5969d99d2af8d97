// Wire codes of core::errc; kept next to the enum so a new value cannot miss its name.
#include "core/errc.hpp"

namespace fav::core {

std::string_view code(errc e) noexcept {
  switch (e) {
    case errc::not_found: return "not_found";
    case errc::method_not_allowed: return "method_not_allowed";
    case errc::invalid_body: return "invalid_body";
    case errc::payload_too_large: return "payload_too_large";
    case errc::request_header_too_large: return "request_header_too_large";
    case errc::unsupported_media_type: return "unsupported_media_type";
    case errc::bad_request: return "bad_request";
    case errc::invalid_pagination: return "invalid_pagination";
    case errc::invalid_filter: return "invalid_filter";
    case errc::invalid_product_id: return "invalid_product_id";
    case errc::invalid_email: return "invalid_email";
    case errc::invalid_name: return "invalid_name";
    case errc::invalid_password: return "invalid_password";
    case errc::email_already_exists: return "email_already_exists";
    case errc::invalid_credentials: return "invalid_credentials";
    case errc::missing_token: return "missing_token";
    case errc::invalid_token: return "invalid_token";
    case errc::token_expired: return "token_expired";
    case errc::invalid_refresh_token: return "invalid_refresh_token";
    case errc::forbidden: return "forbidden";
    case errc::cross_site_request: return "cross_site_request";
    case errc::missing_api_key: return "missing_api_key";
    case errc::invalid_api_key: return "invalid_api_key";
    case errc::customer_not_found: return "customer_not_found";
    case errc::product_not_found: return "product_not_found";
    case errc::product_already_in_favorites: return "product_already_in_favorites";
    case errc::product_not_in_favorites: return "product_not_in_favorites";
    case errc::catalog_unavailable: return "catalog_unavailable";
    case errc::database_unavailable: return "database_unavailable";
    case errc::server_busy: return "server_busy";
    case errc::too_many_attempts: return "too_many_attempts";
    case errc::request_timeout: return "request_timeout";
    case errc::not_implemented: return "not_implemented";
    case errc::rate_limited: return "rate_limited";
    case errc::internal_error: return "internal_error";
  }
  return "internal_error";
}

}  // namespace fav::core
