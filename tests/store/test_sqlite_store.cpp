// The SQLite store alone: the one writer, its group commit and its deadlines.
#include "store_fixture.hpp"

namespace {

using namespace fav::store_test;  // the store suites' shared helpers and fixture

// ---- SQLite only: the one writer and its group commit ----

class sqlite_backend : public backend_fixture {
 protected:
  void SetUp() override { ASSERT_TRUE(open("sqlite")); }
  // Starts `a` on the io_context, which a second thread runs until finish() (no test sleeps:
  // the thread only waits for the store's own progress, bounded).
  void start(net::awaitable<bool> a) { futures_.push_back(net::co_spawn(ioc_, std::move(a), net::use_future)); }
  void run_in_background() {
    guard_.emplace(ioc_.get_executor());
    ioc_.restart();
    runner_ = std::thread([this] { ioc_.run(); });
  }
  std::vector<bool> finish() {
    guard_.reset();
    runner_.join();
    std::vector<bool> out;
    for (auto& f : futures_) out.push_back(f.get());
    return out;
  }
  template <class P>
  bool wait_until(P done) {
    for (int i = 0; i < 4000 && !done(); ++i) std::this_thread::sleep_for(1ms);
    return done();
  }
  std::optional<net::executor_work_guard<net::io_context::executor_type>> guard_;
  std::thread runner_;
  std::vector<std::future<bool>> futures_;
};

// Each connection keeps 256 KiB of pages (src/store/sqlite_conn.cpp): SQLite's default 2 MiB a
// connection counted in the service's RSS for no measurable gain.
TEST(sqlite_connection, keeps_a_small_page_cache) {
  const auto path =
      (std::filesystem::temp_directory_path() / ("fav_cache_size_" + fav::util::uuid_v4() + ".db")).string();
  {
    store::sqlite::connection c(path);
    store::sqlite::query q(c, "PRAGMA cache_size");
    ASSERT_TRUE(q.step());
    EXPECT_EQ(q.i64(0), -256) << "KiB, as a negative cache_size means";
  }
  for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path + suffix);
}

// ... but the one writer keeps SQLite's default 2 MiB: it re-read its evicted pages otherwise
// (sqlite_conn.cpp).
TEST_F(sqlite_backend, the_writer_keeps_a_larger_page_cache) {
  store::sqlite::writer w(path_, 10);
  const std::int64_t kib = run(w.write<std::int64_t>([](store::sqlite::connection& c) {
    store::sqlite::query q(c, "PRAGMA cache_size");
    return q.step() ? q.i64(0) : 0;
  }));
  EXPECT_EQ(kib, -2048) << "KiB, as a negative cache_size means";
  w.stop();
}

