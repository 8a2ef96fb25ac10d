/* test_pagemap.c — white-box test of the page map's reach (src/internal):
 *   high    entries marked at addresses between 2^47 and 2^48 (where arm64
 *           Linux, and x86-64 with 5-level paging given a hint, put
 *           mappings) read back through both lookups, their neighbours stay
 *           unmarked, the masked lookup does not alias them onto the
 *           addresses 2^47 lower, and clearing them works; a range reaching
 *           past the map cannot be marked, and lookups beyond it say "not
 *           corona's";
 *   width   the OS layer's address width covers the stack, a fresh mapping
 *           and corona's own objects, and the largest request follows it:
 *           one byte more is ENOMEM at once;
 *   hinted  where the kernel grants a mapping above 2^47 for a hint (arm64,
 *           x86-64 with 5-level paging), its granules are marked and looked
 *           up like any other; elsewhere (4-level x86-64) a visible skip;
 *   objects (with --objects; pagemap_high in the arm64 flavour, where the
 *           whole process lives above 2^47) corona's own small and large
 *           objects lie above 2^47 and are found through the page map. */
#define _GNU_SOURCE
#include "internal/fastpath.h"
#include "internal/os.h"

#include <errno.h>
#include <sys/mman.h>

#include "corona.h"
#include "testutil.h"

#define GRANULE ((uintptr_t)CORONA_SLAB_SIZE)
#define BIT47 ((uintptr_t)1 << 47)
#define BIT48 ((uintptr_t)1 << 48)

/* Marks two granules at a with kind, checks them, their neighbours and the
 * alias 2^47 lower, then clears them again. */
static void check_marked_at(uintptr_t a, uint8_t kind) {
  if (!CHECKF(cr_pagemap_set(a, 2 * GRANULE, kind), "cannot mark 0x%llx", (unsigned long long)a)) return;
  CHECKF(cr_pagemap_kind(a) == kind, "0x%llx: kind %u", (unsigned long long)a, cr_pagemap_kind(a));
  CHECKF(cr_pagemap_kind(a + 2 * GRANULE - 1) == kind, "end of 0x%llx: kind %u", (unsigned long long)a,
         cr_pagemap_kind(a + 2 * GRANULE - 1));
  CHECKF(cr_pagemap_kind_masked(a + GRANULE + 100) == kind, "0x%llx masked: kind %u", (unsigned long long)a,
         cr_pagemap_kind_masked(a + GRANULE + 100));
  CHECKF(cr_pagemap_kind(a - 1) == CR_KIND_NONE, "below 0x%llx: kind %u", (unsigned long long)a,
         cr_pagemap_kind(a - 1));
  CHECKF(cr_pagemap_kind(a + 2 * GRANULE) == CR_KIND_NONE, "above 0x%llx: kind %u", (unsigned long long)a,
         cr_pagemap_kind(a + 2 * GRANULE));
  /* A map of 47 bits would have wrapped these onto a - 2^47. */
  uintptr_t alias = a - BIT47;
  CHECKF(cr_pagemap_kind(alias) == CR_KIND_NONE && cr_pagemap_kind_masked(alias) == CR_KIND_NONE,
         "0x%llx aliases 0x%llx: kinds %u %u", (unsigned long long)a, (unsigned long long)alias,
         cr_pagemap_kind(alias), cr_pagemap_kind_masked(alias));
  CHECK(cr_pagemap_set(a, 2 * GRANULE, CR_KIND_NONE));
  CHECKF(cr_pagemap_kind(a) == CR_KIND_NONE && cr_pagemap_kind_masked(a) == CR_KIND_NONE,
         "0x%llx still marked after clearing", (unsigned long long)a);
}

static void test_high(void) {
  const uintptr_t addrs[] = {BIT47, BIT47 + ((uintptr_t)1 << 31) + 5 * GRANULE, BIT47 + ((uintptr_t)0x1234 << 32),
                             BIT48 - 2 * GRANULE};
  for (size_t i = 0; i < sizeof addrs / sizeof addrs[0]; i++) {
    check_marked_at(addrs[i], CR_KIND_LARGE);
    check_marked_at(addrs[i], 1); /* a small-object bin's kind */
  }
  CHECK(!cr_pagemap_set(BIT48 - GRANULE, 2 * GRANULE, CR_KIND_LARGE)); /* reaches past the map */
  CHECK(cr_pagemap_kind(tu_opaque(BIT48 - GRANULE)) == CR_KIND_NONE);
  CHECK(cr_pagemap_kind(tu_opaque(BIT48)) == CR_KIND_NONE);
  CHECK(cr_pagemap_kind(tu_opaque(UINTPTR_MAX - GRANULE)) == CR_KIND_NONE);
}

