/* backend_own.c (layer: backend) — the biggest blocks, each in a mapping of
 * its own (above the MMAP_THRESHOLD option): mapped, unmapped, cut in two
 * or joined, moved into another and remapped to grow without a copy.  The
 * backend's lock is not needed: a mapping of its own belongs to the one
 * large object (or cache entry) that holds it; only the backend's byte
 * counters, atomics, are shared. */
#include "internal/backend.h"
#include "internal/options.h"
#include "internal/os.h"
#include "internal/report.h"

/* ---- own mappings for the biggest blocks ---------------------------------- */

char *cr_backend_own_map(cr_backend_t *be, size_t bytes, bool huge, size_t align, size_t offset) {
  if (be->source != NULL) return cr_user_own_map(be, bytes);
  if (align == 0) align = huge ? CORONA_HUGE_SPAN : CORONA_SLAB_SIZE;
  char *p = cr_os_map(bytes, align, offset, huge ? CR_OS_HUGE : 0);
  if (p == NULL) return NULL;
  /* Every granule is marked, so a header lookup below any pointer of the
   * object stays inside the mapping; and only the mapping's granules: an
   * alignment's slack went back to the OS in cr_os_map, unmarked. */
  if (!cr_pagemap_set((uintptr_t)p, bytes, CR_KIND_LARGE)) {
    cr_os_unmap(p, bytes);
    return NULL;
  }
  cr_backend_mapped_add(be, bytes);
  atomic_fetch_add_explicit(&be->own_count, 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&be->own_bytes, bytes, memory_order_relaxed);
  if (cr_verbose()) cr_verbose_event(huge ? "mapped own mapping (huge pages advised)" : "mapped own mapping", p, bytes);
  return p;
}

void cr_backend_own_unmap(cr_backend_t *be, char *p, size_t bytes) {
  if (be->source != NULL) {
    cr_user_own_unmap(be, p, bytes);
    return;
  }
  cr_pagemap_set((uintptr_t)p, bytes, CR_KIND_NONE);
  cr_os_unmap(p, bytes);
  atomic_fetch_sub_explicit(&be->mapped_bytes, bytes, memory_order_relaxed);
  atomic_fetch_sub_explicit(&be->own_count, 1, memory_order_relaxed);
  atomic_fetch_sub_explicit(&be->own_bytes, bytes, memory_order_relaxed);
  cr_backend_released_add(be, bytes);
  if (cr_verbose()) cr_verbose_event("unmapped own mapping", p, bytes);
}

bool cr_backend_own_split(cr_backend_t *be, char *p, size_t bytes, size_t at) {
  if (be->source != NULL || !cr_os_cut(p, bytes, at, false)) return false;
  /* The bytes stay mapped, marked and counted: one more mapping holds them. */
  atomic_fetch_add_explicit(&be->own_count, 1, memory_order_relaxed);
  return true;
}

bool cr_backend_own_join(cr_backend_t *be, char *p, size_t bytes, size_t at) {
  if (be->source != NULL || !cr_os_cut(p, bytes, at, true)) return false;
  atomic_fetch_sub_explicit(&be->own_count, 1, memory_order_relaxed);
  return true;
}

bool cr_backend_own_move_into(cr_backend_t *be, char *src, size_t bytes, char *base, size_t size, char *dst) {
  if (be->source != NULL) return false;
  size_t lo = (size_t)(dst - base), hi = size - lo - bytes;
  /* The target of a move is a whole mapping: cut it out, and join the
   * pieces again after. */
  if (lo != 0 && !cr_os_cut(base, size, lo, false)) return false;
  if (hi != 0 && !cr_os_cut(dst, size - lo, bytes, false)) {
    if (lo != 0) cr_os_cut(base, size, lo, true);
    return false;
  }
  cr_pagemap_set((uintptr_t)src, bytes, CR_KIND_NONE); /* before the range is freed */
  bool moved = cr_os_remap(src, bytes, bytes, dst) != NULL;
  if (!moved) cr_pagemap_set((uintptr_t)src, bytes, CR_KIND_LARGE);
  if (hi != 0) cr_os_cut(dst, size - lo, bytes, true);
  if (lo != 0) cr_os_cut(base, size, lo, true);
  if (!moved) return false;
  /* The source's bytes are gone; the target's were counted with base. */
  atomic_fetch_sub_explicit(&be->mapped_bytes, bytes, memory_order_relaxed);
  atomic_fetch_sub_explicit(&be->own_count, 1, memory_order_relaxed);
  atomic_fetch_sub_explicit(&be->own_bytes, bytes, memory_order_relaxed);
  return true;
}

char *cr_backend_own_remap(cr_backend_t *be, char *p, size_t old_bytes, size_t new_bytes, bool huge) {
  if (be->source != NULL) return NULL; /* user memory cannot be remapped: the caller moves the object */
  if (new_bytes <= old_bytes) { /* shrinking in place never fails or moves */
    if (new_bytes == old_bytes) return p;
    /* Marks go before the pages: once unmapped, the range may be mapped and
     * marked by another thread. */
    cr_pagemap_set((uintptr_t)p + new_bytes, old_bytes - new_bytes, CR_KIND_NONE);
    if (cr_os_remap(p, old_bytes, new_bytes, NULL) == NULL) {
      cr_pagemap_set((uintptr_t)p + new_bytes, old_bytes - new_bytes, CR_KIND_LARGE);
      return p;
    }
    atomic_fetch_sub_explicit(&be->mapped_bytes, old_bytes - new_bytes, memory_order_relaxed);
    atomic_fetch_sub_explicit(&be->own_bytes, old_bytes - new_bytes, memory_order_relaxed);
    cr_backend_released_add(be, old_bytes - new_bytes);
    return p;
  }
  if (cr_os_remap(p, old_bytes, new_bytes, NULL) != NULL) { /* grew in place */
    if (cr_pagemap_set((uintptr_t)p + old_bytes, new_bytes - old_bytes, CR_KIND_LARGE)) {
      cr_backend_mapped_add(be, new_bytes - old_bytes);
      atomic_fetch_add_explicit(&be->own_bytes, new_bytes - old_bytes, memory_order_relaxed);
      return p;
    }
    cr_os_remap(p, new_bytes, old_bytes, NULL); /* no page-map leaf: undo */
  }
  /* Move the pages onto a fresh, already marked mapping: no copy. */
  char *q = cr_backend_own_map(be, new_bytes, huge, 0, 0);
  if (q == NULL) return NULL;
  cr_pagemap_set((uintptr_t)p, old_bytes, CR_KIND_NONE); /* before the range is freed */
  if (cr_os_remap(p, old_bytes, new_bytes, q) == NULL) {
    cr_pagemap_set((uintptr_t)p, old_bytes, CR_KIND_LARGE);
    cr_backend_own_unmap(be, q, new_bytes);
    return NULL;
  }
  atomic_fetch_sub_explicit(&be->mapped_bytes, old_bytes, memory_order_relaxed);
  atomic_fetch_sub_explicit(&be->own_count, 1, memory_order_relaxed); /* its pages live on in q */
  atomic_fetch_sub_explicit(&be->own_bytes, old_bytes, memory_order_relaxed);
  return q;
}
