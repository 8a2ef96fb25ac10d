/* backend_user.c (layer: backend) — a user pool's memory: the chunks its
 * raw_alloc gives (descriptors from metadata memory, recycled), cut into
 * the backend's regions, and the chunks of their own that hold blocks too
 * big for a region.  backend.c calls in here where be->source is set; every
 * chunk field is guarded by the pool's backend lock (backend.h). */
#include "internal/backend.h"

static inline char *align_up(char *p, size_t to) { return (char *)(((uintptr_t)p + to - 1) & ~(uintptr_t)(to - 1)); }
static inline char *align_down(char *p, size_t to) { return (char *)((uintptr_t)p & ~(uintptr_t)(to - 1)); }

/* Chunk descriptors: metadata memory, recycled. */
static cr_lock_t chunk_desc_lock = CR_LOCK_INIT(CR_RANK_CHUNK_DESC);
static cr_chunk_t *chunk_desc_free; /* lock(chunk_desc_lock) */

cr_chunk_t *cr_chunk_desc_alloc(void) {
  cr_lock(&chunk_desc_lock);
  cr_chunk_t *c = chunk_desc_free;
  if (c != NULL) chunk_desc_free = c->next;
  cr_unlock(&chunk_desc_lock);
  return c != NULL ? c : cr_meta_alloc(sizeof *c);
}

void cr_chunk_desc_fork_lock(bool take) {
  if (take) cr_lock(&chunk_desc_lock);
  else cr_unlock(&chunk_desc_lock);
}

void cr_chunk_desc_free(cr_chunk_t *c) {
  cr_lock(&chunk_desc_lock);
  c->next = chunk_desc_free;
  chunk_desc_free = c;
  cr_unlock(&chunk_desc_lock);
}

/* A new chunk of at least need usable (16 KB-aligned) bytes from raw_alloc;
 * NULL when the pool is fixed and has asked already, or raw_alloc fails. */
static cr_chunk_t *chunk_new_locked(cr_backend_t *be, size_t need, bool own) {
  cr_source_t *src = be->source;
  if (src->fixed && src->asked) return NULL;
  size_t bytes = ((need + CORONA_SLAB_SIZE - 1) & ~(CORONA_SLAB_SIZE - 1)) + CORONA_SLAB_SIZE; /* room to align */
  if (bytes < need) return NULL;
  if (!own && bytes < src->granularity) bytes = src->granularity;
  cr_chunk_t *c = cr_chunk_desc_alloc();
  if (c == NULL) return NULL;
  /* A fixed pool's raw_alloc may answer with its buffer whatever was
   * asked: bytes is whatever it says it gave. */
  char *ptr = src->raw_alloc(src->pool_id, &bytes);
  src->asked = true;
  if (ptr == NULL) {
    cr_chunk_desc_free(c);
    return NULL;
  }
  c->ptr = ptr;
  c->bytes = bytes;
  c->carve = align_up(ptr, CORONA_SLAB_SIZE);
  c->end = align_down(ptr + bytes, CORONA_SLAB_SIZE);
  if (c->end < c->carve) c->end = c->carve;
  c->start = c->carve;
  /* Memory inside a corona large object (raw_alloc = corona_malloc) is marked
   * LARGE throughout; anything else is not corona's. */
  c->kind_before = c->end > c->carve && cr_pagemap_kind((uintptr_t)c->carve) != CR_KIND_NONE ? CR_KIND_LARGE : CR_KIND_NONE;
  c->own = own;
  c->own_free = false;
  c->next = src->chunks;
  src->chunks = c;
  atomic_fetch_add_explicit(&be->mapped_bytes, bytes, memory_order_relaxed);
  return c;
}

/* Memory for a user region of at least need bytes: the rest of a chunk (up
 * to the largest region), else a new chunk.  *size gets the region's size. */
char *cr_user_region_memory(cr_backend_t *be, size_t need, size_t *size) {
  cr_chunk_t *c;
  for (c = be->source->chunks; c != NULL; c = c->next)
    if (!c->own && (size_t)(c->end - c->carve) >= need) break;
  if (c == NULL && (c = chunk_new_locked(be, need, false)) == NULL) return NULL;
  if ((size_t)(c->end - c->carve) < need) return NULL; /* raw_alloc gave too little */
  size_t take = (size_t)(c->end - c->carve);
  if (take > CORONA_LARGE_REGION_SIZE) take = CORONA_LARGE_REGION_SIZE;
  char *base = c->carve;
  c->carve += take;
  *size = take;
  return base;
}

/* A user pool's block too big for a region: a chunk of its own (a free
 * one kept from before if it is big enough). */
char *cr_user_own_map(cr_backend_t *be, size_t bytes) {
  if (be->source->fixed) return NULL; /* its one chunk is all regions */
  cr_lock(&be->lock);
  cr_chunk_t *c;
  for (c = be->source->chunks; c != NULL; c = c->next)
    if (c->own_free && (size_t)(c->end - c->carve) >= bytes) break;
  if (c == NULL) c = chunk_new_locked(be, bytes, true);
  if (c != NULL && (size_t)(c->end - c->carve) < bytes) c = NULL; /* raw_alloc gave too little */
  if (c != NULL) c->own_free = false;
  cr_unlock(&be->lock);
  if (c == NULL) return NULL;
  if (!cr_pagemap_set((uintptr_t)c->carve, bytes, CR_KIND_LARGE)) {
    cr_lock(&be->lock);
    c->own_free = true;
    cr_unlock(&be->lock);
    return NULL;
  }
  return c->carve;
}

void cr_user_own_unmap(cr_backend_t *be, char *p, size_t bytes) {
  cr_source_t *src = be->source;
  cr_lock(&be->lock);
  cr_chunk_t **link = &src->chunks, *c;
  while ((c = *link) != NULL && !(c->own && c->carve == p)) link = &c->next;
  cr_pagemap_set((uintptr_t)p, bytes, c != NULL ? c->kind_before : CR_KIND_NONE);
  if (c != NULL && !src->keep_all && src->raw_free != NULL) {
    *link = c->next;
    atomic_fetch_sub_explicit(&be->mapped_bytes, c->bytes, memory_order_relaxed);
    cr_unlock(&be->lock);
    src->raw_free(src->pool_id, c->ptr, c->bytes);
    cr_chunk_desc_free(c);
    return;
  }
  if (c != NULL) c->own_free = true;
  cr_unlock(&be->lock);
}

