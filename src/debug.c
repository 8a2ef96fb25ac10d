/* debug.c (layer: api) — checked mode: debug mode (MALLOC_DEBUG=1) and Valgrind support.
 *
 * In checked mode every public call lands here (see thread.h, cr_checked), and each
 * object is wrapped:
 *
 *   inner ........ [pad] [header 32 B] [user: size bytes] [canary ...... end]
 *                                      ^ the pointer the program gets
 *
 * "inner" is an ordinary corona object, allocated and freed through the
 * thread's real TLS (cr_tls_inner).  The header records the requested size
 * and a tag (state key XOR a hash of the user address), so free can tell a
 * live object, a freed one and anything else apart without trusting the
 * pointer: the page map must know the address, the tag must match, and the
 * inner object it implies must be a live corona object of the right size.
 *
 * Debug mode adds fill patterns: new memory 0xA5, the bytes from the
 * requested size to the end 0xCB (checked on free and realloc), freed memory
 * 0xDF.  Freed objects wait in a FIFO quarantine; when one leaves it (after
 * CORONA_DEBUG_QUARANTINE later frees, at corona_collect or at exit) its
 * fill is checked before the memory is reused.
 *
 * Under Valgrind the same wrapping lets memcheck see corona's objects: the
 * user bytes are a MALLOCLIKE block, the bytes after them are no-access, and
 * corona's own free-list links live in the header, outside any block.  A
 * bad free under Valgrind without MALLOC_DEBUG is reported by memcheck
 * (FREELIKE on a non-block) and otherwise ignored: only debug mode aborts. */
#include <errno.h>
#include <string.h>

#include "internal/fastpath.h"
#include "internal/os.h"
#include "internal/options.h"

#if CORONA_VALGRIND
#include <valgrind/memcheck.h>
#define CR_VG(x) x
#else
#define CR_VG(x) ((void)0)
#endif

typedef struct dbg_header_s {
  uint64_t size;         /* bytes requested */
  uint64_t offset;       /* user pointer - inner pointer */
  uint64_t tag;          /* LIVE_KEY or FREED_KEY, XOR tag_mix(user) */
  uint64_t inner_usable; /* usable bytes of the inner object */
} dbg_header_t;
_Static_assert(sizeof(dbg_header_t) == CORONA_DEBUG_HEADER, "debug header size");
_Static_assert(CORONA_LARGE_HEADER >= CORONA_DEBUG_HEADER, "a large header's lookup reads below the debug header");

#define LIVE_KEY 0x6c697665c0a7a11cull
#define FREED_KEY 0x66726565deadf4eeull

static bool debug_checks; /* MALLOC_DEBUG: fills, canaries, aborts */
static bool on_valgrind;  /* client requests */

static inline uint64_t tag_mix(const void *user) { return (uint64_t)(uintptr_t)user * 0x9e3779b97f4a7c15ull; }

void cr_debug_init(void) {
  debug_checks = cr_option(CR_OPT_DEBUG) != 0;
#if CORONA_VALGRIND
  /* Memcheck only: it answers its own requests with -1, other tools
   * (callgrind, massif, helgrind) with the default 0.  Profiling tools must
   * see the allocator as it runs without them. */
  if (RUNNING_ON_VALGRIND) {
    int probe = 0;
    on_valgrind = (long)VALGRIND_MAKE_MEM_DEFINED(&probe, sizeof probe) == -1;
  }
#endif
  cr_checked = debug_checks || on_valgrind;
  /* Under memcheck, no purger: its thread would still run at exit, and the
   * TLS block glibc allocated for it would be reported as possibly lost. */
  if (on_valgrind) cr_option_set(CR_OPT_BACKGROUND_PURGE, 0);
  if (cr_verbose() && debug_checks) {
    cr_line_t l = CR_LINE_INIT;
    cr_line_str(&l, "debug mode on (quarantine of ");
    cr_line_u64(&l, CORONA_DEBUG_QUARANTINE);
    cr_line_str(&l, " objects, ");
    cr_line_u64(&l, CORONA_DEBUG_QUARANTINE_BYTES);
    cr_line_str(&l, " bytes)");
    cr_line_emit(&l);
  }
  if (cr_verbose() && on_valgrind) {
    cr_line_t l = CR_LINE_INIT;
    cr_line_str(&l, "running under Valgrind memcheck: client requests on, no background purge");
    cr_line_emit(&l);
  }
}

