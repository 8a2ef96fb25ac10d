/* meta.c (layer: meta) — metadata memory: TLS structs and region
 * descriptors come from OS chunks, never from malloc, and are never freed;
 * and the count of metadata bytes mapped (page-map leaves, backref chunks,
 * these chunks), which the statistics report. */
#include "internal/meta.h"
#include "internal/os.h"

static _Atomic(size_t) meta_mapped;
#if CORONA_STATS
_Atomic(bool) cr_stats_on;
#endif

void cr_meta_mapped(size_t bytes) { atomic_fetch_add_explicit(&meta_mapped, bytes, memory_order_relaxed); }
size_t cr_meta_mapped_bytes(void) { return cr_load_relaxed(&meta_mapped); }

/* ---- metadata: TLS structs come from OS chunks, never from malloc ------- */
#define META_CHUNK ((size_t)64 << 10)
static cr_lock_t meta_lock = CR_LOCK_INIT(CR_RANK_META);
static char *meta_cur, *meta_end; /* lock(meta_lock) */

void cr_meta_fork_lock(bool take) {
  if (take) cr_lock(&meta_lock);
  else cr_unlock(&meta_lock);
}

void *cr_meta_alloc(size_t size) {
  size = (size + CORONA_CACHE_LINE - 1) & ~(size_t)(CORONA_CACHE_LINE - 1);
  cr_lock(&meta_lock);
  if ((size_t)(meta_end - meta_cur) < size) {
    char *chunk = cr_os_map(META_CHUNK, 0, 0, CR_OS_META);
    if (chunk == NULL) {
      cr_unlock(&meta_lock);
      return NULL;
    }
    meta_cur = chunk;
    meta_end = chunk + META_CHUNK;
    CR_STAT(cr_meta_mapped(META_CHUNK));
  }
  void *p = meta_cur;
  meta_cur += size;
  cr_unlock(&meta_lock);
  return p;
}
