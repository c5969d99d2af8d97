// See trace_context.hpp; the format is https://www.w3.org/TR/trace-context/#traceparent-header.
#include "http/trace_context.hpp"

#include "util/random.hpp"

namespace fav::http {

namespace {
bool lower_hex(std::string_view s) {
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}
bool all_zero(std::string_view s) {
  return s.find_first_not_of('0') == std::string_view::npos;
}
}  // namespace

std::optional<trace_context> parse_traceparent(std::string_view h) {
  // version "-" trace-id "-" parent-id "-" flags: 2 + 1 + 32 + 1 + 16 + 1 + 2 = 55 characters.
  while (!h.empty() && (h.back() == ' ' || h.back() == '\t')) h.remove_suffix(1);
  while (!h.empty() && (h.front() == ' ' || h.front() == '\t')) h.remove_prefix(1);
  if (h.size() < 55 || h[2] != '-' || h[35] != '-' || h[52] != '-') return std::nullopt;
  auto version = h.substr(0, 2), trace = h.substr(3, 32), parent = h.substr(36, 16), flags = h.substr(53, 2);
  if (!lower_hex(version) || version == "ff") return std::nullopt;
  // Version 00 is exactly 55 characters; a later version may append "-..." fields.
  if (version == "00" ? h.size() != 55 : (h.size() > 55 && h[55] != '-')) return std::nullopt;
  if (!lower_hex(trace) || !lower_hex(parent) || !lower_hex(flags)) return std::nullopt;
  if (all_zero(trace) || all_zero(parent)) return std::nullopt;
  return trace_context{std::string(trace), std::string(parent), std::string(flags)};
}

trace_context continue_or_start(std::string_view header) {
  if (auto ctx = parse_traceparent(header)) return std::move(*ctx);
  return trace_context{util::request_hex(16), {}, "00"};
}

std::string child_traceparent(const trace_context& ctx) {
  return "00-" + ctx.trace_id + "-" + util::request_hex(8) + "-" + ctx.flags;
}

}  // namespace fav::http
