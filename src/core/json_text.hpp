// Writing JSON text directly into a string: the hot paths build bodies without a DOM.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

namespace fav::core {

// Appends `s` as a quoted JSON string (control chars, quotes, backslash escaped; invalid UTF-8
// bytes replaced by U+FFFD so the output is always valid JSON).
void append_json_string(std::string& out, std::string_view s);

// Appends a hundredths value as a JSON number: 10995 → 109.95, 2230 → 22.3, 500 → 5.
void append_cents(std::string& out, std::int64_t cents);

inline void append_int(std::string& out, std::int64_t v) {
  out += std::to_string(v);
}

// Small object builder: json_object o(out); o.key("a").str("x"); ... o.close();
class json_object {
 public:
  explicit json_object(std::string& out) : out_(out) { out_ += '{'; }
  json_object& key(std::string_view k) {
    if (!first_) out_ += ',';
    first_ = false;
    append_json_string(out_, k);
    out_ += ':';
    return *this;
  }
  json_object& str(std::string_view v) {
    append_json_string(out_, v);
    return *this;
  }
  json_object& num(std::int64_t v) {
    append_int(out_, v);
    return *this;
  }
  json_object& raw(std::string_view v) {
    out_ += v;
    return *this;
  }
  json_object& null() {
    out_ += "null";
    return *this;
  }
  json_object& boolean(bool b) {
    out_ += b ? "true" : "false";
    return *this;
  }
  void close() { out_ += '}'; }

 private:
  std::string& out_;
  bool first_ = true;
};

}  // namespace fav::core
