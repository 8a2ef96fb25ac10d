/* test_os.c — white-box test of the real Linux side of the platform contract
 * (src/internal/os.h; os_linux.c and os_linux_map.c), called directly: what
 * the tests on the fake OS (test_coalesce, test_large) take on trust.
 *   facts     page size, huge-page size and address width are plausible;
 *   map       every alignment and offset is met; the memory reads zero and
 *             takes writes; metadata (CR_OS_META) likewise;
 *   huge      CR_OS_HUGE leaves the THP advice on the mapping (VmFlags hg),
 *             where the kernel has THP (else a skip); CR_OS_HUGE_ONLY is
 *             NULL or aligned to the huge-page size;
 *   purge     purged pages read zero, their neighbours keep their contents;
 *   populate  pages brought in keep their contents (written ones) or read
 *             zero (fresh ones); where the kernel takes the hint (5.14 on),
 *             the fresh ones are resident before any touch (mincore);
 *   remap     a shrink stays in place; a growth in place keeps the contents
 *             or leaves everything as it was (NULL); a move onto a target
 *             carries the contents there;
 *   cut       a mapping cut in two, joined and cut again keeps its
 *             contents, and each half is remapped and unmapped alone;
 *   env       cr_os_env finds a variable by "NAME=", lists entries by
 *             prefix, names compare with case;
 *   clock     cr_os_now_ms never goes back and follows a sleep;
 *   hooks     cr_os_thread_exit: the callback runs once at the thread's
 *             exit with the value last stored, not at all after NULL, and
 *             for each slot its own;
 *   write     cr_os_write appends to a file (created if missing), says
 *             false where the file cannot be opened, and writes to
 *             standard error with path NULL. */
#define _GNU_SOURCE
#include "internal/os.h"

#include <pthread.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "procutil.h"
#include "testutil.h"

#define KB ((size_t)1024)
#define MB ((size_t)1 << 20)

static bool power_of_two(size_t v) { return v != 0 && (v & (v - 1)) == 0; }

static void test_facts(void) {
  const cr_os_info_t *os = cr_os_info();
  CHECK(cr_os_info() == os); /* read once, the same ever after */
  size_t page = os->page_size, huge = os->huge_page_size;
  unsigned bits = os->address_bits;
  printf("    page %zu B, huge page %zu B, addresses of %u bits\n", page, huge, bits);
  CHECKF(power_of_two(page) && page >= 4096, "page size %zu", page);
  CHECKF(huge == 0 || (power_of_two(huge) && huge > page), "huge page size %zu", huge);
  CHECKF(bits >= 32 && bits <= 64, "address bits %u", bits);
}

/* Checks [p, p + size) reads zero, then writes and reads a pattern. */
static void check_fresh(void *p, size_t size, const char *what) {
  CHECKF(tu_first_nonzero(p, size) == (size_t)-1, "%s: byte %zu of a fresh mapping is not zero", what,
         tu_first_nonzero(p, size));
  tu_fill(p, size, tu_seed(p, size));
  CHECK_PATTERN(p, size, tu_seed(p, size));
}

static void test_map(void) {
  static const size_t sizes[] = {4 * KB, 64 * KB, 3 * MB + 16 * KB};
  static const size_t aligns[] = {0, 4 * KB, 64 * KB, 2 * MB, 16 * MB};
  static const size_t offsets[] = {0, 16 * KB};
  for (size_t s = 0; s < 3; s++)
    for (size_t a = 0; a < 5; a++)
      for (size_t o = 0; o < 2; o++) {
        size_t size = sizes[s], align = aligns[a], off = align > offsets[o] ? offsets[o] : 0;
        char *p = cr_os_map(size, align, off, 0);
        if (!CHECKF(p != NULL, "map(%zu, %zu, %zu) failed", size, align, off)) continue;
        if (align != 0) CHECKF(((uintptr_t)p + off) % align == 0, "map(%zu, %zu, %zu) = %p", size, align, off, (void *)p);
        check_fresh(p, size, "map");
        cr_os_unmap(p, size);
      }
  char *m = cr_os_map(256 * KB, 0, 0, CR_OS_META);
  if (CHECK(m != NULL)) {
    check_fresh(m, 256 * KB, "metadata");
    cr_os_unmap(m, 256 * KB);
  }
}

