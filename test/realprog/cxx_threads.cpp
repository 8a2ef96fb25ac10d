// cxx_threads.cpp — a C++ program for the real-program tests: standard
// containers across 4 threads, objects made in one thread and destroyed in
// another.
//
// Each of 4 threads builds Items (a std::string, a std::vector, a std::map,
// a std::unordered_map and an over-aligned object, some of them larger than
// corona's small-object limit), records a checksum of each, and hands them
// through a mutex-protected bounded queue to the next thread, which checks
// and destroys them.  The threads also fill and empty a shared std::map
// (each erases entries another thread made), and each leaves a batch of
// Items behind that a fresh thread destroys after all the makers have
// exited.  stdout holds only counts and sums that do not depend on timing,
// so it is the same under any correct allocator.
//
// Built plain (run with and without LD_PRELOAD=libcorona.so) and linked
// with libcorona.a (RP_LINKED_CORONA).  With CRTEST_EXPECT=corona,
// it also checks that malloc, calloc, posix_memalign, aligned_alloc,
// strdup (inside the C library), operator new (plain, array, aligned) and
// std::string storage come from corona, and that malloc_usable_size is
// corona's.  Exit status: 0 when every check passed.
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <malloc.h>
#include <pthread.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "realprog.h"

namespace {

constexpr int kThreads = 4;
constexpr int kItemsPerThread = 4000;
constexpr int kLeftBehind = 400;
constexpr size_t kQueueCap = 256;
constexpr int kSharedKeys = 3000;

std::atomic<int> g_failures{0};

void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void fail(const char *fmt, ...) {
  if (g_failures.fetch_add(1) < 50) {
    va_list ap;
    va_start(ap, fmt);
    std::fputs("cxx_threads: FAIL: ", stderr);
    std::vfprintf(stderr, fmt, ap);
    std::fputc('\n', stderr);
    va_end(ap);
  }
}

struct Rng {
  uint64_t s;
  explicit Rng(uint64_t seed) : s(seed * 0x9E3779B97F4A7C15ull + 1) {}
  uint64_t next() {
    uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  size_t below(size_t n) { return static_cast<size_t>(next() % n); }
};

uint64_t mix(uint64_t h, uint64_t v) {
  h ^= v + 0x9E3779B97F4A7C15ull + (h << 6) + (h >> 2);
  return h * 0xD6E8FEB86659FD93ull;
}

uint64_t hash_str(uint64_t h, const std::string &s) {
  for (unsigned char c : s) h = mix(h, c);
  return mix(h, s.size());
}

struct alignas(64) Aligned {
  uint64_t words[24];
};

struct Item {
  uint64_t id = 0;
  std::string name;
  std::vector<uint64_t> data;
  std::map<int, std::string> attrs;
  std::unordered_map<std::string, uint64_t> index;
  std::unique_ptr<Aligned> al;
  std::unique_ptr<char[]> raw;  // operator new[]
  size_t raw_len = 0;
  uint64_t expect = 0;

