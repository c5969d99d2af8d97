// task_group, the one drain idiom: awaited empty without polling, stop() wakes a task waiting in
// pause() at once but leaves other waits (a request, a refresh) to finish, a terminal emission
// ends them, and an exception reaches the group's handler. Every wait on the group is bounded
// (emptied()), so a broken group fails the test instead of hanging it; nothing sleeps.
#include <gtest/gtest.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/concurrent_channel.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <stdexcept>

#include "util/deadline.hpp"
#include "util/task_group.hpp"

namespace net = boost::asio;
using namespace std::chrono_literals;
using fav::util::task_group;
using fav::util::with_timeout;
using channel = net::experimental::concurrent_channel<void(boost::system::error_code)>;

namespace {

// Runs `f` on a fresh io_context until everything on it is done.
template <class F>
void run(F f) {
  net::io_context io;
  bool done = false;
  net::co_spawn(
      io,
      [&]() -> net::awaitable<void> {
        co_await f(io);
        done = true;
      },
      net::detached);
  io.run();
  ASSERT_TRUE(done);
}

// Lets every handler already queued on `ex` run first (a strand runs them in order).
template <class Executor>
net::awaitable<void> after_queued(Executor ex) {
  co_await net::post(ex, net::use_awaitable);
}

// Awaits `g` empty within `bound`; past it ends its tasks (a terminal emission), so a broken
// group fails the test instead of hanging it.
net::awaitable<bool> emptied(task_group& g, std::chrono::steady_clock::duration bound) {
  auto wait = g.async_wait(net::use_awaitable);  // named: CONTRIBUTING.md, "Compiler notes"
  if (co_await with_timeout(std::move(wait), bound)) co_return true;
  g.emit(net::cancellation_type::terminal);
  co_await g.async_wait(net::use_awaitable);
  co_return false;
}

// Waits for one message on `ch`; `got` receives how the wait ended.
net::awaitable<void> receive(channel& ch, boost::system::error_code& got, bool& ended) {
  auto [ec] = co_await ch.async_receive(net::as_tuple(net::use_awaitable));
  got = ec;
  ended = true;
}

}  // namespace

TEST(task_group, an_empty_group_is_awaited_at_once) {
  run([](net::io_context& io) -> net::awaitable<void> {
    task_group g(io.get_executor());
    EXPECT_EQ(g.active(), 0u);
    EXPECT_TRUE(co_await emptied(g, 5s));
  });
}

TEST(task_group, the_wait_ends_when_the_last_task_ends) {
  run([](net::io_context& io) -> net::awaitable<void> {
    task_group g(io.get_executor());
    channel a(io, 1), b(io, 1);
    boost::system::error_code ea, eb;
    bool a_ended = false, b_ended = false;
    g.spawn(net::make_strand(io), receive(a, ea, a_ended));
    g.spawn(net::make_strand(io), receive(b, eb, b_ended));
    EXPECT_EQ(g.active(), 2u);
    // While both run, the wait does not end (bounded: the deadline answers false).
    EXPECT_FALSE(co_await with_timeout(g.async_wait(net::use_awaitable), 0ms));
    a.try_send(boost::system::error_code{});
    b.try_send(boost::system::error_code{});
    EXPECT_TRUE(co_await emptied(g, 5s));
    EXPECT_TRUE(a_ended && b_ended);
    EXPECT_FALSE(ea);
    EXPECT_FALSE(eb);
    EXPECT_EQ(g.active(), 0u);
  });
}

TEST(task_group, stop_wakes_a_task_waiting_in_pause) {
  run([](net::io_context& io) -> net::awaitable<void> {
    task_group g(io.get_executor());
    int rounds = 0;
    auto strand = net::make_strand(io);
    g.spawn(strand, [](task_group& g, int& rounds) -> net::awaitable<void> {
      while (co_await g.pause(1h)) ++rounds;  // an hour: only stop() can end this in time
    }(g, rounds));
    co_await after_queued(strand);  // the task is in its pause now
    EXPECT_FALSE(g.stopping());
    g.stop();
    EXPECT_TRUE(g.stopping());
    EXPECT_TRUE(co_await emptied(g, 5s));
    EXPECT_EQ(rounds, 0);
  });
}

