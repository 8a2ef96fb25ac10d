/* backend.c (layer: backend) — memory from the OS: regions, slabs, large blocks.
 *  - Slab regions (CORONA_REGION_SIZE, aligned to it) are cut into 16 KB
 *    slabs; a region with no slab in use is unmapped.  A slab given back in
 *    a region still in use stays resident (dirty) and is handed out again
 *    before clean ones; dirty slabs are purged after the decay time, or at
 *    once when the backend holds more resident free bytes than the budget
 *    (dirty_max, the budget the policy layer gives) -- then all of the region's, one call per run, since
 *    purging slab by slab cost a system call per 16 KB and a page fault per
 *    page when the slab came back into use.
 *  - Large regions (CORONA_LARGE_REGION_SIZE) hold page-granular blocks of up
 *    to the MMAP_THRESHOLD option (CORONA_LARGE_REGION_MAX by default),
 *    found best-fit among the resident free pages (a dirty-page bitmap with
 *    one-word summaries and an index of its runs by length: backend_map.c),
 *    else first-fit in a free-page bitmap.  Freed pages are free at once
 *    (neighbours coalesce: a run of free pages is one block) but purged only
 *    after the decay time; a wholly free region is unmapped then too.
 *  - Bigger blocks get their own mapping (backend_own.c).
 * One lock guards the region lists and descriptors; it is taken only on the
 * slow paths (caches sit in front of it).
 *
 * A user pool's backend (be->source set) gets its memory from the pool's
 * raw_alloc instead: chunks are cut into large regions (as big as the chunk
 * allows, up to CORONA_LARGE_REGION_SIZE), slabs are 16 KB-aligned runs of
 * those regions, and blocks too big for a region get a chunk of their own.
 * User memory is never purged nor assumed to be zero, and goes back through
 * raw_free only at destroy (and own chunks at their free, unless the policy
 * keeps all memory).  The chunks are backend_user.c's. */
#include <string.h>

#include "internal/backend_map.h"
#include "internal/os.h"
#include "internal/options.h"
#include "internal/report.h"


/* ---- the dirty count (written under the lock) ---------------------------- */

static inline size_t dirty_of(cr_backend_t *be) { return cr_load_relaxed(&be->dirty_bytes); }
static inline void dirty_add(cr_backend_t *be, size_t n) { cr_store_relaxed(&be->dirty_bytes, dirty_of(be) + n); }
static inline void dirty_sub(cr_backend_t *be, size_t n) { cr_store_relaxed(&be->dirty_bytes, dirty_of(be) - n); }

/* ---- region descriptors (metadata memory, recycled, never unmapped) ---- */

static cr_region_t *desc_alloc(cr_backend_t *be) {
  cr_region_t *r = be->free_descs;
  if (r != NULL) {
    be->free_descs = r->next;
  } else if ((r = cr_meta_alloc(sizeof *r)) == NULL) {
    return NULL;
  }
  cr_region_runs_t *runs = r->runs; /* NULL for a new one: metadata memory comes zeroed */
  memset(r, 0, sizeof *r);
  r->runs = runs;
  return r;
}

/* Gives an unused descriptor back; returns NULL for the caller's failure path. */
static cr_region_t *desc_free(cr_backend_t *be, cr_region_t *r) {
  r->next = be->free_descs;
  be->free_descs = r;
  return NULL;
}

static void list_add(cr_region_t **head, cr_region_t *r) {
  r->prev = NULL;
  r->next = *head;
  if (*head) (*head)->prev = r;
  *head = r;
}

static void list_del(cr_region_t **head, cr_region_t *r) {
  if (r->prev) r->prev->next = r->next;
  else *head = r->next;
  if (r->next) r->next->prev = r->prev;
}

/* Maps a region and marks it in the page map; NULL when the OS refuses. */
static inline size_t region_size(unsigned kind) {
  return kind == CR_REGION_SLAB ? CORONA_REGION_SIZE : CORONA_LARGE_REGION_SIZE;
}

static inline size_t region_pages(const cr_region_t *r) { return r->size / CORONA_PAGE_SIZE; }

