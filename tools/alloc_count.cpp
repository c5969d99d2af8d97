// alloc-count: an LD_PRELOAD shim that counts heap calls of the process it is loaded into, for
// bench/alloc_per_request.sh (allocations per request). It interposes malloc, calloc, realloc,
// free and the aligned allocators (operator new and every library in the process end up here),
// forwards each to glibc's own implementation and counts it. On SIGUSR2, and at exit, it writes
// one line to stderr:
//   ALLOC_COUNT malloc=N calloc=N realloc=N aligned=N free=N
// A measurement takes two such lines around a known number of requests and divides the difference.
// Not for production: the counters are shared atomics, so every allocation pays a contended add.
#include <unistd.h>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>

extern "C" {
void* __libc_malloc(std::size_t);
void* __libc_calloc(std::size_t, std::size_t);
void* __libc_realloc(void*, std::size_t);
void* __libc_memalign(std::size_t, std::size_t);
void __libc_free(void*);
}

namespace {

struct counters {
  std::atomic<std::uint64_t> malloc{0}, calloc{0}, realloc{0}, aligned{0}, free{0};
};
counters counts;  // zero-initialized before any constructor runs: safe from the first malloc

// Appends `v` in decimal; async-signal-safe (no stdio, no allocation).
char* put_number(char* out, std::uint64_t v) {
  char digits[24];
  int n = 0;
  do {
    digits[n++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0);
  while (n > 0) *out++ = digits[--n];
  return out;
}

char* put_text(char* out, const char* s) {
  const std::size_t n = std::strlen(s);
  std::memcpy(out, s, n);
  return out + n;
}

void report() {
  char line[256];
  char* p = put_text(line, "ALLOC_COUNT malloc=");
  p = put_number(p, counts.malloc.load(std::memory_order_relaxed));
  p = put_text(p, " calloc=");
  p = put_number(p, counts.calloc.load(std::memory_order_relaxed));
  p = put_text(p, " realloc=");
  p = put_number(p, counts.realloc.load(std::memory_order_relaxed));
  p = put_text(p, " aligned=");
  p = put_number(p, counts.aligned.load(std::memory_order_relaxed));
  p = put_text(p, " free=");
  p = put_number(p, counts.free.load(std::memory_order_relaxed));
  *p++ = '\n';
  auto ignored = ::write(STDERR_FILENO, line, static_cast<std::size_t>(p - line));
  (void)ignored;
}

void on_signal(int) {
  report();
}

struct installer {
  installer() {
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR2, &sa, nullptr);
  }
  ~installer() { report(); }
} install;

void bump(std::atomic<std::uint64_t>& c) {
  c.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace

extern "C" {

void* malloc(std::size_t n) noexcept {
  bump(counts.malloc);
  return __libc_malloc(n);
}

void* calloc(std::size_t n, std::size_t size) noexcept {
  bump(counts.calloc);
  return __libc_calloc(n, size);
}

void* realloc(void* p, std::size_t n) noexcept {
  bump(counts.realloc);
  return __libc_realloc(p, n);
}

void free(void* p) noexcept {
  if (p) bump(counts.free);
  __libc_free(p);
}

void* memalign(std::size_t align, std::size_t n) noexcept {
  bump(counts.aligned);
  return __libc_memalign(align, n);
}

void* aligned_alloc(std::size_t align, std::size_t n) noexcept {
  bump(counts.aligned);
  return __libc_memalign(align, n);
}

int posix_memalign(void** out, std::size_t align, std::size_t n) noexcept {
  bump(counts.aligned);
  void* p = __libc_memalign(align, n);
  if (!p) return ENOMEM;
  *out = p;
  return 0;
}

}  // extern "C"
