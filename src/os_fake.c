/* os_fake.c (layer: os) — the memory group of the platform contract for
 * tests: library corona_fakeos links it in place of os_linux_map.c, beside
 * the real os_linux.c for everything else.  What it promises the tests and
 * how they steer it is test/fakeos.h.
 *
 * One reservation, made with PROT_NONE and MAP_NORESERVE at the first call:
 * an object area of FAKE_OBJECTS bytes aligned to FAKE_OBJECTS, so that the
 * offsets of its mappings from the base do not depend on where the kernel
 * put it, and a metadata area after it.  Each area keeps its live mappings
 * in an array sorted by address; a request takes the first gap (lowest
 * address) where it fits aligned.  Mapping makes the range read-write;
 * unmapping maps PROT_NONE over it again (MAP_FIXED over our own range:
 * the pages go, the range stays ours, and a sanitizer that intercepts mmap
 * forgets what it knew of it). */
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#include "internal/os.h"
#include "../test/fakeos.h"

#define FAKE_OBJECTS ((size_t)4 << 30) /* the object area: one page-map leaf */
#define FAKE_META ((size_t)256 << 20)  /* the metadata area */
#define FAKE_MAX_MAPS 4096             /* live mappings per area */

_Static_assert((int)FAKEOS_IS_META == (int)CR_OS_META && (int)FAKEOS_THP == (int)CR_OS_HUGE &&
                   (int)FAKEOS_RESERVED_HUGE == (int)CR_OS_HUGE_ONLY,
               "fakeos.h names the flags of os.h");

/* A hole that pages moved out of and that another mmap took before the
 * fake could reserve it again: it stays in the area, never handed out,
 * in no count (see cr_os_remap). */
#define FAKE_LOST 0x100u

typedef struct {
  uintptr_t start;
  size_t size;
  unsigned flags; /* CR_OS_* it was mapped with, or FAKE_LOST */
  size_t serial;  /* fake_stats.maps once it was made */
} fake_map_t;

typedef struct {
  uintptr_t lo, hi;
  size_t n; /* maps[0, n) sorted by start, disjoint */
  fake_map_t maps[FAKE_MAX_MAPS];
} fake_area_t;

static pthread_once_t fake_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t fake_lock = PTHREAD_MUTEX_INITIALIZER;
static fake_area_t fake_areas[2]; /* objects, metadata: lock(fake_lock) */
static fakeos_stats_t fake_stats; /* lock(fake_lock) */
static size_t fake_page;
/* The refusals (fakeos_fail_*): lock(fake_lock). */
static unsigned next_kinds, above_kinds;
static size_t next_count, above_bytes = SIZE_MAX;

/* ---- messages: a broken contract ends the process -------------------------- */

static void fake_hex(char *buf, size_t *n, uintptr_t v) {
  buf[(*n)++] = '0';
  buf[(*n)++] = 'x';
  for (int shift = 60; shift >= 0; shift -= 4) buf[(*n)++] = "0123456789abcdef"[(v >> shift) & 15];
}

_Noreturn static void fake_fatal(const char *what, uintptr_t addr, size_t size) {
  char buf[256];
  size_t n = 0;
  static const char head[] = "fake OS: ";
  for (const char *c = head; *c; c++) buf[n++] = *c;
  for (const char *c = what; *c && n < 180; c++) buf[n++] = *c;
  buf[n++] = ' ';
  fake_hex(buf, &n, addr);
  buf[n++] = ' ';
  buf[n++] = '+';
  fake_hex(buf, &n, size);
  buf[n++] = '\n';
  cr_os_fatal(buf, n);
}

/* ---- the reservation ------------------------------------------------------------ */

static void fake_reserve(void) {
  fake_page = cr_os_info()->page_size;
  size_t total = FAKE_OBJECTS + FAKE_META, over = total + FAKE_OBJECTS;
  char *p = mmap(NULL, over, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) fake_fatal("cannot reserve its address space, bytes:", 0, over);
  uintptr_t base = ((uintptr_t)p + FAKE_OBJECTS - 1) & ~(uintptr_t)(FAKE_OBJECTS - 1);
  size_t head = base - (uintptr_t)p, tail = over - head - total;
  if (head) munmap(p, head);
  if (tail) munmap((char *)base + total, tail);
  fake_areas[0].lo = base;
  fake_areas[0].hi = base + FAKE_OBJECTS;
  fake_areas[1].lo = base + FAKE_OBJECTS;
  fake_areas[1].hi = base + total;
  fake_stats.base = base;
  fake_stats.size = FAKE_OBJECTS;
  fake_stats.meta_base = base + FAKE_OBJECTS;
  fake_stats.meta_size = FAKE_META;
}

