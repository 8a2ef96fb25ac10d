/* test_sizeclass.c — white-box test of the size classes (src/internal):
 *   cr_bin_index(size) picks the smallest fitting bin for every size
 *   0..CORONA_MAX_SMALL; cr_bin_size is strictly increasing, multiples of
 *   16, CORONA_NUM_BINS entries, the last one CORONA_MAX_SMALL; every bin is
 *   reachable and at least one object of it fits in its block (a slab up to
 *   CORONA_SLAB_MAX_CLASS, then a medium block: the medium bins are the
 *   ones from CORONA_MEDIUM_FIRST_BIN on, and at least four of their
 *   objects fit); the lookup table stays in range; objects from
 *   corona_malloc(size) have usable size cr_bin_size[cr_bin_index(size)],
 *   lie inside one block past its header, and every granule of their block
 *   carries the class in the page map (medium blocks span four), and the
 *   page map knows small objects as slab and large ones as
 *   large; a large object's header (cr_large_t) is live and the granule the
 *   page map marks for it lies inside its own mapping, for every alignment
 *   up to 1 GB and sizes 0.. (a granule outside would clobber a neighbour's
 *   page-map entry); above CORONA_ALIGN_SLACK_MAX the mapping holds the
 *   object without the alignment's slack (the OS trimmed it), so neither
 *   the mapping nor its page-map marks grow with the alignment;
 *   cr_is_object_start accepts exactly the object starts of a block, at
 *   every offset in its block for every class (no header slot, no interior
 *   or misaligned address); empty medium blocks resting on a thread's
 *   partial lists stay within the thread's mark, counted in slabs. */
#define _POSIX_C_SOURCE 200809L
#include "internal/fastpath.h"

#include "corona.h"
#include "testutil.h"

static void test_tables(void) {
  _Static_assert(sizeof cr_bin_size / sizeof cr_bin_size[0] == CORONA_NUM_BINS, "cr_bin_size has CORONA_NUM_BINS entries");
  _Static_assert(CR_SIZE_BIN_ENTRIES == (CORONA_MAX_SMALL + 15) / 16 + 1, "cr_size_row covers 0..CORONA_MAX_SMALL");
  CHECKF(cr_bin_size[CORONA_NUM_BINS - 1] == CORONA_MAX_SMALL, "last class %u", (unsigned)cr_bin_size[CORONA_NUM_BINS - 1]);
  for (unsigned b = 0; b < CORONA_NUM_BINS; b++) {
    CHECKF(cr_bin_size[b] > 0 && cr_bin_size[b] % 16 == 0, "class %u = %u is not a positive multiple of 16", b,
           (unsigned)cr_bin_size[b]);
    if (b > 0)
      CHECKF(cr_bin_size[b] > cr_bin_size[b - 1], "class %u = %u not above class %u = %u", b, (unsigned)cr_bin_size[b],
             b - 1, (unsigned)cr_bin_size[b - 1]);
    size_t span = cr_bin_span(b);
    size_t want = cr_bin_size[b] <= CORONA_SLAB_MAX_CLASS     ? CORONA_SLAB_SIZE
                  : cr_bin_size[b] <= CORONA_MEDIUM_MAX_CLASS ? CORONA_MEDIUM_BLOCK
                                                              : CORONA_MEDIUM_BLOCK_MAX;
    CHECKF(span == want, "class %u = %u: block of %zu bytes, not %zu", b, (unsigned)cr_bin_size[b], span, want);
    size_t k = (span - CORONA_BLOCK_HEADER) / cr_bin_size[b];
    if (cr_bin_size[b] > 1024) /* the fitting classes: the largest multiple of 64 that k objects a block fit */
      CHECKF((span - CORONA_BLOCK_HEADER) - k * cr_bin_size[b] < 64 * k, "class %u = %u: %zu bytes of slack in its block", b,
             (unsigned)cr_bin_size[b], (span - CORONA_BLOCK_HEADER) - k * cr_bin_size[b]);
    CHECKF(cr_bin_is_medium(b) == (cr_bin_size[b] > CORONA_SLAB_MAX_CLASS), "class %u = %u: medium is %d", b,
           (unsigned)cr_bin_size[b], cr_bin_is_medium(b));
    CHECKF((span - CORONA_BLOCK_HEADER) / cr_bin_size[b] >= 4,
           "class %u = %u: too few objects in a block of %zu", b, (unsigned)cr_bin_size[b], span);
    CHECKF(cr_bin_size[b] >= CORONA_MIN_ALIGN, "class %u = %u below the minimum alignment", b, (unsigned)cr_bin_size[b]);
  }
  for (size_t i = 0; i < CR_SIZE_BIN_ENTRIES; i++)
    CHECKF(cr_size_row[i] >= CR_ROW(0) && cr_size_row[i] < CR_ROW(CORONA_NUM_BINS), "cr_size_row[%zu] = %u out of range", i,
           (unsigned)cr_size_row[i]);
}

