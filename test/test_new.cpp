// test_new.cpp — C++ operator new and delete on corona, linked (static and
// shared): every form reaches corona (corona_usable_size knows the
// pointer), honours its alignment and keeps its contents; a failed new
// calls the new-handler, retries, and throws std::bad_alloc (or returns
// null for the nothrow forms), although corona's operators are built
// without exceptions and hand failures to the C++ runtime's own.
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <new>

#include "corona.h"

static int failures;
#define CHECK(cond, ...)                                   \
  do {                                                     \
    if (!(cond)) {                                         \
      std::printf("FAIL %s:%d: %s -- ", __FILE__, __LINE__, #cond); \
      std::printf(__VA_ARGS__);                            \
      std::printf("\n");                                   \
      failures++;                                          \
    }                                                      \
  } while (0)

static const std::size_t huge = std::size_t(1) << 62; // beyond any address space

struct alignas(256) Wide {
  unsigned char bytes[300];
};

static void fill(void *p, std::size_t n, unsigned seed) {
  unsigned char *c = static_cast<unsigned char *>(p);
  for (std::size_t i = 0; i < n; i++) c[i] = static_cast<unsigned char>(seed + i * 7);
}

static bool intact(const void *p, std::size_t n, unsigned seed) {
  const unsigned char *c = static_cast<const unsigned char *>(p);
  for (std::size_t i = 0; i < n; i++)
    if (c[i] != static_cast<unsigned char>(seed + i * 7)) return false;
  return true;
}

static void test_forms() {
  const std::size_t sizes[] = {1, 24, 200, 5000, 70000, 3 << 20};
  void *p[6], *a[6], *nt[6], *al[6];
  for (unsigned i = 0; i < 6; i++) {
    std::size_t n = sizes[i];
    p[i] = ::operator new(n);
    a[i] = ::operator new[](n);
    nt[i] = ::operator new(n, std::nothrow);
    al[i] = ::operator new(n, std::align_val_t(4096));
    void *all[4] = {p[i], a[i], nt[i], al[i]};
    for (unsigned k = 0; k < 4; k++) {
      CHECK(all[k] != nullptr, "form %u of %zu gave null", k, n);
      CHECK(corona_usable_size(all[k]) >= n, "form %u of %zu: %p is not corona's (usable %zu)", k, n, all[k],
            corona_usable_size(all[k]));
      fill(all[k], n, i * 4 + k);
    }
    CHECK(reinterpret_cast<std::uintptr_t>(al[i]) % 4096 == 0, "aligned new(%zu, 4096) gave %p", n, al[i]);
  }
  for (unsigned i = 0; i < 6; i++) {
    std::size_t n = sizes[i];
    CHECK(intact(p[i], n, i * 4 + 0) && intact(a[i], n, i * 4 + 1) && intact(nt[i], n, i * 4 + 2) &&
              intact(al[i], n, i * 4 + 3),
          "contents of the objects of %zu bytes changed", n);
    ::operator delete(p[i], n);
    ::operator delete[](a[i]);
    ::operator delete(nt[i], std::nothrow);
    ::operator delete(al[i], std::align_val_t(4096));
  }
  // Over-aligned types through new-expressions.
  Wide *w = new Wide[5];
  CHECK(reinterpret_cast<std::uintptr_t>(w) % 256 == 0, "new Wide[5] gave %p", static_cast<void *>(w));
  CHECK(corona_usable_size(w) >= 5 * sizeof(Wide), "new Wide[5] is not corona's");
  for (int i = 0; i < 5; i++) fill(w[i].bytes, sizeof w[i].bytes, 50 + i);
  for (int i = 0; i < 5; i++) CHECK(intact(w[i].bytes, sizeof w[i].bytes, 50 + i), "Wide[%d] changed", i);
  delete[] w;
  Wide *one = new Wide;
  CHECK(reinterpret_cast<std::uintptr_t>(one) % 256 == 0, "new Wide gave %p", static_cast<void *>(one));
  delete one;
}

static int handler_calls;
static void handler() {
  if (++handler_calls == 3) std::set_new_handler(nullptr); // give up: the next failure throws
}

template <typename F> static void expect_bad_alloc(const char *what, F f) {
  handler_calls = 0;
  std::set_new_handler(handler);
  bool thrown = false;
  try {
    void *p = f();
    CHECK(false, "%s returned %p", what, p);
  } catch (const std::bad_alloc &) {
    thrown = true;
  }
  CHECK(thrown, "%s did not throw std::bad_alloc", what);
  CHECK(handler_calls == 3, "%s called the new-handler %d times, not 3", what, handler_calls);
  std::set_new_handler(nullptr);
}

template <typename F> static void expect_null(const char *what, F f, int calls) {
  handler_calls = 0;
  if (calls) std::set_new_handler(handler);
  void *p = f();
  CHECK(p == nullptr, "%s returned %p", what, p);
  CHECK(handler_calls == calls, "%s called the new-handler %d times, not %d", what, handler_calls, calls);
  std::set_new_handler(nullptr);
}

static void test_failure() {
  expect_bad_alloc("new(huge)", [] { return ::operator new(huge); });
  expect_bad_alloc("new[](huge)", [] { return ::operator new[](huge); });
  expect_bad_alloc("new(huge, align 64)", [] { return ::operator new(huge, std::align_val_t(64)); });
  expect_bad_alloc("new[](huge, align 8192)", [] { return ::operator new[](huge, std::align_val_t(8192)); });
  // Without a handler: straight to bad_alloc.
  bool thrown = false;
  try {
    (void)::operator new(huge);
  } catch (const std::bad_alloc &) {
    thrown = true;
  }
  CHECK(thrown, "new(huge) without a handler did not throw");
  // nothrow: null, after the handler's retries when there is one.
  expect_null("new(huge, nothrow)", [] { return ::operator new(huge, std::nothrow); }, 0);
  expect_null("new(huge, nothrow) with a handler", [] { return ::operator new(huge, std::nothrow); }, 3);
  expect_null("new[](huge, nothrow)", [] { return ::operator new[](huge, std::nothrow); }, 3);
  expect_null("new(huge, align 128, nothrow)",
              [] { return ::operator new(huge, std::align_val_t(128), std::nothrow); }, 3);
  // The heap is fine afterwards.
  void *p = ::operator new(1000);
  fill(p, 1000, 9);
  CHECK(intact(p, 1000, 9) && corona_usable_size(p) >= 1000, "new(1000) after the failures");
  ::operator delete(p);
}

int main() {
  test_forms();
  test_failure();
  std::printf("test_new: %s\n", failures ? "FAILED" : "OK");
  return failures ? 1 : 0;
}
