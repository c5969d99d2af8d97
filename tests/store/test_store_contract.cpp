// The store contract: one suite run on every backend, each test on an empty database (a fresh
// SQLite file; a fresh PostgreSQL schema when FAV_TEST_PG_URL is set, else PostgreSQL is skipped).
// Start a server with: export FAV_TEST_PG_URL=$(scripts/pg-test-cluster.sh start /tmp/favpg)
// The PostgreSQL-only and SQLite-only fixtures are in test_pg_store.cpp and test_sqlite_store.cpp.
#include "store_fixture.hpp"

namespace {

using namespace fav::store_test;  // the store suites' shared helpers and fixture

class store_contract : public backend_fixture, public ::testing::WithParamInterface<std::string> {
 protected:
  void SetUp() override {
    if (!open(GetParam())) {
      GTEST_SKIP() << "FAV_TEST_PG_URL is not set: the PostgreSQL backend is skipped "
                      "(export FAV_TEST_PG_URL=$(scripts/pg-test-cluster.sh start /tmp/favpg))";
    }
  }
};

// ---- customers ----

TEST_P(store_contract, reports_its_backend_and_answers_ping) {
  EXPECT_EQ(st_->backend(), GetParam());
  EXPECT_TRUE(run(st_->ping()));
}

TEST_P(store_contract, insert_find_and_duplicate_email) {
  const core::customer c = add_customer("Alice", "alice@example.com", t0);
  auto got = run(st_->find_customer(cid(c.id)));
  ASSERT_TRUE(got);
  EXPECT_EQ(got->id, c.id);
  EXPECT_EQ(got->name, "Alice");
  EXPECT_EQ(got->email, "alice@example.com");
  EXPECT_EQ(got->password_hash, c.password_hash);
  EXPECT_EQ(got->created_at, t0);
  EXPECT_EQ(got->updated_at, t0);

  auto by_email = run(st_->find_customer_by_email("alice@example.com"));
  ASSERT_TRUE(by_email);
  EXPECT_EQ(by_email->id, c.id);
  EXPECT_FALSE(run(st_->find_customer_by_email("nobody@example.com")));

  // Same email, another id: refused as a value, not an error.
  EXPECT_FALSE(run(st_->insert_customer(make_customer("Other", "alice@example.com", t0))));
  EXPECT_FALSE(run(st_->find_customer(cid(fav::util::uuid_v4()))));
  EXPECT_FALSE(core::customer_id::parse("not-a-uuid"));  // a malformed id never reaches a store
}

TEST_P(store_contract, concurrent_sign_ups_with_one_email_have_one_winner) {
  std::vector<net::awaitable<bool>> inserts;
  std::vector<core::customer> cs;
  for (int i = 0; i < 10; ++i) cs.push_back(make_customer("Racer", "race@example.com", t0 + i));
  for (const auto& c : cs) inserts.push_back(st_->insert_customer(c));
  const auto results = run_all(std::move(inserts));
  EXPECT_EQ(std::count(results.begin(), results.end(), true), 1);
}

TEST_P(store_contract, list_customers_orders_by_created_at_then_id_and_pages) {
  // Two share a created_at: the id breaks the tie.
  std::vector<core::customer> cs = {
      add_customer("C", "c@example.com", t0 + 3 * second),   add_customer("A", "a@example.com", t0 + 1 * second),
      add_customer("B1", "b1@example.com", t0 + 2 * second), add_customer("B2", "b2@example.com", t0 + 2 * second),
      add_customer("D", "d@example.com", t0 + 4 * second),
  };
  std::vector<core::customer> expected = cs;
  std::sort(expected.begin(), expected.end(),
            [](const auto& x, const auto& y) { return std::tie(x.created_at, x.id) < std::tie(y.created_at, y.id); });
  std::vector<std::string> seen;
  for (std::int64_t page = 1; page <= 3; ++page) {
    auto p = run(st_->list_customers({}, {page, 2}));
    EXPECT_EQ(p.total, 5);
    EXPECT_EQ(p.items.size(), page < 3 ? 2u : 1u);
    for (const auto& c : p.items) seen.push_back(c.id);
  }
  ASSERT_EQ(seen.size(), 5u);
  for (std::size_t i = 0; i < seen.size(); ++i) EXPECT_EQ(seen[i], expected[i].id) << i;

  auto first = run(st_->list_customers({}, {1, 20}));
  ASSERT_EQ(first.items.size(), 5u);
  EXPECT_EQ(first.items[0].name, "A");
  EXPECT_EQ(first.items[0].created_at, t0 + second);

  // A page past the end is empty but still reports the total.
  auto beyond = run(st_->list_customers({}, {9, 2}));
  EXPECT_TRUE(beyond.items.empty());
  EXPECT_EQ(beyond.total, 5);
}

TEST_P(store_contract, list_customers_on_an_empty_table) {
  auto p = run(st_->list_customers({}, {1, 20}));
  EXPECT_TRUE(p.items.empty());
  EXPECT_EQ(p.total, 0);
}

TEST_P(store_contract, list_customers_filters) {
  add_customer("Alice Smith", "alice@corp.example", t0 + 1 * second);
  add_customer("Bob Alison", "bob@home.example", t0 + 2 * second);
  add_customer("100% Cotton", "cotton@corp.example", t0 + 3 * second);
  add_customer("100 Cotton", "under_score@corp.example", t0 + 4 * second);
  add_customer("Carol", "carol@home.example", t0 + 5 * second);

  auto names = [&](core::customer_filter f) {
    auto p = run(st_->list_customers(std::move(f), {1, 50}));
    std::vector<std::string> out;
    for (const auto& c : p.items) out.push_back(c.name);
    EXPECT_EQ(p.total, static_cast<std::int64_t>(out.size()));
    return out;
  };
  using v = std::vector<std::string>;
  // Case-insensitive substring (filters arrive lower-cased).
  EXPECT_EQ(names(filter("ali")), (v{"Alice Smith", "Bob Alison"}));
  EXPECT_EQ(names(filter({}, "corp")), (v{"Alice Smith", "100% Cotton", "100 Cotton"}));
  EXPECT_EQ(names(filter("ali", "home")), (v{"Bob Alison"}));
  // '%' and '_' are literal characters, not wildcards.
  EXPECT_EQ(names(filter("100%")), (v{"100% Cotton"}));
  EXPECT_EQ(names(filter("%")), (v{"100% Cotton"}));
  EXPECT_EQ(names(filter({}, "_")), (v{"100 Cotton"}));
  EXPECT_EQ(names(filter("zzz")), v{});
  // Both bounds inclusive.
  EXPECT_EQ(names(filter({}, {}, t0 + 2 * second, t0 + 4 * second)), (v{"Bob Alison", "100% Cotton", "100 Cotton"}));
  EXPECT_EQ(names(filter({}, {}, t0 + 5 * second)), (v{"Carol"}));
  EXPECT_EQ(names(filter({}, {}, {}, t0 + 1 * second)), (v{"Alice Smith"}));
  EXPECT_EQ(names(filter({}, {}, t0 + 5 * second + 1)), v{});

  // Filtered paging: the total counts the filter, not the table.
  auto p = run(st_->list_customers(filter({}, "corp"), {2, 2}));
  EXPECT_EQ(p.total, 3);
  ASSERT_EQ(p.items.size(), 1u);
  EXPECT_EQ(p.items[0].name, "100 Cotton");
}

TEST_P(store_contract, update_customer_results_and_updated_at) {
  const core::customer a = add_customer("Alice", "alice@example.com", t0);
  const core::customer b = add_customer("Bob", "bob@example.com", t0);

  EXPECT_EQ(run(st_->update_customer(cid(fav::util::uuid_v4()), patch("X"), t0 + 1)), update_result::not_found);
  EXPECT_FALSE(core::customer_id::parse("nope"));

  // Same values, or nothing at all: unchanged, and updated_at stays.
  EXPECT_EQ(run(st_->update_customer(cid(a.id), patch("Alice", "alice@example.com"), t0 + 10 * second)),
            update_result::unchanged);
  EXPECT_EQ(run(st_->update_customer(cid(a.id), {}, t0 + 10 * second)), update_result::unchanged);
  EXPECT_EQ(run(st_->find_customer(cid(a.id)))->updated_at, t0);

  EXPECT_EQ(run(st_->update_customer(cid(a.id), patch("Alicia"), t0 + 20 * second)), update_result::updated);
  auto got = run(st_->find_customer(cid(a.id)));
  EXPECT_EQ(got->name, "Alicia");
  EXPECT_EQ(got->email, "alice@example.com");
  EXPECT_EQ(got->created_at, t0);
  EXPECT_EQ(got->updated_at, t0 + 20 * second);

  // Another customer's email: refused, and nothing else in the patch is applied.
  EXPECT_EQ(run(st_->update_customer(cid(a.id), patch("Zed", "bob@example.com"), t0 + 30 * second)),
            update_result::email_taken);
  got = run(st_->find_customer(cid(a.id)));
  EXPECT_EQ(got->name, "Alicia");
  EXPECT_EQ(got->email, "alice@example.com");
  EXPECT_EQ(got->updated_at, t0 + 20 * second);

  EXPECT_EQ(run(st_->update_customer(cid(a.id), patch({}, "alicia@example.com"), t0 + 40 * second)),
            update_result::updated);
  EXPECT_EQ(run(st_->find_customer_by_email("alicia@example.com"))->id, a.id);
  EXPECT_FALSE(run(st_->find_customer_by_email("alice@example.com")));
  // The freed email is available to others.
  EXPECT_EQ(run(st_->update_customer(cid(b.id), patch({}, "alice@example.com"), t0 + 50 * second)),
            update_result::updated);
}

TEST_P(store_contract, concurrent_updates_to_one_email_have_one_winner) {
  std::vector<core::customer> cs;
  for (int i = 0; i < 6; ++i) {
    cs.push_back(add_customer("U", "u" + std::to_string(i) + "@example.com", t0));
  }
  std::vector<net::awaitable<update_result>> updates;
  for (const auto& c : cs) {
    updates.push_back(st_->update_customer(cid(c.id), patch({}, "wanted@example.com"), t0 + second));
  }
  const auto results = run_all(std::move(updates));
  EXPECT_EQ(std::count(results.begin(), results.end(), update_result::updated), 1);
  EXPECT_EQ(std::count(results.begin(), results.end(), update_result::email_taken), 5);
}

TEST_P(store_contract, delete_customer_cascades) {
  const core::customer a = add_customer("Alice", "alice@example.com", t0);
  const core::customer b = add_customer("Bob", "bob@example.com", t0);
  EXPECT_EQ(run(st_->insert_favorite(cid(a.id), 1, t0)), insert_result::added);
  EXPECT_EQ(run(st_->insert_favorite(cid(a.id), 2, t0)), insert_result::added);
  EXPECT_EQ(run(st_->insert_favorite(cid(b.id), 1, t0)), insert_result::added);
  open_sign_in(make_sign_in("sid-a", a.id, t0, 3600 * second));

  EXPECT_TRUE(run(st_->delete_customer(cid(a.id))));
  EXPECT_FALSE(run(st_->find_customer(cid(a.id))));
  EXPECT_FALSE(run(st_->delete_customer(cid(a.id))));
  EXPECT_EQ(run(st_->list_favorites(cid(a.id), {1, 20})).total, 0);
  EXPECT_FALSE(run(st_->get_favorite(cid(a.id), 1)));
  EXPECT_EQ(refresh("sid-a", 0, t0 + second), rotate_result::invalid);
  // Others keep theirs.
  EXPECT_EQ(run(st_->list_favorites(cid(b.id), {1, 20})).total, 1);
}

// ---- access-token checks ----

TEST_P(store_contract, check_token_states) {
  const core::customer a = add_customer("Alice", "alice@example.com", t0);
  EXPECT_EQ(run(st_->check_token(cid(a.id), "jti-1", "")), auth_state::ok);
  run(st_->revoke_token("jti-1", t0 + 3600 * second));
  EXPECT_EQ(run(st_->check_token(cid(a.id), "jti-1", "")), auth_state::revoked);
  EXPECT_EQ(run(st_->check_token(cid(a.id), "jti-2", "")), auth_state::ok);
  EXPECT_EQ(run(st_->check_token(cid(fav::util::uuid_v4()), "jti-2", "")), auth_state::no_customer);
  EXPECT_TRUE(run(st_->delete_customer(cid(a.id))));
  EXPECT_EQ(run(st_->check_token(cid(a.id), "jti-2", "")), auth_state::no_customer);
}

// §8 "Tokens, whole sign-ins": one revocation row for a sign-in revokes every token naming it.
TEST_P(store_contract, check_token_honours_a_revoked_sign_in) {
  const core::customer a = add_customer("Alice", "alice@example.com", t0);
  EXPECT_EQ(run(st_->check_token(cid(a.id), "jti-1", "sid:fam-1")), auth_state::ok);
  run(st_->revoke_token("sid:fam-1", t0 + 3600 * second));
  EXPECT_EQ(run(st_->check_token(cid(a.id), "jti-1", "sid:fam-1")), auth_state::revoked);
  EXPECT_EQ(run(st_->check_token(cid(a.id), "jti-2", "sid:fam-1")), auth_state::revoked);
  EXPECT_EQ(run(st_->check_token(cid(a.id), "jti-3", "sid:fam-2")), auth_state::ok);  // another sign-in
  EXPECT_EQ(run(st_->check_token(cid(a.id), "jti-3", "")), auth_state::ok);
}

// The token check authorization makes on a token-cache miss is one statement: one round trip on
// PostgreSQL, before (and apart from) the handler's read; a refused token's state is the answer.
// SQLite has no round trip to count.
TEST_P(store_contract, a_token_check_is_one_round_trip) {
  const core::customer a = add_customer("Alice", "alice@example.com", t0);
  const bool pg = backend_ == "postgresql";
  const auto trips = [this] { return st_->usage().round_trips; };
  run(st_->check_token(cid(a.id), "warm-up", ""));  // the statement prepared
  auto before = trips();
  EXPECT_EQ(run(st_->check_token(cid(a.id), "jti-1", "sid:fam-1")), auth_state::ok);
  EXPECT_EQ(trips() - before, pg ? 1u : 0u);
  run(st_->revoke_token("sid:fam-1", t0 + 3600 * second));
  before = trips();
  EXPECT_EQ(run(st_->check_token(cid(a.id), "jti-1", "sid:fam-1")), auth_state::revoked);
  EXPECT_EQ(trips() - before, pg ? 1u : 0u);
}

// Through the read-through layer, a page or customer answered from memory costs no round trip;
// its token check (check_token, never from this memory) still asks the database.
// GET /customers/{id} never shows the hash, so the read-through neither hands it on nor holds it
// in memory: a miss and a hit answer the same record, without it.
TEST_P(store_contract, through_the_read_cache_a_customer_comes_without_its_password_hash) {
  store::change_feed feed(true);
  through_memory cached(make_store(), feed);
  const core::customer a = add_customer("Alice", "alice@example.com", t0);
  const auto stored = run(cached.db->find_customer(cid(a.id)));
  ASSERT_TRUE(stored);
  ASSERT_FALSE(stored->password_hash.empty());
  const auto hits = cached.reads.memory().hits();
  const auto miss = run(cached.reads.find_customer(cid(a.id)));
  const auto hit = run(cached.reads.find_customer(cid(a.id)));
  EXPECT_EQ(cached.reads.memory().hits(), hits + 1) << "the second read is answered from memory";
  for (const auto& got : {miss, hit}) {
    ASSERT_TRUE(got);
    EXPECT_TRUE(got->password_hash.empty());
    EXPECT_EQ(got->id, stored->id);
    EXPECT_EQ(got->name, stored->name);
    EXPECT_EQ(got->email, stored->email);
    EXPECT_EQ(got->created_at, stored->created_at);
    EXPECT_EQ(got->updated_at, stored->updated_at);
  }
}

TEST_P(store_contract, through_the_read_cache_a_hit_makes_no_round_trip) {
  store::change_feed feed(true);
  through_memory cached(make_store(), feed);
  const core::customer a = add_customer("Alice", "alice@example.com", t0);
  ASSERT_EQ(run(cached.db->insert_favorite(cid(a.id), 7, t0)), insert_result::added);
  const bool pg = backend_ == "postgresql";
  const auto trips = [&cached] { return cached.db->usage().round_trips; };

  EXPECT_EQ(run(cached.reads.list_favorites(cid(a.id), {1, 20})).total, 1);  // a miss
  ASSERT_TRUE(run(cached.reads.find_customer(cid(a.id))));
  const auto hits = cached.reads.memory().hits();
  auto before = trips();
  EXPECT_EQ(run(cached.reads.list_favorites(cid(a.id), {1, 20})).total, 1);
  EXPECT_EQ(run(cached.reads.find_customer(cid(a.id)))->id, a.id);
  EXPECT_EQ(cached.reads.memory().hits(), hits + 2) << "not answered from memory";
  EXPECT_EQ(trips() - before, 0u);

  run(cached.db->revoke_token("jti-3", t0 + 3600 * second));
  run(cached.reads.check_token(cid(a.id), "warm-up", ""));  // the statement prepared
  before = trips();
  EXPECT_EQ(run(cached.reads.check_token(cid(a.id), "jti-3", "")), auth_state::revoked);
  EXPECT_EQ(trips() - before, pg ? 1u : 0u);
}

// §8 "Sign-in guard": counts per email and address and per email, each over its own window.
TEST_P(store_contract, sign_in_failures_count_clear_and_restart_their_window) {
  const core::micros window = 900 * second;
  auto counts = run(st_->sign_in_failures("a@example.com", "10.0.0.1"));
  EXPECT_EQ(counts.by_address.failures, 0);
  EXPECT_EQ(counts.by_email.failures, 0);
  for (int i = 0; i < 3; ++i) {
    counts = run(st_->count_sign_in_attempt("a@example.com", "10.0.0.1", t0 + i * second, window));
    EXPECT_EQ(counts.by_address.failures, i + 1);  // the count with this attempt
  }
  run(st_->count_sign_in_attempt("a@example.com", "::1", t0 + 5 * second, window));
  run(st_->count_sign_in_attempt("b@example.com", "10.0.0.1", t0 + 5 * second, window));
  counts = run(st_->sign_in_failures("a@example.com", "10.0.0.1"));
  EXPECT_EQ(counts.by_address.failures, 3);
  EXPECT_EQ(counts.by_address.window_start, t0);  // the window starts at its first failure
  EXPECT_EQ(counts.by_email.failures, 4);         // every address
  EXPECT_EQ(run(st_->sign_in_failures("a@example.com", "::1")).by_address.failures, 1);

  // A success clears the email-and-address count only.
  run(st_->clear_sign_in_failures("a@example.com", "10.0.0.1"));
  counts = run(st_->sign_in_failures("a@example.com", "10.0.0.1"));
  EXPECT_EQ(counts.by_address.failures, 0);
  EXPECT_EQ(counts.by_email.failures, 4);

  // A failure after the window starts the count over.
  run(st_->count_sign_in_attempt("a@example.com", "::1", t0 + window + 6 * second, window));
  counts = run(st_->sign_in_failures("a@example.com", "::1"));
  EXPECT_EQ(counts.by_address.failures, 1);
  EXPECT_EQ(counts.by_address.window_start, t0 + window + 6 * second);
  EXPECT_EQ(counts.by_email.failures, 1);
}

net::awaitable<int> count_one_attempt(fav::store::store& st) {
  const auto counted = co_await st.count_sign_in_attempt("c@example.com", "10.0.0.9", t0, 900 * second);
  co_return static_cast<int>(counted.by_address.failures);
}

// §8 "Sign-in guard": an attempt is counted before it is checked, by an increment that returns
// its count, so concurrent attempts each see their own number and none passes the limit unseen.
TEST_P(store_contract, concurrent_sign_in_failures_are_all_counted) {
  std::vector<net::awaitable<int>> all;
  for (int i = 0; i < 20; ++i) all.push_back(count_one_attempt(*st_));
  auto seen = run_all(std::move(all));
  std::sort(seen.begin(), seen.end());
  for (int i = 0; i < 20; ++i) EXPECT_EQ(seen[static_cast<std::size_t>(i)], i + 1) << "each attempt its own count";
  const auto counts = run(st_->sign_in_failures("c@example.com", "10.0.0.9"));
  EXPECT_EQ(counts.by_address.failures, 20);
  EXPECT_EQ(counts.by_email.failures, 20);
}

// An attempt that was no failure (answered while locked, or a success) is taken back, in each
// scope only while that scope's window is still the one it was counted in.
TEST_P(store_contract, uncounted_sign_in_attempts_leave_their_window_as_it_was) {
  const core::micros window = 900 * second;
  run(st_->count_sign_in_attempt("d@example.com", "10.0.0.1", t0, window));
  const auto counted = run(st_->count_sign_in_attempt("d@example.com", "10.0.0.1", t0 + second, window));
  EXPECT_EQ(counted.by_address.failures, 2);
  EXPECT_EQ(counted.by_email.failures, 2);
  run(st_->uncount_sign_in_attempt("d@example.com", "10.0.0.1", counted));
  auto counts = run(st_->sign_in_failures("d@example.com", "10.0.0.1"));
  EXPECT_EQ(counts.by_address.failures, 1);
  EXPECT_EQ(counts.by_email.failures, 1);
  EXPECT_EQ(counts.by_address.window_start, t0);
  // A new window since: the old attempt is not taken from it.
  run(st_->count_sign_in_attempt("d@example.com", "10.0.0.1", t0 + window + second, window));
  run(st_->uncount_sign_in_attempt("d@example.com", "10.0.0.1", counted));
  counts = run(st_->sign_in_failures("d@example.com", "10.0.0.1"));
  EXPECT_EQ(counts.by_address.failures, 1);
  EXPECT_EQ(counts.by_email.failures, 1);
}

TEST_P(store_contract, revoke_token_is_idempotent) {
  const core::customer a = add_customer("Alice", "alice@example.com", t0);
  run(st_->revoke_token("jti-1", t0 + 3600 * second));
  EXPECT_NO_THROW(run(st_->revoke_token("jti-1", t0 + 3600 * second)));
  EXPECT_NO_THROW(run(st_->revoke_token("jti-1", t0 + 7200 * second)));
  EXPECT_EQ(run(st_->check_token(cid(a.id), "jti-1", "")), auth_state::revoked);
}

// ---- sign-ins and their refresh tokens (contract §3 refresh tokens, §8 "Token rows") ----

TEST_P(store_contract, refresh_rotates_detects_reuse_and_rejects) {
  const core::customer a = add_customer("Alice", "alice@example.com", t0);
  open_sign_in(make_sign_in("sid-1", a.id, t0, 3600 * second));
  open_sign_in(make_sign_in("sid-2", a.id, t0, 3600 * second));

  std::string who;
  EXPECT_EQ(refresh("sid-1", 0, t0 + 1 * second, &who), rotate_result::rotated);
  EXPECT_EQ(who, a.id);
  EXPECT_EQ(refresh("sid-1", 1, t0 + 2 * second), rotate_result::rotated);

  // Generation 0 was already rotated: the whole sign-in ends, including the newest token.
  who.clear();
  EXPECT_EQ(refresh("sid-1", 0, t0 + 3 * second, &who), rotate_result::reused);
  EXPECT_EQ(who, a.id);  // names the owner, so the sign-in's access tokens can be revoked too
  EXPECT_EQ(refresh("sid-1", 2, t0 + 4 * second), rotate_result::invalid);
  EXPECT_EQ(refresh("sid-1", 0, t0 + 4 * second), rotate_result::invalid);

  // Another sign-in is untouched.
  EXPECT_EQ(refresh("sid-2", 0, t0 + 5 * second), rotate_result::rotated);
  // Unknown sign-ins, and generations the sign-in never issued, are nothing.
  EXPECT_EQ(refresh("no-such-sign-in", 0, t0 + 6 * second), rotate_result::invalid);
  EXPECT_EQ(refresh("sid-2", 7, t0 + 6 * second), rotate_result::invalid);
  EXPECT_EQ(refresh("sid-2", 1, t0 + 7 * second), rotate_result::rotated);
}

// §8 "Refreshing adds no lasting row: however often a sign-in refreshes, the database holds a
// bounded number of rows for it, and reuse of any token it rotated is still detected."
TEST_P(store_contract, a_refresh_is_one_row_and_reuse_after_many_rotations_is_detected) {
  const core::customer a = add_customer("Alice", "alice@example.com", t0);
  open_sign_in(make_sign_in("sid-long", a.id, t0, 3600 * second));
  open_sign_in(make_sign_in("sid-other", a.id, t0, 3600 * second));
  for (std::int64_t g = 0; g < 200; ++g) ASSERT_EQ(refresh("sid-long", g, t0 + g * 1000), rotate_result::rotated) << g;
  EXPECT_EQ(sign_in_rows(), 2);
  // Any generation it rotated, the first and one from the middle included, is reuse.
  EXPECT_EQ(refresh("sid-long", 117, t0 + 300 * second), rotate_result::reused);
  EXPECT_EQ(refresh("sid-long", 200, t0 + 301 * second), rotate_result::invalid);  // the newest went with it
  EXPECT_EQ(sign_in_rows(), 1);
  open_sign_in(make_sign_in("sid-long-2", a.id, t0, 3600 * second));
  for (std::int64_t g = 0; g < 50; ++g) ASSERT_EQ(refresh("sid-long-2", g, t0 + g * 1000), rotate_result::rotated);
  EXPECT_EQ(refresh("sid-long-2", 0, t0 + 300 * second), rotate_result::reused);
  EXPECT_EQ(refresh("sid-other", 0, t0 + 300 * second), rotate_result::rotated);
}

TEST_P(store_contract, refresh_rejects_expired_and_signed_out) {
  const core::customer a = add_customer("Alice", "alice@example.com", t0);
  open_sign_in(make_sign_in("sid-e", a.id, t0, 10 * second));
  // refresh_expires_at is exclusive: at the instant it is already expired.
  EXPECT_EQ(refresh("sid-e", 0, t0 + 10 * second), rotate_result::invalid);

  open_sign_in(make_sign_in("sid-s", a.id, t0, 100 * second));
  run(st_->end_sign_in("sid-s"));
  EXPECT_EQ(refresh("sid-s", 0, t0 + 2 * second), rotate_result::invalid);
  // Ending twice is harmless.
  EXPECT_NO_THROW(run(st_->end_sign_in("sid-s")));
  EXPECT_NO_THROW(run(st_->end_sign_in("never-existed")));
}

TEST_P(store_contract, concurrent_refreshes_of_one_token_rotate_once) {
  const core::customer a = add_customer("Alice", "alice@example.com", t0);
  const core::micros ttl = 3600 * second;
  for (int round = 0; round < 10; ++round) {
    const std::string sid = "sid-r" + std::to_string(round);
    open_sign_in(make_sign_in(sid, a.id, t0, ttl));
    std::string w1, w2;
    std::vector<net::awaitable<rotate_result>> both;
    both.push_back(st_->refresh_sign_in(sid, 0, t0 + second, t0 + ttl, t0 + ttl, w1));
    both.push_back(st_->refresh_sign_in(sid, 0, t0 + second, t0 + ttl, t0 + ttl, w2));
    const auto r = run_all(std::move(both));
    ASSERT_EQ(std::count(r.begin(), r.end(), rotate_result::rotated), 1) << "round " << round;
    // The loser presented a rotated generation: reuse, which ends the sign-in, winner's token included.
    ASSERT_EQ(std::count(r.begin(), r.end(), rotate_result::reused), 1) << "round " << round;
    EXPECT_EQ(refresh(sid, 1, t0 + 2 * second), rotate_result::invalid) << "round " << round;
  }
}

// §8 "A customer has at most AUTH_MAX_SIGN_INS_PER_CUSTOMER live sign-ins; one more ends the
// oldest (its tokens answer 401 invalid_token)."
TEST_P(store_contract, one_sign_in_past_the_cap_ends_the_oldest) {
  const core::customer a = add_customer("Alice", "alice@example.com", t0);
  const core::customer b = add_customer("Bob", "bob@example.com", t0);
  const core::micros ttl = 3600 * second;
  open_sign_in(make_sign_in("b-1", b.id, t0, ttl), 3);
  // An expired sign-in is not live: it does not count and is not ended (the sweep takes it).
  open_sign_in(make_sign_in("a-expired", a.id, t0 - 2 * ttl, ttl), 3);
  for (int i = 1; i <= 3; ++i)
    EXPECT_TRUE(open_sign_in(make_sign_in("a-" + std::to_string(i), a.id, t0 + i * second, ttl), 3).empty());
  EXPECT_EQ(open_sign_in(make_sign_in("a-4", a.id, t0 + 4 * second, ttl), 3), std::vector<std::string>{"a-1"});
  EXPECT_EQ(refresh("a-1", 0, t0 + 5 * second), rotate_result::invalid);
  // Its access tokens are revoked with it.
  EXPECT_EQ(run(st_->check_token(cid(a.id), "jti-of-a-1", "sid:a-1")), auth_state::revoked);
  EXPECT_EQ(run(st_->check_token(cid(a.id), "jti-of-a-2", "sid:a-2")), auth_state::ok);
  for (const char* live : {"a-2", "a-3", "a-4"})
    EXPECT_EQ(refresh(live, 0, t0 + 5 * second), rotate_result::rotated) << live;
  // A lower cap ends as many as it takes; another customer's sign-ins never count.
  const auto ended = open_sign_in(make_sign_in("a-5", a.id, t0 + 6 * second, ttl), 2);
  EXPECT_EQ(std::set<std::string>(ended.begin(), ended.end()), (std::set<std::string>{"a-2", "a-3"}));
  EXPECT_EQ(refresh("a-4", 1, t0 + 7 * second), rotate_result::rotated);
  EXPECT_EQ(refresh("a-5", 0, t0 + 7 * second), rotate_result::rotated);
  EXPECT_EQ(refresh("b-1", 0, t0 + 7 * second), rotate_result::rotated);
}

// "no way to exceed the cap by racing": concurrent sign-ins of one customer take turns.
TEST_P(store_contract, racing_sign_ins_never_pass_the_cap) {
  const core::customer a = add_customer("Alice", "alice@example.com", t0);
  const core::micros ttl = 3600 * second;
  std::vector<core::sign_in> sign_ins;
  for (int i = 0; i < 24; ++i) sign_ins.push_back(make_sign_in("race-" + std::to_string(i), a.id, t0 + i, ttl));
  std::vector<net::awaitable<store::sign_in_started>> all;
  for (const auto& s : sign_ins) all.push_back(st_->start_sign_in(s, 5));
  const auto started = run_all(std::move(all));
  std::size_t total_ended = 0;
  for (const auto& e : started) total_ended += e.ended.size();
  EXPECT_EQ(total_ended, 19u);
  EXPECT_EQ(sign_in_rows(), 5);
  int live = 0;
  for (const auto& s : sign_ins) live += refresh(s.id, 0, t0 + second) == rotate_result::rotated ? 1 : 0;
  EXPECT_EQ(live, 5);
}

// §8 "Rows whose tokens have all expired are deleted (at least daily)": the sweep deletes those
// and only those.
TEST_P(store_contract, the_sweep_deletes_only_expired_sign_ins) {
  const core::customer a = add_customer("Alice", "alice@example.com", t0);
  open_sign_in(make_sign_in("gone-1", a.id, t0, 10 * second));
  open_sign_in(make_sign_in("gone-2", a.id, t0, 20 * second));
  open_sign_in(make_sign_in("stays", a.id, t0, 60 * second));
  // Refreshed: its row's expiries moved forward, so it stays.
  open_sign_in(make_sign_in("refreshed", a.id, t0, 10 * second));
  ASSERT_EQ(refresh("refreshed", 0, t0 + 5 * second), rotate_result::rotated);
  EXPECT_EQ(run(st_->sweep_sign_ins(t0 + 5 * second)), 0);
  EXPECT_EQ(run(st_->sweep_sign_ins(t0 + 20 * second)), 2);  // expires_at is exclusive
  EXPECT_EQ(sign_in_rows(), 2);
  EXPECT_EQ(refresh("stays", 0, t0 + 21 * second), rotate_result::rotated);
  EXPECT_EQ(refresh("refreshed", 1, t0 + 21 * second), rotate_result::rotated);
  EXPECT_EQ(run(st_->sweep_sign_ins(t0 + 20 * second)), 0);
}

// Upgrading: rows of the earlier one-row-per-rotation table and the revocations written before
// the upgrade. Its refresh tokens are not read any more (they may stop working), but a sign-in's
// access tokens revoked before stay revoked, and the sweep deletes the old table's expired rows.
TEST_P(store_contract, after_the_upgrade_old_revocations_hold_and_the_sweep_empties_the_old_table) {
  const core::customer a = add_customer("Alice", "alice@example.com", t0);
  const std::string owner = backend_ == "postgresql" ? "'" + a.id + "'::uuid" : "'" + a.id + "'";
  for (int i = 0; i < 30; ++i) {
    const core::micros expires = t0 + (i < 20 ? 10 : 100) * second;  // 20 expire before the other 10
    sql_number("INSERT INTO refresh_tokens (token_hash, family_id, customer_id, created_at, expires_at) VALUES ('h" +
               std::to_string(i) + "', 'fam-old', " + owner + ", " + time_sql(t0) + ", " + time_sql(expires) + ")");
  }
  run(st_->revoke_token("sid:fam-old", t0 + 100 * second));  // signed out before the upgrade
  EXPECT_EQ(run(st_->check_token(cid(a.id), "jti-old", "sid:fam-old")), auth_state::revoked);
  EXPECT_EQ(refresh("fam-old", 0, t0 + second), rotate_result::invalid);  // no row: nothing to rotate
  EXPECT_NO_THROW(run(st_->end_sign_in("fam-old")));                      // a sign-out of it is harmless
  EXPECT_EQ(run(st_->sweep_sign_ins(t0 + 50 * second)), 20);
  EXPECT_EQ(sql_number("SELECT count(*) FROM refresh_tokens"), 10);
  EXPECT_EQ(run(st_->check_token(cid(a.id), "jti-old", "sid:fam-old")), auth_state::revoked);
  EXPECT_EQ(run(st_->sweep_sign_ins(t0 + 100 * second)), 10);
  EXPECT_EQ(sql_number("SELECT count(*) FROM refresh_tokens"), 0);
}

// ---- product cache ----

TEST_P(store_contract, product_cache_upsert_and_get) {
  EXPECT_FALSE(run(st_->get_cached_product(1)));
  run(st_->upsert_products({make_product(1, 10995, 390, 120, t0),
                            make_product(2, 1, std::nullopt, std::nullopt, t0 + 1),
                            make_product(3, 99999999, 0, 0, t0 + 2)}));
  auto p1 = run(st_->get_cached_product(1));
  ASSERT_TRUE(p1);
  EXPECT_EQ(p1->id, 1);
  EXPECT_EQ(p1->title, "Product 1");
  EXPECT_EQ(p1->image_url, "https://img.example/1.png");
  EXPECT_EQ(p1->price_cents, 10995);
  EXPECT_EQ(p1->review_rate_cents, 390);
  EXPECT_EQ(p1->review_count, 120);
  EXPECT_EQ(p1->fetched_at, t0);
  auto p2 = run(st_->get_cached_product(2));
  ASSERT_TRUE(p2);
  EXPECT_EQ(p2->price_cents, 1);
  EXPECT_FALSE(p2->review_rate_cents);
  EXPECT_FALSE(p2->review_count);
  EXPECT_EQ(p2->fetched_at, t0 + 1);
  auto p3 = run(st_->get_cached_product(3));
  ASSERT_TRUE(p3);
  EXPECT_EQ(p3->price_cents, 99999999);
  EXPECT_EQ(p3->review_rate_cents, 0);
  EXPECT_EQ(p3->review_count, 0);

  // Replaced in place, including a review that went away; quotes and unicode survive.
  core::product changed = make_product(1, 2050, std::nullopt, std::nullopt, t0 + 60 * second);
  changed.title = "Mochila \"Fjällräven\" – 15\" \\ laptops";
  run(st_->upsert_products({changed}));
  p1 = run(st_->get_cached_product(1));
  ASSERT_TRUE(p1);
  EXPECT_EQ(p1->title, changed.title);
  EXPECT_EQ(p1->price_cents, 2050);
  EXPECT_FALSE(p1->review_rate_cents);
  EXPECT_FALSE(p1->review_count);
  EXPECT_EQ(p1->fetched_at, t0 + 60 * second);

  EXPECT_NO_THROW(run(st_->upsert_products({})));
}

// ---- favorites ----

TEST_P(store_contract, favorites_insert_list_get_delete) {
  const core::customer a = add_customer("Alice", "alice@example.com", t0);
  const core::customer b = add_customer("Bob", "bob@example.com", t0);
  run(st_->upsert_products({make_product(10, 1999, 450, 7, t0)}));

  EXPECT_EQ(run(st_->insert_favorite(cid(a.id), 10, t0 + 1 * second)), insert_result::added);
  EXPECT_EQ(run(st_->insert_favorite(cid(a.id), 10, t0 + 9 * second)), insert_result::duplicate);
  EXPECT_EQ(run(st_->insert_favorite(cid(a.id), 20, t0 + 2 * second)), insert_result::added);
  // Same instant: product_id DESC breaks the tie.
  EXPECT_EQ(run(st_->insert_favorite(cid(a.id), 30, t0 + 3 * second)), insert_result::added);
  EXPECT_EQ(run(st_->insert_favorite(cid(a.id), 31, t0 + 3 * second)), insert_result::added);
  EXPECT_EQ(run(st_->insert_favorite(cid(b.id), 10, t0)), insert_result::added);

  auto page = run(st_->list_favorites(cid(a.id), {1, 20}));
  EXPECT_EQ(page.total, 4);
  std::vector<std::int64_t> ids;
  for (const auto& f : page.items) ids.push_back(f.product_id);
  EXPECT_EQ(ids, (std::vector<std::int64_t>{31, 30, 20, 10}));
  ASSERT_EQ(page.items.size(), 4u);
  EXPECT_EQ(page.items[0].favorited_at, t0 + 3 * second);
  EXPECT_FALSE(page.items[0].cached);  // never cached: still listed
  ASSERT_TRUE(page.items[3].cached);
  EXPECT_EQ(page.items[3].favorited_at, t0 + 1 * second);  // the duplicate did not touch it
  EXPECT_EQ(page.items[3].cached->price_cents, 1999);
  EXPECT_EQ(page.items[3].cached->review_rate_cents, 450);
  EXPECT_EQ(page.items[3].cached->review_count, 7);
  EXPECT_EQ(page.items[3].cached->title, "Product 10");

  auto p2 = run(st_->list_favorites(cid(a.id), {2, 3}));
  EXPECT_EQ(p2.total, 4);
  ASSERT_EQ(p2.items.size(), 1u);
  EXPECT_EQ(p2.items[0].product_id, 10);
  auto beyond = run(st_->list_favorites(cid(a.id), {5, 3}));
  EXPECT_TRUE(beyond.items.empty());
  EXPECT_EQ(beyond.total, 4);
  EXPECT_EQ(run(st_->list_favorites(cid(fav::util::uuid_v4()), {1, 20})).total, 0);

  auto one = run(st_->get_favorite(cid(a.id), 10));
  ASSERT_TRUE(one);
  EXPECT_EQ(one->product_id, 10);
  EXPECT_EQ(one->favorited_at, t0 + 1 * second);
  ASSERT_TRUE(one->cached);
  EXPECT_EQ(one->cached->fetched_at, t0);
  auto uncached = run(st_->get_favorite(cid(a.id), 20));
  ASSERT_TRUE(uncached);
  EXPECT_FALSE(uncached->cached);
  EXPECT_FALSE(run(st_->get_favorite(cid(a.id), 99)));
  EXPECT_TRUE(run(st_->has_favorite(cid(a.id), 10)));
  EXPECT_TRUE(run(st_->has_favorite(cid(a.id), 20)));
  EXPECT_FALSE(run(st_->has_favorite(cid(a.id), 99)));
  EXPECT_FALSE(run(st_->has_favorite(cid(b.id), 20)));

  EXPECT_EQ(run(st_->delete_favorite(cid(a.id), 10)), delete_result::removed);
  EXPECT_EQ(run(st_->delete_favorite(cid(a.id), 10)), delete_result::absent);
  EXPECT_FALSE(run(st_->get_favorite(cid(a.id), 10)));
  EXPECT_FALSE(run(st_->has_favorite(cid(a.id), 10)));
  EXPECT_EQ(run(st_->list_favorites(cid(a.id), {1, 20})).total, 3);
  EXPECT_TRUE(run(st_->get_favorite(cid(b.id), 10)));  // another customer's copy stays
}

TEST_P(store_contract, concurrent_identical_favorites_have_one_winner) {
  const core::customer a = add_customer("Alice", "alice@example.com", t0);
  std::vector<net::awaitable<insert_result>> inserts;
  for (int i = 0; i < 20; ++i) inserts.push_back(st_->insert_favorite(cid(a.id), 42, t0 + i));
  const auto results = run_all(std::move(inserts));
  EXPECT_EQ(std::count(results.begin(), results.end(), insert_result::added), 1);
  EXPECT_EQ(std::count(results.begin(), results.end(), insert_result::duplicate), 19);
  EXPECT_EQ(run(st_->list_favorites(cid(a.id), {1, 20})).total, 1);
}

// ---- a customer deleted while a request runs (contract §5) ----

// "A request whose customer is deleted while it runs answers as a deleted customer's token does
// (401 invalid_token), on both backends, never 500 or 409": every write that references a
// missing customer says so — as no_customer or not_found, a value answered 401 — never a bare
// constraint error (500) or "already a favorite" (409).
TEST_P(store_contract, writes_for_a_deleted_customer_say_no_customer) {
  const core::customer a = add_customer("Alice", "alice@example.com", t0);
  ASSERT_EQ(run(st_->insert_favorite(cid(a.id), 8, t0)), insert_result::added);
  ASSERT_TRUE(run(st_->delete_customer(cid(a.id))));
  EXPECT_EQ(run(st_->insert_favorite(cid(a.id), 7, t0)), insert_result::no_customer);
  EXPECT_EQ(run(st_->delete_favorite(cid(a.id), 8)), delete_result::no_customer);
  const store::sign_in_started gone = run(st_->start_sign_in(make_sign_in("sid-gone", a.id, t0, second), 5));
  EXPECT_TRUE(gone.no_customer);
  EXPECT_TRUE(gone.ended.empty());
  EXPECT_EQ(refresh("sid-gone", 0, t0), rotate_result::invalid) << "a sign-in row for a deleted customer";
  EXPECT_EQ(run(st_->update_customer(cid(a.id), patch("New"), t0)), update_result::not_found);
  EXPECT_EQ(run(st_->insert_favorite(cid(fav::util::uuid_v4()), 7, t0)), insert_result::no_customer);
  EXPECT_EQ(run(st_->delete_favorite(cid(fav::util::uuid_v4()), 7)), delete_result::no_customer);
}

TEST_P(store_contract, favorites_racing_the_customers_deletion_are_added_or_no_customer) {
  for (int round = 0; round < 5; ++round) {
    const core::customer a = add_customer("Alice", "alice" + std::to_string(round) + "@example.com", t0);
    // Inserts and the delete interleave on two threads; each insert either lands before the
    // delete (and is cascaded away) or finds the customer gone. Nothing else is allowed.
    std::vector<net::awaitable<int>> work;
    auto insert = [](store::store& st, std::string id, std::int64_t pid) -> net::awaitable<int> {
      switch (co_await st.insert_favorite(cid(id), pid, t0 + pid)) {
        case insert_result::added: co_return 1;
        case insert_result::duplicate: co_return 2;
        case insert_result::no_customer: co_return 3;
      }
      co_return -2;
    };
    auto remove = [](store::store& st, std::string id) -> net::awaitable<int> {
      co_return co_await st.delete_customer(cid(id)) ? 0 : -1;
    };
    for (int i = 0; i < 12; ++i) {
      if (i == 4) work.push_back(remove(*st_, a.id));
      work.push_back(insert(*st_, a.id, 100 + i));
    }
    const auto results = run_all(std::move(work));
    EXPECT_EQ(std::count(results.begin(), results.end(), 0), 1);
    EXPECT_EQ(std::count(results.begin(), results.end(), 2), 0) << "a duplicate where none was possible";
    EXPECT_EQ(std::count(results.begin(), results.end(), 1) + std::count(results.begin(), results.end(), 3), 12);
    EXPECT_EQ(run(st_->list_favorites(cid(a.id), {1, 20})).total, 0);
  }
}

// A favoriting's two calls: its reads together (already a favorite? the cached row), then one
// write that stores a fetched row with the favorite. On PostgreSQL each is one round trip (a
// pipeline; the prepares of a fresh connection included), the write one transaction; the
// insert's outcome is decided by the database as insert_favorite's.
TEST_P(store_contract, a_favoriting_reads_in_one_round_trip_and_writes_in_one) {
  const core::customer a = add_customer("Alice", "alice@example.com", t0);
  const bool pg = backend_ == "postgresql";
  const auto trips = [this] { return st_->usage().round_trips; };

  auto before = trips();
  auto reads = run(st_->read_for_favoriting(cid(a.id), 7));
  EXPECT_EQ(trips() - before, pg ? 1u : 0u) << "the two reads were not one round trip";
  EXPECT_FALSE(reads.already);
  EXPECT_FALSE(reads.cached);

  before = trips();
  EXPECT_EQ(run(st_->write_favoriting(cid(a.id), 7, t0, make_product(7, 1999, 450, 3, t0))), insert_result::added);
  EXPECT_EQ(trips() - before, pg ? 1u : 0u) << "the row and the favorite were not one round trip";
  const auto row = run(st_->get_cached_product(7));
  ASSERT_TRUE(row);
  EXPECT_EQ(row->price_cents, 1999);
  EXPECT_EQ(row->fetched_at, t0);

  reads = run(st_->read_for_favoriting(cid(a.id), 7));
  EXPECT_TRUE(reads.already);
  ASSERT_TRUE(reads.cached);
  EXPECT_EQ(reads.cached->price_cents, 1999);
  // A duplicate, with a row or without: the insert says so (and a row given is still stored).
  EXPECT_EQ(run(st_->write_favoriting(cid(a.id), 7, t0 + second, make_product(7, 2099, 450, 3, t0 + second))),
            insert_result::duplicate);
  EXPECT_EQ(run(st_->get_cached_product(7))->price_cents, 2099);
  before = trips();
  EXPECT_EQ(run(st_->write_favoriting(cid(a.id), 7, t0, std::nullopt)), insert_result::duplicate);
  EXPECT_EQ(trips() - before, pg ? 1u : 0u);
  EXPECT_EQ(run(st_->list_favorites(cid(a.id), {1, 20})).total, 1);

  // A customer that does not exist (or no longer does): no_customer, with a row or without.
  EXPECT_EQ(run(st_->write_favoriting(cid(fav::util::uuid_v4()), 8, t0, make_product(8, 100, 450, 3, t0))),
            insert_result::no_customer);
  ASSERT_TRUE(run(st_->delete_customer(cid(a.id))));
  EXPECT_EQ(run(st_->write_favoriting(cid(a.id), 9, t0, std::nullopt)), insert_result::no_customer);
  EXPECT_FALSE(run(st_->read_for_favoriting(cid(a.id), 7)).already);
}

// ---- statement deadline (contract §5) ----

// "Every database statement has a deadline, DATABASE_STATEMENT_TIMEOUT_SECONDS ...; past it the
// request answers 503 database_unavailable ..., and the statement is cancelled in the database
// too: a write that answered 503 is never applied later."
TEST_P(store_contract, a_write_blocked_past_its_deadline_fails_and_is_never_applied) {
  const core::customer a = add_customer("Alice", "alice@example.com", t0);
  auto fast = make_store(2, 300ms);
  PGconn* holder = nullptr;
  sqlite3_handle lite;
  if (backend_ == "postgresql") {
    // Another session holds a lock that every INSERT into the table waits for.
    holder = PQconnectdb(conninfo_.c_str());
    ASSERT_EQ(PQstatus(holder), CONNECTION_OK) << PQerrorMessage(holder);
    PGresult* r = PQexec(holder, "BEGIN; LOCK TABLE customer_favorite_products IN SHARE ROW EXCLUSIVE MODE");
    ASSERT_EQ(PQresultStatus(r), PGRES_COMMAND_OK) << PQerrorMessage(holder);
    PQclear(r);
  } else {
    // Another connection holds the write lock.
    ASSERT_EQ(sqlite3_open(path_.c_str(), &lite.db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(lite.db, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);
  }
  const auto start = std::chrono::steady_clock::now();
  EXPECT_THROW(run(fast->insert_favorite(cid(a.id), 42, t0)), store::unavailable);
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_GE(took, 250ms);
  EXPECT_LT(took, 5s);  // the deadline plus the cancel's grace, with room for a loaded machine
  // The lock goes away; a statement left running would now commit.
  if (holder) {
    // Cancelled in the database before the caller heard "unavailable": nothing still waits.
    PGresult* active =
        PQexec(holder, "SELECT count(*) FROM pg_stat_activity WHERE pg_backend_pid() = ANY (pg_blocking_pids(pid))");
    ASSERT_EQ(PQresultStatus(active), PGRES_TUPLES_OK);
    EXPECT_STREQ(PQgetvalue(active, 0, 0), "0");
    PQclear(active);
    PGresult* r = PQexec(holder, "COMMIT");
    PQclear(r);
    PQfinish(holder);
  } else {
    sqlite3_exec(lite.db, "COMMIT", nullptr, nullptr, nullptr);
  }
  // The store serves again at once. That write is also the barrier for a late commit: the writes
  // of one store are taken in order (SQLite's single writer; on PostgreSQL nothing was left
  // waiting, checked above), so a 42 still pending would have committed before 43.
  EXPECT_EQ(run(fast->insert_favorite(cid(a.id), 43, t0)), insert_result::added);
  EXPECT_FALSE(run(st_->get_favorite(cid(a.id), 42)));
  fast.reset();
}

// CONTRACT §5: "A write that failed left nothing half-done." -- and, with SQLite's group commit,
// took nothing else with it.
TEST_P(store_contract, a_failing_write_among_concurrent_ones_leaves_the_others_committed) {
  const core::customer a = add_customer("Alice", "alice@example.com", t0);
  open_sign_in(make_sign_in("taken", a.id, t0, second));
  std::vector<net::awaitable<bool>> writes;
  for (int i = 0; i < 10; ++i) writes.push_back(added(st_->insert_favorite(cid(a.id), 100 + i, t0 + i)));
  // A sign-in whose id is taken: the primary key refuses it.
  writes.push_back(try_start_sign_in(*st_, make_sign_in("taken", a.id, t0 + 1, 2 * second)));
  for (int i = 10; i < 20; ++i) writes.push_back(added(st_->insert_favorite(cid(a.id), 100 + i, t0 + i)));
  const auto results = run_all(std::move(writes));
  EXPECT_EQ(std::count(results.begin(), results.end(), true), 20);
  EXPECT_FALSE(results[10]);
  EXPECT_EQ(run(st_->list_favorites(cid(a.id), {1, 50})).total, 20);
  EXPECT_EQ(sign_in_rows(), 1);
  EXPECT_EQ(refresh("taken", 0, t0 + 2), rotate_result::rotated) << "the failed write changed the row it hit";
}

// ---- the read-through memory over the store (README, "Running several instances") ----

// CONTRACT §9: "A write acknowledged by one instance is seen ... by reads on the same instance
// at once." The store stack as main builds it (read cache over the feed over the backend): a
// write through it is seen by the very next read, though that read was cached.
TEST_P(store_contract, through_the_read_cache_a_write_is_seen_by_the_next_read_at_once) {
  store::change_feed feed(true);
  through_memory cached(make_store(), feed);
  const core::customer a = add_customer("Alice", "alice@example.com", t0);
  run(cached.db->upsert_products({make_product(7, 100, 450, 3, t0), make_product(8, 200, {}, {}, t0)}));
  const core::page_req first{1, 20};

  EXPECT_EQ(run(cached.reads.list_favorites(cid(a.id), first)).total, 0);
  auto hits = cached.reads.memory().hits();
  EXPECT_EQ(run(cached.reads.list_favorites(cid(a.id), first)).total, 0);
  EXPECT_EQ(cached.reads.memory().hits(), hits + 1) << "the second read was not answered from memory";

  ASSERT_EQ(run(cached.db->insert_favorite(cid(a.id), 7, t0)), insert_result::added);
  auto page = run(cached.reads.list_favorites(cid(a.id), first));
  ASSERT_EQ(page.total, 1);
  ASSERT_EQ(page.items.size(), 1u);
  EXPECT_EQ(page.items[0].product_id, 7);
  EXPECT_EQ(page.items[0].favorited_at, t0);
  ASSERT_TRUE(page.items[0].cached);
  EXPECT_EQ(page.items[0].cached->price_cents, 100);
  ASSERT_EQ(run(cached.db->insert_favorite(cid(a.id), 8, t0 + 1)), insert_result::added);
  page = run(cached.reads.list_favorites(cid(a.id), first));
  ASSERT_EQ(page.total, 2);
  EXPECT_EQ(page.items[0].product_id, 8);
  hits = cached.reads.memory().hits();
  page = run(cached.reads.list_favorites(cid(a.id), first));  // from memory, the same answer
  EXPECT_EQ(cached.reads.memory().hits(), hits + 1);
  ASSERT_EQ(page.items.size(), 2u);
  EXPECT_EQ(page.items[1].cached->review_rate_cents, 450);

  // Products refreshed through this instance: the cached page shows the new rows.
  run(cached.db->upsert_products({make_product(7, 150, 450, 4, t0 + second)}));
  page = run(cached.reads.list_favorites(cid(a.id), first));
  ASSERT_EQ(page.items.size(), 2u);
  EXPECT_EQ(page.items[1].cached->price_cents, 150);
  EXPECT_EQ(page.items[1].cached->fetched_at, t0 + second);

  ASSERT_EQ(run(cached.db->delete_favorite(cid(a.id), 8)), delete_result::removed);
  page = run(cached.reads.list_favorites(cid(a.id), first));
  EXPECT_EQ(page.total, 1);
  ASSERT_EQ(page.items.size(), 1u);
  EXPECT_EQ(page.items[0].product_id, 7);

  // The customer's record.
  EXPECT_EQ(run(cached.reads.find_customer(cid(a.id)))->name, "Alice");
  EXPECT_EQ(run(cached.reads.find_customer(cid(a.id)))->name, "Alice");
  EXPECT_EQ(run(cached.db->update_customer(cid(a.id), patch("Alicia"), t0 + second)), update_result::updated);
  EXPECT_EQ(run(cached.reads.find_customer(cid(a.id)))->name, "Alicia");
  EXPECT_TRUE(run(cached.db->delete_customer(cid(a.id))));
  EXPECT_FALSE(run(cached.reads.find_customer(cid(a.id))));
  EXPECT_EQ(run(cached.reads.list_favorites(cid(a.id), first)).total, 0) << "a deleted customer's cached page";
}

// CONTRACT §9: "while an instance's listening connection is down it checks the database on every
// request until it is back". Writes of another instance (`st_`, not through this cache) are seen
// while the feed is down; once it is back the cache starts empty, and the feed's news about
// another instance's write forgets what it touched.
TEST_P(store_contract, through_the_read_cache_nothing_is_trusted_while_the_feed_is_down) {
  store::change_feed feed(true);
  through_memory cached(make_store(), feed);
  const core::customer a = add_customer("Alice", "alice@example.com", t0);
  const core::page_req first{1, 20};
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(run(cached.reads.find_customer(cid(a.id)))->name, "Alice");
    EXPECT_EQ(run(cached.reads.list_favorites(cid(a.id), first)).total, 0);
  }

  feed.set_down();
  EXPECT_EQ(run(st_->update_customer(cid(a.id), patch("Other"), t0 + second)), update_result::updated);
  ASSERT_EQ(run(st_->insert_favorite(cid(a.id), 9, t0)), insert_result::added);
  EXPECT_EQ(run(cached.reads.find_customer(cid(a.id)))->name, "Other");
  EXPECT_EQ(run(cached.reads.list_favorites(cid(a.id), first)).total, 1);
  EXPECT_EQ(cached.reads.memory().entries(), 2u) << "only what was cached before the outage (not trusted)";

  feed.set_up();  // flushes
  EXPECT_EQ(cached.reads.memory().entries(), 0u);
  EXPECT_EQ(run(cached.reads.list_favorites(cid(a.id), first)).total, 1);
  const auto hits = cached.reads.memory().hits();
  EXPECT_EQ(run(cached.reads.list_favorites(cid(a.id), first)).total, 1);
  EXPECT_EQ(cached.reads.memory().hits(), hits + 1);

  // Another instance removes the favorite; its notification arrives through the feed.
  ASSERT_EQ(run(st_->delete_favorite(cid(a.id), 9)), delete_result::removed);
  feed.publish({store::change::kind::favorites, a.id});
  EXPECT_EQ(run(cached.reads.list_favorites(cid(a.id), first)).total, 0);
}

// The single favorite (GET .../favorites/{product_id}): answered from memory
// once read, and a write through this instance or news from the feed is seen by the next read
// at once.
TEST_P(store_contract, through_the_read_cache_a_single_favorite_follows_every_write) {
  store::change_feed feed(true);
  through_memory cached(make_store(), feed);
  const core::customer a = add_customer("Alice", "alice@example.com", t0);
  run(cached.db->upsert_products({make_product(7, 100, 450, 3, t0)}));

  EXPECT_FALSE(run(cached.reads.get_favorite(cid(a.id), 7)));
  auto hits = cached.reads.memory().hits();
  EXPECT_FALSE(run(cached.reads.get_favorite(cid(a.id), 7)));
  EXPECT_EQ(cached.reads.memory().hits(), hits + 1) << "the absence was not answered from memory";

  ASSERT_EQ(run(cached.db->insert_favorite(cid(a.id), 7, t0 + 5)), insert_result::added);
  auto got = run(cached.reads.get_favorite(cid(a.id), 7));
  ASSERT_TRUE(got) << "a cached absence outlived the insert";
  EXPECT_EQ(got->favorited_at, t0 + 5);
  hits = cached.reads.memory().hits();
  got = run(cached.reads.get_favorite(cid(a.id), 7));
  EXPECT_EQ(cached.reads.memory().hits(), hits + 1);
  ASSERT_TRUE(got && got->cached);
  EXPECT_EQ(got->cached->price_cents, 100);

  // Another instance removes it; its notification arrives through the feed.
  ASSERT_EQ(run(st_->delete_favorite(cid(a.id), 7)), delete_result::removed);
  EXPECT_TRUE(run(cached.reads.get_favorite(cid(a.id), 7))) << "not cached: the test would prove nothing";
  feed.publish({store::change::kind::favorites, a.id});
  EXPECT_FALSE(run(cached.reads.get_favorite(cid(a.id), 7)));

  // A row of a cached page answers too, and follows a delete through this instance.
  ASSERT_EQ(run(cached.db->insert_favorite(cid(a.id), 7, t0 + 6)), insert_result::added);
  EXPECT_EQ(run(cached.reads.list_favorites(cid(a.id), {1, 20})).total, 1);
  hits = cached.reads.memory().hits();
  EXPECT_EQ(run(cached.reads.get_favorite(cid(a.id), 7))->favorited_at, t0 + 6);
  EXPECT_EQ(cached.reads.memory().hits(), hits + 1);
  ASSERT_EQ(run(cached.db->delete_favorite(cid(a.id), 7)), delete_result::removed);
  EXPECT_FALSE(run(cached.reads.get_favorite(cid(a.id), 7)));
}

// Contract §9: "A write's answer never comes from a cache: 409 product_already_in_favorites and
// 422 product_not_in_favorites reflect the database at the time of the write, so an add through
// one instance right after a remove through another succeeds." This instance's memory still
// shows the favorite (the other's notification has not arrived); the writes and favoriting's
// "already there?" check answer what the database holds.
TEST_P(store_contract, through_the_read_cache_a_writes_answer_is_the_databases) {
  store::change_feed feed(true);
  through_memory cached(make_store(), feed);
  const core::customer a = add_customer("Alice", "alice@example.com", t0);
  ASSERT_EQ(run(cached.db->insert_favorite(cid(a.id), 7, t0)), insert_result::added);
  ASSERT_TRUE(run(cached.reads.get_favorite(cid(a.id), 7)));
  ASSERT_TRUE(run(cached.db->has_favorite(cid(a.id), 7)));

  // Another instance removes it: this one's memory is now stale...
  ASSERT_EQ(run(st_->delete_favorite(cid(a.id), 7)), delete_result::removed);
  const auto hits = cached.reads.memory().hits();
  EXPECT_TRUE(run(cached.reads.get_favorite(cid(a.id), 7))) << "not cached: the test would prove nothing";
  EXPECT_EQ(cached.reads.memory().hits(), hits + 1);
  // ...but what a write decides on is not.
  EXPECT_FALSE(run(cached.db->has_favorite(cid(a.id), 7)));
  EXPECT_EQ(cached.reads.memory().hits(), hits + 1) << "has_favorite was answered from memory";
  EXPECT_EQ(run(cached.db->insert_favorite(cid(a.id), 7, t0 + 1)), insert_result::added);

  // And the other way round: another instance adds what this one remembers as absent.
  ASSERT_EQ(run(cached.db->delete_favorite(cid(a.id), 7)), delete_result::removed);
  EXPECT_FALSE(run(cached.reads.get_favorite(cid(a.id), 7)));
  ASSERT_EQ(run(st_->insert_favorite(cid(a.id), 7, t0 + 2)), insert_result::added);
  EXPECT_FALSE(run(cached.reads.get_favorite(cid(a.id), 7))) << "not cached: the test would prove nothing";
  EXPECT_TRUE(run(cached.db->has_favorite(cid(a.id), 7)));
  EXPECT_EQ(run(cached.db->insert_favorite(cid(a.id), 7, t0 + 3)), insert_result::duplicate);
  EXPECT_EQ(run(cached.db->delete_favorite(cid(a.id), 7)), delete_result::removed);
  EXPECT_EQ(run(cached.db->delete_favorite(cid(a.id), 7)), delete_result::absent);
}

// Pages are rendered "with current product data". A product row another
// instance refreshed (`st_`, not through this cache) reaches this instance's cached page when
// the feed tells about it.
TEST_P(store_contract, through_the_read_cache_another_instances_product_refresh_is_shown) {
  store::change_feed feed(true);
  through_memory cached(make_store(), feed);
  const core::customer a = add_customer("Alice", "alice@example.com", t0);
  run(cached.db->upsert_products({make_product(7, 100, 450, 3, t0)}));
  ASSERT_EQ(run(cached.db->insert_favorite(cid(a.id), 7, t0)), insert_result::added);
  const core::page_req first{1, 20};
  EXPECT_EQ(run(cached.reads.list_favorites(cid(a.id), first)).items.at(0).cached->price_cents, 100);
  const auto hits = cached.reads.memory().hits();
  EXPECT_EQ(run(cached.reads.list_favorites(cid(a.id), first)).items.at(0).cached->price_cents, 100);
  ASSERT_EQ(cached.reads.memory().hits(), hits + 1) << "the page is not cached: the test would prove nothing";

  run(st_->upsert_products({make_product(7, 175, 450, 3, t0 + second)}));
  feed.publish({store::change::kind::product, "7"});
  const auto page = run(cached.reads.list_favorites(cid(a.id), first));
  ASSERT_EQ(page.items.size(), 1u);
  EXPECT_EQ(page.items[0].cached->price_cents, 175);
  EXPECT_EQ(page.items[0].cached->fetched_at, t0 + second);
}

// On PostgreSQL the notification comes from the write itself: upsert_products sends "p:<id>"
// on the feed's channel for every row it writes, in the same statement.
TEST_P(store_contract, a_product_refresh_notifies_the_other_instances) {
  if (backend_ != "postgresql") GTEST_SKIP() << "SQLite: one process, invalidation is in-process";
  PGconn* listener = PQconnectdb(conninfo_.c_str());
  ASSERT_EQ(PQstatus(listener), CONNECTION_OK) << PQerrorMessage(listener);
  PQclear(PQexec(listener, "LISTEN favorites_api_changes"));
  // Ids no other test writes (the channel is shared by every schema of the database).
  run(st_->upsert_products({make_product(917001, 100, 450, 3, t0), make_product(917002, 200, {}, {}, t0)}));
  std::set<std::string> got;
  const auto until = std::chrono::steady_clock::now() + 10s;
  while (got.size() < 2 && std::chrono::steady_clock::now() < until) {
    PQconsumeInput(listener);
    while (PGnotify* n = PQnotifies(listener)) {
      if (std::string(n->relname) == "favorites_api_changes" &&
          (std::string(n->extra) == "p:917001" || std::string(n->extra) == "p:917002"))
        got.insert(n->extra);
      PQfreemem(n);
    }
    if (got.size() < 2) {
      pollfd pfd{PQsocket(listener), POLLIN, 0};
      ::poll(&pfd, 1, 100);  // until something arrives (bounded by `until`)
    }
  }
  PQfinish(listener);
  EXPECT_EQ(got, (std::set<std::string>{"p:917001", "p:917002"}));
}

// The favorite writes notify too, from the same statement, and only when they changed something:
// an added and a removed favorite send "f:<customer>", a duplicate or an absent one nothing.
TEST_P(store_contract, favorite_writes_notify_only_what_they_changed) {
  if (backend_ != "postgresql") GTEST_SKIP() << "SQLite: one process, invalidation is in-process";
  const core::customer a = add_customer("Alice", "alice@example.com", t0);
  PGconn* listener = PQconnectdb(conninfo_.c_str());
  ASSERT_EQ(PQstatus(listener), CONNECTION_OK) << PQerrorMessage(listener);
  PQclear(PQexec(listener, "LISTEN favorites_api_changes"));
  ASSERT_EQ(run(st_->insert_favorite(cid(a.id), 7, t0)), insert_result::added);
  ASSERT_EQ(run(st_->insert_favorite(cid(a.id), 7, t0)), insert_result::duplicate);
  ASSERT_EQ(run(st_->delete_favorite(cid(a.id), 7)), delete_result::removed);
  ASSERT_EQ(run(st_->delete_favorite(cid(a.id), 7)), delete_result::absent);
  // A last notification marks the end: notifications arrive in commit order.
  run(st_->upsert_products({make_product(917003, 100, 450, 3, t0)}));
  int favorites = 0;
  bool end = false;
  const auto until = std::chrono::steady_clock::now() + 10s;
  while (!end && std::chrono::steady_clock::now() < until) {
    PQconsumeInput(listener);
    while (PGnotify* n = PQnotifies(listener)) {
      if (std::string(n->extra) == "f:" + a.id) ++favorites;
      if (std::string(n->extra) == "p:917003") end = true;
      PQfreemem(n);
    }
    if (!end) {
      pollfd pfd{PQsocket(listener), POLLIN, 0};
      ::poll(&pfd, 1, 100);  // until something arrives (bounded by `until`)
    }
  }
  PQfinish(listener);
  EXPECT_TRUE(end);
  EXPECT_EQ(favorites, 2);
}

// ---- reads through a failover (contract §11) ----

// "DATABASE_READ_URL ... serves GET /customers/{id}, GET /customers/{id}/favorites,
// GET /customers/{id}/favorites/{product_id} and the token checks they need while the primary
// cannot be reached." The primary here is a PostgreSQL store on a loopback port nothing listens
// on; the "standbys" are the backend under test (the HTTP suite's test_ha_reads runs a real
// streaming standby). Writes and every other call still need the primary.
TEST_P(store_contract, reads_go_to_the_standbys_only_when_the_primary_cannot_be_reached) {
  const core::customer a = add_customer("Alice", "alice@example.com", t0);
  ASSERT_EQ(run(st_->insert_favorite(cid(a.id), 7, t0)), insert_result::added);
  run(st_->revoke_token("jti-revoked", t0 + 3600 * second));
  auto unreachable = [this] {
    return store::make_pg_store(ioc_.get_executor(), "postgresql://nobody@127.0.0.1:9/none", 1, 2s);
  };

  // As main builds it: the read-through layer (its memory off here, so every read is asked) over
  // the primary, with the standbys.
  store::change_feed feed(true);
  auto primary_down = unreachable();
  auto standby = make_store();
  store::read_through down(*primary_down, feed, 0, standby.get());
  EXPECT_EQ(run(down.find_customer(cid(a.id)))->email, "alice@example.com");
  EXPECT_EQ(run(down.list_favorites(cid(a.id), {1, 20})).total, 1);
  EXPECT_TRUE(run(down.get_favorite(cid(a.id), 7)));
  EXPECT_FALSE(run(down.get_favorite(cid(a.id), 8)));
  EXPECT_EQ(run(down.check_token(cid(a.id), "jti-ok", "")), auth_state::ok);
  EXPECT_EQ(run(down.check_token(cid(a.id), "jti-revoked", "")), auth_state::revoked);
  EXPECT_EQ(down.standby_reads(), 6u);

  EXPECT_THROW(run(primary_down->insert_favorite(cid(a.id), 8, t0)), store::unavailable);
  EXPECT_THROW(run(primary_down->delete_favorite(cid(a.id), 7)), store::unavailable);
  EXPECT_THROW(run(primary_down->has_favorite(cid(a.id), 7)), store::unavailable);
  EXPECT_THROW(run(primary_down->find_customer_by_email("alice@example.com")), store::unavailable);
  EXPECT_FALSE(run(primary_down->ping()));
  EXPECT_EQ(down.standby_reads(), 6u);
  EXPECT_TRUE(run(st_->get_favorite(cid(a.id), 7))) << "a failed write left something behind";

  // While the primary answers, every read is its own (read-your-writes): unreachable standbys
  // are never asked.
  auto primary_up = make_store();
  auto standby_down = unreachable();
  store::read_through up(*primary_up, feed, 0, standby_down.get());
  EXPECT_EQ(run(up.find_customer(cid(a.id)))->email, "alice@example.com");
  EXPECT_EQ(run(up.list_favorites(cid(a.id), {1, 20})).total, 1);
  EXPECT_EQ(run(up.check_token(cid(a.id), "jti-revoked", "")), auth_state::revoked);
  EXPECT_EQ(up.standby_reads(), 0u);
}

// §9: "Sign-outs, refresh-chain revocations ... made through one instance take effect on every
// other within 1 second": a sign-in the cap ended is announced like a sign-out, on this instance's
// feed at once and (PostgreSQL) to every other instance.
TEST_P(store_contract, a_sign_in_ended_by_the_cap_is_announced_on_the_change_feed) {
  store::change_feed feed(true);
  std::mutex mu;
  std::vector<std::string> heard;
  feed.subscribe([&](const store::change& c) {
    std::lock_guard lk(mu);
    if (c.what == store::change::kind::signin) heard.push_back(c.id);
  });
  auto through_feed = make_store();
  through_feed->publish_to(feed);
  const core::customer a = add_customer("Alice", "alice@example.com", t0);
  PGconn* listener = nullptr;
  if (backend_ == "postgresql") {
    listener = PQconnectdb(conninfo_.c_str());
    ASSERT_EQ(PQstatus(listener), CONNECTION_OK) << PQerrorMessage(listener);
    PQclear(PQexec(listener, "LISTEN favorites_api_changes"));
  }
  // Ids no other test uses (the channel is shared by every schema of the database).
  const std::string oldest = "cap-" + fav::util::uuid_v4(), newest = "cap-" + fav::util::uuid_v4();
  EXPECT_TRUE(run(through_feed->start_sign_in(make_sign_in(oldest, a.id, t0, 3600 * second), 1)).ended.empty());
  EXPECT_EQ(run(through_feed->start_sign_in(make_sign_in(newest, a.id, t0 + second, 3600 * second), 1)).ended,
            std::vector<std::string>{oldest});
  {
    std::lock_guard lk(mu);
    EXPECT_EQ(heard, std::vector<std::string>{"sid:" + oldest});
  }
  if (!listener) return;
  bool got = false;
  const auto until = std::chrono::steady_clock::now() + 10s;
  while (!got && std::chrono::steady_clock::now() < until) {
    PQconsumeInput(listener);
    while (PGnotify* n = PQnotifies(listener)) {
      got = got || std::string(n->extra) == "s:sid:" + oldest;
      PQfreemem(n);
    }
    if (!got) {
      pollfd pfd{PQsocket(listener), POLLIN, 0};
      ::poll(&pfd, 1, 100);  // until something arrives (bounded by `until`)
    }
  }
  PQfinish(listener);
  EXPECT_TRUE(got) << "no s:sid:" << oldest << " notification";
}

// ---- migrations ----

TEST_P(store_contract, migrate_again_is_a_no_op) {
  const core::customer a = add_customer("Alice", "alice@example.com", t0);
  EXPECT_EQ(run(st_->insert_favorite(cid(a.id), 1, t0)), insert_result::added);
  run(st_->migrate());
  run(st_->migrate());
  EXPECT_TRUE(run(st_->find_customer(cid(a.id))));
  EXPECT_EQ(run(st_->list_favorites(cid(a.id), {1, 20})).total, 1);
  // A second instance over the same database sees the same data.
  auto again = make_store();
  run(again->migrate());
  EXPECT_TRUE(run(again->find_customer(cid(a.id))));
  again.reset();
}

INSTANTIATE_TEST_SUITE_P(backends, store_contract, ::testing::Values("sqlite", "postgresql"),
                         [](const auto& info) { return info.param; });

}  // namespace