static void test_object_start(void) {
  uintptr_t slab = (uintptr_t)64 << 20; /* any block-aligned address: nothing is read */
  for (unsigned b = 0; b < CORONA_NUM_BINS; b++) {
    size_t span = cr_bin_span(b);
    size_t size = cr_bin_size[b], capacity = (span - CORONA_BLOCK_HEADER) / size, wrong = 0;
    for (size_t off = 0; off < span; off++) {
      size_t below_end = span - off;
      bool start = below_end % size == 0 && below_end / size <= capacity;
      if (cr_is_object_start(slab + off, b) != start && wrong++ == 0)
        (void)CHECKF(false, "class %zu: offset %zu is %san object start, cr_is_object_start says otherwise", size, off,
               start ? "" : "not ");
    }
    CHECKF(wrong == 0, "class %zu: %zu offsets judged wrong", size, wrong);
  }
}

static void test_bin_index(void) {
  bool reached[CORONA_NUM_BINS] = {false};
  unsigned last = 0;
  for (size_t s = 0; s <= CORONA_MAX_SMALL; s++) {
    unsigned b = cr_bin_index(s);
    if (!CHECKF(b < CORONA_NUM_BINS, "cr_bin_index(%zu) = %u", s, b)) continue;
    reached[b] = true;
    size_t need = s ? s : 1;
    CHECKF(cr_bin_size[b] >= need, "size %zu -> bin %u of %u bytes: too small", s, b, (unsigned)cr_bin_size[b]);
    if (b > 0)
      CHECKF(cr_bin_size[b - 1] < need, "size %zu -> bin %u (%u) but bin %u (%u) fits", s, b, (unsigned)cr_bin_size[b],
             b - 1, (unsigned)cr_bin_size[b - 1]);
    CHECKF(b >= last, "cr_bin_index not monotonic at size %zu", s);
    last = b;
  }
  for (unsigned b = 0; b < CORONA_NUM_BINS; b++) CHECKF(reached[b], "bin %u (%u) is never chosen", b, (unsigned)cr_bin_size[b]);
  CHECK(cr_bin_index(0) == 0);
  CHECK(cr_bin_index(CORONA_MAX_SMALL) == CORONA_NUM_BINS - 1);
}

#define N_OBJ (CORONA_MAX_SMALL + 1)
static void *objs[N_OBJ];

/* Every size up to 4 KB; above, two sizes in each 16-byte step of the size
 * table (the first and the last it serves), all live at once (67 MB, where
 * every size would be 535 MB). */
static bool probed(size_t s) { return s <= 4096 || s % 16 <= 1; }

static void test_real_objects(void) {
  for (size_t s = 0; s <= CORONA_MAX_SMALL; s++) {
    if (!probed(s)) continue;
    void *p = corona_malloc(s);
    objs[s] = p;
    if (!CHECKF(p != NULL, "corona_malloc(%zu)", s)) continue;
    unsigned b = cr_bin_index(s);
    size_t u = corona_usable_size(p);
    CHECKF(u == cr_bin_size[b], "corona_malloc(%zu): usable %zu, class %u is %u", s, u, b, (unsigned)cr_bin_size[b]);
    uintptr_t a = (uintptr_t)p;
    size_t span = cr_bin_span(b);
    uintptr_t block = a & ~(uintptr_t)(span - 1);
    CHECKF(a - block >= CORONA_BLOCK_HEADER, "object %p (size %zu) overlaps its block header", p, s);
    CHECKF(a - block + cr_bin_size[b] <= span, "object %p (class %u) crosses its block end", p,
           (unsigned)cr_bin_size[b]);
    CHECKF((uintptr_t)cr_block_of(p, b + 1) == block, "object %p (class %u): block %p, not %p", p, (unsigned)cr_bin_size[b],
           (void *)cr_block_of(p, b + 1), (void *)block);
    for (uintptr_t g = block; g < block + span; g += CORONA_SLAB_SIZE)
      CHECKF(cr_pagemap_kind(g) == b + 1, "page map kind of granule %p of small object %p's block is %u, not bin %u + 1",
             (void *)g, p, cr_pagemap_kind(g), b);
    tu_fill(p, u, tu_seed(p, u));
  }
  for (size_t s = 0; s <= CORONA_MAX_SMALL; s++)
    if (objs[s]) CHECK_PATTERN(objs[s], corona_usable_size(objs[s]), tu_seed(objs[s], corona_usable_size(objs[s])));
  for (size_t s = 0; s <= CORONA_MAX_SMALL; s++) corona_free(objs[s]);

  /* Large objects are not slab objects. */
  const size_t large[] = {CORONA_MAX_SMALL + 1, 32768, 100000, 1 << 20};
  for (size_t i = 0; i < sizeof large / sizeof large[0]; i++) {
    void *p = corona_malloc(large[i]);
    if (!CHECK(p != NULL)) continue;
    CHECK(corona_usable_size(p) >= large[i]);
    CHECKF(cr_pagemap_kind((uintptr_t)p) == CR_KIND_LARGE, "page map kind of large object %p (%zu) is %u", p, large[i],
           cr_pagemap_kind((uintptr_t)p));
    corona_free(p);
  }
  /* Foreign addresses are nobody's. */
  static int not_ours;
  int on_stack = 0;
  CHECK(cr_pagemap_kind((uintptr_t)&not_ours) == CR_KIND_NONE);
  CHECK(cr_pagemap_kind((uintptr_t)&on_stack) == CR_KIND_NONE);
  CHECK(cr_pagemap_kind(tu_opaque(0)) == CR_KIND_NONE);
  CHECK(cr_pagemap_kind(tu_opaque(UINTPTR_MAX)) == CR_KIND_NONE);
}

