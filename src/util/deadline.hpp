// The one deadline idiom (CONTRIBUTING.md, "Deadlines and shutdown"): an awaited operation
// raced against a timer. Whichever finishes first wins; the other is cancelled (Asio's
// per-operation cancellation, terminal), so nothing is left waiting past the deadline and no
// caller writes its own timer handshake.
//
//   if (auto rows = co_await util::with_deadline(conn.query(sql), deadline)) use(*rows);
//   else answer_timeout();
//
// The operation must react to cancellation: every Asio wait does; a wait written by hand must
// pass its cancellation slot on (boost::asio::bind_cancellation_slot or async_initiate).
// The race runs on a strand: the caller's own when it runs on one (a session, a task of a
// task_group), else a new one, so the two sides and the cancellation one sends the other never
// run at once on two threads of a multi-threaded io_context.
#pragma once
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/system_error.hpp>
#include <chrono>
#include <exception>
#include <optional>
#include <type_traits>
#include <utility>
#include <variant>

namespace fav::util {

using steady_time = std::chrono::steady_clock::time_point;

// A new strand on `ex`. On an io_context's own executor when `ex` wraps one: a
// strand<any_io_executor> is too big for any_io_executor's small buffer, so every copy shares one
// heap object released by an atomic count and a fence, which ThreadSanitizer cannot follow (it
// reported a race when a worker thread dropped a copy and an I/O thread the last one); the
// io_context's strand is copied by value (a shared_ptr inside).
inline boost::asio::any_io_executor new_strand(const boost::asio::any_io_executor& ex) {
  if (const auto* io = ex.target<boost::asio::io_context::executor_type>()) return boost::asio::make_strand(*io);
  return boost::asio::make_strand(ex);
}

// Whether what runs on `ex` is already serialised (a strand).
inline bool is_strand(const boost::asio::any_io_executor& ex) {
  return ex.target<boost::asio::strand<boost::asio::io_context::executor_type>>() != nullptr ||
         ex.target<boost::asio::strand<boost::asio::any_io_executor>>() != nullptr;
}

namespace detail {
// `op` as an operation that never throws: its failure comes back as a value, so the race below
// ends at once (Asio's `||` waits for the first *successful* operation and would otherwise let a
// failed one wait for the timer).
template <class T>
struct outcome {
  std::conditional_t<std::is_void_v<T>, bool, std::optional<T>> value{};
  std::exception_ptr error;
};

template <class T>
boost::asio::awaitable<outcome<T>> caught(boost::asio::awaitable<T> op) {
  outcome<T> out;
  try {
    if constexpr (std::is_void_v<T>) {
      co_await std::move(op);
      out.value = true;
    } else {
      out.value.emplace(co_await std::move(op));
    }
  } catch (...) {
    out.error = std::current_exception();
  }
  co_return out;
}
}  // namespace detail

// `op`'s result, or nullopt when `deadline` came first (`op` then cancelled). An exception
// thrown by `op` before the deadline propagates at once. For a void operation: true when it
// finished.
template <class T>
boost::asio::awaitable<std::conditional_t<std::is_void_v<T>, bool, std::optional<T>>> with_deadline(
    boost::asio::awaitable<T> op, steady_time deadline) {
  using namespace boost::asio::experimental::awaitable_operators;
  const auto ex = co_await boost::asio::this_coro::executor;
  if (!is_strand(ex))
    co_return co_await boost::asio::co_spawn(new_strand(ex), with_deadline(std::move(op), deadline),
                                             boost::asio::use_awaitable);
  boost::asio::steady_timer timer(ex, deadline);
  // The timer's wait answers its error as a value (as_tuple): it is cancelled whenever `op` wins,
  // that is on nearly every call, and an exception thrown and unwound each time cost 5-7 % of
  // the CPU under load (perf, libgcc_s's unwinder). A cancellation that reached the timer from
  // the caller, not from `op` winning, is rethrown as before.
  auto first =
      co_await (detail::caught(std::move(op)) || timer.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable)));
  if (first.index() == 1) {
    if (const auto [ec] = std::get<1>(first); ec) throw boost::system::system_error(ec);
    co_return std::conditional_t<std::is_void_v<T>, bool, std::optional<T>>{};
  }
  auto& done = std::get<0>(first);
  if (done.error) std::rethrow_exception(done.error);
  co_return std::move(done.value);
}

// The same with a duration from now.
template <class T, class Rep, class Period>
auto with_timeout(boost::asio::awaitable<T> op, std::chrono::duration<Rep, Period> d) {
  return with_deadline(std::move(op), std::chrono::steady_clock::now() +
                                          std::chrono::duration_cast<std::chrono::steady_clock::duration>(d));
}

}  // namespace fav::util