static void test_huge(void) {
  const size_t size = 4 * MB;
  char *p = cr_os_map(size, size, 0, CR_OS_HUGE);
  if (CHECK(p != NULL)) {
    check_fresh(p, size, "huge");
    uintptr_t lo, hi;
    char flags[512];
    const char *thp = pu_thp_mode();
    if (!CHECKF(pu_mapping_of(p, &lo, &hi, flags, sizeof flags), "no smaps entry for %p", (void *)p)) {
    } else if (thp[0] == '\0') {
      tu_skip("huge: no THP in this kernel (or no /sys): the advice not checked");
    } else if (!pu_has_flag(flags, "hg") && tu_emulator() != NULL) {
      tu_skip("huge: qemu-user keeps MADV_HUGEPAGE from the kernel (VmFlags: %s): the advice not checked", flags);
    } else {
      CHECKF(pu_has_flag(flags, "hg"), "a CR_OS_HUGE mapping lacks the THP advice (VmFlags: %s)", flags);
    }
    cr_os_unmap(p, size);
  }
  size_t huge = cr_os_info()->huge_page_size;
  if (huge == 0) return;
  char *q = cr_os_map(2 * huge, 4 * huge, 0, CR_OS_HUGE_ONLY);
  printf("    reserved huge pages: %s\n", q != NULL ? "granted" : "none (NULL)");
  if (q != NULL) {
    CHECKF((uintptr_t)q % (4 * huge) == 0, "CR_OS_HUGE_ONLY mapping %p not aligned to %zu", (void *)q, 4 * huge);
    check_fresh(q, 2 * huge, "reserved huge pages");
    cr_os_unmap(q, 2 * huge);
  }
}

static void test_purge(void) {
  size_t page = cr_os_info()->page_size, size = 16 * page;
  char *p = cr_os_map(size, 0, 0, 0);
  if (!CHECK(p != NULL)) return;
  memset(p, 0xA5, size);
  cr_os_purge(p + 4 * page, 8 * page);
  CHECKF(tu_first_nonzero(p + 4 * page, 8 * page) == (size_t)-1, "purged pages do not read zero");
  for (size_t i = 0; i < size; i += page / 2)
    if (i < 4 * page || i >= 12 * page) CHECKF((unsigned char)p[i] == 0xA5, "byte %zu beside the purge changed", i);
  cr_os_unmap(p, size);
}

static void test_populate(void) {
  size_t page = cr_os_info()->page_size, n = 16, size = n * page;
  char *p = cr_os_map(size, 0, 0, 0);
  if (!CHECK(p != NULL)) return;
  uint64_t seed = tu_seed(p, 4 * page);
  tu_fill(p, 4 * page, seed);
  cr_os_populate(p, size);
  unsigned char vec[16];
  size_t resident = 0;
  if (mincore(p, size, vec) == 0)
    for (size_t i = 4; i < n; i++) resident += vec[i] & 1;
  printf("    fresh pages resident after the hint: %zu of %zu%s\n", resident, n - 4,
         resident == 0 ? " (the kernel ignores it: before 5.14)" : "");
  CHECKF(resident == 0 || resident == n - 4, "populate brought in %zu of %zu fresh pages", resident, n - 4);
  CHECK_PATTERN(p, 4 * page, seed);
  CHECKF(tu_first_nonzero(p + 4 * page, size - 4 * page) == (size_t)-1, "populated fresh pages do not read zero");
  cr_os_unmap(p, size);
}

