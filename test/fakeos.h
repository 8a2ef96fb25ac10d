/* fakeos.h — the controls of the fake OS (src/os_fake.c), for tests linked
 * with corona_fakeos instead of corona_static.
 *
 * The fake OS serves every mapping corona asks for (cr_os_map) from one
 * reservation made at its first use: object memory from a 4 GiB area
 * aligned to 4 GiB (one page-map leaf covers it), metadata from an area of
 * its own after it, so that metadata never moves the objects.  Each area is
 * handed out first fit from its lowest address, aligned as asked: the same
 * requests give the same offsets from the base on every run (of one binary:
 * another compiler may make other requests first).  Nothing is charged
 * against the commit limit (the reservation is MAP_NORESERVE), so the only
 * refusals are the ones a test asks for, or a full area.  Unmapped and
 * purged memory reads back as zero; unmapped memory faults when touched.  It
 * checks the contract (whole mappings only for unmap and remap, purges inside
 * one mapping, page multiples) and ends the process with a "fake OS:" line
 * when corona breaks it.  The rest of the contract (time, environment,
 * threads) is the real Linux one (os_linux.c).
 *
 * What a test can ask of it: refuse requests (the next n of some kinds, or
 * every one above a size), offer reserved huge pages, and tell what is
 * mapped.  Refusals apply to requests the fake could otherwise serve; each is
 * counted (fakeos_stats_t.refused).  Not meant for a process that forks while
 * another thread maps: the fake's lock is not taken across fork. */
#ifndef CORONA_FAKEOS_H
#define CORONA_FAKEOS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Kinds of request, for the refusals. */
enum {
  FAKEOS_MAP = 1,  /* a mapping of object memory (cr_os_map without CR_OS_META) */
  FAKEOS_META = 2, /* a mapping of metadata (CR_OS_META) */
  FAKEOS_GROW = 4, /* growing a mapping in place (cr_os_remap, no target) */
  FAKEOS_MOVE = 8, /* moving a mapping's pages onto another (cr_os_remap) */
  FAKEOS_ALL = 15
};

/* Refuses the next n requests of the given kinds (replacing an earlier
 * fakeos_fail_next; n 0: none). */
void fakeos_fail_next(unsigned kinds, size_t n);
/* Refuses every request of the given kinds for more than bytes (the new size
 * for a remap), until called again (SIZE_MAX: none). */
void fakeos_fail_above(unsigned kinds, size_t bytes);
/* Offers bytes of reserved huge pages (CR_OS_HUGE_ONLY requests are served
 * from them, as object memory; 0 at start: such requests get NULL, as on a
 * system with none).  Bytes in use stay in use. */
void fakeos_huge_pages(size_t bytes);

typedef struct {
  uintptr_t base, meta_base; /* object memory: [base, base + size); metadata likewise */
  size_t size, meta_size;
  size_t mapped;      /* bytes of object memory mapped now */
  size_t meta_mapped; /* bytes of metadata mapped now */
  size_t mappings;    /* mappings of object memory now */
  size_t maps, unmaps, purges, grows, shrinks, moves; /* calls that did something, so far */
  size_t splits, joins;                               /* cr_os_cut that did: cuts, joins */
  size_t populates;   /* cr_os_populate calls so far (a hint: the fake does nothing with it) */
  size_t refused;     /* requests refused on purpose (fakeos_fail_*) */
  size_t huge_left;   /* reserved huge-page bytes not in use */
} fakeos_stats_t;
void fakeos_stats(fakeos_stats_t *out);

/* What a mapping was asked for with: */
enum {
  FAKEOS_IS_META = 1,       /* CR_OS_META */
  FAKEOS_THP = 2,           /* CR_OS_HUGE: transparent huge pages advised */
  FAKEOS_RESERVED_HUGE = 4, /* CR_OS_HUGE_ONLY: served from the reserved huge pages */
};
typedef struct {
  void *start;
  size_t size;
  unsigned flags; /* FAKEOS_IS_META, FAKEOS_THP, FAKEOS_RESERVED_HUGE */
  size_t serial;  /* which mapping it was: fakeos_stats_t.maps just after it was made */
} fakeos_mapping_t;
/* The live mapping holding addr: true and *out filled in, or false. */
bool fakeos_mapping(const void *addr, fakeos_mapping_t *out);

#endif /* CORONA_FAKEOS_H */
