// Path-pattern matching for the route table: "/customers/{id}/favorites/{product_id}".
// Generic: knows nothing of favorites; routes.cpp owns the table itself.
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace fav::http {

// A route pattern split once at start-up.
class path_pattern {
 public:
  explicit path_pattern(std::string_view pattern);
  // True when `path` matches; fills `params` with the {placeholders}' values in order.
  bool match(std::string_view path, std::vector<std::string_view>& params) const;
  std::string_view text() const { return text_; }

 private:
  std::string text_;
  std::vector<std::string> segments_;  // "{...}" marks a parameter
};

}  // namespace fav::http