static void test_remap(void) {
  const size_t size = 1 * MB;
  char *p = cr_os_map(size, 0, 0, 0);
  if (!CHECK(p != NULL)) return;
  uint64_t seed = tu_seed(p, size);
  tu_fill(p, size, seed);
  CHECK(cr_os_remap(p, size, size / 2, NULL) == p); /* a shrink stays */
  CHECK_PATTERN(p, size / 2, seed);
  char *g = cr_os_remap(p, size / 2, 2 * size, NULL); /* a growth in place, if there is room */
  printf("    growth in place: %s\n", g == p ? "done" : "refused (a neighbour)");
  CHECK(g == NULL || g == p);
  size_t have = g == p ? 2 * size : size / 2;
  CHECK_PATTERN(p, size / 2, seed);
  char *t = cr_os_map(4 * size, 0, 0, 0);
  if (CHECK(t != NULL)) {
    char *q = cr_os_remap(p, have, 4 * size, t);
    if (CHECKF(q == t, "move onto %p gave %p", (void *)t, (void *)q)) {
      CHECK_PATTERN(q, size / 2, seed);
      p = q;
      have = 4 * size;
    } else {
      cr_os_unmap(t, 4 * size);
    }
  }
  cr_os_unmap(p, have);
}

static void test_cut(void) {
  const size_t size = 1 * MB;
  char *p = cr_os_map(size, 0, 0, 0);
  if (!CHECK(p != NULL)) return;
  uint64_t seed = tu_seed(p, size);
  tu_fill(p, size, seed);
  /* Cut in two, joined again, cut again: nothing moves, nothing is lost. */
  CHECK(cr_os_cut(p, size, size / 4, false));
  CHECK(cr_os_cut(p, size, size / 4, true));
  CHECK(cr_os_cut(p, size, size / 2, false));
  CHECK_PATTERN(p, size, seed);
  /* Each half is a mapping of its own: remapped and unmapped alone. */
  CHECK(cr_os_remap(p + size / 2, size / 2, size / 4, NULL) == p + size / 2);
  CHECK_PATTERN(p, size / 2 + size / 4, seed);
  cr_os_unmap(p + size / 2, size / 4);
  CHECK_PATTERN(p, size / 2, seed);
  cr_os_unmap(p, size / 2);
}

static void test_env(void) {
  CHECK(setenv("CORONA_TEST_OS_VAR", "forty-two", 1) == 0);
  CHECK(setenv("CORONA_TEST_OS_VARIANT", "other", 1) == 0);
  const char *e = cr_os_env("CORONA_TEST_OS_VAR=", 0);
  CHECKF(e != NULL && strcmp(e, "CORONA_TEST_OS_VAR=forty-two") == 0, "lookup by \"NAME=\": %s", e ? e : "(null)");
  CHECK(cr_os_env("CORONA_TEST_OS_VAR=", 1) == NULL);
  size_t n = 0;
  for (size_t i = 0; (e = cr_os_env("CORONA_TEST_OS_", i)) != NULL; i++) n++;
  CHECKF(n == 2, "%zu entries start with CORONA_TEST_OS_, want 2", n);
  CHECK(cr_os_env("corona_test_os_var=", 0) == NULL); /* Linux names compare with case */
  CHECK(cr_os_env("CORONA_TEST_OS_NONE=", 0) == NULL);
  size_t all = 0;
  for (size_t i = 0; cr_os_env("", i) != NULL; i++) all++;
  CHECKF(all >= n, "%zu entries in all", all);
}

static void test_clock(void) {
  uint64_t a = cr_os_now_ms();
  struct timespec ts = {0, 30 * 1000 * 1000};
  nanosleep(&ts, NULL);
  uint64_t b = cr_os_now_ms();
  CHECKF(b >= a + 25 && b < a + 30000, "30 ms of sleep: the clock went %llu -> %llu", (unsigned long long)a,
         (unsigned long long)b);
}

/* ---- hooks: one thread per case, the callbacks count what they get ---------- */
static _Atomic(void *) exit_seen[CR_OS_THREAD_SLOTS];
static atomic_int exit_calls[CR_OS_THREAD_SLOTS];
static void on_exit0(void *value) {
  atomic_store(&exit_seen[0], value);
  atomic_fetch_add(&exit_calls[0], 1);
}
static void on_exit1(void *value) {
  atomic_store(&exit_seen[1], value);
  atomic_fetch_add(&exit_calls[1], 1);
}

