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
 *   remap     a shrink stays in place; a growth in place keeps the contents
 *             or leaves everything as it was (NULL); a move onto a target
 *             carries the contents there;
 *   env       cr_os_env finds a variable by "NAME=", lists entries by
 *             prefix, names compare with case;
 *   clock     cr_os_now_ms never goes back and follows a sleep. */
#define _GNU_SOURCE
#include "internal/os.h"

#include <stdlib.h>
#include <sys/mman.h>

#include "procutil.h"
#include "testutil.h"

#define KB ((size_t)1024)
#define MB ((size_t)1 << 20)

static bool power_of_two(size_t v) { return v != 0 && (v & (v - 1)) == 0; }

static void test_facts(void) {
  size_t page = cr_os_page_size(), huge = cr_os_huge_page_size();
  unsigned bits = cr_os_address_bits();
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
  size_t huge = cr_os_huge_page_size();
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
  size_t page = cr_os_page_size(), size = 16 * page;
  char *p = cr_os_map(size, 0, 0, 0);
  if (!CHECK(p != NULL)) return;
  memset(p, 0xA5, size);
  cr_os_purge(p + 4 * page, 8 * page);
  CHECKF(tu_first_nonzero(p + 4 * page, 8 * page) == (size_t)-1, "purged pages do not read zero");
  for (size_t i = 0; i < size; i += page / 2)
    if (i < 4 * page || i >= 12 * page) CHECKF((unsigned char)p[i] == 0xA5, "byte %zu beside the purge changed", i);
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

int main(int argc, char **argv) {
  double t0 = tu_now();
  setvbuf(stdout, NULL, _IOLBF, 0);
  cr_os_init();
  static const tu_part_t parts[] = {
      {"facts", test_facts}, {"map", test_map},   {"huge", test_huge}, {"purge", test_purge},
      {"remap", test_remap}, {"env", test_env}, {"clock", test_clock},
  };
  tu_run_parts(argc, argv, parts, sizeof parts / sizeof parts[0], 6);
  return tu_finish("test_os", t0);
}
