// Handlers for /auth: sign-up, sign-in, sign-out, refresh (contract §3 "Auth").
#include <algorithm>
#include <boost/json/object.hpp>

#include "api/errors.hpp"
#include "api/handlers.hpp"
#include "api/json_body.hpp"
#include "app.hpp"
#include "auth/password.hpp"
#include "auth/policy.hpp"
#include "auth/refresh_token.hpp"
#include "auth/revocation.hpp"
#include "auth/sign_in_guard.hpp"
#include "core/json_text.hpp"
#include "core/validate.hpp"
#include "util/random.hpp"
#include "util/time.hpp"

namespace fav::api {

using core::errc;

namespace {

constexpr const char* cookie_attrs = "; HttpOnly; Secure; SameSite=Lax; Path=/";

// The longest an access token lives (JWT_EXPIRE_DAYS), in microseconds.
core::micros access_ttl_us(const app& a) {
  return util::to_micros(std::chrono::seconds(a.cfg.jwt_expire_seconds()));
}

auth::sign_in_limits sign_in_limits_of(const util::config& cfg) {
  auth::sign_in_limits l;
  l.max_per_address = cfg.sign_in_max_failures;
  l.max_per_email = cfg.sign_in_max_failures_per_email;
  l.window_us = util::to_micros(cfg.sign_in_failure_window);
  return l;
}

// The Set-Cookie value that expires the access_token cookie. (Appended step by step: g++ 12
// sees false array bounds in `std::string(...) + ...` once inlined into sign_out's frame.)
std::string expired_cookie() {
  std::string v = "access_token=";
  v.append(cookie_attrs).append("; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT");
  return v;
}

// The expiries a sign-in gets when it starts or refreshes at `now`: its refresh token's, and the
// time every token it issued so far has expired (the sweep's cut-off).
core::sign_in expiries_from(const app& a, core::micros now) {
  core::sign_in s;
  s.refresh_expires_at = now + util::to_micros(a.cfg.refresh_expire);
  s.expires_at = std::max(s.refresh_expires_at, now + access_ttl_us(a));
  return s;
}

// Mints an access token (sub, exp, iat, jti, sid) and answers like the reference's sign-in,
// plus `refresh_token`, with the access_token cookie.
http::response session_response(app& a, const std::string& customer_id, const std::string& family,
                                const std::string& refresh_token) {
  auto ttl = a.cfg.jwt_expire_seconds();
  auth::claims c;
  c.sub = customer_id;
  c.iat = util::now_micros() / 1'000'000;
  c.exp = *c.iat + ttl;
  c.jti = util::uuid_v4();
  c.sid = family;
  std::string access = a.jwt.sign(c);

  std::string body;
  core::json_writer w(body);
  w.begin_object();
  w.key("access_token").str(access);
  w.key("token_type").str("bearer");
  w.key("expires_in").num(ttl);
  w.key("refresh_token").str(refresh_token);
  w.end_object();
  auto res = http::json(http::status::ok, std::move(body));
  res.header("Set-Cookie", "access_token=" + access + cookie_attrs + "; Max-Age=" + std::to_string(ttl));
  res.header("Cache-Control", "no-store");
  return res;
}

}  // namespace

net::awaitable<http::response> sign_up(http::request& req, app& a) {
  auto fields = read_fields(req, {{"name", required}, {"email", required}, {"password", required}});
  if (auto* r = std::get_if<http::response>(&fields)) co_return std::move(*r);
  auto& [name, email, password] = std::get<0>(fields);
  std::vector<field_error> errors;

  auto good_email = core::parse_email(*email);
  auto good_name = core::parse_name(*name);
  bool good_password = core::valid_password(*password);
  if (!good_email) errors.push_back({"email", "invalid"});
  if (!good_name) errors.push_back({"name", "invalid"});
  if (!good_password) errors.push_back({"password", "invalid"});
  if (!good_email) co_return fail(errc::invalid_email, std::nullopt, errors);
  if (!good_name) co_return fail(errc::invalid_name, std::nullopt, errors);
  if (!good_password) co_return fail(errc::invalid_password, std::nullopt, errors);

  // A cheap early answer for a taken email; the INSERT below still decides races.
  if (co_await a.db.find_customer_by_email(*good_email)) co_return fail(errc::email_already_exists);
  // The hash queue's share is per client address (§8 "Fair shares").
  auto hash = co_await a.hashes.hash(std::string(req.client_address()), std::move(*password));
  if (!hash) co_return fail(errc::server_busy);

  auto now = util::now_micros();
  core::customer c{util::uuid_v4(), std::move(*good_name), std::move(*good_email), std::move(*hash), now, now};
  if (!co_await a.db.insert_customer(c)) co_return fail(errc::email_already_exists);

  std::string body;
  core::json_writer w(body);
  w.begin_object().key("id").str(c.id).end_object();
  auto res = http::json(http::status::created, std::move(body));
  res.header("Location", "/customers/" + c.id);
  co_return res;
}

net::awaitable<http::response> sign_in(http::request& req, app& a) {
  auto fields = read_fields(req, {{"email", required}, {"password", required}});
  if (auto* r = std::get_if<http::response>(&fields)) co_return std::move(*r);
  auto& [email, password] = std::get<0>(fields);

  // §8 "Sign-in input": what sign-up would refuse names no customer; answered at once, with no
  // query, no count and no hash (so no oversized key reaches the database either).
  auto good_email = core::parse_email(*email);
  if (!good_email || !core::valid_password(*password)) co_return fail(errc::invalid_credentials);
  const std::string normalized = std::move(*good_email);
  // The sign-in guard (§8) first: the attempt is counted before it is checked, so concurrent
  // guesses cannot pass the limit; a locked email costs one query, never a hash. What is not a
  // failure (a locked answer, a full hash queue, a success) is taken back.
  const auto address = std::string(req.client_address());
  const auth::sign_in_limits limits = sign_in_limits_of(a.cfg);
  const bool guarded = limits.max_per_address > 0 || limits.max_per_email > 0;
  core::failure_counts counted;
  if (guarded) {
    const auto now = util::now_micros();
    counted = co_await a.db.count_sign_in_attempt(normalized, address, now, limits.window_us);
    if (const auto wait_s = auth::attempt_locked_for_s(counted, limits, now)) {
      co_await a.db.uncount_sign_in_attempt(normalized, address, counted);
      co_return fail(errc::too_many_attempts, std::nullopt, {}, static_cast<int>(*wait_s));
    }
  }
  auto found = co_await a.db.find_customer_by_email(normalized);
  // Unknown emails verify against a dummy hash: same work, same answer, no enumeration.
  auto ok = co_await a.hashes.verify(address, found ? found->password_hash : auth::dummy_hash(), std::move(*password));
  if (!ok) {
    if (guarded) co_await a.db.uncount_sign_in_attempt(normalized, address, counted);
    co_return fail(errc::server_busy);
  }
  if (!*ok || !found) co_return fail(errc::invalid_credentials);  // the attempt stays counted
  if (guarded) {
    co_await a.db.clear_sign_in_failures(normalized, address);
    co_await a.db.uncount_sign_in_attempt(normalized, address, counted);
  }
  // One row per sign-in (§8 "Token rows"); past the customer's cap the oldest sign-ins end, and
  // the store revoked their access tokens with them.
  const auto now = util::now_micros();
  core::sign_in s = expiries_from(a, now);
  s.id = util::uuid_v4();
  s.customer_id = found->id;
  s.created_at = now;
  const auto started = co_await a.db.start_sign_in(s, a.cfg.max_sign_ins_per_customer);
  // Deleted since it was found: answered as that customer's token now is (contract §5).
  if (started.no_customer) co_return fail(errc::invalid_token);
  co_return session_response(a, found->id, s.id, auth::make_refresh_token(a.jwt, s.id, 0));
}

net::awaitable<http::response> sign_out(http::request& req, app& a) {
  auto token = auth::presented_token(req);
  if (!token.empty()) {
    // Revoke only what verifies: a forged token must not let anyone write to the table.
    auto v = a.jwt.verify(token, 0);
    if (v.status == auth::token_status::ok) {
      // The presented token, and (§8) the whole sign-in it belongs to.
      // Named, not a temporary inside co_await (CONTRIBUTING.md, "Compiler notes").
      const std::string key = auth::revocation_key(token, v.value.jti);
      co_await auth::revoke_access_token(a.db, key, v.value.exp * 1'000'000);
      if (v.value.sid) co_await auth::revoke_sign_in(a.db, *v.value.sid, util::now_micros(), access_ttl_us(a));
    }
  }
  auto res = http::no_content();
  res.header("Set-Cookie", expired_cookie());
  res.header("Cache-Control", "no-store");
  co_return res;
}

net::awaitable<http::response> refresh(http::request& req, app& a) {
  auto fields = read_fields(req, {{"refresh_token", required}});
  if (auto* r = std::get_if<http::response>(&fields)) co_return std::move(*r);
  auto& [token] = std::get<0>(fields);
  if (token->empty() || token->size() > 512) co_return fail(errc::invalid_refresh_token);

  // A token this service did not make (or another key made) names no sign-in: refused with no query.
  const auto claim = auth::read_refresh_token(a.jwt, *token);
  if (!claim) co_return fail(errc::invalid_refresh_token);
  const auto now = util::now_micros();
  const core::sign_in next = expiries_from(a, now);
  std::string customer_id;
  auto result = co_await a.db.refresh_sign_in(claim->sid, claim->generation, now, next.refresh_expires_at,
                                              next.expires_at, customer_id);
  // Reuse of a rotated token: the store ended the sign-in; its access tokens go too (§8).
  if (result == store::rotate_result::reused) co_await auth::revoke_sign_in(a.db, claim->sid, now, access_ttl_us(a));
  if (result != store::rotate_result::rotated) co_return fail(errc::invalid_refresh_token);
  co_return session_response(a, customer_id, claim->sid,
                             auth::make_refresh_token(a.jwt, claim->sid, claim->generation + 1));
}

}  // namespace fav::api