/* ---- the inner allocator -------------------------------------------------- */

static cr_tls_t *inner_tls(void) {
  cr_tls_t *t = cr_tls_inner;
  return t != NULL ? t : cr_tls_create(&cr_default_pool); /* sets cr_tls_inner */
}

static void *inner_alloc(size_t bytes) {
  if (bytes > CORONA_MAX_SMALL) return cr_large_alloc(&cr_default_pool, cr_tls_own(), bytes, 0, false);
  cr_tls_t *t = inner_tls();
  if (t == NULL) {
    errno = ENOMEM;
    return NULL;
  }
  return cr_malloc_small_tls(t, bytes);
}

static void inner_free(void *inner) {
  unsigned kind = cr_pagemap_kind((uintptr_t)inner);
  if (!cr_kind_is_small(kind)) {
    cr_large_free(cr_large_header(inner, kind));
    return;
  }
  /* The free reads and writes the object's first two words (the list link
   * and the free mark, block.h): they are corona's from here on, so
   * memcheck must not see a test of "uninitialised" user bytes. */
  CR_VG(VALGRIND_MAKE_MEM_DEFINED(inner, 2 * sizeof(void *)));
  cr_tls_t *t = inner_tls();
  if (t != NULL) cr_free_known_kind(inner, kind, t, cr_free_not_small);
  else cr_block_free_remote(cr_block_of(inner, kind), inner);
}

/* ---- reports -------------------------------------------------------------- */

static _Noreturn void report(const char *call, const char *problem, const void *p, const char *detail, uint64_t n) {
  cr_line_t l = CR_LINE_INIT;
  if (call != NULL) {
    cr_line_str(&l, call);
    cr_line_str(&l, "(): ");
  }
  cr_line_str(&l, problem);
  cr_line_str(&l, " ");
  cr_line_addr(&l, p);
  if (detail != NULL) {
    cr_line_str(&l, detail);
    cr_line_u64(&l, n);
    cr_line_str(&l, ")");
  }
  cr_fatal_line(&l);
}

/* A bad pointer outside debug mode (so under Valgrind): memcheck reports
 * the free of a non-block; corona leaves the memory alone.  call NULL: a
 * query (usable size), which answers 0 without a report. */
static void bad_pointer(const char *call, const char *problem, void *p) {
  if (call == NULL) return;
  if (debug_checks) report(call, problem, p, NULL, 0);
  CR_VG(VALGRIND_FREELIKE_BLOCK(p, 0));
}

/* The header of p if p is a live checked-mode object; NULL (after reporting,
 * or aborting in debug mode) otherwise.  Reads only memory the page map
 * says is corona's. */
static dbg_header_t *checked_header(void *p, const char *call) {
  uintptr_t a = (uintptr_t)p;
  unsigned kind = cr_pagemap_kind(a);
  if ((a & (CORONA_MIN_ALIGN - 1)) != 0 || kind == CR_KIND_NONE || kind == CR_KIND_SLAB_FREE ||
      cr_pagemap_kind(a - CORONA_DEBUG_HEADER) == CR_KIND_NONE) {
    bad_pointer(call, "invalid pointer", p);
    return NULL;
  }
  dbg_header_t *h = (dbg_header_t *)(a - CORONA_DEBUG_HEADER);
  CR_VG(VALGRIND_MAKE_MEM_DEFINED(h, sizeof *h));
  uint64_t mix = tag_mix(p);
  if (h->tag == (FREED_KEY ^ mix)) {
    bad_pointer(call, "double free of", p);
    return NULL;
  }
  bool ok = h->tag == (LIVE_KEY ^ mix) && h->offset >= CORONA_DEBUG_HEADER && h->offset <= a;
  if (ok) {
    char *inner = (char *)p - h->offset;
    size_t usable = cr_usable_size_raw(inner, cr_pagemap_kind((uintptr_t)inner));
    ok = usable != 0 && usable == h->inner_usable && h->size <= usable - h->offset;
  }
  if (!ok) {
    bad_pointer(call, "invalid pointer", p);
    return NULL;
  }
  return h;
}

static inline char *inner_of(void *p, const dbg_header_t *h) { return (char *)p - h->offset; }
static inline char *end_of(void *p, const dbg_header_t *h) { return inner_of(p, h) + h->inner_usable; }

