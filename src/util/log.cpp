// JSON-lines logger over spdlog's async stdout sink; see log.hpp.
#include "util/log.hpp"

#include <spdlog/async.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <cstdio>

#include "core/json_text.hpp"
#include "util/time.hpp"

namespace fav::util {
namespace {

std::atomic<int> min_level{static_cast<int>(log_level::info)};
std::shared_ptr<spdlog::logger> logger;

constexpr std::string_view names[] = {"debug", "info", "warning", "error", "critical"};

}  // namespace

void log_init(const std::string& level) {
  for (int i = 0; i < 5; ++i)
    if (names[i] == level) min_level = i;
  if (logger) return;
  // A bounded queue that drops the oldest line rather than blocking a request.
  spdlog::init_thread_pool(log_queue_slots(static_cast<log_level>(min_level.load())), 1);
  logger = spdlog::create_async_nb<spdlog::sinks::stdout_sink_mt>("fav");
  logger->set_pattern("%v");
  logger->set_level(spdlog::level::trace);
  // Lines reach stdout in batches (one write per buffer, at least every second, not one per
  // request); warnings and worse, and log_flush(), go out at once.
  logger->flush_on(spdlog::level::warn);
  spdlog::flush_every(std::chrono::seconds(1));
}

std::size_t log_queue_slots(log_level lowest) {
  // Sized for the level's volume: 16,384 lines (6.4 MiB) are a quarter of a second at 60,000
  // requests/s; above info only the rare warning is written (1,024 lines, 0.4 MiB).
  return lowest <= log_level::info ? 16384 : 1024;
}

bool log_enabled(log_level l) {
  return static_cast<int>(l) >= min_level.load(std::memory_order_relaxed);
}

void log(log_level l, std::string_view message, std::initializer_list<log_field> fields) {
  if (log_enabled(l)) log_always(l, message, fields);
}

void log_always(log_level l, std::string_view message, std::initializer_list<log_field> fields) {
  std::string line;
  line.reserve(256);
  core::json_writer w(line);
  w.begin_object();
  w.key("time").str(format_rfc3339(now_micros()));
  w.key("level").str(names[static_cast<int>(l)]);
  w.key("message").str(message);
  for (auto& f : fields) {
    w.key(f.key);
    if (f.is_num) {
      w.num(f.num);
    } else if (f.is_dbl) {
      w.fixed(f.dbl, 6);
    } else {
      w.str(f.str);
    }
  }
  w.end_object();
  if (logger) {
    if (l >= log_level::warning)
      logger->warn(line);
    else
      logger->info(line);
  } else {
    std::fwrite(line.data(), 1, line.size(), stdout);
    std::fputc('\n', stdout);
    std::fflush(stdout);
  }
}

void log_flush() {
  if (logger) logger->flush();
}

void log_shutdown() {
  if (logger) logger->flush();
  spdlog::shutdown();
  logger.reset();
}

}  // namespace fav::util