TEST(task_group, a_task_that_pauses_after_stop_does_not_wait) {
  run([](net::io_context& io) -> net::awaitable<void> {
    task_group g(io.get_executor());
    channel gate(io, 1);
    bool paused = true;
    auto strand = net::make_strand(io);
    // The task is busy elsewhere (waiting at `gate`) when stop() comes, and pauses only after.
    g.spawn(strand, [](task_group& g, channel& gate, bool& paused) -> net::awaitable<void> {
      co_await gate.async_receive(net::as_tuple(net::use_awaitable));
      paused = co_await g.pause(1h);
    }(g, gate, paused));
    co_await after_queued(strand);
    g.stop();
    co_await after_queued(strand);  // the stop's cancellation has reached the task by now
    gate.try_send(boost::system::error_code{});
    EXPECT_TRUE(co_await emptied(g, 5s));
    EXPECT_FALSE(paused);
  });
}

TEST(task_group, stop_leaves_other_waits_to_finish) {
  run([](net::io_context& io) -> net::awaitable<void> {
    task_group g(io.get_executor());
    channel ch(io, 1);
    boost::system::error_code got = net::error::would_block;
    bool ended = false;
    auto strand = net::make_strand(io);
    g.spawn(strand, receive(ch, got, ended));
    co_await after_queued(strand);
    g.stop();
    co_await after_queued(strand);  // the stop's cancellation has reached the task by now
    EXPECT_FALSE(ended) << "a request or refresh under way must be finished, not cut";
    ch.try_send(boost::system::error_code{});
    EXPECT_TRUE(co_await emptied(g, 5s));
    EXPECT_TRUE(ended);
    EXPECT_FALSE(got) << got.message();
  });
}

TEST(task_group, a_terminal_emission_ends_every_wait) {
  run([](net::io_context& io) -> net::awaitable<void> {
    task_group g(io.get_executor());
    channel ch(io, 1);
    boost::system::error_code got;
    bool ended = false;
    auto strand = net::make_strand(io);
    g.spawn(strand, receive(ch, got, ended));
    co_await after_queued(strand);
    g.emit(net::cancellation_type::terminal);
    EXPECT_TRUE(co_await emptied(g, 5s));
    EXPECT_TRUE(ended);
    EXPECT_TRUE(got);  // cancelled
  });
}

TEST(task_group, an_exception_reaches_the_handler_and_the_task_leaves) {
  run([](net::io_context& io) -> net::awaitable<void> {
    task_group g(io.get_executor());
    std::string what;
    g.spawn(
        net::make_strand(io),
        []() -> net::awaitable<void> {
          throw std::runtime_error("boom");
          co_return;
        }(),
        [&](std::exception_ptr ep) {
          try {
            std::rethrow_exception(ep);
          } catch (const std::exception& e) {
            what = e.what();
          }
        });
    EXPECT_TRUE(co_await emptied(g, 5s));
    EXPECT_EQ(what, "boom");
  });
}

// A task's strand is built on the io_context's own executor when it is given one (a copy is then
// a plain value, not a shared heap object: see new_strand), and still serialises when it is not.
TEST(task_group, new_strand_is_the_io_contexts_own_strand_when_it_can_be) {
  net::io_context io;
  const net::any_io_executor ex = io.get_executor();
  const net::any_io_executor s = fav::util::new_strand(ex);
  EXPECT_NE(s.target<net::strand<net::io_context::executor_type>>(), nullptr);
  const net::any_io_executor wrapped = net::make_strand(ex);
  EXPECT_NE(fav::util::new_strand(wrapped).target<net::strand<net::any_io_executor>>(), nullptr);
}