/* First byte of [from, to) that differs from c, or NULL. */
static const unsigned char *first_changed(const unsigned char *from, const unsigned char *to, unsigned char c) {
  uint64_t word = 0x0101010101010101ull * c;
  for (; from < to && ((uintptr_t)from & 7) != 0; from++)
    if (*from != c) return from;
  for (; to - from >= 8; from += 8) { /* a word at a time; memcpy keeps it well-defined */
    uint64_t w;
    memcpy(&w, from, 8);
    if (w != word) break;
  }
  for (; from < to; from++)
    if (*from != c) return from;
  return NULL;
}

static void check_canary(void *p, const dbg_header_t *h, const char *call) {
  if (!debug_checks) return;
  const unsigned char *tail = (const unsigned char *)p + h->size, *end = (const unsigned char *)end_of(p, h);
  CR_VG(VALGRIND_MAKE_MEM_DEFINED(tail, end - tail));
  const unsigned char *bad = first_changed(tail, end, CORONA_DEBUG_FILL_CANARY);
  if (bad != NULL) report(call, "write past the end of", p, " (bytes requested ", h->size);
}

/* ---- allocation ------------------------------------------------------------ */

void *cr_debug_alloc(size_t size, size_t alignment, bool zero) {
  if (size > cr_max_request || alignment > cr_max_request || alignment > CORONA_MAX_ALIGNMENT) {
    errno = ENOMEM;
    return NULL;
  }
  size_t extra = alignment > CORONA_MIN_ALIGN ? alignment : 0;
  char *inner = inner_alloc(CORONA_DEBUG_HEADER + size + CORONA_DEBUG_CANARY + extra);
  if (inner == NULL) return NULL;
  char *user = inner + CORONA_DEBUG_HEADER;
  if (extra) user = (char *)(((uintptr_t)user + alignment - 1) & ~(uintptr_t)(alignment - 1));
  dbg_header_t *h = (dbg_header_t *)(user - CORONA_DEBUG_HEADER);
  /* Before taking a pointer for ours, free and the usable size ask whether
   * it is a user pool's large object: cr_large_header reads a large header's
   * backref and user fields in the CORONA_LARGE_HEADER bytes below the
   * pointer, whose lower part lies below our header.  Without a pad that is
   * the inner object's own header; behind an alignment pad it is pad bytes
   * nobody wrote, undefined to memcheck once the memory has been an object
   * before, and memcheck reported every such lookup.  Zeros there (backref 0
   * is nobody's) make the answer "no" from defined bytes. */
  size_t below = (size_t)(user - inner) < CORONA_LARGE_HEADER ? (size_t)(user - inner) : CORONA_LARGE_HEADER;
  memset(user - below, 0, below - CORONA_DEBUG_HEADER);
  h->size = size;
  h->offset = (uint64_t)(user - inner);
  h->inner_usable = cr_usable_size_raw(inner, cr_pagemap_kind((uintptr_t)inner));
  h->tag = LIVE_KEY ^ tag_mix(user);
  char *end = end_of(user, h);
  if (debug_checks) {
    memset(user + size, CORONA_DEBUG_FILL_CANARY, (size_t)(end - (user + size)));
    memset(user, zero ? 0 : CORONA_DEBUG_FILL_NEW, size);
  } else if (zero) {
    memset(user, 0, size);
  }
  CR_VG(VALGRIND_MALLOCLIKE_BLOCK(user, size, 0, zero));
  CR_VG(VALGRIND_MAKE_MEM_NOACCESS(user + size, end - (user + size)));
  /* The fill is a debugging aid, not a value: memcheck should still see
   * uninitialised memory as such. */
  if (debug_checks && !zero) CR_VG(VALGRIND_MAKE_MEM_UNDEFINED(user, size));
  return user;
}

/* ---- the quarantine ---------------------------------------------------------
 * A FIFO ring of freed user pointers under one lock; the lock covers only
 * the ring, never an allocator call. */
static cr_lock_t q_lock = CR_LOCK_INIT(CR_RANK_DEBUG);
static void *q_ring[CORONA_DEBUG_QUARANTINE]; /* lock(q_lock) */
static size_t q_head, q_count, q_bytes;       /* lock(q_lock) */

