// The one JSON writer: values written straight into a string, without a DOM, so the hot paths
// (the favorites list, error bodies, log lines) build their text in one pass. Only typed values
// go in (strings, integers, money, booleans, null, objects and arrays); there is no way to put
// raw bytes between a key and its value, so what comes out is always valid JSON.
#pragma once
#include <cassert>
#include <charconv>
#include <cstdint>
#include <string>
#include <string_view>

namespace fav::core {

// Appends `s` as a quoted JSON string (what json_writer::str writes).
void append_json_string(std::string& out, std::string_view s);

// Usage: json_writer w(out); w.begin_object(); w.key("a").str("x"); w.key("n").num(1);
// w.key("list").begin_array(); w.num(1); w.num(2); w.end_array(); w.end_object();
// Commas are placed by the writer; keys only inside objects, values anywhere (the caller keeps
// begin/end balanced: a debug build asserts it).
class json_writer {
 public:
  explicit json_writer(std::string& out) : out_(out) {}
  json_writer(const json_writer&) = delete;
  json_writer& operator=(const json_writer&) = delete;

  json_writer& begin_object() { return open('{'); }
  json_writer& end_object() { return close('}'); }
  json_writer& begin_array() { return open('['); }
  json_writer& end_array() { return close(']'); }
  // The next member's name; its value follows with one of the calls below.
  json_writer& key(std::string_view k) {
    comma();
    append_json_string(out_, k);
    out_ += ':';
    need_comma_ = false;
    return *this;
  }

  // A quoted string (control characters, quotes, backslash escaped; bytes that are not valid
  // UTF-8 replaced by U+FFFD).
  json_writer& str(std::string_view v) {
    comma();
    append_json_string(out_, v);
    need_comma_ = true;
    return *this;
  }
  json_writer& num(std::int64_t v) {
    comma();
    char buf[24];
    out_.append(buf, std::to_chars(buf, buf + sizeof buf, v).ptr);
    need_comma_ = true;
    return *this;
  }
  // Hundredths (DECIMAL(10,2) money and rates) as a JSON number with no trailing zeros:
  // 10995 → 109.95, 2230 → 22.3, 500 → 5, -5 → -0.05.
  json_writer& money(std::int64_t hundredths);
  // A measurement with `decimals` digits after the point (printf's %.*f); null when not finite.
  json_writer& fixed(double v, int decimals);
  json_writer& boolean(bool b) {
    comma();
    out_ += b ? "true" : "false";
    need_comma_ = true;
    return *this;
  }
  json_writer& null() {
    comma();
    out_ += "null";
    need_comma_ = true;
    return *this;
  }

  // True once every object and array begun has been ended.
  bool complete() const { return depth_ == 0; }

 private:
  void comma() {
    if (need_comma_) out_ += ',';
  }
  json_writer& open(char bracket) {
    comma();
    out_ += bracket;
    need_comma_ = false;
    ++depth_;
    return *this;
  }
  json_writer& close(char bracket) {
    assert(depth_ > 0);
    out_ += bracket;
    need_comma_ = true;
    --depth_;
    return *this;
  }
  std::string& out_;
  bool need_comma_ = false;  // a value (or a closed container) was the last thing written
  int depth_ = 0;
};

}  // namespace fav::core
