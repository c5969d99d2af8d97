// Unit tests for fav::auth::token_memo, a connection's memory of the last token it verified: the
// same token is served from it until its expiry (an injected clock), another token never is.
#include <gtest/gtest.h>

#include <string>

#include "auth/token_memo.hpp"

using fav::auth::token_memo;
using fav::auth::verified_token;

namespace {

constexpr std::int64_t now_s = 1795953600;  // 2026-11-29T12:00:00Z

verified_token verified(std::int64_t exp, std::string key = "jti-1") {
  auto customer = fav::core::customer_id::parse("5f0c7a3e-1b2d-4c8e-9f10-2a3b4c5d6e7f");
  return verified_token{*customer, std::move(key), std::string("sid-1"), exp};
}

}  // namespace

TEST(token_memo, empty_serves_nothing) {
  token_memo memo;
  EXPECT_EQ(memo.find("a.b.c", now_s), nullptr);
  EXPECT_EQ(memo.find("", now_s), nullptr);
}

TEST(token_memo, the_same_token_is_served_until_its_expiry) {
  token_memo memo;
  const auto& kept = memo.remember("header.payload.signature", verified(now_s + 60));
  const auto* hit = memo.find("header.payload.signature", now_s);
  ASSERT_EQ(hit, &kept);
  EXPECT_EQ(hit->key, "jti-1");
  EXPECT_EQ(hit->sid, "sid-1");
  EXPECT_EQ(hit->exp, now_s + 60);
  EXPECT_NE(memo.find("header.payload.signature", now_s + 59), nullptr);
  // As jwt_codec::verify: expired from `exp` on, so the caller verifies again and is told so.
  EXPECT_EQ(memo.find("header.payload.signature", now_s + 60), nullptr);
  EXPECT_EQ(memo.find("header.payload.signature", now_s + 3600), nullptr);
}

TEST(token_memo, another_token_is_not_served) {
  token_memo memo;
  memo.remember("header.payload.signature", verified(now_s + 60));
  EXPECT_EQ(memo.find("header.payload.signaturX", now_s), nullptr);   // same length, one byte off
  EXPECT_EQ(memo.find("header.payload.signatur", now_s), nullptr);    // a prefix
  EXPECT_EQ(memo.find("header.payload.signature.", now_s), nullptr);  // longer
  EXPECT_EQ(memo.find("", now_s), nullptr);
}

TEST(token_memo, one_entry_the_last_verified) {
  token_memo memo;
  memo.remember("first.token.aaaa", verified(now_s + 60, "jti-1"));
  memo.remember("second.token.bbb", verified(now_s + 60, "jti-2"));
  EXPECT_EQ(memo.find("first.token.aaaa", now_s), nullptr);
  const auto* hit = memo.find("second.token.bbb", now_s);
  ASSERT_NE(hit, nullptr);
  EXPECT_EQ(hit->key, "jti-2");
}
