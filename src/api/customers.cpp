// Handlers for /customers (contract §3 "Customers"): the private list and one's own account.
#include <boost/json/object.hpp>
#include <cctype>

#include "api/errors.hpp"
#include "api/handlers.hpp"
#include "api/json_body.hpp"
#include "api/render.hpp"
#include "app.hpp"
#include "auth/policy.hpp"
#include "core/validate.hpp"
#include "util/time.hpp"

namespace fav::api {

using core::errc;

namespace {
// RFC 3339 needs an offset: a naive time in a filter would be a guess.
bool has_offset(std::string_view s) {
  if (s.empty()) return false;
  if (s.back() == 'Z' || s.back() == 'z') return true;
  return s.size() > 6 && (s[s.size() - 6] == '+' || s[s.size() - 6] == '-') && s[s.size() - 3] == ':';
}

// Microseconds hidden below the precision written: created_to is inclusive at that precision, so
// a created_at copied from a response (milliseconds) includes its own row.
core::micros below_precision(std::string_view s) {
  auto dot = s.find('.');
  if (dot == std::string_view::npos) return 999'999;
  std::size_t digits = 0;
  while (dot + 1 + digits < s.size() && std::isdigit(static_cast<unsigned char>(s[dot + 1 + digits]))) ++digits;
  core::micros span = 1;
  for (std::size_t d = digits; d < 6; ++d) span *= 10;
  return span - 1;
}

}  // namespace

std::optional<core::customer_filter> parse_customer_filter(const http::request& req) {
  core::customer_filter f;
  for (auto key : {"name", "email"}) {
    if (auto v = req.query_value(key); v && !v->empty()) {
      if (v->size() > 255 || core::utf8_length(*v) < 0) return std::nullopt;
      (std::string_view(key) == "name" ? f.name : f.email) = core::ascii_lower(*v);
    }
  }
  for (auto key : {"created_from", "created_to"}) {
    if (auto v = req.query_value(key)) {
      auto t = util::parse_rfc3339(*v);
      if (!t || !has_offset(*v)) return std::nullopt;
      if (std::string_view(key) == "created_from")
        f.created_from = *t;
      else
        f.created_to = *t + below_precision(*v);
    }
  }
  return f;
}

net::awaitable<http::response> list_customers(http::request& req, app& a) {
  auto page = core::parse_page(req.query_value("page"), req.query_value("per_page"), a.cfg.per_page_limit);
  if (!page) co_return fail(errc::invalid_pagination);
  auto filter = parse_customer_filter(req);
  if (!filter) co_return fail(errc::invalid_filter);
  auto result = co_await a.db.list_customers(std::move(*filter), *page);
  auto res = http::json(http::status::ok, render_customers_page(result.items, *page, result.total));
  add_page_links(req, res, *page, result.total);
  co_return res;
}

net::awaitable<http::response> get_customer(http::request& req, app& a) {
  auto c = co_await a.read_through.find_customer(auth::caller(req).customer_id);
  if (!c) co_return fail(errc::invalid_token);  // deleted between the auth check and now
  std::string body;
  render_customer(body, *c);
  co_return cacheable(req, http::json(http::status::ok, std::move(body)));
}

net::awaitable<http::response> patch_customer(http::request& req, app& a) {
  auto fields = read_fields(req, {{"name", optional_field}, {"email", optional_field}});
  if (auto* r = std::get_if<http::response>(&fields)) co_return std::move(*r);
  auto& [name, email] = std::get<0>(fields);
  std::vector<field_error> errors;

  // The reference answers 400 here (422 at sign-up): keep both.
  store::customer_patch patch;
  if (email) {
    patch.email = core::parse_email(*email);
    if (!patch.email) co_return fail(errc::invalid_email, http::status::bad_request, {{"email", "invalid"}});
  }
  if (name) {
    patch.name = core::parse_name(*name);
    if (!patch.name) co_return fail(errc::invalid_name, http::status::bad_request, {{"name", "invalid"}});
  }
  switch (co_await a.db.update_customer(auth::caller(req).customer_id, std::move(patch), util::now_micros())) {
    case store::update_result::email_taken: co_return fail(errc::email_already_exists);
    case store::update_result::not_found: co_return fail(errc::invalid_token);
    case store::update_result::updated:
    case store::update_result::unchanged: break;
  }
  co_return http::no_content();
}

net::awaitable<http::response> delete_customer(http::request& req, app& a) {
  co_await a.db.delete_customer(auth::caller(req).customer_id);
  co_return http::no_content();
}

}  // namespace fav::api
