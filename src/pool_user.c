/* pool_user.c (layer: api) — user pools: the corona_pool_* API, the registry of live
 * pools, each thread's table of its TLS structs in them, and reset and
 * destroy.
 *
 * A user pool is a cr_pool_t like the default heap, with a source (its
 * policy) that the backend asks for memory instead of the OS.  Its id
 * indexes every thread's table of pool TLS structs (the brief's "per-thread
 * array indexed by pool id"), so finding the TLS takes no lock and no
 * pthread key per pool.  A table entry records the pool's generation: a
 * destroy changes it, so entries of a destroyed pool go stale without anyone
 * touching other threads' tables.
 *
 * Pool structs live in metadata memory and are never freed: the struct of
 * id i is reused by the next pool that gets id i, keeping its recycled TLS
 * structs and region descriptors, so a stale handle still reads as dead. */
#include <errno.h>
#include <string.h>

#include "corona.h"
#include "internal/fastpath.h"
#include "internal/os.h"
#include "internal/options.h"

typedef struct cr_pool_ref_s {
  cr_pool_t *pool;
  uint64_t gen;
  cr_tls_t *tls;
} cr_pool_ref_t;

static cr_lock_t pools_lock = CR_LOCK_INIT(CR_RANK_POOLS);                    /* the registry, slots and free tables */
static cr_pool_t *registry[CORONA_MAX_POOLS];   /* lock: live pools by id (0: the default heap's) */
static cr_pool_t *slots[CORONA_MAX_POOLS];      /* lock: the struct each id uses */
static cr_pool_ref_t *free_tables;              /* lock: tables of exited threads (linked by [0].tls) */

/* This thread's table (CORONA_MAX_POOLS entries), NULL until it uses a pool. */
static _Thread_local cr_pool_ref_t *thread_table __attribute__((tls_model("initial-exec")));

static inline cr_pool_t *as_pool(corona_pool *h) { return (cr_pool_t *)(void *)h; }

/* ---- the calling thread's TLS in a pool ---------------------------------- */

static void pools_on_thread_exit(void *value);

static CR_NOINLINE cr_tls_t *pool_tls_create(cr_pool_t *pool) {
  cr_init();
  cr_pool_ref_t *table = thread_table;
  bool fresh = false;
  if (table == NULL) {
    cr_lock(&pools_lock);
    if ((table = free_tables) != NULL) free_tables = (cr_pool_ref_t *)(void *)table[0].tls;
    cr_unlock(&pools_lock);
    if (table == NULL && (table = cr_meta_alloc(CORONA_MAX_POOLS * sizeof *table)) == NULL) return NULL;
    memset(table, 0, CORONA_MAX_POOLS * sizeof *table);
    thread_table = table;
    fresh = true;
  }
  cr_tls_t *tls = cr_pool_tls_alloc(pool);
  if (tls == NULL) return NULL;
  cr_bins_init(tls);
  table[pool->id] = (cr_pool_ref_t){pool, cr_load_relaxed(&pool->gen), tls};
  /* Last: may allocate (from the default heap), see cr_tls_create. */
  if (fresh) cr_thread_exit_hook(1, pools_on_thread_exit, table);
  return tls;
}

cr_tls_t *cr_pool_tls_peek(cr_pool_t *pool) {
  cr_pool_ref_t *table = thread_table;
  if (table == NULL) return NULL;
  cr_pool_ref_t *r = &table[pool->id];
  return r->pool == pool && r->gen == cr_load_relaxed(&pool->gen) ? r->tls : NULL;
}

cr_tls_t *cr_pool_tls(cr_pool_t *pool) {
  cr_tls_t *tls = cr_pool_tls_peek(pool);
  return cr_likely(tls != NULL) ? tls : pool_tls_create(pool);
}

static void pools_on_thread_exit(void *value) {
  cr_pool_ref_t *table = value;
  cr_lock(&pools_lock); /* keeps destroy and reset away while the thread's structs go */
  for (unsigned id = 1; id < CORONA_MAX_POOLS; id++) {
    cr_pool_ref_t *r = &table[id];
    if (r->tls != NULL && registry[id] == r->pool && r->gen == cr_load_relaxed(&r->pool->gen)) cr_tls_teardown(r->tls);
  }
  table[0].tls = (cr_tls_t *)(void *)free_tables;
  free_tables = table;
  cr_unlock(&pools_lock);
  thread_table = NULL;
}

