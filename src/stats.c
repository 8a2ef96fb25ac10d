/* stats.c (layer: api) — statistics: the counters of counters.c summed on
 * demand under the pool lock and printed as a table or as JSON; switching
 * call counting on and off; the exit report for MALLOC_STATS=1 (on stderr,
 * or appended to STATS_FILE), which also gives debug mode its last
 * quarantine check.  With CORONA_STATS at 0 the
 * counters compile away and only the API stays. */
#include <errno.h>
#include <string.h>

#include "corona.h"
#include "internal/api.h"
#include "internal/os.h"
#include "internal/options.h"
#include "internal/report.h"

#if CORONA_STATS
/* Per-class sums are signed: counting switched on mid-run can hand back
 * objects it never saw handed out. */
static void sum_into(corona_stats *out, int64_t *alloc, int64_t *freed, cr_stats_t *s) {
  for (unsigned bin = 0; bin < CORONA_NUM_BINS; bin++) {
    alloc[bin] += (int64_t)cr_load_relaxed(&s->bin_alloc[bin]);
    freed[bin] += (int64_t)cr_load_relaxed(&s->bin_free[bin]);
  }
  out->large_allocations += cr_load_relaxed(&s->event[CR_STAT_LARGE_ALLOC]);
  out->large_frees += cr_load_relaxed(&s->event[CR_STAT_LARGE_FREE]);
  out->cache_hits += cr_load_relaxed(&s->event[CR_STAT_CACHE_HIT]);
  out->cache_misses += cr_load_relaxed(&s->event[CR_STAT_CACHE_MISS]);
  out->cross_thread_frees += cr_load_relaxed(&s->event[CR_STAT_REMOTE_FREE]);
}

/* A counter summed from several threads' copies can be read while another
 * thread is between its free and its malloc: never report "active" below 0. */
static uint64_t minus(uint64_t a, uint64_t b) { return a > b ? a - b : 0; }

/* The switch itself, with the settling of the calling thread's counts, is
 * cr_pool_set_counting's: the heap profiler switches counting too.  The
 * flag is stored before the pool lock is taken there, so a thread created
 * meanwhile either reads the new value or is on the list the switch walks. */
void cr_stats_switch(bool on) {
  cr_init();
  cr_store_relaxed(&cr_stats_on, on);
  cr_pool_set_counting(cr_tls_own());
}

static void pool_stats(cr_pool_t *pool, corona_stats *out, int64_t *alloc, int64_t *freed) {
  cr_lock(&pool->lock);
  sum_into(out, alloc, freed, &pool->stats);
  for (cr_tls_t *t = pool->threads; t != NULL; t = t->pool_next) sum_into(out, alloc, freed, &t->stats);
  cr_unlock(&pool->lock);
  /* The calling thread's own lists make its figures exact: what its free
   * lists still hold was counted as handed out, what its local lists hold
   * was freed but not counted yet. */
  cr_tls_t *self = cr_tls_own();
  if (self != NULL && self->pool == pool && cr_counting())
    for (unsigned bin = 0; bin < CORONA_NUM_BINS; bin++) {
      alloc[bin] -= cr_list_length(self->bins.free[CR_ROW(bin)]);
      freed[bin] += cr_list_length(self->bins.local[CR_ROW(bin)]);
    }
  out->memory_mapped += cr_load_relaxed(&pool->backend.mapped_bytes);
  size_t in_use = cr_load_relaxed(&pool->small_in_use) + cr_load_relaxed(&pool->large_in_use);
  out->memory_in_use += in_use;
  size_t peak = cr_load_relaxed(&pool->peak_in_use);
  out->peak_memory_in_use += peak > in_use ? peak : in_use;
}
#endif

