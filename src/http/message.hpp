// The request a handler reads and the response it returns; no Beast types leak past here
// except the parsed header block, so handlers stay plain functions.
#pragma once
#include <any>
#include <array>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/verb.hpp>
#include <memory_resource>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "http/trace_context.hpp"

namespace fav::http {

namespace bhttp = boost::beast::http;
using verb = bhttp::verb;
using status = bhttp::status;

// Header fields of a request and of its response come from their connection's reusable storage
// (server.cpp); a default-constructed allocator takes them from the heap (tests, tools).
using fields_allocator = std::pmr::polymorphic_allocator<char>;
using fields = bhttp::basic_fields<fields_allocator>;
using raw_request = bhttp::request<bhttp::string_body, fields>;
using raw_response = bhttp::response<bhttp::string_body, fields>;

// What the server itself can refuse before any handler runs.
enum class failure {
  bad_request,        // unparsable request, missing Host, bad target, ambiguous framing
  too_large,          // body over the limit
  headers_too_large,  // header block over the limit
  request_timeout,    // headers or body too slow (contract §8)
  not_implemented,    // a Transfer-Encoding other than chunked
  rate_limited,       // the client's bucket is empty
};

// A matched route's path parameters by placeholder name ("id" for "{id}"); a flat array, since
// a route has at most a few. Names view the route table's patterns, values the request's path.
class path_params {
 public:
  static constexpr std::size_t capacity = 4;
  // The value of {name}, or empty when the matched pattern has no such placeholder.
  std::string_view get(std::string_view name) const {
    for (std::size_t i = 0; i < size_; ++i)
      if (items_[i].first == name) return items_[i].second;
    return {};
  }
  // False when full (a pattern with more placeholders than `capacity` is refused at start-up).
  bool add(std::string_view name, std::string_view value) {
    if (size_ == capacity) return false;
    items_[size_++] = {name, value};
    return true;
  }
  void clear() { size_ = 0; }
  std::size_t size() const { return size_; }
  auto begin() const { return items_.begin(); }
  auto end() const { return items_.begin() + static_cast<std::ptrdiff_t>(size_); }

 private:
  std::array<std::pair<std::string_view, std::string_view>, capacity> items_{};
  std::size_t size_ = 0;
};

struct request {
  const raw_request* raw = nullptr;                        // method, headers, body
  std::string_view path;                                   // decoded-free path, no query
  std::vector<std::pair<std::string, std::string>> query;  // percent-decoded, in order
  path_params params;                                      // path parameters, by name
  std::string correlation_id;
  std::string client_addr;  // §8: the peer, or behind a trusted proxy the X-Forwarded-For client, as
                            // its client key (an IPv6 client as its /64 network)
  std::string_view route;   // the matched route template, for logs and metrics
  trace_context trace;      // W3C trace context: continued from `traceparent`, or started here
  std::any auth;            // opaque to http/: the auth policy stores who is calling
  // What the auth policy keeps for this request's connection across its requests (the last token
  // it verified); opaque to http/, owned by the session; null outside a session.
  std::any* connection_auth = nullptr;

  // The peer is in TRUSTED_PROXIES, so its X-Forwarded-Host/-Proto count (the cross-site rule).
  bool from_trusted_proxy = false;

  // The client's key for per-client rules (rate limits, the sign-in guard, fair shares).
  std::string_view client_address() const { return client_addr; }

  std::string_view body() const { return raw->body(); }
  // Header value or empty.
  std::string_view header(std::string_view name) const {
    auto it = raw->find(name);
    return it == raw->end() ? std::string_view{} : std::string_view{it->value()};
  }
  // First query value with this name, if any.
  const std::string* query_value(std::string_view name) const {
    for (auto& [k, v] : query)
      if (k == name) return &v;
    return nullptr;
  }
};

struct response {
  status code = status::ok;
  std::string body;  // already serialized
  std::string content_type = "application/json; charset=utf-8";
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers (Location, ...)
  bool compressible = true;                                  // false for pre-compressed or binary assets

  response& header(std::string name, std::string value) {
    headers.emplace_back(std::move(name), std::move(value));
    return *this;
  }
};

// A JSON response from an already-serialized body.
inline response json(status code, std::string body) {
  response r;
  r.code = code;
  r.body = std::move(body);
  return r;
}

inline response no_content() {
  response r;
  r.code = status::no_content;
  r.content_type.clear();
  return r;
}

}  // namespace fav::http