static cr_region_t *region_new(cr_backend_t *be, unsigned kind, size_t need) {
  cr_region_t *r = desc_alloc(be);
  if (r == NULL) return NULL;
  if (be->source != NULL) { /* a user pool: large regions only, cut from chunks */
    size_t size = 0;
    char *base = cr_user_region_memory(be, need, &size);
    if (base == NULL || !cr_pagemap_set((uintptr_t)base, size, CR_KIND_LARGE)) return desc_free(be, r);
    r->base = base;
    r->size = size;
    r->kind = CR_REGION_LARGE;
    r->user = true;
    cr_bits_set(r->free_map, 0, size / CORONA_PAGE_SIZE, true);
    list_add(&be->large_regions, r);
    return r;
  }
  size_t size = region_size(kind);
  if (kind == CR_REGION_LARGE && r->runs == NULL && (r->runs = cr_meta_alloc(sizeof *r->runs)) == NULL)
    return desc_free(be, r);
  bool huge = cr_option(CR_OPT_USE_HUGE_PAGES) != 0;
  bool reserved = false;
  char *base = NULL;
  if (huge) {
    base = cr_os_map(size, size, 0, CR_OS_HUGE_ONLY);
    reserved = base != NULL;
  }
  if (base == NULL) base = cr_os_map(size, size, 0, huge ? CR_OS_HUGE : 0);
  uint8_t mark = kind == CR_REGION_SLAB ? CR_KIND_SLAB_FREE : CR_KIND_LARGE;
  if (base == NULL || !cr_pagemap_set((uintptr_t)base, size, mark)) {
    if (base) cr_os_unmap(base, size);
    return desc_free(be, r);
  }
  r->base = base;
  r->size = size;
  r->kind = kind;
  r->huge = huge;
  if (kind == CR_REGION_LARGE) {
    memset(r->free_map, 0xff, sizeof r->free_map);
    memset(r->runs->head, 0, sizeof r->runs->head); /* no dirty run yet */
  }
  list_add(kind == CR_REGION_SLAB ? &be->slab_regions : &be->large_regions, r);
  cr_backend_mapped_add(be, size);
  if (cr_verbose()) {
    static const char *const what[2][3] = {
        {"mapped slab region", "mapped slab region (transparent huge pages)", "mapped slab region (reserved huge pages)"},
        {"mapped large region", "mapped large region (transparent huge pages)",
         "mapped large region (reserved huge pages)"}};
    cr_verbose_event(what[kind == CR_REGION_LARGE][reserved ? 2 : huge], base, size);
  }
  return r;
}

/* Unmaps r; its free pages that were still resident leave the dirty count. */
static void region_release(cr_backend_t *be, cr_region_t *r) {
  dirty_sub(be, cr_bits_count(r->dirty_map, 0, r->size / CORONA_PAGE_SIZE) * CORONA_PAGE_SIZE);
  list_del(r->kind == CR_REGION_SLAB ? &be->slab_regions : &be->large_regions, r);
  cr_pagemap_set((uintptr_t)r->base, r->size, CR_KIND_NONE);
  cr_os_unmap(r->base, r->size);
  atomic_fetch_sub_explicit(&be->mapped_bytes, r->size, memory_order_relaxed);
  cr_backend_released_add(be, r->size);
  if (cr_verbose())
    cr_verbose_event(r->kind == CR_REGION_SLAB ? "returned slab region" : "returned large region", r->base, r->size);
  r->next = be->free_descs;
  be->free_descs = r;
}

/* ---- slabs --------------------------------------------------------------- */

#define SLABS_PER_REGION ((uint32_t)(CORONA_REGION_SIZE / CORONA_SLAB_SIZE))
#define SLAB_PAGES (CORONA_SLAB_SIZE / CORONA_PAGE_SIZE)
_Static_assert(SLABS_PER_REGION % CORONA_POPULATE_SLABS == 0, "a group of slabs brought in ends in its region");

static char *block_alloc_locked(cr_backend_t *be, size_t bytes, size_t align, cr_region_t **region, bool *zeroed);
static void block_release_locked(cr_backend_t *be, cr_region_t *r, char *block, size_t bytes, uint64_t now,
                                 size_t dirty_max, bool purged);
static void region_purge_locked(cr_backend_t *be, cr_region_t *r);
static void dirty_trim_locked(cr_backend_t *be, size_t dirty_max);