CORONA_API int corona_stats_get(corona_stats *out) {
  if (out == NULL) return EINVAL;
  memset(out, 0, sizeof *out);
#if CORONA_STATS
  for (unsigned bin = 0; bin < CORONA_NUM_BINS; bin++) out->bins[bin].object_size = cr_bin_size[bin];
  cr_init();
  int64_t alloc[CORONA_NUM_BINS] = {0}, freed[CORONA_NUM_BINS] = {0};
  pool_stats(&cr_default_pool, out, alloc, freed);
  out->memory_mapped += cr_meta_mapped_bytes();
  out->counting = cr_load_relaxed(&cr_stats_on);
  for (unsigned bin = 0; bin < CORONA_NUM_BINS && out->counting; bin++) {
    corona_bin_stats *b = &out->bins[bin];
    b->allocations = alloc[bin] > 0 ? (uint64_t)alloc[bin] : 0;
    b->frees = freed[bin] > 0 ? (uint64_t)freed[bin] : 0;
    b->active = minus(b->allocations, b->frees);
    out->small_allocations += b->allocations;
    out->small_frees += b->frees;
  }
  out->small_objects = minus(out->small_allocations, out->small_frees);
  out->large_objects = minus(out->large_allocations, out->large_frees);
  if (out->counting) {
    out->total_allocations = out->small_allocations + out->large_allocations;
    out->total_frees = out->small_frees + out->large_frees;
    out->active_allocations = out->small_objects + out->large_objects;
  }
  return 0;
#else
  return ENOTSUP;
#endif
}

void cr_heap_figures(cr_heap_figures_t *f) {
  cr_init();
  cr_pool_t *pool = &cr_default_pool;
  memset(f, 0, sizeof *f);
  cr_lock(&pool->lock);
  size_t empty = pool->empty_count;
  cr_unlock(&pool->lock);
  cr_lock(&pool->loc.lock);
  size_t loc_bytes = pool->loc.bytes, loc_count = pool->loc.count;
  size_t loc_own = pool->loc.own_count, loc_own_bytes = pool->loc.own_bytes;
  cr_unlock(&pool->loc.lock);
  size_t dirty = cr_backend_dirty_bytes(&pool->backend);
  cr_tls_t *self = cr_tls_own(); /* the calling thread's caches are its own to read */
  if (self != NULL && self->pool == pool) {
    empty += self->empty_count + self->kept_empty; /* pooled, and resting on its partial lists */
    loc_bytes += cr_load_relaxed(&self->loc_bytes);
    loc_count += self->loc_count;
  }
  size_t slabs = cr_load_relaxed(&pool->backend.slab_bytes), empty_bytes = empty * CORONA_SLAB_SIZE;
  /* Read at different moments while other threads run: never below 0. */
  f->in_use = (slabs > empty_bytes ? slabs - empty_bytes : 0) + cr_load_relaxed(&pool->large_in_use);
  f->cached = dirty + loc_bytes + empty_bytes;
  f->cached_blocks = loc_count + empty;
  size_t meta = cr_meta_mapped_bytes(); /* only grows: the heap's peak plus today's metadata */
  f->mapped = cr_load_relaxed(&pool->backend.mapped_bytes) + meta;
  f->peak_mapped = cr_load_relaxed(&pool->backend.peak_mapped) + meta;
  if (f->peak_mapped < f->mapped) f->peak_mapped = f->mapped;
  /* Own mappings cached for reuse count as cached, not as live. */
  size_t own = cr_load_relaxed(&pool->backend.own_count), own_bytes = cr_load_relaxed(&pool->backend.own_bytes);
  f->own_count = own > loc_own ? own - loc_own : 0;
  f->own_bytes = own_bytes > loc_own_bytes ? own_bytes - loc_own_bytes : 0;
  if (f->own_bytes > f->in_use) f->own_bytes = f->in_use;
  if (f->own_bytes > f->mapped) f->own_bytes = f->mapped;
  f->released = cr_load_relaxed(&pool->backend.released);
  f->peak_in_use = f->in_use;
#if CORONA_STATS
  size_t peak = cr_load_relaxed(&pool->peak_in_use);
  if (peak > f->peak_in_use) f->peak_in_use = peak;
#endif
}