static void test_width(void) {
  unsigned bits = cr_os_info()->address_bits;
  CHECKF(bits >= 32 && bits <= 64, "address bits %u", bits);
  uintptr_t limit = bits >= 64 ? UINTPTR_MAX : ((uintptr_t)1 << bits) - 1;
  char here = 0;
  CHECKF((uintptr_t)&here <= limit, "stack at %p beyond %u bits", (void *)&here, bits);
  void *m = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (CHECK(m != MAP_FAILED)) {
    CHECKF((uintptr_t)m + (1 << 20) - 1 <= limit, "mapping at %p beyond %u bits", m, bits);
    munmap(m, 1 << 20);
  }
  void *p = corona_malloc(8 << 20), *q = corona_malloc(100);
  CHECK(p != NULL && q != NULL && (uintptr_t)p <= limit && (uintptr_t)q <= limit);
  corona_free(p);
  corona_free(q);
  unsigned usable = bits < CORONA_MAP_BITS ? bits : CORONA_MAP_BITS;
  CHECKF(cr_max_request == (size_t)1 << (usable - 1), "largest request %zu for %u address bits", cr_max_request, bits);
  printf("    address bits %u, largest request 2^%d\n", bits, 63 - __builtin_clzll((unsigned long long)cr_max_request));
  errno = 0;
  double t = tu_now();
  p = corona_malloc(cr_max_request + 1);
  t = tu_now() - t;
  CHECKF(p == NULL && errno == ENOMEM, "malloc(largest + 1): %p errno %d", p, errno);
  CHECKF(t < 0.01, "malloc(largest + 1) took %.3f ms", t * 1e3);
  corona_free(p);
}

static void test_hinted(void) {
  size_t len = 4 * GRANULE;
  void *hint = (void *)(BIT47 + ((uintptr_t)0x55 << 36));
  void *m = mmap(hint, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED || (uintptr_t)m < BIT47) {
    tu_skip("hinted: no mapping above 2^47 here (hint %p gave %p: 4-level x86-64, or qemu-user on such a host "
            "without a guest base; the arm64 flavour's pagemap_high has one)",
            hint, m == MAP_FAILED ? NULL : m);
    if (m != MAP_FAILED) munmap(m, len);
    return;
  }
  uintptr_t a = ((uintptr_t)m + GRANULE - 1) & ~(GRANULE - 1);
  printf("    the kernel mapped %p for hint %p\n", m, hint);
  if ((uintptr_t)m + len >= BIT48) {
    /* Beyond the map (52-bit arm64): marking must refuse, not wrap. */
    CHECK(!cr_pagemap_set(a, GRANULE, CR_KIND_LARGE));
    CHECK(cr_pagemap_kind(a) == CR_KIND_NONE);
  } else {
    check_marked_at(a, CR_KIND_LARGE);
  }
  munmap(m, len);
}

/* The arm64 flavour's pagemap_high runs this program linked at 2^47 + 2^44
 * under qemu-user with a guest base of -2^46, so that the stack, every
 * mapping and every object of corona's lies between 2^47 and 2^48, as on
 * arm64 Linux with 48-bit addresses: the address width is 48, and the page
 * map must serve corona's own objects there. */
static void test_objects(void) {
  unsigned bits = cr_os_info()->address_bits;
  CHECKF(bits == 48, "address bits %u, expected 48 (is the guest base set?)", bits);
  enum { N = 2000 };
  static void *p[N];
  for (int i = 0; i < N; i++) {
    size_t size = i % 100 == 0 ? (size_t)(64 << 10) << (i % 7) : (size_t)(16 + 8 * (i % 1000));
    p[i] = corona_malloc(size);
    if (!CHECKF(p[i] != NULL, "malloc(%zu) failed", size)) break;
    CHECKF((uintptr_t)p[i] >= BIT47 && (uintptr_t)p[i] < BIT48, "object %p not between 2^47 and 2^48", p[i]);
    CHECKF(cr_pagemap_kind((uintptr_t)p[i]) != CR_KIND_NONE, "object %p unknown to the page map", p[i]);
    CHECKF(corona_usable_size(p[i]) >= size, "usable size of %p: %zu < %zu", p[i], corona_usable_size(p[i]), size);
    memset(p[i], i & 0xff, size < 64 ? size : 64);
  }
  for (int i = 0; i < N && p[i] != NULL; i++) corona_free(p[i]);
}

int main(int argc, char **argv) {
  double t0 = tu_now();
  setvbuf(stdout, NULL, _IOLBF, 0);
  corona_free(corona_malloc(1)); /* initialised: the OS layer has read the address width */
  static const tu_part_t parts[] = {
      {"high", test_high}, {"width", test_width}, {"hinted", test_hinted}, {"objects", test_objects}};
  /* "objects" only when asked for: elsewhere the objects lie below 2^47. */
  if (argc > 1) tu_run_parts(argc, argv, parts, sizeof parts / sizeof parts[0], 8);
  else tu_run_parts(argc, argv, parts, 3, 8);
  return tu_finish("test_pagemap", t0);
}
