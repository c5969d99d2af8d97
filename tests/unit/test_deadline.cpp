// with_deadline, the one deadline idiom: the operation's result when it finishes first, nullopt
// (and the operation cancelled) when the deadline comes first, exceptions passed on, void
// operations answered as finished or not. Time here is a timer the test controls, not a sleep.
#include <gtest/gtest.h>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <stdexcept>

#include "util/deadline.hpp"

namespace net = boost::asio;
using namespace std::chrono_literals;
using fav::util::with_deadline;
using fav::util::with_timeout;

namespace {
// Finishes when `t` fires (or throws operation_aborted when cancelled).
net::awaitable<int> value_when(net::steady_timer& t, int v) {
  co_await t.async_wait(net::use_awaitable);
  co_return v;
}

template <class F>
void run(F f) {
  net::io_context io;
  bool done = false;
  net::co_spawn(
      io,
      [&]() -> net::awaitable<void> {
        co_await f();
        done = true;
      },
      net::detached);
  io.run();
  ASSERT_TRUE(done);
}
}  // namespace

TEST(with_deadline, answers_the_operation_when_it_finishes_first) {
  run([]() -> net::awaitable<void> {
    net::steady_timer op(co_await net::this_coro::executor, std::chrono::steady_clock::now());
    auto r = co_await with_deadline(value_when(op, 7), std::chrono::steady_clock::now() + 1h);
    EXPECT_EQ(r, std::optional<int>(7));
  });
}

TEST(with_deadline, answers_nothing_and_cancels_the_operation_when_the_deadline_comes_first) {
  run([]() -> net::awaitable<void> {
    net::steady_timer op(co_await net::this_coro::executor, std::chrono::steady_clock::now() + 1h);
    auto r = co_await with_deadline(value_when(op, 7), std::chrono::steady_clock::now());
    EXPECT_FALSE(r.has_value());
    // The operation was cancelled, not left waiting for its hour: io.run() returns at once.
  });
}

TEST(with_deadline, passes_on_an_exception_thrown_before_the_deadline) {
  run([]() -> net::awaitable<void> {
    auto failing = []() -> net::awaitable<int> {
      throw std::runtime_error("boom");
      co_return 0;
    };
    EXPECT_THROW(co_await with_deadline(failing(), std::chrono::steady_clock::now() + 1h), std::runtime_error);
  });
}

TEST(with_deadline, a_void_operation_says_whether_it_finished) {
  run([]() -> net::awaitable<void> {
    net::steady_timer quick(co_await net::this_coro::executor, std::chrono::steady_clock::now());
    EXPECT_TRUE(co_await with_timeout(quick.async_wait(net::use_awaitable), 1h));
    net::steady_timer slow(co_await net::this_coro::executor, std::chrono::steady_clock::now() + 1h);
    EXPECT_FALSE(co_await with_timeout(slow.async_wait(net::use_awaitable), 0ms));
  });
}

TEST(with_deadline, races_on_a_strand_when_its_caller_runs_on_none) {
  // On a multi-threaded io_context the two sides and the cancellation one sends the other must
  // not run at once on two threads: a caller on the bare executor gets a strand for the race.
  run([]() -> net::awaitable<void> {
    EXPECT_FALSE(fav::util::is_strand(co_await net::this_coro::executor));
    auto where = []() -> net::awaitable<bool> { co_return fav::util::is_strand(co_await net::this_coro::executor); };
    EXPECT_EQ(co_await with_deadline(where(), std::chrono::steady_clock::now() + 1h), std::optional<bool>(true));
  });
}

TEST(with_deadline, a_cancelled_caller_gets_the_cancellation_not_a_deadline) {
  // The caller itself is cancelled (a drain, an outer deadline) before either side finishes: that
  // is an error for the caller to see, not "the deadline passed" (the timer's cancellation is an
  // answer, not an exception, on the common path where the operation wins).
  net::io_context io;
  net::cancellation_signal cancel;
  bool threw = false, answered = false;
  net::steady_timer op(io, std::chrono::steady_clock::now() + 1h);
  net::co_spawn(
      io,
      [&]() -> net::awaitable<void> {
        try {
          (void)co_await with_deadline(value_when(op, 7), std::chrono::steady_clock::now() + 1h);
          answered = true;
        } catch (const boost::system::system_error& e) {
          threw = e.code() == net::error::operation_aborted;
        }
      },
      net::bind_cancellation_slot(cancel.slot(), net::detached));
  net::post(io, [&] { cancel.emit(net::cancellation_type::terminal); });
  io.run();
  EXPECT_TRUE(threw);
  EXPECT_FALSE(answered);
}