/* Appends to a buffer without allocating, cut at its end (reports can be
 * due at exit, however the process ends). */
typedef struct out_s {
  char *buf;
  size_t cap, n;
} out_t;

#define OUT(o, ...)                                                          \
  do {                                                                       \
    int k_ = snprintf((o)->buf + (o)->n, (o)->cap - (o)->n, __VA_ARGS__);    \
    if (k_ > 0) (o)->n += (size_t)k_ < (o)->cap - (o)->n ? (size_t)k_ : (o)->cap - (o)->n - 1; \
  } while (0)

/* The process's id, and its program's name into name ("?" when unknown;
 * cut at cap - 1 bytes), for the first line of a report. */
static uint64_t process_id(char *name, size_t cap) {
  uint64_t pid = cr_os_process_id(name, cap);
  if (name[0] == '\0') snprintf(name, cap, "?");
  return pid;
}

/* The table, under a first line that names the program and its process,
 * so that the reports of many processes (a pipeline, a build) can be told
 * apart. */
static void format_report(out_t *o, const corona_stats *s, int status) {
  char name[256];
  uint64_t pid = process_id(name, sizeof name);
  OUT(o, "corona statistics: %s (pid %llu)\n", name, (unsigned long long)pid);
  if (status != 0) {
    OUT(o, "  (not available: corona was built with CORONA_STATS=OFF)\n");
    return;
  }
  if (!s->counting)
    OUT(o, "  (small objects not counted: MALLOC_STATS=1 or corona_allocation_mode(CORONA_COUNT_CALLS, 1) counts them)\n");
  const struct {
    const char *label;
    uint64_t value;
  } rows[] = {
      {"total allocations", s->total_allocations}, {"total frees", s->total_frees},
      {"active allocations", s->active_allocations}, {"small allocations", s->small_allocations},
      {"small frees", s->small_frees}, {"small objects live", s->small_objects},
      {"large allocations", s->large_allocations}, {"large frees", s->large_frees},
      {"large objects live", s->large_objects}, {"large cache hits", s->cache_hits},
      {"large cache misses", s->cache_misses}, {"cross-thread frees", s->cross_thread_frees},
      {"memory mapped (bytes)", s->memory_mapped}, {"memory in use (bytes)", s->memory_in_use},
      {"peak memory in use (bytes)", s->peak_memory_in_use},
  };
  for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
    OUT(o, "  %-28s %20llu\n", rows[i].label, (unsigned long long)rows[i].value);
  OUT(o, "  %3s %6s %14s %14s %12s\n", "bin", "size", "allocations", "frees", "active");
  for (unsigned bin = 0; bin < CORONA_STATS_BINS; bin++) {
    const corona_bin_stats *b = &s->bins[bin];
    if (b->allocations == 0 && b->frees == 0) continue;
    OUT(o, "  %3u %6llu %14llu %14llu %12llu\n", bin, (unsigned long long)b->object_size,
        (unsigned long long)b->allocations, (unsigned long long)b->frees, (unsigned long long)b->active);
  }
}

CORONA_API void corona_stats_print(FILE *out) {
  corona_stats s;
  int status = corona_stats_get(&s);
  char buf[4096];
  out_t o = {buf, sizeof buf, 0};
  format_report(&o, &s, status);
  fwrite(buf, 1, o.n, out != NULL ? out : stderr); /* after the figures: fwrite may allocate */
}

/* s as a JSON string (without the quotes): ", \ and control characters
 * escaped, other bytes as they are (UTF-8 stays UTF-8). */
static void json_string(out_t *o, const char *s) {
  for (; *s != '\0'; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') OUT(o, "\\%c", c);
    else if (c < 0x20) OUT(o, "\\u%04x", c);
    else OUT(o, "%c", c);
  }
}