static cr_region_t *region_of_locked(cr_backend_t *be, const char *p) {
  for (cr_region_t *r = be->large_regions; r != NULL; r = r->next)
    if (p >= r->base && p < r->base + r->size) return r;
  return NULL;
}

/* Blocks cut from the large regions, aligned to their size: a user pool's
 * slabs (its memory is its large regions) and every medium block.  Their
 * pages come back as any large block's do, coalesced with their free
 * neighbours. */
cr_block_t *cr_backend_span_alloc(cr_backend_t *be, size_t bytes) {
  cr_region_t *r;
  bool zeroed;
  cr_lock(&be->lock);
  cr_block_t *b = (cr_block_t *)block_alloc_locked(be, bytes, bytes, &r, &zeroed);
  if (b != NULL) cr_store_relaxed(&be->slab_bytes, cr_load_relaxed(&be->slab_bytes) + bytes);
  cr_unlock(&be->lock);
  if (b == NULL) return NULL;
  cr_pagemap_set((uintptr_t)b, bytes, CR_KIND_SLAB_FREE);
  if ((b->backref = cr_backref_alloc(b)) == 0) { /* no memory for the table: give the block back */
    cr_backend_span_free(be, b, bytes, 0);
    return NULL;
  }
  return b;
}

void cr_backend_span_free(cr_backend_t *be, cr_block_t *b, size_t bytes, size_t dirty_max) {
  if (b->backref != 0) cr_backref_free(b->backref);
  b->backref = 0;
  cr_pagemap_set((uintptr_t)b, bytes, CR_KIND_LARGE); /* as the free pages around it */
  uint64_t now = cr_os_now_ms();
  cr_lock(&be->lock);
  cr_store_relaxed(&be->slab_bytes, cr_load_relaxed(&be->slab_bytes) - bytes);
  /* A user pool's pages stay as they are (its regions are user: never purged). */
  block_release_locked(be, region_of_locked(be, (char *)b), (char *)b, bytes, now, dirty_max, false);
  cr_unlock(&be->lock);
}

cr_block_t *cr_backend_slab_alloc(cr_backend_t *be) {
  if (be->source != NULL) return cr_backend_span_alloc(be, CORONA_SLAB_SIZE);
  char *populate = NULL;
  cr_lock(&be->lock);
  cr_region_t *r = be->slab_regions;
  while (r != NULL && r->free_slabs == NULL && r->carved == SLABS_PER_REGION) r = r->next;
  if (r == NULL && (r = region_new(be, CR_REGION_SLAB, CORONA_REGION_SIZE)) == NULL) {
    cr_unlock(&be->lock);
    return NULL;
  }
  cr_block_t *b = r->free_slabs;
  if (b != NULL) {
    r->free_slabs = b->next;
    size_t page = (size_t)((char *)b - r->base) / CORONA_PAGE_SIZE;
    if (cr_bit_get(r->dirty_map, page)) { /* resident: no page faults to come */
      cr_dirty_set(r, page, SLAB_PAGES, false);
      dirty_sub(be, CORONA_SLAB_SIZE);
    }
  } else {
    b = (cr_block_t *)(r->base + (size_t)r->carved++ * CORONA_SLAB_SIZE);
    /* The first of a group of fresh slabs brings the group in (see
     * CORONA_POPULATE_MIN; huge pages come in whole anyway). */
    bool first = (r->carved - 1) % CORONA_POPULATE_SLABS == 0;
    if (first && !r->huge && cr_load_relaxed(&be->slab_bytes) >= CORONA_POPULATE_MIN) populate = (char *)b;
  }
  r->used++;
  cr_store_relaxed(&be->slab_bytes, cr_load_relaxed(&be->slab_bytes) + CORONA_SLAB_SIZE);
  cr_unlock(&be->lock);
  /* Unlocked: the region stays mapped while b is in use. */
  if (populate != NULL) cr_os_populate(populate, CORONA_POPULATE_SLABS * CORONA_SLAB_SIZE);
  b->backref = cr_backref_alloc(b);
  if (b->backref == 0) { /* no memory for the table: give the slab back */
    cr_backend_slab_free(be, b, 0);
    return NULL;
  }
  return b;
}