// The single writer (README, "Layout": src/store/): "it takes everything queued, runs each in its own savepoint inside
// one transaction, commits once [...] A write that fails rolls back only its savepoint."
TEST_F(sqlite_backend, queued_writes_commit_as_one_batch_and_a_failure_rolls_back_only_itself) {
  const core::customer a = add_customer("Alice", "alice@example.com", t0);
  open_sign_in(make_sign_in("taken", a.id, t0, second));
  // Another connection holds the write lock, so the writer's first batch waits in BEGIN and
  // every later write queues behind it.
  sqlite3* other = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &other), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(other, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);

  const auto before = store::sqlite_write_stats(*st_);
  run_in_background();
  start(added(st_->insert_favorite(cid(a.id), 1, t0)));  // the first batch, alone: it waits in BEGIN
  EXPECT_TRUE(wait_until([&] { return st_->usage().in_use == 1; }));
  for (int i = 0; i < 8; ++i) start(added(st_->insert_favorite(cid(a.id), 100 + i, t0 + i)));
  start(try_start_sign_in(*st_, make_sign_in("taken", a.id, t0 + 1, 2 * second)));        // the primary key refuses it
  for (int i = 0; i < 5; ++i) start(added(st_->insert_favorite(cid(a.id), 42, t0 + i)));  // one winner
  start(removed(st_->delete_favorite(cid(a.id), 100)));  // sees the insert earlier in its batch
  const int queued_behind = static_cast<int>(futures_.size()) - 1;
  // Bounded well within the writer's busy timeout (5 s).
  EXPECT_TRUE(wait_until([&] { return st_->usage().waiting == queued_behind; }))
      << "waiting " << st_->usage().waiting << ", in use " << st_->usage().in_use;
  EXPECT_EQ(sqlite3_exec(other, "COMMIT", nullptr, nullptr, nullptr), SQLITE_OK);
  const auto results = finish();
  sqlite3_close(other);
  const auto after = store::sqlite_write_stats(*st_);

  EXPECT_EQ(after.commits - before.commits, 2u);  // the lone first write, then all the rest
  EXPECT_EQ(after.writes - before.writes, static_cast<std::uint64_t>(queued_behind));  // all but the refused sign-in
  for (int i = 0; i < 9; ++i) EXPECT_TRUE(results[static_cast<std::size_t>(i)]) << i;
  EXPECT_FALSE(results[9]);
  EXPECT_EQ(std::count(results.begin() + 10, results.begin() + 15, true), 1);
  EXPECT_TRUE(results[15]);
  // 1, 101..107 and 42 are there; 100 was deleted; the refused sign-in left the row it hit as it was.
  EXPECT_EQ(run(st_->list_favorites(cid(a.id), {1, 50})).total, 9);
  EXPECT_FALSE(run(st_->get_favorite(cid(a.id), 100)));
  EXPECT_EQ(sign_in_rows(), 1);
  EXPECT_EQ(refresh("taken", 0, t0 + 2), rotate_result::rotated);
  // And it is on disk for a store opened afterwards.
  st_.reset();
  st_ = make_store();
  EXPECT_EQ(run(st_->list_favorites(cid(a.id), {1, 50})).total, 9);
}

// The single writer: "one fsync per batch": 200 writes submitted at once need far fewer commits than
// writes (without group commit they would take 200).
TEST_F(sqlite_backend, many_concurrent_writers_share_few_commits) {
  const core::customer a = add_customer("Alice", "alice@example.com", t0);
  const auto before = store::sqlite_write_stats(*st_);
  std::vector<net::awaitable<bool>> writes;
  for (int i = 0; i < 200; ++i) writes.push_back(added(st_->insert_favorite(cid(a.id), 1000 + i, t0 + i)));
  const auto results = run_all(std::move(writes));
  const auto after = store::sqlite_write_stats(*st_);
  EXPECT_EQ(std::count(results.begin(), results.end(), true), 200);
  EXPECT_EQ(after.writes - before.writes, 200u);
  EXPECT_GE(after.commits - before.commits, 1u);
  EXPECT_LE(after.commits - before.commits, 50u);
  EXPECT_EQ(run(st_->list_favorites(cid(a.id), {1, 1})).total, 200);
}

// Contract §5: "a write that answered 503 is never applied later": a write whose deadline
// passed while it was queued is refused by the writer, not run.
TEST_F(sqlite_backend, a_write_past_its_deadline_is_not_applied) {
  const core::customer a = add_customer("Alice", "alice@example.com", t0);
  store::sqlite::writer w(path_, 10);
  auto insert = [&](std::int64_t product, store::sqlite::writer::clock::time_point deadline) {
    return w.write<int>(
        [&a, product](store::sqlite::connection& c) {
          store::sqlite::query(c, "INSERT INTO customer_favorite_products VALUES (?1, ?2, ?3)")
              .bind(1, a.id)
              .bind(2, product)
              .bind_time(3, t0)
              .run();
          return c.changes();
        },
        deadline);
  };
  const auto now = store::sqlite::writer::clock::now();
  EXPECT_THROW(run(insert(7, now - 1ms)), store::unavailable);
  EXPECT_EQ(run(insert(8, now + 60s)), 1);
  w.stop();
  EXPECT_FALSE(run(st_->get_favorite(cid(a.id), 7)));
  EXPECT_TRUE(run(st_->get_favorite(cid(a.id), 8)));
}

}  // namespace