CORONA_API void corona_stats_print_json(FILE *out) {
  corona_stats s;
  int status = corona_stats_get(&s);
  char buf[8192], name[256];
  out_t o = {buf, sizeof buf, 0};
  uint64_t pid = process_id(name, sizeof name);
  OUT(&o, "{\"program\":\"");
  json_string(&o, name);
  OUT(&o, "\",\"pid\":%llu,\"available\":%s", (unsigned long long)pid, status == 0 ? "true" : "false");
  if (status == 0) {
    OUT(&o, ",\"counting\":%s", s.counting ? "true" : "false");
    const struct {
      const char *key;
      uint64_t value;
    } fields[] = {
        {"total_allocations", s.total_allocations}, {"total_frees", s.total_frees},
        {"active_allocations", s.active_allocations}, {"small_allocations", s.small_allocations},
        {"small_frees", s.small_frees}, {"small_objects", s.small_objects},
        {"large_allocations", s.large_allocations}, {"large_frees", s.large_frees},
        {"large_objects", s.large_objects}, {"cache_hits", s.cache_hits}, {"cache_misses", s.cache_misses},
        {"cross_thread_frees", s.cross_thread_frees}, {"memory_mapped", s.memory_mapped},
        {"memory_in_use", s.memory_in_use}, {"peak_memory_in_use", s.peak_memory_in_use},
    };
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
      OUT(&o, ",\"%s\":%llu", fields[i].key, (unsigned long long)fields[i].value);
    OUT(&o, ",\"bins\":[");
    for (unsigned bin = 0; bin < CORONA_STATS_BINS; bin++) {
      const corona_bin_stats *b = &s.bins[bin];
      OUT(&o, "%s{\"object_size\":%llu,\"allocations\":%llu,\"frees\":%llu,\"active\":%llu}", bin ? "," : "",
          (unsigned long long)b->object_size, (unsigned long long)b->allocations, (unsigned long long)b->frees,
          (unsigned long long)b->active);
    }
    OUT(&o, "]");
  }
  OUT(&o, "}\n");
  fwrite(buf, 1, o.n, out != NULL ? out : stderr);
}

/* STATS_FILE's path with each %p replaced by the process id and %% by %;
 * false when it does not fit. */
static bool stats_path(char *path, size_t cap, const char *pattern) {
  out_t o = {path, cap, 0};
  for (const char *c = pattern; *c != '\0'; c++) {
    if (c[0] == '%' && c[1] == 'p') {
      char name[8];
      OUT(&o, "%llu", (unsigned long long)cr_os_process_id(name, sizeof name));
      c++;
    } else if (c[0] == '%' && c[1] == '%') {
      OUT(&o, "%%");
      c++;
    } else {
      OUT(&o, "%c", *c);
    }
  }
  return o.n < cap - 1;
}

void cr_at_exit(void) {
  if (cr_checked) cr_debug_flush(); /* the quarantine's last check */
  cr_profile_at_exit();
  const char *file = cr_option_text(CR_OPT_STATS_FILE);
  if (!cr_option(CR_OPT_STATS) && file == NULL) return;
  corona_stats s;
  int status = corona_stats_get(&s);
  char buf[4096];
  out_t o = {buf, sizeof buf, 0};
  format_report(&o, &s, status);
  if (file != NULL) {
    char path[CORONA_OPTION_TEXT_MAX + 64];
    if (stats_path(path, sizeof path, file) && cr_os_write(path, buf, o.n)) return;
    cr_line_t l = CR_LINE_INIT; /* never lose the report: stderr instead */
    cr_line_str(&l, "cannot write the statistics to ");
    cr_line_str(&l, file);
    cr_line_str(&l, " (STATS_FILE); they follow here");
    cr_line_emit(&l);
  }
  cr_os_write(NULL, buf, o.n);
}