void cr_backend_slab_free(cr_backend_t *be, cr_block_t *b, size_t dirty_max) {
  if (be->source != NULL) { /* back to its region's free pages (never purged) */
    cr_backend_span_free(be, b, CORONA_SLAB_SIZE, 0);
    return;
  }
  cr_backref_free(b->backref);
  b->backref = 0;
  cr_pagemap_set((uintptr_t)b, CORONA_SLAB_SIZE, CR_KIND_SLAB_FREE);
  uint64_t now = cr_os_now_ms();
  cr_region_t *r;
  cr_lock(&be->lock);
  for (r = be->slab_regions; r != NULL; r = r->next)
    if ((char *)b >= r->base && (char *)b < r->base + r->size) break;
  cr_store_relaxed(&be->slab_bytes, cr_load_relaxed(&be->slab_bytes) - CORONA_SLAB_SIZE);
  if (--r->used == 0) { /* the whole region goes: one unmap for its dirty slabs too */
    region_release(be, r);
    cr_unlock(&be->lock);
    return;
  }
  b->next = r->free_slabs; /* first out again: it is the resident one */
  r->free_slabs = b;
  cr_dirty_set(r, (size_t)((char *)b - r->base) / CORONA_PAGE_SIZE, SLAB_PAGES, true);
  dirty_add(be, CORONA_SLAB_SIZE);
  if (r->dirty_since <= 1) r->dirty_since = now > 1 ? now : 2; /* 1: leftovers only, no age */
  if (dirty_of(be) > dirty_max) { /* too much resident: see CORONA_DIRTY_SLACK_SHIFT */
    region_purge_locked(be, r);
    dirty_trim_locked(be, dirty_max - (dirty_max >> CORONA_DIRTY_SLACK_SHIFT));
  }
  cr_unlock(&be->lock);
}

/* ---- large blocks in regions --------------------------------------------- */

/* Marks n free pages from at in use; returns how many of them were dirty
 * (resident, possibly non-zero). */
static size_t claim_locked(cr_backend_t *be, cr_region_t *r, size_t at, size_t n) {
  if (r->user) { /* user memory: never known to be zero */
    cr_bits_set(r->free_map, at, n, false);
    r->used += (uint32_t)n;
    return n;
  }
  size_t dirty = cr_bits_count(r->dirty_map, at, n);
  dirty_sub(be, dirty * CORONA_PAGE_SIZE);
  cr_bits_set(r->free_map, at, n, false);
  cr_dirty_set(r, at, n, false);
  r->used += (uint32_t)n;
  return dirty;
}

static inline size_t skew_of(const cr_region_t *r, size_t align_pages) {
  return (size_t)((uintptr_t)r->base / CORONA_PAGE_SIZE) % align_pages;
}

/* A run of bytes (pages) starting at a multiple of align (a page multiple)
 * from the large regions, else from a new region; NULL when none can be had. */
