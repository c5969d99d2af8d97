// The bounded LRU map the caches share: the bound by count and by cost, which entry goes first
// (get and touch refresh, peek does not), a value larger than the budget, the eviction hook,
// erase_if, and lookups by string_view without a string.
#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "util/lru_map.hpp"

using fav::util::lru_map;

TEST(lru_map, holds_at_most_its_budget_of_entries_least_recently_used_out_first) {
  lru_map<int, std::string> m(3);
  m.put(1, "one");
  m.put(2, "two");
  m.put(3, "three");
  ASSERT_NE(m.get(1), nullptr);  // 1 is now the most recent: 2 is the oldest
  m.put(4, "four");
  EXPECT_EQ(m.size(), 3u);
  EXPECT_FALSE(m.contains(2));
  EXPECT_EQ(*m.get(1), "one");
  EXPECT_TRUE(m.contains(3));
  EXPECT_TRUE(m.contains(4));
}

TEST(lru_map, peek_leaves_the_order_and_touch_refreshes) {
  lru_map<int, int> m(2);
  m.put(1, 10);
  m.put(2, 20);
  ASSERT_NE(m.peek(1), nullptr);
  m.put(3, 30);  // 1 stays the oldest: peeking did not refresh it
  EXPECT_FALSE(m.contains(1));
  m.touch(2);
  m.put(4, 40);  // 3 is the oldest now
  EXPECT_FALSE(m.contains(3));
  EXPECT_TRUE(m.contains(2));
  EXPECT_EQ(m.get(7), nullptr);
  m.touch(7);  // absent: nothing happens
  EXPECT_EQ(m.size(), 2u);
}

TEST(lru_map, replacing_a_value_makes_it_the_most_recent_and_recharges_it) {
  lru_map<std::string, int> m(10);
  m.put("a", 1, 4);
  m.put("b", 2, 4);
  m.put("a", 3, 2);  // replaced: now costs 2 and is the most recent
  EXPECT_EQ(m.cost(), 6u);
  EXPECT_EQ(m.size(), 2u);
  m.put("c", 4, 5);  // 11 > 10: "b" goes, not "a"
  EXPECT_FALSE(m.contains("b"));
  EXPECT_EQ(*m.get("a"), 3);
  EXPECT_EQ(m.cost(), 7u);
}

TEST(lru_map, a_cost_budget_evicts_as_many_as_it_takes) {
  lru_map<int, int> m(100);
  for (int i = 0; i < 10; ++i) m.put(i, i, 10);
  EXPECT_EQ(m.cost(), 100u);
  m.put(99, 99, 35);  // the four oldest go
  EXPECT_EQ(m.size(), 7u);
  EXPECT_EQ(m.cost(), 95u);
  for (int i = 0; i < 4; ++i) EXPECT_FALSE(m.contains(i)) << i;
  EXPECT_TRUE(m.contains(4));
}

TEST(lru_map, a_value_larger_than_the_budget_is_not_kept_and_nothing_else_moves) {
  lru_map<int, int> m(10);
  m.put(1, 1, 4);
  m.put(2, 2, 4);
  EXPECT_EQ(m.put(3, 3, 11), nullptr);
  EXPECT_EQ(m.size(), 2u);
  EXPECT_EQ(m.cost(), 8u);
  EXPECT_EQ(m.put(1, 5, 11), nullptr);  // the value it would have replaced is gone too
  EXPECT_FALSE(m.contains(1));
  EXPECT_EQ(m.cost(), 4u);
}

TEST(lru_map, a_zero_budget_holds_nothing) {
  lru_map<int, int> m(0);
  EXPECT_EQ(m.put(1, 1), nullptr);
  EXPECT_EQ(m.size(), 0u);
}

TEST(lru_map, the_eviction_hook_sees_each_entry_evicted_but_not_erased_or_replaced) {
  lru_map<int, std::string> m(2);
  std::vector<int> evicted;
  auto hook = [&](const int& k, std::string& v) {
    evicted.push_back(k);
    EXPECT_EQ(v, std::to_string(k));
  };
  m.put(1, "1", 1, hook);
  m.put(2, "2", 1, hook);
  m.put(2, "2", 1, hook);  // replaced
  m.erase(2);
  m.put(3, "3", 1, hook);
  m.put(4, "4", 1, hook);
  EXPECT_EQ(evicted, std::vector<int>{1});
}

TEST(lru_map, erase_if_and_clear_keep_the_cost_right) {
  lru_map<int, int> m(100);
  for (int i = 0; i < 10; ++i) m.put(i, i, i + 1);
  m.erase_if([](const int&, const int& v) { return v % 2 == 0; });
  EXPECT_EQ(m.size(), 5u);
  EXPECT_EQ(m.cost(), 2u + 4 + 6 + 8 + 10);
  EXPECT_TRUE(m.erase(1));
  EXPECT_FALSE(m.erase(1));
  EXPECT_EQ(m.cost(), 4u + 6 + 8 + 10);
  // The recency list lost the erased ones too: the oldest left is 3.
  m.put(50, 50, 100 - 28 + 4);
  EXPECT_FALSE(m.contains(3));
  EXPECT_TRUE(m.contains(5));
  m.clear();
  EXPECT_EQ(m.size(), 0u);
  EXPECT_EQ(m.cost(), 0u);
  m.put(1, 1, 100);
  EXPECT_EQ(m.size(), 1u);
}

namespace {
struct view_hash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
}  // namespace

TEST(lru_map, transparent_hash_and_equality_look_up_by_string_view) {
  lru_map<std::string, int, view_hash, std::equal_to<>> m(4);
  m.put("2001:db8:1:2::/64", 1);
  std::string_view key = "2001:db8:1:2::/64";
  ASSERT_NE(m.get(key), nullptr);
  EXPECT_EQ(*m.peek(key), 1);
  EXPECT_TRUE(m.erase(key));
  EXPECT_EQ(m.size(), 0u);
}
