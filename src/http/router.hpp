// Path-pattern matching for the route table: "/customers/{id}/favorites/{product_id}".
// Generic: knows nothing of favorites; routes.cpp owns the table itself.
#pragma once
#include <string>
#include <string_view>
#include <vector>

#include "http/message.hpp"

namespace fav::http {

// A route pattern split once at start-up.
class path_pattern {
 public:
  // Throws std::invalid_argument for more placeholders than path_params holds.
  explicit path_pattern(std::string_view pattern);
  // True when `path` matches; fills `params` with each {placeholder}'s value under its name.
  // The names view this pattern: it must outlive `params`.
  bool match(std::string_view path, path_params& params) const;

 private:
  std::vector<std::string> segments_;  // "{...}" marks a parameter
};

}  // namespace fav::http