static char *block_alloc_locked(cr_backend_t *be, size_t bytes, size_t align, cr_region_t **region, bool *zeroed) {
  size_t n = bytes / CORONA_PAGE_SIZE, a = align / CORONA_PAGE_SIZE;
  cr_region_t *r = NULL;
  size_t at = CR_REGION_PAGES;
  /* Resident free pages first (no page faults), best fit so that a small
   * request does not cut up a run a big one could use; then any free pages. */
  if (a == 1 && dirty_of(be) >= bytes) {
    size_t best_len = SIZE_MAX, len;
    cr_region_t *best_r = NULL;
    /* A region with no run long enough is skipped at once (its bins), and
     * an exact fit ends the search. */
    for (cr_region_t *c = be->large_regions; c != NULL && best_len != n; c = c->next) {
      if (!cr_dirty_may_fit(c, n)) continue;
      size_t i = cr_dirty_best_run(c, n, &len);
      if (i < CR_REGION_PAGES && len < best_len) {
        best_len = len;
        best_r = c;
        at = i;
      }
    }
    r = best_r;
  }
  /* No run of resident pages fits: the free pages that cover the most
   * resident ones (a resident run and the clean pages around it), so that
   * as few pages as can be fault in.  First fit took the lowest free run,
   * often all clean, while the resident pages stayed free -- and were
   * purged over the budget as they piled up (suite-large churn at 2
   * threads, medians of 15 runs: 39k page faults, 35k with this;
   * test_coalesce mixed). */
  if (at == CR_REGION_PAGES && a == 1 && dirty_of(be) != 0) {
    size_t best_cov = 0, cov;
    for (cr_region_t *c = be->large_regions; c != NULL; c = c->next) {
      if (c->run_bins == 0 || region_pages(c) - c->used < n) continue;
      size_t i = cr_dirty_mixed_fit(c, n, &cov);
      if (i < CR_REGION_PAGES && cov > best_cov) best_cov = cov, r = c, at = i;
    }
  }
  /* A user pool's region base is only 16 KB aligned: align the address,
   * not the page index (skew: the base's pages past an aligned address). */
  if (at == CR_REGION_PAGES)
    for (r = be->large_regions; r != NULL; r = r->next)
      if (region_pages(r) - r->used >= n &&
          (at = cr_bits_find_run(r->free_map, n, a, skew_of(r, a))) < CR_REGION_PAGES)
        break;
  if (r == NULL) {
    /* A user region is 16 KB aligned: room for the worst skew. */
    if ((r = region_new(be, CR_REGION_LARGE, bytes + (a > SLAB_PAGES ? align - CORONA_SLAB_SIZE : 0))) == NULL) return NULL;
    if ((at = cr_bits_find_run(r->free_map, n, a, skew_of(r, a))) == CR_REGION_PAGES) return NULL;
  }
  *zeroed = claim_locked(be, r, at, n) == 0;
  *region = r;
  return r->base + at * CORONA_PAGE_SIZE;
}

char *cr_backend_block_alloc_aligned(cr_backend_t *be, size_t bytes, size_t align, cr_region_t **region, bool *zeroed) {
  cr_lock(&be->lock);
  char *block = block_alloc_locked(be, bytes, align, region, zeroed);
  cr_unlock(&be->lock);
  return block;
}

char *cr_backend_block_alloc(cr_backend_t *be, size_t bytes, cr_region_t **region, bool *zeroed) {
  cr_lock(&be->lock);
  char *block = block_alloc_locked(be, bytes, CORONA_PAGE_SIZE, region, zeroed);
  cr_unlock(&be->lock);
  return block;
}

/* Purges the dirty pages of r in [start, end), trimmed to whole huge pages
 * in a huge-page region (purging part of one would split it), and to whole
 * OS pages where they are bigger than the 4 KB granule (arm64 with 16 KB or
 * 64 KB pages): the OS purges only whole pages, and what it cannot purge
 * stays dirty, and counted, until its neighbours are free too. */
static void purge_range_locked(cr_backend_t *be, cr_region_t *r, size_t start, size_t end) {
  size_t os_page = cr_os_info()->page_size;
  size_t span = r->huge ? CORONA_HUGE_SPAN / CORONA_PAGE_SIZE : 1;
  if (os_page / CORONA_PAGE_SIZE > span) span = os_page / CORONA_PAGE_SIZE;
  size_t a = (start + span - 1) / span * span, b = end / span * span;
  if (a >= b) return;
  cr_os_purge(r->base + a * CORONA_PAGE_SIZE, (b - a) * CORONA_PAGE_SIZE);
  cr_dirty_set(r, a, b - a, false);
  dirty_sub(be, (b - a) * CORONA_PAGE_SIZE);
  cr_backend_released_add(be, (b - a) * CORONA_PAGE_SIZE);
}

/* Purges dirty runs, those of the regions with the oldest dirty pages
 * first, until at most dirty_max bytes of free pages are resident (or
 * nothing more can go: parts of huge pages stay).  For a budget that fell
 * below what is resident: it follows the live heap, and without this a
 * program that frees most of its heap kept the free pages resident that
 * the budget of the big heap allowed, until the decay time. */
