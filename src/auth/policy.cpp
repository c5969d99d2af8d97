// See policy.hpp.
#include "auth/policy.hpp"

#include <sodium.h>

#include "auth/revocation.hpp"
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

const principal& caller(const http::request& req) {
  return std::any_cast<const principal&>(req.auth);  // throws (→ 500) if a route forgot its policy
}

net::awaitable<std::optional<errc>> authorize(policy p, http::request& req, const verifier& ver) {
  if (p == policy::none) co_return std::nullopt;
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
  auto v = ver.jwt.verify(token, util::now_micros() / 1'000'000);
  switch (v.status) {
    case token_status::ok: break;
    case token_status::expired: co_return errc::token_expired;
    default: co_return errc::invalid_token;
  }
  // The subject parsed once, here: one that is no customer id names no customer (as a deleted one).
  const auto customer = core::customer_id::parse(v.value.sub);
  if (!customer) co_return errc::invalid_token;
  // Revoked tokens and deleted customers: one query, or a short-lived in-process answer.
  std::string key = revocation_key(token, v.value.jti);
  // Named, not a temporary inside co_await: g++ 12 destroys such temporaries twice.
  const std::string sid = v.value.sid.value_or(std::string());
  if (p == policy::customer_self_read && req.params.get("id") == customer->str()) {
    // A read of the caller's own data: on a cache miss the check goes with the handler's read.
    principal who{*customer, key, v.value.sid, v.value.exp, std::nullopt, {}};
    who.ticket = ver.tokens.lookup(*customer, key, sid);
    if (!who.ticket.hit) who.pending = store::token_check{*customer, key, sid.empty() ? "" : sign_in_key(sid)};
    req.auth = std::move(who);
    co_return std::nullopt;
  }
  auto state = co_await ver.tokens.check(*customer, key, sid);
  if (state != store::auth_state::ok) co_return errc::invalid_token;
  // customer_self: {id} must be exactly the caller (malformed ids included → 403).
  if (req.params.get("id") != customer->str()) co_return errc::forbidden;
  req.auth = principal{*customer, std::move(key), v.value.sid, v.value.exp, std::nullopt, {}};
  co_return std::nullopt;
}

store::token_check* pending_check(http::request& req) {
  auto* who = std::any_cast<principal>(&req.auth);
  if (!who || !who->pending || who->pending->passed) return nullptr;
  return &*who->pending;
}

net::awaitable<std::optional<errc>> settle(http::request& req, const verifier& ver) {
  auto* who = std::any_cast<principal>(&req.auth);
  if (!who || !who->pending) co_return std::nullopt;
  const std::string sid = who->sid.value_or(std::string());  // named: see authorize
  if (who->pending->passed) {
    ver.tokens.remember(who->customer_id, who->jti, sid, who->ticket);
    co_return std::nullopt;
  }
  const auto state = co_await ver.tokens.check(who->customer_id, who->jti, sid);
  if (state != store::auth_state::ok) co_return errc::invalid_token;
  co_return std::nullopt;
}

}  // namespace fav::auth
