// Serves the embedded OpenAPI document and Swagger UI (api/docs_assets.hpp) with validators and
// cache headers; the page gets a Content-Security-Policy that allows same-origin files only.
#include "api/docs.hpp"

#include <cstdint>
#include <string>
#include <vector>

#include "api/docs_assets.hpp"
#include "api/errors.hpp"
#include "http/gzip.hpp"

namespace fav::api {
namespace {

// Swagger UI needs no inline script; its CSS embeds icons as data: URIs. The one inline style,
// the topbar logo's <style> (two fill rules, also in docs.css), is allowed by its hash alone.
constexpr std::string_view content_security_policy =
    "default-src 'none'; script-src 'self'; "
    "style-src 'self' 'sha256-RL3ie0nH+Lzz2YNqQN83mnU0J1ot4QL7b99vMdIX99w='; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; manifest-src 'self'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'";

// One servable file with its validators, computed once.
struct entry {
  asset file;
  std::string etag;       // of `bytes`
  std::string gzip_etag;  // of the stored gzip copy, when there is one
};

// "<16 hex digits>" of the FNV-1a 64 hash: cheap, and stable across builds of the same bytes.
std::string hash_hex(std::string_view bytes) {
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : bytes) h = (h ^ c) * 0x100000001b3ull;
  static constexpr char digits[] = "0123456789abcdef";
  std::string out(16, '0');
  for (int i = 15; i >= 0; --i, h >>= 4) out[static_cast<std::size_t>(i)] = digits[h & 0xf];
  return out;
}

entry make_entry(const asset& a) {
  entry e{a, {}, {}};
  std::string hash = hash_hex(a.bytes);
  if (!a.gzip.empty()) {
    // Pre-encoded: each representation has its own strong validator.
    e.etag = '"' + hash + '"';
    e.gzip_etag = '"' + hash + "-gz\"";
  } else {
    // Weak: the server's gzip middleware may re-encode these bytes on the way out.
    e.etag = "W/\"" + hash + '"';
  }
  return e;
}

const std::vector<entry>& entries() {
  static const std::vector<entry> all = [] {
    std::vector<entry> v;
    for (const asset& a : docs_assets()) v.push_back(make_entry(a));
    return v;
  }();
  return all;
}

const entry* find(std::string_view path) {
  for (const entry& e : entries())
    if (e.file.path == path) return &e;
  return nullptr;
}

// True when If-None-Match is "*" or lists `etag` (weak comparison, RFC 9110 §13.1.2).
bool matches(std::string_view if_none_match, std::string_view etag) {
  auto opaque = [](std::string_view t) { return t.starts_with("W/") ? t.substr(2) : t; };
  std::string_view want = opaque(etag);
  while (!if_none_match.empty()) {
    auto comma = if_none_match.find(',');
    auto item = if_none_match.substr(0, comma);
    if_none_match = comma == std::string_view::npos ? std::string_view{} : if_none_match.substr(comma + 1);
    while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
    while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
    if (item == "*" || opaque(item) == want) return true;
  }
  return false;
}

http::response serve(const http::request& req, const entry& e) {
  const asset& a = e.file;
  // Only pre-encoded files vary by Accept-Encoding here; the middleware handles the rest.
  bool gz = !a.gzip.empty() && http::accepts_gzip(req.header("Accept-Encoding"));
  const std::string& etag = gz ? e.gzip_etag : e.etag;

  http::response r;
  r.header("ETag", etag);
  r.header("Cache-Control", a.versioned ? "public, max-age=86400" : "no-cache");
  r.header("X-Content-Type-Options", "nosniff");
  if (!a.gzip.empty()) r.header("Vary", "Accept-Encoding");
  if (a.content_type.starts_with("text/html"))
    r.header("Content-Security-Policy", std::string(content_security_policy));

  if (matches(req.header("If-None-Match"), etag)) {
    r.code = http::status::not_modified;
    r.content_type.clear();
    r.compressible = false;
    return r;
  }
  r.code = http::status::ok;
  r.content_type = std::string(a.content_type);
  if (gz) {
    r.body = std::string(a.gzip);
    r.header("Content-Encoding", "gzip");
    r.compressible = false;
  } else {
    r.body = std::string(a.bytes);
    // Images are compressed already; a file with a stored gzip copy went to a client that
    // does not accept gzip. Either way the middleware has nothing to do.
    r.compressible = a.gzip.empty() && !a.content_type.starts_with("image/");
  }
  return r;
}

http::response not_found() {
  return fail(core::errc::not_found);
}

}  // namespace

boost::asio::awaitable<http::response> openapi_json(http::request& req, app&) {
  static const entry doc = make_entry(asset{"openapi.json", "application/json; charset=utf-8", openapi_document()});
  co_return serve(req, doc);
}

boost::asio::awaitable<http::response> docs_index(http::request& req, app&) {
  const entry* e = find("index.html");
  co_return e ? serve(req, *e) : not_found();
}

boost::asio::awaitable<http::response> docs_asset(http::request& req, app&) {
  const auto file = req.params.get("file");
  const entry* e = file.empty() ? nullptr : find(file);
  co_return e ? serve(req, *e) : not_found();
}

}  // namespace fav::api