static bool is_large_kind(unsigned k) { return k == CR_KIND_LARGE; }

static void check_large_object(void *p, size_t size, size_t align) {
  uintptr_t a = (uintptr_t)p;
  unsigned kind = cr_pagemap_kind(a);
  if (!is_large_kind(kind)) return; /* served from a slab: covered elsewhere */
  const cr_large_t *h = (const cr_large_t *)(a - CORONA_LARGE_HEADER);
  if (!CHECKF(cr_backref_get(h->backref) == h && h->user == p, "large %p (size %zu, align %zu): bad header", p, size,
              align))
    return;
  uintptr_t base = (uintptr_t)h->block, end = base + h->block_size;
  CHECKF((uintptr_t)h >= base, "large %p (size %zu, align %zu): header below its block [%#lx, %#lx)", p, size, align,
         (unsigned long)base, (unsigned long)end);
  CHECKF(a + size <= end, "large %p (size %zu, align %zu) runs past its mapping end %#lx", p, size, align,
         (unsigned long)end);
  CHECKF(corona_usable_size(p) >= size && a + corona_usable_size(p) <= end,
         "large %p (size %zu, align %zu): usable %zu, mapping end %#lx", p, size, align, corona_usable_size(p),
         (unsigned long)end);
  if (align > CORONA_ALIGN_SLACK_MAX)
    CHECKF(h->block_size <= CORONA_SLAB_SIZE + ((size + 2 * CORONA_SLAB_SIZE - 1) & ~(CORONA_SLAB_SIZE - 1)),
           "large %p (size %zu, align %zu): mapping of %zu bytes keeps the slack", p, size, align, h->block_size);
}

static void test_large_layout(void) {
  const size_t sizes[] = {0, 1, 64, 1000, CORONA_MAX_SMALL, CORONA_MAX_SMALL + 1, 16384 - 64, 16384, 100000};
  for (unsigned sh = 0; sh <= 30; sh++) {
    size_t align = (size_t)1 << sh;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
      void *p = corona_aligned_malloc(sizes[i], align);
      if (!CHECKF(p != NULL, "aligned_malloc(%zu, %zu)", sizes[i], align)) continue;
      check_large_object(p, sizes[i], align);
      corona_free(p);
    }
  }
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    void *p = corona_malloc(sizes[i]);
    if (!CHECK(p != NULL)) continue;
    check_large_object(p, sizes[i], 0);
    corona_free(p);
  }
}

/* Empty medium blocks resting on the thread's partial lists count their
 * span against the thread's mark (CORONA_EMPTY_CACHE_HIGH slabs): 512
 * objects of the largest class (128 blocks of 128 KB) freed and sent home
 * leave at most the mark's bytes resting, where counting blocks let all
 * 128 rest (16 MB against 2). */
static void test_medium_rest(void) {
  enum { N = 512 };
  static void *p[N];
  unsigned bin = cr_bin_index(CORONA_MAX_SMALL);
  corona_collect(); /* the thread's empty caches, full after the tests above, go back */
  for (int i = 0; i < N; i++) {
    if (!CHECK((p[i] = corona_malloc(CORONA_MAX_SMALL)) != NULL)) return;
    tu_fill(p[i], CORONA_MAX_SMALL, (uint64_t)i);
  }
  for (int i = 0; i < N; i++) {
    CHECK_PATTERN(p[i], CORONA_MAX_SMALL, (uint64_t)i);
    corona_free(p[i]);
  }
  cr_tls_t *tls = cr_tls_get();
  cr_bins_home(tls); /* the objects on the bin lists go home too */
  size_t resting = 0, blocks = 0;
  for (cr_block_t *b = tls->partial[bin].head; b != NULL; b = b->next)
    if (b->allocated == 0) resting += cr_bin_span(bin), blocks++;
  printf("    medium blocks resting empty after 512 frees of %u B: %zu (%zu KB)\n", (unsigned)CORONA_MAX_SMALL, blocks,
         resting >> 10);
  CHECKF(resting <= CORONA_EMPTY_CACHE_HIGH * CORONA_SLAB_SIZE, "%zu bytes of empty medium blocks rest, the mark is %zu",
         resting, (size_t)CORONA_EMPTY_CACHE_HIGH * CORONA_SLAB_SIZE);
  CHECKF(blocks > 0, "no empty medium block rests at all");
  corona_collect();
}

int main(void) {
  double t0 = tu_now();
  test_tables();
  test_bin_index();
  test_object_start();
  test_real_objects();
  test_large_layout();
  test_medium_rest();
  return tu_finish("test_sizeclass", t0);
}
