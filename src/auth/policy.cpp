// See policy.hpp.
#include "auth/policy.hpp"

#include <sodium.h>

#include <cctype>

#include "auth/revocation.hpp"
#include "auth/token_memo.hpp"
#include "util/time.hpp"

namespace fav::auth {

using core::errc;

std::string_view presented_token(const http::request& req) {
  auto authz = req.header("authorization");
  if (authz.size() > 7 && (authz.substr(0, 7) == "Bearer " || authz.substr(0, 7) == "bearer ")) {
    auto t = authz.substr(7);
    while (!t.empty() && t.front() == ' ') t.remove_prefix(1);
    return t;
  }
  // Cookie: a=b; access_token=...; c=d
  for (auto it = req.raw->find(http::bhttp::field::cookie);
       it != req.raw->end() && it->name() == http::bhttp::field::cookie; ++it) {
    std::string_view cookies = it->value();
    while (!cookies.empty()) {
      auto semi = cookies.find(';');
      auto pair = cookies.substr(0, semi);
      while (!pair.empty() && pair.front() == ' ') pair.remove_prefix(1);
      if (pair.substr(0, 13) == "access_token=") {
        auto v = pair.substr(13);
        if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
        return v;
      }
      cookies = semi == std::string_view::npos ? std::string_view{} : cookies.substr(semi + 1);
    }
  }
  return {};
}

std::string revocation_key(std::string_view token, const std::optional<std::string>& jti) {
  if (jti) return *jti;
  auto dot = token.rfind('.');
  return "sig:" + std::string(token.substr(dot == std::string_view::npos ? 0 : dot + 1));
}

namespace {

std::string lowered(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// The first element of a comma-separated header (the client-facing one of a proxy chain), trimmed.
std::string_view first_item(std::string_view v) {
  v = v.substr(0, v.find(','));
  while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
  while (!v.empty() && v.back() == ' ') v.remove_suffix(1);
  return v;
}

// "host[:port]" lower-cased, without the scheme's default port, so "a.example:443" and
// "a.example" name the same https origin.
std::string authority(std::string_view scheme, std::string_view host_port) {
  std::string h = lowered(host_port);
  const std::string_view def = scheme == "https" ? ":443" : ":80";
  if (h.size() > def.size() && h.ends_with(def)) h.erase(h.size() - def.size());
  return h;
}

// Whether `origin` ("scheme://host[:port]") is the service's own: its Host (or, from a trusted
// proxy, X-Forwarded-Host) and, when a trusted proxy says it, its X-Forwarded-Proto. Without a
// forwarded scheme the service cannot know whether TLS ended in front of it: http and https both
// pass, as they name the same host.
bool own_origin(const http::request& req, std::string_view origin) {
  const auto sep = origin.find("://");
  if (sep == std::string_view::npos) return false;
  const std::string scheme = lowered(origin.substr(0, sep));
  if (scheme != "http" && scheme != "https") return false;
  std::string_view host = req.header("host");
  std::string_view proto;
  if (req.from_trusted_proxy) {
    if (auto fwd = first_item(req.header("x-forwarded-host")); !fwd.empty()) host = fwd;
    proto = first_item(req.header("x-forwarded-proto"));
  }
  if (host.empty() || (!proto.empty() && lowered(proto) != scheme)) return false;
  return authority(scheme, origin.substr(sep + 3)) == authority(scheme, host);
}

bool listed_origin(const std::vector<std::string>& allowed, std::string_view origin) {
  const std::string want = lowered(origin);
  for (const auto& o : allowed) {
    std::string_view a = o;
    while (a.size() > 1 && a.back() == '/') a.remove_suffix(1);
    if (a != "*" && lowered(a) == want) return true;
  }
  return false;
}

bool bearer(const http::request& req) {
  const auto authz = req.header("authorization");
  return authz.size() > 7 && (authz.substr(0, 7) == "Bearer " || authz.substr(0, 7) == "bearer ");
}

}  // namespace

std::string origin_of(std::string_view url) {
  const auto sep = url.find("://");
  if (sep == std::string_view::npos) return {};
  const std::string scheme = lowered(url.substr(0, sep));
  if (scheme != "http" && scheme != "https") return {};
  auto rest = url.substr(sep + 3);
  rest = rest.substr(0, rest.find_first_of("/?#"));
  if (auto at = rest.rfind('@'); at != std::string_view::npos) rest.remove_prefix(at + 1);  // no userinfo
  if (rest.empty()) return {};
  return scheme + "://" + lowered(rest);
}

std::optional<errc> cross_site(policy p, const http::request& req, const verifier& ver) {
  if (p != policy::customer_self && p != policy::token_optional) return std::nullopt;
  const auto method = req.raw->method();
  if (method != http::verb::post && method != http::verb::patch && method != http::verb::delete_) return std::nullopt;
  // Only what a browser sends by itself: a Bearer token or an API key is never attached by a
  // page of another site, and a request without a token authenticates nothing.
  if (bearer(req) || !req.header("x-aiqfome-api-key").empty() || presented_token(req).empty()) return std::nullopt;
  std::string origin;
  if (auto it = req.raw->find(http::bhttp::field::origin); it != req.raw->end()) {
    origin = std::string(first_item(it->value()));
  } else if (auto ref = req.raw->find(http::bhttp::field::referer); ref != req.raw->end()) {
    origin = origin_of(first_item(ref->value()));
    if (origin.empty()) return errc::cross_site_request;  // a Referer naming no web origin
  } else {
    return std::nullopt;  // neither header: not a browser's cross-site request
  }
  // `Origin: null` (sandboxed frames, file: pages, some redirects) names no site to trust.
  if (origin == "null" || origin.empty()) return errc::cross_site_request;
  if (own_origin(req, origin) || listed_origin(ver.allowed_origins, origin)) return std::nullopt;
  return errc::cross_site_request;
}

namespace {

struct verification {
  const verified_token* token = nullptr;  // null: refused with `error`
  errc error = errc::invalid_token;
};

// The connection's token memo (made on first use), or `scratch` outside a session.
token_memo& memo_of(http::request& req, token_memo& scratch) {
  if (!req.connection_auth) return scratch;
  if (auto* memo = std::any_cast<token_memo>(req.connection_auth)) return *memo;
  return req.connection_auth->emplace<token_memo>();
}

// `token` verified: from the connection's memo when it verified this very token before and it has
// not expired (auth/token_memo.hpp), else by its signature and claims, then remembered.
// invalid_token or token_expired when it does not verify.
verification verify_once(std::string_view token, http::request& req, const verifier& ver, token_memo& scratch) {
  const auto now_s = util::now_micros() / 1'000'000;
  token_memo& memo = memo_of(req, scratch);
  if (const auto* known = memo.find(token, now_s)) return {known};
  auto v = ver.jwt.verify(token, now_s);
  switch (v.status) {
    case token_status::ok: break;
    case token_status::expired: return {nullptr, errc::token_expired};
    default: return {nullptr, errc::invalid_token};
  }
  // The subject parsed once, here: one that is no customer id names no customer (as a deleted one).
  auto customer = core::customer_id::parse(v.value.sub);
  if (!customer) return {nullptr, errc::invalid_token};
  std::string key = revocation_key(token, v.value.jti);
  return {
      &memo.remember(token, verified_token{std::move(*customer), std::move(key), std::move(v.value.sid), v.value.exp})};
}

}  // namespace

const principal& caller(const http::request& req) {
  return std::any_cast<const principal&>(req.auth);  // throws (→ 500) if a route forgot its policy
}

net::awaitable<std::optional<errc>> authorize(policy p, http::request& req, const verifier& ver) {
  if (p == policy::none || p == policy::token_optional) co_return std::nullopt;
  if (p == policy::api_key) {
    auto key = req.header("x-aiqfome-api-key");
    if (key.empty()) co_return errc::missing_api_key;
    const auto& want = ver.api_key;
    // Constant time over the expected length; a length mismatch still does the full compare.
    std::string padded(want.size(), '\0');
    std::copy_n(key.data(), std::min(key.size(), want.size()), padded.data());
    bool same = sodium_memcmp(padded.data(), want.data(), want.size()) == 0 && key.size() == want.size();
    co_return same ? std::nullopt : std::optional(errc::invalid_api_key);
  }

  auto token = presented_token(req);
  if (token.empty()) co_return errc::missing_token;
  token_memo scratch;  // stands for the connection's memo outside a session
  const auto verified = verify_once(token, req, ver, scratch);
  if (!verified.token) co_return verified.error;
  const core::customer_id* customer = &verified.token->customer;
  // Revoked tokens and deleted customers, on every request (a memoised token included): one
  // query, or a short-lived in-process answer.
  // Views of the memo's entry, which no other request touches while this one runs; named, not
  // temporaries inside co_await (CONTRIBUTING.md, "Compiler notes").
  static const std::string no_sid;
  const std::string& key = verified.token->key;
  const std::string& sid = verified.token->sid ? *verified.token->sid : no_sid;
  const std::optional<std::string>& token_sid = verified.token->sid;
  const std::int64_t exp = verified.token->exp;
  auto state = co_await ver.tokens.check(*customer, key, sid);
  if (state != store::auth_state::ok) co_return errc::invalid_token;
  // customer_self: {id} must be exactly the caller (malformed ids included → 403).
  if (req.params.get("id") != customer->str()) co_return errc::forbidden;
  req.auth = principal{*customer, key, token_sid, exp};
  co_return std::nullopt;
}

}  // namespace fav::auth