/* The object p leaves the quarantine: its fill must be intact. */
static void release(void *p) {
  dbg_header_t *h = (dbg_header_t *)((char *)p - CORONA_DEBUG_HEADER);
  char *inner = inner_of(p, h), *end = end_of(p, h);
  if (debug_checks) {
    CR_VG(VALGRIND_MAKE_MEM_DEFINED(p, end - (char *)p));
    const unsigned char *bad = first_changed(p, (unsigned char *)p + h->size, CORONA_DEBUG_FILL_FREED);
    if (bad == NULL) bad = first_changed((unsigned char *)p + h->size, (unsigned char *)end, CORONA_DEBUG_FILL_CANARY);
    if (bad != NULL)
      report(NULL, "write to freed memory: object", p, " (changed after its free, at byte ",
             (uint64_t)(bad - (unsigned char *)p));
  }
  /* Back to plain memory before corona's own lists and caches reuse it. */
  CR_VG(VALGRIND_MAKE_MEM_UNDEFINED(inner, h->inner_usable));
  inner_free(inner);
}

static size_t held_bytes(void *p) {
  const dbg_header_t *h = (const dbg_header_t *)((char *)p - CORONA_DEBUG_HEADER);
  return h->inner_usable;
}

void cr_debug_free(void *p, const char *call) {
  if (p == NULL) return;
  dbg_header_t *h = checked_header(p, call);
  if (h == NULL) return;
  check_canary(p, h, call);
  h->tag = FREED_KEY ^ tag_mix(p);
  if (debug_checks) memset(p, CORONA_DEBUG_FILL_FREED, h->size);
  CR_VG(VALGRIND_FREELIKE_BLOCK(p, 0));
  size_t bytes = h->inner_usable;
  if (bytes > CORONA_DEBUG_QUARANTINE_MAX_OBJECT) {
    release(p);
    return;
  }
  /* Push, and take out the oldest while over either bound. */
  void *out[8];
  size_t n_out = 0;
  cr_lock(&q_lock);
  while ((q_count == CORONA_DEBUG_QUARANTINE || q_bytes + bytes > CORONA_DEBUG_QUARANTINE_BYTES) && q_count > 0 &&
         n_out < sizeof out / sizeof out[0]) {
    void *old = q_ring[q_head];
    q_head = (q_head + 1) % CORONA_DEBUG_QUARANTINE;
    q_count--;
    q_bytes -= held_bytes(old);
    out[n_out++] = old;
  }
  bool queued = q_count < CORONA_DEBUG_QUARANTINE;
  if (queued) {
    q_ring[(q_head + q_count) % CORONA_DEBUG_QUARANTINE] = p;
    q_count++;
    q_bytes += bytes;
  }
  cr_unlock(&q_lock);
  for (size_t i = 0; i < n_out; i++) release(out[i]);
  if (!queued) release(p);
}

void cr_debug_flush(void) {
  for (;;) {
    cr_lock(&q_lock);
    if (q_count == 0) {
      cr_unlock(&q_lock);
      return;
    }
    void *old = q_ring[q_head];
    q_head = (q_head + 1) % CORONA_DEBUG_QUARANTINE;
    q_count--;
    q_bytes -= held_bytes(old);
    cr_unlock(&q_lock);
    release(old);
  }
}

void cr_debug_fork_lock(bool take) {
  if (take) cr_lock(&q_lock);
  else cr_unlock(&q_lock);
}

/* ---- realloc and usable size ---------------------------------------------- */

void *cr_debug_realloc(void *p, size_t size, size_t alignment) {
  if (p == NULL) return cr_debug_alloc(size, alignment, false);
  dbg_header_t *h = checked_header(p, "realloc");
  if (h == NULL) {
    errno = EINVAL;
    return NULL;
  }
  check_canary(p, h, "realloc");
  if (size == 0) { /* glibc: realloc(p, 0) frees p */
    cr_debug_free(p, "realloc");
    return NULL;
  }
  /* Always moves, so a stale pointer to the old object is caught. */
  void *q = cr_debug_alloc(size, alignment, false);
  if (q == NULL) return NULL; /* p stays valid */
  memcpy(q, p, h->size < size ? h->size : size);
  cr_debug_free(p, "realloc");
  return q;
}

size_t cr_debug_usable_size(void *p) {
  dbg_header_t *h = checked_header(p, NULL); /* 0 for anything not live, as outside debug mode */
  return h != NULL ? h->size : 0;
}
