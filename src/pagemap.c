/* pagemap.c — the map from address to "what corona keeps there".
 * Root: one entry per 2 GB of the 47-bit address space (512 KB of zero
 * BSS, touched only where corona maps memory), holding the leaf's offset
 * from the static zero leaf (see internal.h).  Leaf: one byte per 16 KB
 * granule, 128 KB, mapped on first use and never freed.  Entries are written
 * by the thread that maps or frees the memory they describe, before any
 * pointer into that memory escapes; readers get the entry through the same
 * hand-off that gave them the pointer. */
#include "internal/internal.h"
#include "internal/os.h"

#define LEAF_ENTRIES ((size_t)1 << CR_PAGEMAP_LEAF_BITS)

_Atomic(uintptr_t) cr_pagemap_root[(size_t)1 << CR_PAGEMAP_ROOT_BITS];
_Atomic(uint8_t) cr_pagemap_zero[LEAF_ENTRIES]; /* never written */

static _Atomic(uint8_t) *pagemap_leaf(uintptr_t granule) {
  size_t i = granule >> CR_PAGEMAP_LEAF_BITS;
  uintptr_t off = cr_load_acquire(&cr_pagemap_root[i]);
  if (off != 0) return (_Atomic(uint8_t) *)((uintptr_t)cr_pagemap_zero + off);
  _Atomic(uint8_t) *fresh = cr_os_map(LEAF_ENTRIES, 0);
  if (fresh == NULL) return NULL;
  uintptr_t fresh_off = (uintptr_t)fresh - (uintptr_t)cr_pagemap_zero; /* never 0: distinct objects */
  /* acq_rel: publishes the (zeroed) leaf; on failure observes the winner's. */
  if (cr_cas_strong_acq_rel(&cr_pagemap_root[i], &off, fresh_off)) {
    CR_STAT(cr_stats_meta_mapped(LEAF_ENTRIES));
    return fresh;
  }
  cr_os_unmap(fresh, LEAF_ENTRIES);
  return (_Atomic(uint8_t) *)((uintptr_t)cr_pagemap_zero + off);
}

bool cr_pagemap_set(uintptr_t addr, size_t size, uint8_t kind) {
  uintptr_t g = addr >> CORONA_SLAB_SHIFT;
  uintptr_t end = (addr + size) >> CORONA_SLAB_SHIFT;
  if (end > ((uintptr_t)1 << (CORONA_ADDRESS_BITS - CORONA_SLAB_SHIFT))) return false;
  for (; g < end; g++) {
    _Atomic(uint8_t) *leaf = pagemap_leaf(g);
    if (leaf == NULL) return false;
    cr_store_relaxed(&leaf[g & (LEAF_ENTRIES - 1)], kind);
  }
  return true;
}
