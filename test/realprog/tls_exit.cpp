// tls_exit.cpp — allocation while threads and the process are being torn
// down, for the real-program tests.
//
// Eight threads each set up:
//   - a C++ thread_local object whose destructor allocates (std::string,
//     std::vector, malloc), checks and frees, and hands one object over to
//     the main thread;
//   - pthread key values whose destructors allocate and free.  The keys are
//     created after corona has started, so their destructors run after
//     corona's own thread-exit cleanup (keys run in creation order).  One
//     destructor sets its key again, three rounds in a row, allocating each
//     time (PTHREAD_DESTRUCTOR_ITERATIONS allows 4); the object of its last
//     round outlives the thread and is checked and freed by the main thread
//     once every thread has been joined.
// Then the main thread calls exit(): its own thread_local destructor, a
// static object's destructor and two atexit handlers allocate, check and
// free (one of them makes a std::map of 2000 strings and a 1 MB block).
// Any failed check prints a line to stderr and makes the exit status 2
// (from inside exit, via _exit), or 1 before exit.  stdout is deterministic.
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pthread.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "realprog.h"

namespace {

constexpr int kThreads = 8;
std::atomic<int> g_failures{0};

void failf(const char *what, long a, long b) {
  g_failures.fetch_add(1);
  std::fprintf(stderr, "tls_exit: FAIL: %s (%ld, %ld)\n", what, a, b);
}

unsigned char pattern(uintptr_t base, size_t i) { return static_cast<unsigned char>((base * 31 + i * 7 + (i >> 8)) & 0xff); }

// A malloc'd block with a recognisable pattern; verify() checks it.
struct Block {
  unsigned char *p;
  size_t n;
  uintptr_t tag;
};

Block make_block(size_t n, uintptr_t tag) {
  Block b{static_cast<unsigned char *>(std::malloc(n)), n, tag};
  if (b.p == nullptr) {
    failf("malloc failed", static_cast<long>(n), 0);
    return b;
  }
  for (size_t i = 0; i < n; i++) b.p[i] = pattern(tag, i);
  return b;
}

bool verify(const Block &b, const char *where) {
  if (b.p == nullptr) return false;
  for (size_t i = 0; i < b.n; i++)
    if (b.p[i] != pattern(b.tag, i)) {
      std::fprintf(stderr, "tls_exit: FAIL: %s: byte %zu of a %zu-byte block changed\n", where, i, b.n);
      g_failures.fetch_add(1);
      return false;
    }
  return true;
}

// Heavy-ish churn: strings, vectors, malloc of several sizes; returns a
// checksum that depends on contents only.
uint64_t churn(uintptr_t seed, int rounds) {
  uint64_t h = seed;
  for (int r = 0; r < rounds; r++) {
    std::vector<std::string> v;
    for (int i = 0; i < 50; i++) v.emplace_back(static_cast<size_t>((i * 37 + r) % 300) + 1, static_cast<char>('a' + (i + r) % 26));
    std::string joined;
    for (const auto &s : v) joined += s;
    for (unsigned char c : joined) h = h * 1099511628211ull + c;
    Block b = make_block(static_cast<size_t>(16 + (r * 4099) % 70000), seed + static_cast<uintptr_t>(r));
    if (verify(b, "churn block")) h += b.n;
    std::free(b.p);
  }
  return h;
}

// Objects handed from dying threads to the main thread.
std::mutex g_handed_mutex;
std::vector<Block> g_handed;
std::atomic<uint64_t> g_tls_sum{0};
std::atomic<int> g_tls_dtors{0};
std::atomic<int> g_key_round_count{0};

void hand_over(Block b) {
  std::lock_guard<std::mutex> lk(g_handed_mutex);
  g_handed.push_back(b);
}

struct ThreadLocalThing {
  int id = -1;
  std::string name;
  Block held{nullptr, 0, 0};
  ~ThreadLocalThing() {
    if (id < 0) return;
    if (!verify(held, "thread_local's block")) return;
    std::free(held.p);
    g_tls_sum.fetch_add(churn(static_cast<uintptr_t>(id) * 1000, 20));
    hand_over(make_block(1000 + static_cast<size_t>(id) * 100, 5000 + static_cast<uintptr_t>(id)));
    g_tls_dtors.fetch_add(1);
  }
};

thread_local ThreadLocalThing t_thing;

pthread_key_t g_key_once;   // destructor allocates and frees
pthread_key_t g_key_rounds; // destructor sets the key again for 3 rounds

struct KeyState {
  int id;
  int round;
  Block b;
};

void key_once_dtor(void *v) {
  Block *b = static_cast<Block *>(v);
  if (!verify(*b, "key value's block")) return;
  g_tls_sum.fetch_add(churn(b->tag, 10));
  std::free(b->p);
  delete b;
}

void key_rounds_dtor(void *v) {
  KeyState *s = static_cast<KeyState *>(v);
  verify(s->b, "key round block");
  std::free(s->b.p);
  g_key_round_count.fetch_add(1);
  if (s->round < 3) {
    // allocate anew and set the key again: destructors run once more
    auto *next = new KeyState{s->id, s->round + 1, make_block(200 + static_cast<size_t>(s->round) * 9000, 900 + static_cast<uintptr_t>(s->id))};
    g_tls_sum.fetch_add(churn(static_cast<uintptr_t>(s->id), 3));
    pthread_setspecific(g_key_rounds, next);
  } else {
    // the last round: this object outlives the thread
    hand_over(make_block(40000, 7000 + static_cast<uintptr_t>(s->id)));
  }
  delete s;
}

void thread_main(int id) {
  t_thing.id = id;
  t_thing.name = std::string(100 + static_cast<size_t>(id), 'n');
  t_thing.held = make_block(5000 + static_cast<size_t>(id), 100 + static_cast<uintptr_t>(id));
  pthread_setspecific(g_key_once, new Block(make_block(300 + static_cast<size_t>(id), 300 + static_cast<uintptr_t>(id))));
  pthread_setspecific(g_key_rounds, new KeyState{id, 0, make_block(64, 900 + static_cast<uintptr_t>(id))});
  g_tls_sum.fetch_add(churn(static_cast<uintptr_t>(id), 30));
}

// ---- process exit ----------------------------------------------------------

void exit_fail(const char *what) {
  std::fprintf(stderr, "tls_exit: FAIL during exit: %s\n", what);
  std::fflush(stderr);
  _exit(2);
}

void atexit_map() {
  std::map<std::string, std::vector<int>> m;
  for (int i = 0; i < 2000; i++) m["key" + std::to_string(i * 7919 % 10007)] = std::vector<int>(static_cast<size_t>(i % 30), i);
  size_t total = 0;
  for (const auto &kv : m) total += kv.second.size() + kv.first.size();
  Block big = make_block(1 << 20, 4242);
  if (!verify(big, "atexit 1 MB block")) exit_fail("atexit handler's 1 MB block");
  std::free(big.p);
  void *pm = nullptr;
  if (posix_memalign(&pm, 4096, 10000) != 0 || (reinterpret_cast<uintptr_t>(pm) & 4095) != 0) exit_fail("posix_memalign in atexit");
  std::free(pm);
  std::printf("atexit: map of %zu keys, %zu elements+chars\n", m.size(), total);
  std::fflush(stdout);
}

void atexit_churn() {
  uint64_t h = churn(77, 40);
  char *s = strdup("allocated by strdup inside an atexit handler");
  if (s == nullptr || std::strcmp(s, "allocated by strdup inside an atexit handler") != 0) exit_fail("strdup in atexit");
  std::free(s);
  std::printf("atexit: churn %016llx\n", static_cast<unsigned long long>(h));
  std::fflush(stdout);
}

struct StaticThing {
  ~StaticThing() {
    std::vector<std::string> v(500, std::string(70, 's'));
    Block b = make_block(20000, 31);
    if (!verify(b, "static destructor's block")) exit_fail("static destructor");
    std::free(b.p);
    std::printf("static destructor: %zu strings\n", v.size());
    std::fflush(stdout);
  }
} g_static_thing;

struct MainThreadLocal {
  bool armed = false;
  ~MainThreadLocal() {
    if (!armed) return;
    std::string s(30000, 'm');
    Block b = make_block(3000, 55);
    if (!verify(b, "main thread_local's block")) exit_fail("main thread_local destructor");
    std::free(b.p);
    std::printf("main thread_local destructor: %zu\n", s.size());
    std::fflush(stdout);
  }
};
thread_local MainThreadLocal t_main;

}  // namespace

