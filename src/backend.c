/* backend.c — where slab blocks come from: OS regions of CORONA_REGION_SIZE,
 * aligned to their size and marked in the page map, carved into 16 KB slabs.
 * A slab given back has its pages returned to the OS (purged) and its
 * address kept for reuse. */
#include "internal/internal.h"
#include "internal/os.h"

cr_block_t *cr_backend_slab_alloc(cr_backend_t *be) {
  cr_lock(&be->lock);
  cr_block_t *b = be->free_slabs;
  if (b != NULL) {
    be->free_slabs = b->next;
    cr_unlock(&be->lock);
    return b;
  }
  if (be->region_cur == be->region_end) {
    char *region = cr_os_map(CORONA_REGION_SIZE, CORONA_REGION_SIZE);
    if (region == NULL) {
      cr_unlock(&be->lock);
      return NULL;
    }
    if (!cr_pagemap_set((uintptr_t)region, CORONA_REGION_SIZE, CR_KIND_SLAB_FREE)) {
      cr_os_unmap(region, CORONA_REGION_SIZE);
      cr_unlock(&be->lock);
      return NULL;
    }
    be->region_cur = region;
    be->region_end = region + CORONA_REGION_SIZE;
    be->mapped_bytes += CORONA_REGION_SIZE;
  }
  b = (cr_block_t *)be->region_cur;
  be->region_cur += CORONA_SLAB_SIZE;
  cr_unlock(&be->lock);
  return b;
}

void cr_backend_slab_free(cr_backend_t *be, cr_block_t *b) {
  cr_pagemap_set((uintptr_t)b, CORONA_SLAB_SIZE, CR_KIND_SLAB_FREE);
  cr_os_purge(b, CORONA_SLAB_SIZE);
  cr_lock(&be->lock);
  b->next = be->free_slabs;
  be->free_slabs = b;
  cr_unlock(&be->lock);
}