void cr_pools_fork_lock(bool take) {
  if (take) {
    cr_lock(&pools_lock);
    for (unsigned id = 1; id < CORONA_MAX_POOLS; id++)
      if (registry[id] != NULL) cr_pool_lock_all(registry[id], true);
  } else {
    for (unsigned id = CORONA_MAX_POOLS; id-- > 1;)
      if (registry[id] != NULL) cr_pool_lock_all(registry[id], false);
    cr_unlock(&pools_lock);
  }
}

/* ---- checks ---------------------------------------------------------------- */

/* The pool behind a handle, if it is live; else NULL after a report (and an
 * abort in debug mode). */
static cr_pool_t *live_pool(corona_pool *h, const char *call) {
  cr_pool_t *pool = as_pool(h);
  if (cr_likely(pool != NULL && cr_load_relaxed(&pool->state) == CR_POOL_LIVE)) return pool;
  if (cr_option(CR_OPT_DEBUG)) {
    cr_line_t l = CR_LINE_INIT;
    cr_line_str(&l, call);
    cr_line_str(&l, pool == NULL ? "(): NULL pool" : "(): destroyed (or never created) pool ");
    if (pool != NULL) cr_line_addr(&l, pool);
    cr_fatal_line(&l);
  }
  return NULL;
}

cr_pool_t *cr_owner_pool(const void *p, unsigned kind) {
  if (p == NULL) return NULL;
  if (cr_kind_is_small(kind)) {
    const cr_block_t *b = cr_block_of(p, kind);
    if (cr_backref_get(b->backref) != b || !cr_is_object_start((uintptr_t)p, kind - 1)) return NULL;
    return b->pool;
  }
  cr_large_t *h = cr_large_header(p, kind);
  return h != NULL ? h->pool : NULL;
}

/* ---- allocation ------------------------------------------------------------- */

static void *pool_alloc(cr_pool_t *pool, size_t size, size_t alignment, bool zero) {
  if (alignment > CORONA_MIN_ALIGN) {
    size_t small = cr_aligned_small_size(size, alignment);
    if (small == 0) return cr_large_alloc(pool, cr_pool_tls_peek(pool), size, alignment, zero);
    size = small;
  }
  if (size > CORONA_MAX_SMALL) return cr_large_alloc(pool, cr_pool_tls_peek(pool), size, 0, zero);
  cr_tls_t *tls = cr_pool_tls(pool);
  if (tls == NULL) {
    errno = ENOMEM;
    return NULL;
  }
  void *p = cr_malloc_small_tls(tls, size);
  if (p != NULL && zero) memset(p, 0, size);
  return p;
}

CORONA_API void *corona_pool_malloc(corona_pool *h, size_t size) {
  cr_pool_t *pool = live_pool(h, "pool_malloc");
  if (pool == NULL) {
    errno = EINVAL;
    return NULL;
  }
  return pool_alloc(pool, size, 0, false);
}

CORONA_API void *corona_pool_calloc(corona_pool *h, size_t count, size_t size) {
  cr_pool_t *pool = live_pool(h, "pool_calloc");
  if (pool == NULL) {
    errno = EINVAL;
    return NULL;
  }
  size_t total;
  if (__builtin_mul_overflow(count, size, &total)) {
    errno = ENOMEM;
    return NULL;
  }
  return pool_alloc(pool, total, 0, true);
}

CORONA_API void *corona_pool_aligned_malloc(corona_pool *h, size_t size, size_t alignment) {
  cr_pool_t *pool = live_pool(h, "pool_aligned_malloc");
  if (pool == NULL || alignment == 0 || (alignment & (alignment - 1)) != 0) {
    errno = EINVAL;
    return NULL;
  }
  return pool_alloc(pool, size, alignment, false);
}

/* ---- free ------------------------------------------------------------------- */

void cr_pool_free_small(cr_pool_t *pool, void *p, unsigned kind) {
  cr_tls_t *tls = cr_pool_tls(pool);
  if (tls != NULL) cr_free_known_kind(p, kind, tls, cr_free_not_small);
  else cr_block_free_remote(cr_block_of(p, kind), p);
}

CORONA_API void corona_pool_free(corona_pool *h, void *p) {
  cr_pool_t *pool = live_pool(h, "pool_free");
  if (pool == NULL || p == NULL) return;
  unsigned kind = cr_pagemap_kind((uintptr_t)p);
  if (cr_owner_pool(p, kind) != pool) cr_fatal("pool_free(): not an object of this pool:", p);
  if (cr_kind_is_small(kind)) cr_pool_free_small(pool, p, kind);
  else cr_large_free(cr_large_header(p, kind));
}

