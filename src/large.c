/* large.c — objects above CORONA_MAX_SMALL, straight from the OS.
 * Layout of one mapping (aligned to and sized in whole 16 KB granules, so
 * no other mapping shares a granule and the page-map entry of the user
 * pointer's granule belongs to this object alone):
 *
 *   base ... [cr_large_t header, 64 B][user memory ...................] end
 *            user - 64                 user = base + max(64, alignment)
 *
 * The local and global large-object caches and the coalescing backend come
 * later; they keep this header. */
#include <errno.h>

#include "internal/internal.h"
#include "internal/os.h"

static inline uintptr_t granule_of(const void *p) {
  return (uintptr_t)p & ~(uintptr_t)(CORONA_SLAB_SIZE - 1);
}

void *cr_large_alloc(cr_pool_t *pool, size_t size, size_t alignment, bool zero) {
  (void)zero; /* fresh mappings read as zero */
  cr_init();
  if (size > CORONA_MAX_REQUEST || alignment > CORONA_MAX_REQUEST) goto oom;
  size_t offset = alignment > CORONA_LARGE_HEADER ? alignment : CORONA_LARGE_HEADER;
  /* At least one granule past the user pointer even for size 0 (aligned
   * requests route small sizes here), so the pointer lies in the mapping. */
  size_t body = size < CORONA_MIN_ALIGN ? CORONA_MIN_ALIGN : size;
  size_t total = (offset + body + CORONA_SLAB_SIZE - 1) & ~(CORONA_SLAB_SIZE - 1);
  size_t map_align = alignment > CORONA_SLAB_SIZE ? alignment : CORONA_SLAB_SIZE;
  char *base = cr_os_map(total, map_align);
  if (base == NULL) goto oom;
  char *user = base + offset;
  cr_large_t *h = (cr_large_t *)(user - CORONA_LARGE_HEADER);
  h->magic = CR_LARGE_MAGIC;
  h->user = user;
  h->base = base;
  h->mapped = total;
  h->size = size;
  h->pool = pool;
  unsigned kind = ((uintptr_t)user & (CORONA_SLAB_SIZE - 1)) == 0 ? CR_KIND_LARGE_ALIGNED : CR_KIND_LARGE;
  if (!cr_pagemap_set(granule_of(user), CORONA_SLAB_SIZE, (uint8_t)kind)) {
    cr_os_unmap(base, total);
    goto oom;
  }
  return user;
oom:
  errno = ENOMEM;
  return NULL;
}

cr_large_t *cr_large_header(const void *p, unsigned kind) {
  uintptr_t off = (uintptr_t)p & (CORONA_SLAB_SIZE - 1);
  /* Only offsets where the header lies inside this object's own mapping are
   * read at all, so a bad pointer cannot fault here. */
  if (kind == CR_KIND_LARGE) {
    if (off < CORONA_LARGE_HEADER || (off & (CORONA_MIN_ALIGN - 1)) != 0) return NULL;
  } else if (kind != CR_KIND_LARGE_ALIGNED || off != 0) {
    return NULL;
  }
  cr_large_t *h = (cr_large_t *)((char *)p - CORONA_LARGE_HEADER);
  if (h->magic != CR_LARGE_MAGIC || h->user != p) return NULL;
  return h;
}

void cr_large_free(cr_large_t *h) {
  h->magic = 0;
  cr_pagemap_set(granule_of(h->user), CORONA_SLAB_SIZE, CR_KIND_NONE);
  cr_os_unmap(h->base, h->mapped);
}