static void dirty_trim_locked(cr_backend_t *be, size_t dirty_max) {
  uint64_t done = 0; /* regions dirty since this time or earlier were trimmed */
  while (dirty_of(be) > dirty_max) {
    uint64_t t = UINT64_MAX;
    for (int large = 0; large < 2; large++)
      for (cr_region_t *c = large ? be->large_regions : be->slab_regions; c != NULL; c = c->next)
        if (!c->user && c->dirty_since > done && c->dirty_since < t) t = c->dirty_since;
    if (t == UINT64_MAX) return;
    for (int large = 0; large < 2; large++)
      for (cr_region_t *c = large ? be->large_regions : be->slab_regions; c != NULL; c = c->next) {
        if (c->user || c->dirty_since != t) continue;
        for (size_t start = cr_bit_find(c->dirty_map, 0, true); start < CR_REGION_PAGES;) {
          if (dirty_of(be) <= dirty_max) return;
          size_t end = cr_bit_find(c->dirty_map, start, false);
          purge_range_locked(be, c, start, end);
          start = cr_bit_find(c->dirty_map, end, true);
        }
      }
    done = t;
  }
}

/* Frees pages; they stay resident for reuse until the decay time, unless
 * too much is resident already, then they are purged at once -- and, if
 * that is not enough (the budget fell), other free pages too.  purged: the
 * caller purged them already (cr_backend_blocks_free), they come back clean. */
static void block_release_locked(cr_backend_t *be, cr_region_t *r, char *block, size_t bytes, uint64_t now,
                                 size_t dirty_max, bool purged) {
  size_t at = (size_t)(block - r->base) / CORONA_PAGE_SIZE, n = bytes / CORONA_PAGE_SIZE;
  cr_bits_set(r->free_map, at, n, true);
  r->used -= (uint32_t)n;
  if (r->user) return; /* kept as they are until the pool is reset or destroyed */
  if (purged) {
    if (dirty_of(be) > dirty_max) dirty_trim_locked(be, dirty_max);
    return;
  }
  cr_dirty_set(r, at, n, true);
  dirty_add(be, bytes);
  if (r->dirty_since <= 1) r->dirty_since = now > 1 ? now : 2; /* 1: leftovers only, no age */
  if (dirty_of(be) <= dirty_max) return;
  purge_range_locked(be, r, at, at + n); /* too much resident */
  /* Rare while a program holds its heap steady (corona-soft-limit: a dozen
   * trims in 300 000 frees): only a fall of the budget leaves it over. */
  if (dirty_of(be) > dirty_max) dirty_trim_locked(be, dirty_max);
}

/* A block that would take the resident free bytes over the budget is purged
 * before the lock is taken, while it is still the caller's: purged under
 * the lock (the same pages, after the free), the system call kept every
 * other thread's large miss waiting, and they went to sleep on the lock
 * (suite-buffers mid -t 2: 2 % of the samples in madvise under the lock, 4 %
 * in futex calls).  Decided on a relaxed read of the count: a race only
 * leaves the purge to the locked path, or purges a block the budget would
 * have kept.  Not where the OS purges only whole pages bigger than a block's
 * granule (huge-page regions, arm64's 16 or 64 KB pages): there the locked
 * path trims the range to whole pages. */
void cr_backend_blocks_free(cr_backend_t *be, const cr_span_t *spans, size_t n, size_t dirty_max) {
  bool purged[CORONA_RELEASE_BATCH] = {false};
  size_t dirty = dirty_of(be);
  bool whole = cr_os_info()->page_size <= CORONA_PAGE_SIZE;
  for (size_t i = 0; i < n; i++) {
    const cr_span_t *sp = &spans[i];
    if (!whole || sp->region->user || sp->region->huge) continue;
    if (dirty + sp->bytes <= dirty_max) {
      dirty += sp->bytes;
      continue;
    }
    cr_os_purge(sp->block, sp->bytes);
    cr_backend_released_add(be, sp->bytes);
    purged[i] = true;
  }
  uint64_t now = cr_os_now_ms();
  cr_lock(&be->lock);
  for (size_t i = 0; i < n; i++)
    block_release_locked(be, spans[i].region, spans[i].block, spans[i].bytes, now, dirty_max, purged[i]);
  cr_unlock(&be->lock);
}

void cr_backend_block_free(cr_backend_t *be, cr_region_t *r, char *block, size_t bytes, size_t dirty_max) {
  cr_backend_blocks_free(be, &(cr_span_t){r, block, bytes}, 1, dirty_max);
}

