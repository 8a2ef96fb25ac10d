/* backref.c (layer: meta) — the backref table: index -> registered header.
 * Two levels: a static top array of chunk pointers (512 KB of BSS, touched
 * only as far as it is used) and chunks of 16384 entries mapped on demand,
 * so the table grows with the heap up to 2^30 entries (16 TB of slabs).
 * A free entry holds (next free index << 1) | 1, so it never equals a
 * header (headers are aligned) and lookups of freed indexes fail. */
#include "internal/meta.h"
#include "internal/os.h"

#define CHUNK_BITS 14
#define CHUNK_ENTRIES ((size_t)1 << CHUNK_BITS)
#define TOP_ENTRIES ((size_t)1 << 16)

static _Atomic(_Atomic(uintptr_t) *) top[TOP_ENTRIES];
static cr_lock_t backref_lock = CR_LOCK_INIT(CR_RANK_BACKREF);
static _Atomic(uint32_t) next_unused = 1; /* index 0 is never handed out */
static uint32_t free_head;                /* lock(backref_lock): 0 = none */

static _Atomic(uintptr_t) *slot(uint32_t idx) {
  _Atomic(uintptr_t) *chunk = cr_load_acquire(&top[idx >> CHUNK_BITS]);
  return chunk == NULL ? NULL : &chunk[idx & (CHUNK_ENTRIES - 1)];
}

uint32_t cr_backref_alloc(void *header) {
  cr_lock(&backref_lock);
  uint32_t idx = free_head;
  if (idx != 0) {
    free_head = (uint32_t)(cr_load_relaxed(slot(idx)) >> 1);
  } else {
    idx = cr_load_relaxed(&next_unused);
    if ((idx >> CHUNK_BITS) >= TOP_ENTRIES) goto fail;
    if (cr_load_relaxed(&top[idx >> CHUNK_BITS]) == NULL) {
      _Atomic(uintptr_t) *chunk = cr_os_map(CHUNK_ENTRIES * sizeof(uintptr_t), 0, 0, CR_OS_META);
      if (chunk == NULL) goto fail;
      CR_STAT(cr_meta_mapped(CHUNK_ENTRIES * sizeof(uintptr_t)));
      cr_store_release(&top[idx >> CHUNK_BITS], chunk); /* pairs with slot()'s acquire */
    }
    cr_store_release(&next_unused, idx + 1);
  }
  cr_store_release(slot(idx), (uintptr_t)header);
  cr_unlock(&backref_lock);
  return idx;
fail:
  cr_unlock(&backref_lock);
  return 0;
}

void cr_backref_free_many(const uint32_t *idx, size_t n) {
  cr_lock(&backref_lock);
  for (size_t i = 0; i < n; i++) {
    if (idx[i] == 0) continue;
    cr_store_relaxed(slot(idx[i]), ((uintptr_t)free_head << 1) | 1);
    free_head = idx[i];
  }
  cr_unlock(&backref_lock);
}

void cr_backref_free(uint32_t idx) {
  if (idx != 0) cr_backref_free_many(&idx, 1);
}

void cr_backref_fork_lock(bool take) {
  if (take) cr_lock(&backref_lock);
  else cr_unlock(&backref_lock);
}

void cr_backref_set(uint32_t idx, void *header) { cr_store_release(slot(idx), (uintptr_t)header); }

void *cr_backref_get(uint32_t idx) {
  if (idx == 0 || idx >= cr_load_acquire(&next_unused)) return NULL;
  _Atomic(uintptr_t) *s = slot(idx);
  if (s == NULL) return NULL;
  uintptr_t v = cr_load_acquire(s);
  return (v & 1) ? NULL : (void *)v;
}

void cr_backref_release_if(bool (*owned)(void *ctx, uintptr_t header), void *ctx) {
  cr_lock(&backref_lock);
  uint32_t end = cr_load_relaxed(&next_unused);
  for (uint32_t idx = 1; idx < end; idx++) {
    _Atomic(uintptr_t) *s = slot(idx);
    uintptr_t v = cr_load_relaxed(s);
    if ((v & 1) != 0 || !owned(ctx, v)) continue; /* free, or someone else's */
    cr_store_relaxed(s, ((uintptr_t)free_head << 1) | 1);
    free_head = idx;
  }
  cr_unlock(&backref_lock);
}