CORONA_API void *corona_pool_realloc(corona_pool *h, void *p, size_t size) {
  cr_pool_t *pool = live_pool(h, "pool_realloc");
  if (pool == NULL) {
    errno = EINVAL;
    return NULL;
  }
  if (p == NULL) return pool_alloc(pool, size, 0, false);
  unsigned kind = cr_pagemap_kind((uintptr_t)p);
  if (cr_owner_pool(p, kind) != pool) cr_fatal("pool_realloc(): not an object of this pool:", p);
  if (size == 0) {
    corona_pool_free(h, p);
    return NULL;
  }
  if (size > cr_max_request) {
    errno = ENOMEM;
    return NULL;
  }
  size_t have = cr_usable_size_raw(p, kind);
  void *q = cr_resize_in_place(p, kind, have, size, 0);
  if (q != NULL) return q;
  q = pool_alloc(pool, size, 0, false);
  if (q == NULL) return NULL; /* p stays valid */
  memcpy(q, p, have < size ? have : size);
  corona_pool_free(h, p);
  return q;
}

CORONA_API corona_pool *corona_pool_identify(void *p) {
  cr_pool_t *pool = cr_owner_pool(p, cr_pagemap_kind((uintptr_t)p));
  return pool != NULL && pool != &cr_default_pool ? (corona_pool *)(void *)pool : NULL;
}

/* ---- create, reset, destroy -------------------------------------------------- */

CORONA_API int corona_pool_create(const corona_pool_policy *policy, corona_pool **out) {
  if (policy == NULL || out == NULL || policy->raw_alloc == NULL || (!policy->fixed && policy->raw_free == NULL))
    return EINVAL;
  cr_init();
  cr_lock(&pools_lock);
  unsigned id = 1;
  while (id < CORONA_MAX_POOLS && registry[id] != NULL) id++;
  if (id == CORONA_MAX_POOLS) {
    cr_unlock(&pools_lock);
    return ENOMEM;
  }
  cr_pool_t *pool = slots[id];
  if (pool == NULL && (pool = slots[id] = cr_meta_alloc(sizeof *pool)) == NULL) {
    cr_unlock(&pools_lock);
    return ENOMEM;
  }
  /* A reused struct keeps its recycled TLS structs, region descriptors and
   * generation; everything else starts from zero. */
  cr_tls_t *free_tls = pool->free_tls;
  cr_region_t *free_descs = pool->backend.free_descs;
  uint64_t gen = cr_load_relaxed(&pool->gen);
  memset(pool, 0, sizeof *pool);
  pool->free_tls = free_tls;
  pool->backend.free_descs = free_descs;
  cr_store_relaxed(&pool->gen, gen);
  pool->id = id;
  pool->source = (cr_source_t){.raw_alloc = policy->raw_alloc,
                               .raw_free = policy->raw_free,
                               .pool_id = policy->pool_id,
                               .granularity = policy->granularity ? policy->granularity : CORONA_POOL_GRANULARITY,
                               .fixed = policy->fixed,
                               .keep_all = policy->keep_all_memory};
  pool->backend.source = &pool->source;
  cr_pool_set_ranks(pool, true);
  cr_store_relaxed(&pool->state, CR_POOL_LIVE);
  registry[id] = pool;
  cr_unlock(&pools_lock);
  *out = (corona_pool *)(void *)pool;
  return 0;
}

/* Whether a registered header lies in one of the pool's chunks. */
static bool in_pool(void *ctx, uintptr_t header) {
  const cr_pool_t *pool = ctx;
  for (const cr_chunk_t *c = pool->source.chunks; c != NULL; c = c->next)
    if (header >= (uintptr_t)c->ptr && header < (uintptr_t)c->ptr + c->bytes) return true;
  return false;
}

/* Forgets every object of the pool: backrefs, per-thread state, caches.
 * pools_lock held; nobody uses the pool. */
