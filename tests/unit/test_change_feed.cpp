// The change feed's in-process part (contract §9): wire form of notifications, delivery to
// subscribers, and the rule that caches are not trusted while the feed is down.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "store/change_feed.hpp"

using fav::store::change;
using fav::store::change_feed;

TEST(change_feed, payload_round_trip) {
  for (auto k : {change::kind::customer, change::kind::signin, change::kind::favorites, change::kind::product}) {
    change c{k, "0b9f3c1e-1d2a-4c4b-9a7e-3f1f2a6b7c8d"};
    auto back = change::decode(c.encode());
    ASSERT_TRUE(back);
    EXPECT_EQ(back->what, k);
    EXPECT_EQ(back->id, c.id);
  }
  // A revocation key may itself contain ':' ("sig:<signature>").
  EXPECT_EQ(change::decode("s:sig:abc")->id, "sig:abc");
  EXPECT_EQ(change::decode("p:17")->what, change::kind::product);
  EXPECT_FALSE(change::decode(""));
  EXPECT_FALSE(change::decode("x:1"));
  EXPECT_FALSE(change::decode("c1"));
}

TEST(change_feed, delivers_to_every_subscriber_and_moves_the_epoch) {
  change_feed feed(true);
  std::vector<std::string> a, b;
  feed.subscribe([&](const change& c) { a.push_back(c.encode()); });
  feed.subscribe([&](const change& c) { b.push_back(c.encode()); });
  auto e0 = feed.auth_epoch();
  feed.publish({change::kind::favorites, "x"});
  EXPECT_EQ(feed.auth_epoch(), e0) << "favorite changes do not concern the token cache";
  feed.publish({change::kind::customer, "y"});
  EXPECT_GT(feed.auth_epoch(), e0);
  EXPECT_EQ(a, (std::vector<std::string>{"f:x", "c:y"}));
  EXPECT_EQ(a, b);
}

TEST(change_feed, down_then_up_flushes_before_trusting_again) {
  change_feed feed(false);  // PostgreSQL: not live until LISTEN is in place
  EXPECT_FALSE(feed.live());
  bool live_during_flush = true;
  int flushes = 0;
  feed.subscribe([&](const change& c) {
    if (c.what == change::kind::all) {
      ++flushes;
      live_during_flush = feed.live();
    }
  });
  auto e0 = feed.auth_epoch();
  feed.set_up();
  EXPECT_TRUE(feed.live());
  EXPECT_EQ(flushes, 1);
  EXPECT_FALSE(live_during_flush) << "nothing may be cached from a read that began before the flush";
  EXPECT_GT(feed.auth_epoch(), e0);
  auto e1 = feed.auth_epoch();
  feed.set_down();
  EXPECT_FALSE(feed.live());
  EXPECT_GT(feed.auth_epoch(), e1) << "an answer read across the outage must not be stored";
  EXPECT_EQ(feed.reconnects(), 1u);
}

// A notification names the instance whose write sent it ("<origin>/<tag>:<id>"); one without an
// origin (the form before origins, or a store not told its instance) still decodes.
TEST(change_feed, payload_carries_the_sending_instance) {
  change c{change::kind::customer, "0b9f3c1e-1d2a-4c4b-9a7e-3f1f2a6b7c8d", "a1b2c3d4e5f60718"};
  EXPECT_EQ(c.encode(), "a1b2c3d4e5f60718/c:0b9f3c1e-1d2a-4c4b-9a7e-3f1f2a6b7c8d");
  auto back = change::decode(c.encode());
  ASSERT_TRUE(back);
  EXPECT_EQ(back->what, change::kind::customer);
  EXPECT_EQ(back->id, c.id);
  EXPECT_EQ(back->origin, "a1b2c3d4e5f60718");
  EXPECT_EQ(change::decode("ff/s:sig:a/b")->id, "sig:a/b") << "only the first '/' ends the origin";
  EXPECT_EQ(change::decode("f:x")->origin, "");
  EXPECT_FALSE(change::decode("abc"));
  EXPECT_FALSE(change::decode("ab/x:1"));
}

// Contract §9, one invalidation path: this instance's writes are published in-process when they
// return, so the database's echo of them is skipped; every other instance's news is delivered.
TEST(change_feed, skips_its_own_echoes_and_delivers_the_others) {
  change_feed feed(true);
  change_feed other(true);
  ASSERT_EQ(feed.instance().size(), 16u);
  EXPECT_NE(feed.instance(), other.instance()) << "instance ids are random at start";
  std::vector<std::string> heard;
  feed.subscribe([&](const change& c) { heard.push_back(c.id); });
  feed.deliver({change::kind::favorites, "mine", feed.instance()});
  feed.deliver({change::kind::favorites, "theirs", other.instance()});
  feed.deliver({change::kind::favorites, "unknown"});
  EXPECT_EQ(heard, (std::vector<std::string>{"theirs", "unknown"}));
  EXPECT_EQ(feed.echoes(), 1u);
  EXPECT_EQ(feed.received(), 2u);
}
