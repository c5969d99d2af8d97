// W3C Trace Context (contract §10): an incoming `traceparent` is continued, anything else starts
// a fresh trace; outgoing calls carry the trace id with a new parent (span) id.
#pragma once
#include <optional>
#include <string>
#include <string_view>

namespace fav::http {

struct trace_context {
  std::string trace_id;   // 32 lowercase hex digits, not all zero
  std::string parent_id;  // the caller's span id (16 hex digits); empty when the trace started here
  std::string flags = "00";
};

// The `traceparent` header's fields when it is valid (version 00, or a later version read as 00
// as the specification asks; never ff; lowercase hex; trace and parent ids not all zeros).
std::optional<trace_context> parse_traceparent(std::string_view header);
// The request's trace: `header` continued when valid, else a fresh trace id.
trace_context continue_or_start(std::string_view header);
// A `traceparent` for an outgoing call made under `ctx`, with a fresh parent (span) id.
std::string child_traceparent(const trace_context& ctx);

}  // namespace fav::http