static void forget_objects(cr_pool_t *pool) {
  cr_backref_release_if(in_pool, pool);
  for (cr_tls_t *t = pool->threads; t != NULL; t = t->pool_next) {
    /* In place: other threads' tables keep pointing at their struct. */
    size_t keep_from = offsetof(cr_tls_t, pool_next);
    memset(t, 0, offsetof(cr_tls_t, pool));
    memset((char *)t + offsetof(cr_tls_t, partial), 0, keep_from - offsetof(cr_tls_t, partial));
    cr_bins_init(t);
    for (unsigned bin = 0; bin < CORONA_NUM_BINS; bin++) cr_store_relaxed(&t->inbox.mailbox[bin], NULL);
  }
  pool->empty = pool->empty_oldest = NULL;
  pool->empty_count = 0;
  for (unsigned bin = 0; bin < CORONA_NUM_BINS; bin++) cr_store_relaxed(&pool->orphans[bin].head, NULL);
  memset(pool->loc.bins, 0, sizeof pool->loc.bins);
  pool->loc.oldest = pool->loc.newest = NULL;
  pool->loc.bytes = 0;
  cr_store_relaxed(&pool->large_in_use, 0);
  CR_STAT(cr_store_relaxed(&pool->small_in_use, 0));
}

CORONA_API int corona_pool_reset(corona_pool *h) {
  cr_pool_t *pool = live_pool(h, "pool_reset");
  if (pool == NULL) return EINVAL;
  cr_lock(&pools_lock);
  forget_objects(pool);
  cr_backend_t *be = &pool->backend;
  cr_lock(&be->lock);
  for (cr_region_t *r = be->large_regions; r != NULL; r = r->next) {
    memset(r->free_map, 0, sizeof r->free_map);
    for (size_t i = 0; i < r->size / CORONA_PAGE_SIZE; i++) r->free_map[i >> 6] |= (uint64_t)1 << (i & 63);
    r->used = 0;
    cr_pagemap_set((uintptr_t)r->base, r->size, CR_KIND_LARGE); /* slabs were marked with their class */
  }
  cr_store_relaxed(&be->slab_bytes, 0); /* every slab and medium block went with its region's pages */
  for (cr_chunk_t *c = pool->source.chunks; c != NULL; c = c->next) {
    if (!c->own || c->own_free) continue;
    c->own_free = true; /* kept for the next big block */
    cr_pagemap_set((uintptr_t)c->carve, (size_t)(c->end - c->carve), c->kind_before);
  }
  cr_unlock(&be->lock);
  cr_unlock(&pools_lock);
  return 0;
}

CORONA_API int corona_pool_destroy(corona_pool *h) {
  cr_pool_t *pool = live_pool(h, "pool_destroy");
  if (pool == NULL) return EINVAL;
  cr_lock(&pools_lock);
  forget_objects(pool);
  /* Every TLS struct of the pool becomes free for the id's next pool. */
  for (cr_tls_t *t = pool->threads, *next; t != NULL; t = next) {
    next = t->pool_next;
    t->pool_next = pool->free_tls;
    pool->free_tls = t;
  }
  pool->threads = NULL;
  cr_store_relaxed(&pool->thread_count, 0);
  cr_backend_t *be = &pool->backend;
  for (cr_region_t *r = be->large_regions, *next; r != NULL; r = next) {
    next = r->next;
    r->next = be->free_descs;
    be->free_descs = r;
  }
  be->large_regions = NULL;
  cr_chunk_t *chunks = pool->source.chunks;
  pool->source.chunks = NULL;
  for (cr_chunk_t *c = chunks; c != NULL; c = c->next) /* regions and own blocks alike */
    cr_pagemap_set((uintptr_t)c->start, (size_t)(c->end - c->start), c->kind_before);
  cr_store_relaxed(&be->mapped_bytes, 0);
  cr_store_relaxed(&be->slab_bytes, 0);
  cr_store_relaxed(&pool->gen, cr_load_relaxed(&pool->gen) + 1); /* every thread's entry goes stale */
  cr_store_relaxed(&pool->state, CR_POOL_DEAD);
  registry[pool->id] = NULL;
  /* A create may reuse the struct as soon as the lock is released. */
  int (*raw_free)(intptr_t, void *, size_t) = pool->source.raw_free;
  intptr_t pool_id = pool->source.pool_id;
  cr_unlock(&pools_lock);
  /* Outside the lock: raw_free is the caller's code. */
  for (cr_chunk_t *c = chunks, *next; c != NULL; c = next) {
    next = c->next;
    if (raw_free != NULL) raw_free(pool_id, c->ptr, c->bytes);
    cr_chunk_desc_free(c);
  }
  return 0;
}
