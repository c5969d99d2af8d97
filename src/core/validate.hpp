// Parsing at the edge into small trusted values (contract §1, §3); pure and unit-tested.
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/errc.hpp"
#include "core/types.hpp"

namespace fav::core {

// Trimmed, lower-cased, sane-pattern email of at most 255 chars; nullopt → invalid_email.
std::optional<std::string> parse_email(std::string_view raw);
// Trimmed name of 1..255 code points; nullopt → invalid_name.
std::optional<std::string> parse_name(std::string_view raw);
// 8..128 code points of valid UTF-8.
bool valid_password(std::string_view raw);
// A positive integer ≤ 2^63−1 in plain decimal; nullopt → invalid_product_id.
std::optional<std::int64_t> parse_product_id(std::string_view raw);
// page ≥ 1 (default 1), per_page 1..limit (default 20); nullopt → invalid_pagination.
std::optional<page_req> parse_page(const std::string* page, const std::string* per_page, std::int64_t limit);
// Number of Unicode code points, or -1 when `s` is not valid UTF-8.
std::int64_t utf8_length(std::string_view s);
// ASCII lower-casing (what both backends' filters compare).
std::string ascii_lower(std::string_view s);
std::string trim(std::string_view s);

}  // namespace fav::core