typedef struct {
  void *first, *last; /* stored in slot 0, in this order */
  void *other;        /* stored in slot 1 (NULL: none) */
  bool ok;
} hook_case_t;

static void *hook_thread(void *arg) {
  hook_case_t *c = arg;
  c->ok = cr_os_thread_exit(0, on_exit0, c->first) && cr_os_thread_exit(0, on_exit0, c->last);
  if (c->other != NULL) c->ok = c->ok && cr_os_thread_exit(1, on_exit1, c->other);
  return NULL;
}

static void hook_run(hook_case_t *c) {
  for (unsigned s = 0; s < CR_OS_THREAD_SLOTS; s++) {
    atomic_store(&exit_seen[s], NULL);
    atomic_store(&exit_calls[s], 0);
  }
  pthread_t t;
  if (!CHECK(pthread_create(&t, NULL, hook_thread, c) == 0)) return;
  pthread_join(t, NULL);
  CHECKF(c->ok, "cr_os_thread_exit said false");
}

static void test_hooks(void) {
  static int a, b, x;
  hook_case_t last = {&a, &b, &x, false};
  hook_run(&last);
  CHECKF(atomic_load(&exit_calls[0]) == 1 && atomic_load(&exit_seen[0]) == &b,
         "slot 0: %d calls, value %p (want 1 call with %p)", atomic_load(&exit_calls[0]), atomic_load(&exit_seen[0]),
         (void *)&b);
  CHECKF(atomic_load(&exit_calls[1]) == 1 && atomic_load(&exit_seen[1]) == &x, "slot 1: %d calls, value %p (want %p)",
         atomic_load(&exit_calls[1]), atomic_load(&exit_seen[1]), (void *)&x);
  hook_case_t cleared = {&a, NULL, NULL, false};
  hook_run(&cleared);
  CHECKF(atomic_load(&exit_calls[0]) == 0 && atomic_load(&exit_calls[1]) == 0,
         "a cleared value still ran the callbacks: %d, %d calls", atomic_load(&exit_calls[0]),
         atomic_load(&exit_calls[1]));
}

/* ---- write ----------------------------------------------------------------------- */
static void test_write(void) {
  char dir[] = "/tmp/corona-test-os.XXXXXX";
  if (!CHECK(mkdtemp(dir) != NULL)) return;
  char path[sizeof dir + 16], missing[sizeof dir + 32];
  snprintf(path, sizeof path, "%s/out", dir);
  snprintf(missing, sizeof missing, "%s/none/out", dir);
  CHECK(cr_os_write(path, "one\n", 4));
  CHECK(cr_os_write(path, "two\n", 4));
  char got[64] = {0};
  FILE *f = fopen(path, "r");
  size_t n = f != NULL ? fread(got, 1, sizeof got - 1, f) : 0;
  if (f != NULL) fclose(f);
  CHECKF(n == 8 && memcmp(got, "one\ntwo\n", 8) == 0, "the file holds %zu bytes: \"%s\"", n, got);
  CHECK(!cr_os_write(missing, "x", 1));
  static const char line[] = "    (a line on stderr from cr_os_write)\n";
  CHECK(cr_os_write(NULL, line, sizeof line - 1));
  unlink(path);
  rmdir(dir);
}

int main(int argc, char **argv) {
  double t0 = tu_now();
  setvbuf(stdout, NULL, _IOLBF, 0);
  static const tu_part_t parts[] = {
      {"facts", test_facts}, {"map", test_map},   {"huge", test_huge}, {"purge", test_purge},
      {"populate", test_populate}, {"remap", test_remap}, {"cut", test_cut}, {"env", test_env}, {"clock", test_clock}, {"hooks", test_hooks},
      {"write", test_write},
  };
  tu_run_parts(argc, argv, parts, sizeof parts / sizeof parts[0], 6);
  return tu_finish("test_os", t0);
}
