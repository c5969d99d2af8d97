// Expected failures as values: an enumerator's name is its wire code (contract §1).
#pragma once
#include <string_view>

namespace fav::core {

enum class errc {
  not_found = 1,
  method_not_allowed,
  invalid_body,
  payload_too_large,
  request_header_too_large,
  unsupported_media_type,
  bad_request,
  invalid_pagination,
  invalid_filter,
  invalid_product_id,
  invalid_email,
  invalid_name,
  invalid_password,
  email_already_exists,
  invalid_credentials,
  missing_token,
  invalid_token,
  token_expired,
  invalid_refresh_token,
  forbidden,
  cross_site_request,
  missing_api_key,
  invalid_api_key,
  customer_not_found,
  product_not_found,
  product_already_in_favorites,
  product_not_in_favorites,
  catalog_unavailable,
  database_unavailable,
  server_busy,
  too_many_attempts,
  request_timeout,
  not_implemented,
  rate_limited,
  internal_error,
};

// The snake_case wire code of `e`.
std::string_view code(errc e) noexcept;

}  // namespace fav::core