static void fake_enter(void) {
  pthread_once(&fake_once, fake_reserve);
  pthread_mutex_lock(&fake_lock);
}

static void fake_leave(void) { pthread_mutex_unlock(&fake_lock); }

/* Gives [addr, addr + size) back to the reservation: no pages, no access. */
static void fake_drop(uintptr_t addr, size_t size) {
  if (mmap((void *)addr, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0) ==
      MAP_FAILED)
    fake_fatal("cannot take back", addr, size);
}

/* ---- the areas --------------------------------------------------------------------- */

/* The index of the first mapping that ends after addr (n if none). */
static size_t area_index(const fake_area_t *a, uintptr_t addr) {
  size_t lo = 0, hi = a->n;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (a->maps[mid].start + a->maps[mid].size <= addr) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/* The mapping holding addr, or NULL. */
static fake_map_t *fake_find(uintptr_t addr) {
  for (int k = 0; k < 2; k++) {
    fake_area_t *a = &fake_areas[k];
    if (addr < a->lo || addr >= a->hi) continue;
    size_t i = area_index(a, addr);
    return i < a->n && a->maps[i].start <= addr ? &a->maps[i] : NULL;
  }
  return NULL;
}

static fake_area_t *area_of(const fake_map_t *m) {
  return m->start >= fake_areas[1].lo ? &fake_areas[1] : &fake_areas[0];
}

/* The whole mapping starting at addr of size bytes, or the end of the process. */
static fake_map_t *fake_whole(uintptr_t addr, size_t size, const char *call) {
  fake_map_t *m = fake_find(addr);
  if (m == NULL || m->start != addr || m->size != size || (m->flags & FAKE_LOST)) fake_fatal(call, addr, size);
  return m;
}

/* The start of the first gap of a where size bytes fit with start + offset
 * a multiple of align; 0 when none does. */
static uintptr_t area_fit(const fake_area_t *a, size_t size, size_t align, size_t offset) {
  uintptr_t gap = a->lo;
  for (size_t i = 0; i <= a->n; i++) {
    uintptr_t end = i < a->n ? a->maps[i].start : a->hi;
    uintptr_t start = ((gap + offset + align - 1) & ~(uintptr_t)(align - 1)) - offset;
    if (start >= gap && start <= end && end - start >= size) return start;
    if (i < a->n) gap = a->maps[i].start + a->maps[i].size;
  }
  return 0;
}

static void area_insert(fake_area_t *a, uintptr_t start, size_t size, unsigned flags, size_t serial) {
  if (a->n == FAKE_MAX_MAPS) fake_fatal("has no room for another mapping at", start, size);
  size_t i = area_index(a, start);
  memmove(&a->maps[i + 1], &a->maps[i], (a->n - i) * sizeof a->maps[0]);
  a->maps[i] = (fake_map_t){start, size, flags, serial};
  a->n++;
}

static void area_remove(fake_area_t *a, fake_map_t *m) {
  size_t i = (size_t)(m - a->maps);
  memmove(&a->maps[i], &a->maps[i + 1], (a->n - i - 1) * sizeof a->maps[0]);
  a->n--;
}

static void account(unsigned flags, size_t bytes, bool add) {
  size_t *total = flags & CR_OS_META ? &fake_stats.meta_mapped : &fake_stats.mapped;
  *total = add ? *total + bytes : *total - bytes;
  if (!(flags & CR_OS_META)) fake_stats.mappings = add ? fake_stats.mappings + 1 : fake_stats.mappings - 1;
  if (flags & CR_OS_HUGE_ONLY) fake_stats.huge_left = add ? fake_stats.huge_left - bytes : fake_stats.huge_left + bytes;
}

/* Whether the test wants this request refused (and counts it). */
static bool refused(unsigned kind, size_t bytes) {
  if ((above_kinds & kind) && bytes > above_bytes) {
    fake_stats.refused++;
    return true;
  }
  if ((next_kinds & kind) && next_count > 0) {
    next_count--;
    fake_stats.refused++;
    return true;
  }
  return false;
}

static bool page_multiple(size_t v) { return (v & (fake_page - 1)) == 0; }

/* ---- the contract's memory group ----------------------------------------------------- */

void *cr_os_map(size_t size, size_t alignment, size_t offset, unsigned flags) {
  fake_enter();
  if (size == 0 || !page_multiple(size) || !page_multiple(offset) || (alignment & (alignment - 1)) != 0 ||
      (alignment != 0 && alignment < fake_page))
    fake_fatal("cr_os_map: size, alignment or offset out of contract:", alignment, size);
  void *p = NULL;
  if (flags & CR_OS_HUGE_ONLY) {
    size_t huge = cr_os_info()->huge_page_size;
    if (huge == 0 || size % huge != 0 || fake_stats.huge_left < size) goto out; /* none: not a refusal */
    if (alignment < huge) alignment = huge;
  }
  if (refused(flags & CR_OS_META ? FAKEOS_META : FAKEOS_MAP, size)) goto out;
  fake_area_t *a = &fake_areas[flags & CR_OS_META ? 1 : 0];
  uintptr_t start = area_fit(a, size, alignment > fake_page ? alignment : fake_page, offset);
  if (start == 0) goto out; /* the area is full: out of memory, as an OS can be */
  if (mprotect((void *)start, size, PROT_READ | PROT_WRITE) != 0) goto out;
  if (flags & (CR_OS_HUGE | CR_OS_HUGE_ONLY)) madvise((void *)start, size, MADV_HUGEPAGE);
  fake_stats.maps++;
  area_insert(a, start, size, flags & (CR_OS_META | CR_OS_HUGE | CR_OS_HUGE_ONLY), fake_stats.maps);
  account(flags, size, true);
  p = (void *)start;
out:
  fake_leave();
  return p;
}

void cr_os_unmap(void *addr, size_t size) {
  fake_enter();
  fake_map_t *m = fake_whole((uintptr_t)addr, size, "cr_os_unmap: not a whole mapping:");
  fake_drop(m->start, m->size);
  account(m->flags, m->size, false);
  area_remove(area_of(m), m);
  fake_stats.unmaps++;
  fake_leave();
}

/* Ends the process unless [addr, addr+size) is pages of one live mapping
 * (the contract of cr_os_purge and cr_os_populate). */
static void fake_pages(void *addr, size_t size, const char *call) {
  fake_map_t *m = fake_find((uintptr_t)addr);
  if (m == NULL || (m->flags & FAKE_LOST) || size == 0 || !page_multiple((uintptr_t)addr) || !page_multiple(size) ||
      (uintptr_t)addr + size > m->start + m->size)
    fake_fatal(call, (uintptr_t)addr, size);
}

void cr_os_purge(void *addr, size_t size) {
  fake_enter();
  fake_pages(addr, size, "cr_os_purge: not pages of one mapping:");
  madvise(addr, size, MADV_DONTNEED);
  fake_stats.purges++;
  fake_leave();
}

/* The record of one mapping becomes two, or two adjacent ones of the same
 * flags become one (the contract in os.h); the pages are left alone. */
bool cr_os_cut(void *addr, size_t size, size_t at, bool join) {
  fake_enter();
  if (at == 0 || at >= size || !page_multiple(at)) fake_fatal("cr_os_cut: cut out of contract:", (uintptr_t)addr, at);
  bool ok;
  if (!join) {
    fake_map_t *m = fake_whole((uintptr_t)addr, size, "cr_os_cut: not a whole mapping:");
    fake_area_t *a = area_of(m);
    ok = a->n < FAKE_MAX_MAPS && !(m->flags & (CR_OS_META | CR_OS_HUGE_ONLY));
    if (ok) {
      unsigned flags = m->flags;
      size_t serial = m->serial;
      m->size = at;
      area_insert(a, (uintptr_t)addr + at, size - at, flags, serial); /* m may have moved */
      fake_stats.mappings++;
      fake_stats.splits++;
    }
  } else {
    fake_map_t *lo = fake_whole((uintptr_t)addr, at, "cr_os_cut: joining what is not a whole mapping:");
    fake_map_t *hi = fake_whole((uintptr_t)addr + at, size - at, "cr_os_cut: joining what is not a whole mapping:");
    ok = lo->flags == hi->flags && !(lo->flags & (CR_OS_META | CR_OS_HUGE_ONLY));
    if (ok) {
      lo->size = size;
      area_remove(area_of(hi), hi);
      fake_stats.mappings--;
      fake_stats.joins++;
    }
  }
  fake_leave();
  return ok;
}

void cr_os_populate(void *addr, size_t size) {
  fake_enter();
  fake_pages(addr, size, "cr_os_populate: not pages of one mapping:");
  fake_stats.populates++;
  fake_leave();
}

void *cr_os_remap(void *addr, size_t old_size, size_t new_size, void *target) {
  fake_enter();
  fake_map_t *m = fake_whole((uintptr_t)addr, old_size, "cr_os_remap: not a whole mapping:");
  void *p = NULL;
  if (new_size == 0 || !page_multiple(new_size)) fake_fatal("cr_os_remap: new size out of contract:", (uintptr_t)addr, new_size);
  if (m->flags & (CR_OS_META | CR_OS_HUGE_ONLY)) goto out; /* not asked for: "cannot" is allowed */
  if (target == NULL) {
    if (new_size <= old_size) { /* shrinking in place */
      if (new_size < old_size) {
        fake_drop(m->start + new_size, old_size - new_size);
        fake_stats.mapped -= old_size - new_size;
        m->size = new_size;
        fake_stats.shrinks++;
      }
      p = addr;
      goto out;
    }
    fake_area_t *a = area_of(m);
    uintptr_t next = m + 1 < a->maps + a->n ? m[1].start : a->hi;
    if (next - m->start < new_size || refused(FAKEOS_GROW, new_size)) goto out;
    if (mprotect((char *)addr + old_size, new_size - old_size, PROT_READ | PROT_WRITE) != 0) goto out;
    if (m->flags & CR_OS_HUGE) madvise((char *)addr + old_size, new_size - old_size, MADV_HUGEPAGE);
    fake_stats.mapped += new_size - old_size;
    m->size = new_size;
    fake_stats.grows++;
    p = addr;
    goto out;
  }
  fake_map_t *t = fake_whole((uintptr_t)target, new_size, "cr_os_remap: target not a whole mapping:");
  if (t == m || (t->flags & (CR_OS_META | CR_OS_HUGE_ONLY)) || refused(FAKEOS_MOVE, new_size)) goto out;
  if (mremap(addr, old_size, new_size, MREMAP_MAYMOVE | MREMAP_FIXED, target) == MAP_FAILED) goto out;
  /* The pages left a hole in the reservation: reserve it again, unless
   * another thread's mmap took it meanwhile, then it stays a mapping of
   * ours that is never handed out (a leak the size of the object). */
  void *back = mmap(addr, old_size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
  t->flags = m->flags; /* the pages carry their advice, as the kernel's do */
  fake_stats.mapped -= old_size;
  fake_stats.mappings--;
  if (back == addr) {
    area_remove(area_of(m), m);
  } else {
    if (back != MAP_FAILED) munmap(back, old_size); /* an old kernel: only a hint */
    m->flags = FAKE_LOST;
  }
  fake_stats.moves++;
  p = target;
out:
  fake_leave();
  return p;
}

/* ---- the test's controls (test/fakeos.h) ------------------------------------------- */

void fakeos_fail_next(unsigned kinds, size_t n) {
  fake_enter();
  next_kinds = kinds;
  next_count = n;
  fake_leave();
}

void fakeos_fail_above(unsigned kinds, size_t bytes) {
  fake_enter();
  above_kinds = kinds;
  above_bytes = bytes;
  fake_leave();
}

void fakeos_huge_pages(size_t bytes) {
  fake_enter();
  size_t in_use = 0;
  for (size_t i = 0; i < fake_areas[0].n; i++)
    if (fake_areas[0].maps[i].flags & CR_OS_HUGE_ONLY) in_use += fake_areas[0].maps[i].size;
  fake_stats.huge_left = bytes > in_use ? bytes - in_use : 0;
  fake_leave();
}

void fakeos_stats(fakeos_stats_t *out) {
  fake_enter();
  *out = fake_stats;
  fake_leave();
}

bool fakeos_mapping(const void *addr, fakeos_mapping_t *out) {
  fake_enter();
  fake_map_t *m = fake_find((uintptr_t)addr);
  bool found = m != NULL && !(m->flags & FAKE_LOST);
  if (found) *out = (fakeos_mapping_t){(void *)m->start, m->size, m->flags, m->serial};
  fake_leave();
  return found;
}