bool cr_backend_block_resize(cr_backend_t *be, cr_region_t *r, char *block, size_t old_bytes, size_t new_bytes,
                             size_t dirty_max) {
  size_t at = (size_t)(block - r->base) / CORONA_PAGE_SIZE;
  size_t old_n = old_bytes / CORONA_PAGE_SIZE, new_n = new_bytes / CORONA_PAGE_SIZE;
  bool ok = true;
  cr_lock(&be->lock);
  if (new_n < old_n) {
    block_release_locked(be, r, block + new_bytes, old_bytes - new_bytes, cr_os_now_ms(), dirty_max, false);
  } else if (new_n > old_n) {
    if (at + new_n > CR_REGION_PAGES || cr_bit_find(r->free_map, at + old_n, false) < at + new_n) {
      ok = false; /* a neighbour is in use, or the region ends */
    } else {
      claim_locked(be, r, at + old_n, new_n - old_n);
    }
  }
  cr_unlock(&be->lock);
  return ok;
}

/* Purges the free, dirty pages of r (whole huge pages only in huge regions). */
static void region_purge_locked(cr_backend_t *be, cr_region_t *r) {
  for (size_t start = cr_bit_find(r->dirty_map, 0, true); start < CR_REGION_PAGES;) {
    size_t end = cr_bit_find(r->dirty_map, start, false);
    purge_range_locked(be, r, start, end);
    start = cr_bit_find(r->dirty_map, end, true);
  }
  r->dirty_since = 0;
  for (size_t w = 0; w < CR_REGION_WORDS; w++)
    if (r->dirty_map[w]) r->dirty_since = 1; /* left-over parts of huge or OS pages: retry later */
}

void cr_backend_decay(cr_backend_t *be, uint64_t now, uint64_t decay_ms, bool force) {
  cr_lock(&be->lock);
  for (cr_region_t *r = be->slab_regions; r != NULL; r = r->next) /* in use: else unmapped already */
    if (r->dirty_since != 0 && (force || r->dirty_since + decay_ms <= now)) region_purge_locked(be, r);
  for (cr_region_t *r = be->large_regions, *next; r != NULL; r = next) {
    next = r->next;
    if (r->user) continue; /* a user pool's memory stays until destroy */
    /* An empty region without dirty pages has been idle since its last
     * purge, which itself waited for the decay time. */
    if (r->used == 0 && r->dirty_since == 0) {
      region_release(be, r);
      continue;
    }
    if (r->dirty_since == 0 || (!force && r->dirty_since + decay_ms > now)) continue;
    if (r->used == 0) {
      region_release(be, r);
    } else {
      region_purge_locked(be, r);
    }
  }
  cr_unlock(&be->lock);
}

/* Unmaps the large regions with no block in use, dirty or not (the soft
 * heap limit: only unmapping lowers the mapped bytes; purging does not). */
void cr_backend_release_empty(cr_backend_t *be) {
  cr_lock(&be->lock);
  for (cr_region_t *r = be->large_regions, *next; r != NULL; r = next) {
    next = r->next;
    if (r->used != 0 || r->user) continue;
    region_release(be, r);
  }
  cr_unlock(&be->lock);
}

uint64_t cr_backend_dirty_since(cr_backend_t *be) {
  uint64_t oldest = 0;
  cr_lock(&be->lock);
  for (int large = 0; large < 2; large++)
    for (cr_region_t *r = large ? be->large_regions : be->slab_regions; r != NULL; r = r->next)
      if (r->dirty_since > 1 && !r->user && (oldest == 0 || r->dirty_since < oldest)) oldest = r->dirty_since;
  cr_unlock(&be->lock);
  return oldest;
}

void cr_backend_trim(cr_backend_t *be, size_t dirty_max) {
  cr_lock(&be->lock);
  if (dirty_of(be) > dirty_max) dirty_trim_locked(be, dirty_max);
  cr_unlock(&be->lock);
}

size_t cr_backend_dirty_bytes(cr_backend_t *be) {
  cr_lock(&be->lock);
  size_t dirty = dirty_of(be);
  cr_unlock(&be->lock);
  return dirty;
}
