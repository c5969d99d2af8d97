// What every response passes through, as small functions the session calls in this order
// (server.cpp, `finish`): correlation id → handler headers → CORS → gzip → Date; then, once
// written, the access-log record. Each reads the request and edits the outgoing message only.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "http/message.hpp"

namespace fav::http {

// Request side, before any handler runs.

// Contract §8 framing: a Transfer-Encoding other than exactly `chunked` → not_implemented; one
// together with Content-Length → bad_request (Beast itself refuses differing Content-Lengths).
std::optional<failure> framing_failure(const raw_request& r);

// The method as a metric label: GET HEAD POST PATCH DELETE OPTIONS, anything else `other`.
std::string_view method_label(const raw_request& r);

// Contract §1: the incoming x-correlation-id (or x-request-id) when it is 1–64 chars of
// [A-Za-z0-9._-], else a fresh UUID.
std::string correlation_id(const raw_request& r);

// Response side, in the session's order.

// x-correlation-id, Content-Type and the handler's own headers (Location, Retry-After, ...).
void apply_response_headers(const response& res, std::string_view correlation_id, raw_response& out);

// Contract §10: an error answer (4xx/5xx with a JSON body) is `application/problem+json` when the
// request's Accept names that type, else it stays application/json.
void apply_problem_type(const raw_request& req, raw_response& out);

// CORS for a request carrying Origin: `origins` is CORS_ALLOW_ORIGINS ("*" first means any).
void apply_cors(const std::vector<std::string>& origins, const raw_request& req, raw_response& out);

// Compresses `res.body` when it is compressible, ≥ 500 bytes and the client accepts gzip.
void apply_gzip(const raw_request& req, response& res, raw_response& out);

// RFC 9110 §5.6.7 IMF-fixdate of a Unix time: "Sun, 06 Nov 1994 08:49:37 GMT".
std::string http_date(std::int64_t unix_seconds);
// `Date` on every response (RFC 9110 §6.6.1), formatted at most once a second per thread.
void apply_date(raw_response& out);

// One access-log line per finished request (contract §7): error level for 5xx.
void log_access(const request& req, int status, double seconds);

}  // namespace fav::http