  uint64_t checksum() const {
    uint64_t h = mix(0, id);
    h = hash_str(h, name);
    for (uint64_t v : data) h = mix(h, v);
    for (const auto &kv : attrs) h = hash_str(mix(h, static_cast<uint64_t>(kv.first)), kv.second);
    // unordered_map order depends on the library only; sum for safety
    uint64_t u = 0;
    for (const auto &kv : index) u += mix(hash_str(0, kv.first), kv.second);
    h = mix(h, u);
    if (al) {
      if ((reinterpret_cast<uintptr_t>(al.get()) & 63) != 0) fail("Aligned object at %p not 64-aligned", (void *)al.get());
      for (uint64_t w : al->words) h = mix(h, w);
    }
    for (size_t i = 0; i < raw_len; i++) h = mix(h, static_cast<unsigned char>(raw[i]));
    return h;
  }
};

std::unique_ptr<Item> make_item(Rng &r, uint64_t id) {
  auto it = std::make_unique<Item>();
  it->id = id;
  size_t name_len = r.below(16) == 0 ? 8200 + r.below(30000) : 1 + r.below(120);
  it->name.reserve(4);
  for (size_t i = 0; i < name_len; i++) it->name.push_back(static_cast<char>('a' + (id + i * 7) % 26));
  size_t n = r.below(32) == 0 ? 2000 + r.below(20000) : r.below(300);
  for (size_t i = 0; i < n; i++) it->data.push_back(r.next());
  size_t na = r.below(12);
  for (size_t i = 0; i < na; i++) it->attrs[static_cast<int>(r.below(1000))] = std::string(r.below(200), static_cast<char>('A' + i));
  size_t ni = r.below(10);
  for (size_t i = 0; i < ni; i++) it->index["k" + std::to_string(r.next() % 100000)] = r.next();
  if (r.below(4) == 0) {
    it->al.reset(new Aligned);
    for (auto &w : it->al->words) w = r.next();
  }
  it->raw_len = r.below(3) == 0 ? r.below(5000) : 0;
  if (it->raw_len) {
    it->raw.reset(new char[it->raw_len]);
    for (size_t i = 0; i < it->raw_len; i++) it->raw[i] = static_cast<char>(r.next());
  }
  it->expect = it->checksum();
  return it;
}

struct Queue {
  std::mutex m;
  std::condition_variable cv;
  std::deque<std::unique_ptr<Item>> q;
};

Queue g_queues[kThreads];

std::mutex g_shared_mutex;
std::map<std::string, std::vector<int>> g_shared;

std::mutex g_left_mutex;
std::vector<std::unique_ptr<Item>> g_left_behind;

struct Result {
  uint64_t received = 0;
  uint64_t sum = 0;
};
Result g_results[kThreads];

std::atomic<int> g_phase1_done{0};

bool try_pop(int t, std::unique_ptr<Item> &out) {
  std::lock_guard<std::mutex> lk(g_queues[t].m);
  if (g_queues[t].q.empty()) return false;
  out = std::move(g_queues[t].q.front());
  g_queues[t].q.pop_front();
  return true;
}

void consume(int t, std::unique_ptr<Item> item) {
  uint64_t c = item->checksum();
  if (c != item->expect) fail("thread %d: item %llu changed (checksum %llx, expected %llx)", t,
                              static_cast<unsigned long long>(item->id), static_cast<unsigned long long>(c),
                              static_cast<unsigned long long>(item->expect));
  g_results[t].received++;
  g_results[t].sum += c;
  item.reset();  // destroyed here, in a thread other than its maker
}

void worker(int t) {
  Rng r(1000 + t);
  int to = (t + 1) % kThreads;
  std::vector<std::unique_ptr<Item>> keep;
  for (int i = 0; i < kItemsPerThread + kLeftBehind; i++) {
    auto item = make_item(r, static_cast<uint64_t>(t) * 1000000 + i);
    if (i >= kItemsPerThread) {
      keep.push_back(std::move(item));
      continue;
    }
    for (;;) {
      {
        std::unique_lock<std::mutex> lk(g_queues[to].m);
        if (g_queues[to].q.size() < kQueueCap) {
          g_queues[to].q.push_back(std::move(item));
          g_queues[to].cv.notify_one();
          break;
        }
      }
      // The next thread's queue is full: drain our own meanwhile.
      std::unique_ptr<Item> mine;
      if (try_pop(t, mine)) {
        consume(t, std::move(mine));
      } else {
        std::unique_lock<std::mutex> lk(g_queues[t].m);
        g_queues[t].cv.wait_for(lk, std::chrono::milliseconds(1));
      }
    }
    std::unique_ptr<Item> mine;
    if (try_pop(t, mine)) consume(t, std::move(mine));
  }
  // Receive the rest of what the previous thread makes for us.
  while (g_results[t].received < static_cast<uint64_t>(kItemsPerThread)) {
    std::unique_ptr<Item> mine;
    if (try_pop(t, mine)) {
      consume(t, std::move(mine));
    } else {
      std::unique_lock<std::mutex> lk(g_queues[t].m);
      g_queues[t].cv.wait_for(lk, std::chrono::milliseconds(1));
    }
  }
  // The shared map: add our keys, then, once everyone has, erase half of
  // the next thread's keys and grow some of the others' vectors.
  for (int i = 0; i < kSharedKeys; i++) {
    std::string key = "t" + std::to_string(t) + "/" + std::to_string(i) + std::string(static_cast<size_t>(i % 40), '.');
    std::vector<int> v(static_cast<size_t>(i % 64), i);
    std::lock_guard<std::mutex> lk(g_shared_mutex);
    g_shared.emplace(std::move(key), std::move(v));
  }
  g_phase1_done.fetch_add(1);
  while (g_phase1_done.load() < kThreads) std::this_thread::yield();
  for (int i = 0; i < kSharedKeys; i++) {
    std::string key = "t" + std::to_string(to) + "/" + std::to_string(i) + std::string(static_cast<size_t>(i % 40), '.');
    std::lock_guard<std::mutex> lk(g_shared_mutex);
    auto f = g_shared.find(key);
    if (f == g_shared.end()) {
      fail("thread %d: shared key %s missing", t, key.c_str());
      continue;
    }
    if (i % 2 == 0)
      g_shared.erase(f);
    else
      f->second.resize(f->second.size() + 100, t);
  }
  std::lock_guard<std::mutex> lk(g_left_mutex);
  for (auto &p : keep) g_left_behind.push_back(std::move(p));
}

int check_served(const char *where) {
  int ok = 1;
  const char *prog = "cxx_threads";
  void *m = std::malloc(100);
  if (m != nullptr) std::memset(m, 0x5a, 100); /* written before it goes to a const void * (gcc -O0 warns) */
  ok &= rp_is_corona(prog, "malloc(100)", m, 100);
  if (ok && m != nullptr && malloc_usable_size(m) != rp_corona_usable()(m)) {
    std::fprintf(stderr, "cxx_threads: malloc_usable_size is not corona's (%zu vs %zu)\n", malloc_usable_size(m),
                 rp_corona_usable()(m));
    ok = 0;
  }
  std::free(m);
  void *c = std::calloc(100, 100);
  ok &= rp_is_corona(prog, "calloc(100, 100)", c, 10000);
  std::free(c);
  void *pm = nullptr;
  if (posix_memalign(&pm, 256, 3000) != 0) pm = nullptr;
  ok &= rp_is_corona(prog, "posix_memalign(256, 3000)", pm, 3000);
  std::free(pm);
  void *aa = aligned_alloc(4096, 40960);
  ok &= rp_is_corona(prog, "aligned_alloc(4096, 40960)", aa, 40960);
  std::free(aa);
  char *s = strdup("allocated inside the C library");
  ok &= rp_is_corona(prog, "strdup (inside libc)", s, 31);
  std::free(s);
  int *ip = new int(7);
  ok &= rp_is_corona(prog, "operator new", ip, sizeof(int));
  delete ip;
  int *ia = new int[1000];
  ok &= rp_is_corona(prog, "operator new[]", ia, 4000);
  delete[] ia;
  Aligned *al = new Aligned;
  ok &= rp_is_corona(prog, "aligned operator new", al, sizeof(Aligned));
  delete al;
  std::string big(50000, 'x');
  ok &= rp_is_corona(prog, "std::string storage", big.data(), 50000);
  if (!ok) fail("allocations in %s are not served by corona", where);
  return ok;
}

}  // namespace

int main() {
  const bool expect = rp_expect_corona();
  if (expect) check_served("the main thread");
  std::vector<std::thread> ts;
  for (int t = 0; t < kThreads; t++) ts.emplace_back(worker, t);
  if (expect) {
    std::thread th([] { check_served("a new thread"); });
    th.join();
  }
  for (auto &th : ts) th.join();

  uint64_t total = 0;
  for (int t = 0; t < kThreads; t++) {
    std::printf("thread %d: received %llu items, checksum sum %016llx\n", t,
                static_cast<unsigned long long>(g_results[t].received),
                static_cast<unsigned long long>(g_results[t].sum));
    total += g_results[t].sum;
  }
  // Items whose makers have all exited, destroyed by a fresh thread.
  uint64_t left_sum = 0;
  size_t left_n = 0;
  std::thread reaper([&] {
    std::lock_guard<std::mutex> lk(g_left_mutex);
    for (auto &p : g_left_behind) {
      uint64_t c = p->checksum();
      if (c != p->expect) fail("left-behind item %llu changed", static_cast<unsigned long long>(p->id));
      left_sum += c;
      left_n++;
    }
    g_left_behind.clear();
    g_left_behind.shrink_to_fit();
  });
  reaper.join();
  uint64_t shared_h = 0;
  size_t shared_elems = 0;
  for (const auto &kv : g_shared) {
    shared_h = mix(hash_str(shared_h, kv.first), kv.second.size());
    for (int v : kv.second) shared_h = mix(shared_h, static_cast<uint64_t>(v));
    shared_elems += kv.second.size();
  }
  std::printf("left behind: %zu items, checksum sum %016llx\n", left_n, static_cast<unsigned long long>(left_sum));
  std::printf("shared map: %zu keys, %zu elements, hash %016llx\n", g_shared.size(), shared_elems,
              static_cast<unsigned long long>(shared_h));
  std::printf("total %016llx\n", static_cast<unsigned long long>(total + left_sum));
  g_shared.clear();
  int f = g_failures.load();
  if (f != 0) {
    std::fprintf(stderr, "cxx_threads: %d failure(s)\n", f);
    return 1;
  }
  std::fprintf(stderr, "cxx_threads: ok%s\n", expect ? " (allocations checked to be corona's)" : "");
  return 0;
}