int main() {
  if (rp_expect_corona()) {
    void *p = std::malloc(77);
    if (!rp_is_corona("tls_exit", "malloc(77)", p, 77)) failf("malloc is not corona's", 0, 0);
    std::free(p);
  }
  // corona has started (the malloc above, or its constructor); these keys
  // come after its own.
  if (pthread_key_create(&g_key_once, key_once_dtor) != 0 || pthread_key_create(&g_key_rounds, key_rounds_dtor) != 0) {
    std::fprintf(stderr, "tls_exit: FAIL: pthread_key_create\n");
    return 1;
  }
  std::vector<std::thread> ts;
  for (int i = 0; i < kThreads; i++) ts.emplace_back(thread_main, i);
  for (auto &t : ts) t.join();
  // Twice more, with threads that end while others start.
  for (int wave = 1; wave <= 2; wave++) {
    std::vector<std::thread> w;
    for (int i = 0; i < kThreads; i++) w.emplace_back(thread_main, wave * 100 + i);
    for (auto &t : w) t.join();
  }
  // What the dying threads handed over, made after their TLS was torn down.
  size_t handed_bytes = 0;
  {
    std::lock_guard<std::mutex> lk(g_handed_mutex);
    for (const Block &b : g_handed) {
      if (verify(b, "block handed over by a dying thread")) handed_bytes += b.n;
      std::free(b.p);
    }
  }
  int threads = 3 * kThreads;
  if (g_tls_dtors.load() != threads) failf("thread_local destructors that ran", g_tls_dtors.load(), threads);
  if (g_key_round_count.load() != 4 * threads) failf("key destructor rounds", g_key_round_count.load(), 4 * threads);
  std::printf("threads: %d, thread_local dtors %d, key rounds %d, handed %zu blocks / %zu bytes, sum %016llx\n", threads,
              g_tls_dtors.load(), g_key_round_count.load(), g_handed.size(), handed_bytes,
              static_cast<unsigned long long>(g_tls_sum.load()));
  g_handed.clear();
  g_handed.shrink_to_fit();
  std::fflush(stdout);
  if (g_failures.load() != 0) return 1;
  // Registered last, run first.
  std::atexit(atexit_map);
  std::atexit(atexit_churn);
  t_main.armed = true;
  std::exit(0);
}
