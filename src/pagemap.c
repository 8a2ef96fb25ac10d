/* pagemap.c (layer: meta) — the map from address to "what corona keeps there".
 * Root: one entry per 4 GB of the addresses below 2^CORONA_MAP_BITS (512 KB
 * of zero BSS for 48 bits, touched only where corona maps memory), holding the
 * leaf's distance from the static zero leaf in words (see meta.h).  The map's width
 * is fixed at compile time, so that a lookup is a shift and a mask, the same
 * instructions whatever the machine; the machine's own width, read at
 * initialisation, only bounds the requests (cr_max_request).
 * Leaf: one byte per 16 KB granule, 256 KB, mapped on first use and never
 * freed.  Entries are written
 * by the thread that maps or frees the memory they describe, before any
 * pointer into that memory escapes; readers get the entry through the same
 * hand-off that gave them the pointer. */
#include "internal/meta.h"
#include "internal/os.h"

#define LEAF_ENTRIES ((size_t)1 << CR_PAGEMAP_LEAF_BITS)

_Atomic(uintptr_t) cr_pagemap_root[(size_t)1 << CR_PAGEMAP_ROOT_BITS];
_Alignas(8) _Atomic(uint8_t) cr_pagemap_zero[LEAF_ENTRIES]; /* never written; 8-aligned: see meta.h */

static _Atomic(uint8_t) *pagemap_leaf(uintptr_t granule) {
  size_t i = granule >> CR_PAGEMAP_LEAF_BITS;
  uintptr_t off = cr_load_acquire(&cr_pagemap_root[i]);
  if (off != 0) return (_Atomic(uint8_t) *)cr_pagemap_leaf_at(off);
  _Atomic(uint8_t) *fresh = cr_os_map(LEAF_ENTRIES, 0, 0, CR_OS_META);
  if (fresh == NULL) return NULL;
  /* never 0: distinct objects; exact: both are 8-aligned.  The shift is
   * arithmetic (gcc and clang), so a leaf below the zero leaf wraps back. */
  uintptr_t fresh_off = (uintptr_t)((intptr_t)((uintptr_t)fresh - (uintptr_t)cr_pagemap_zero) >> 3);
  /* acq_rel: publishes the (zeroed) leaf; on failure observes the winner's. */
  if (cr_cas_strong_acq_rel(&cr_pagemap_root[i], &off, fresh_off)) {
    CR_STAT(cr_meta_mapped(LEAF_ENTRIES));
    return fresh;
  }
  cr_os_unmap(fresh, LEAF_ENTRIES);
  return (_Atomic(uint8_t) *)cr_pagemap_leaf_at(off);
}

size_t cr_max_request = (size_t)1 << (CORONA_MAP_BITS - 1);

void cr_pagemap_init(void) {
  unsigned bits = cr_os_info()->address_bits;
  if (bits > CORONA_MAP_BITS) bits = CORONA_MAP_BITS;
  cr_max_request = (size_t)1 << (bits - 1);
}

/* Clears entries [from, to) of leaf i.  A range no leaf was ever mapped
 * for reads as CR_KIND_NONE already, and whole pages of a leaf go back to
 * the OS rather than being written with zeros, so that the marks of a huge
 * object cost nothing once it is gone.  Only pages all of whose entries are
 * being cleared are purged: no other thread writes those (their memory is
 * the caller's until it unmaps it), and a reader sees the old kind or zero. */
static void leaf_clear(size_t i, size_t from, size_t to) {
  uintptr_t off = cr_load_acquire(&cr_pagemap_root[i]);
  if (off == 0) return;
  _Atomic(uint8_t) *leaf = (_Atomic(uint8_t) *)cr_pagemap_leaf_at(off);
  size_t page = cr_os_info()->page_size;
  size_t a = (from + page - 1) & ~(page - 1), b = to & ~(page - 1);
  if (a >= b) a = b = to;
  for (size_t j = from; j < a; j++) cr_store_relaxed(&leaf[j], CR_KIND_NONE);
  if (a < b) cr_os_purge((void *)&leaf[a], b - a);
  for (size_t j = b; j < to; j++) cr_store_relaxed(&leaf[j], CR_KIND_NONE);
}

bool cr_pagemap_set(uintptr_t addr, size_t size, uint8_t kind) {
  uintptr_t g = addr >> CORONA_SLAB_SHIFT;
  uintptr_t end = (addr + size) >> CORONA_SLAB_SHIFT;
  /* A mapping the OS placed beyond the map cannot be marked: the caller
   * gives it back and its request fails. */
  if (end > ((uintptr_t)1 << (CORONA_MAP_BITS - CORONA_SLAB_SHIFT))) return false;
  while (g < end) { /* a leaf at a time */
    uintptr_t stop = (g | (LEAF_ENTRIES - 1)) + 1;
    if (stop > end) stop = end;
    size_t from = g & (LEAF_ENTRIES - 1), to = from + (size_t)(stop - g);
    if (kind == CR_KIND_NONE) {
      leaf_clear(g >> CR_PAGEMAP_LEAF_BITS, from, to);
    } else {
      _Atomic(uint8_t) *leaf = pagemap_leaf(g);
      if (leaf == NULL) return false;
      for (size_t j = from; j < to; j++) cr_store_relaxed(&leaf[j], kind);
    }
    g = stop;
  }
  return true;
}
