// Structured logs: one JSON object per line on stdout, written by an async spdlog sink so an I/O
// thread never waits on the terminal. Never pass passwords, tokens or hashes here.
#pragma once
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>

namespace fav::util {

enum class log_level { debug = 0, info, warning, error, critical };

struct log_field {
  log_field(std::string_view k, std::string_view v) : key(k), str(v) {}
  log_field(std::string_view k, const char* v) : key(k), str(v) {}
  log_field(std::string_view k, const std::string& v) : key(k), str(v) {}
  log_field(std::string_view k, std::int64_t v) : key(k), num(v), is_num(true) {}
  log_field(std::string_view k, int v) : key(k), num(v), is_num(true) {}
  log_field(std::string_view k, double v) : key(k), dbl(v), is_dbl(true) {}
  std::string_view key;
  std::string_view str;
  std::int64_t num = 0;
  double dbl = 0;
  bool is_num = false;
  bool is_dbl = false;
};

// Sets up the async logger; `level` is one of debug, info, warning, error, critical.
void log_init(const std::string& level);
// Lines the logger's queue holds when `lowest` is the lowest level logged: its slots are allocated
// up front (408 bytes each), so at info and debug (a line per request) 16,384, above them 1,024.
std::size_t log_queue_slots(log_level lowest);
bool log_enabled(log_level l);
void log(log_level l, std::string_view message, std::initializer_list<log_field> fields = {});
// Like log(), whatever LOG_LEVEL says: for the lines scripts wait for ("listening").
void log_always(log_level l, std::string_view message, std::initializer_list<log_field> fields = {});
// Pushes buffered lines out now (e.g. after "listening", which tests and scripts wait for).
void log_flush();
// Flushes pending lines and stops the logger (shutdown, and before exiting on a fatal error).
void log_shutdown();

}  // namespace fav::util
