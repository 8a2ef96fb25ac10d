/* block.h (layer: block) — one slab (16 KB) or medium block: its header and guards, the
 * size classes that cut it, the free mark every free list carries, and the
 * remote free onto its public list. */
#ifndef CORONA_BLOCK_H
#define CORONA_BLOCK_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "config.h"
#include "meta.h"
#include "report.h"
#include "sync.h"

typedef struct cr_block_s cr_block_t;
typedef struct cr_pool_s cr_pool_t; /* thread.h: opaque here */

/* The owner's side of the mailbox protocol (below): where remote freers
 * notify a block's owner.  A thread's struct (cr_tls_t, thread.h) holds its
 * inbox, and a block's owner is that inbox. */
typedef struct cr_inbox_s {
  /* Remote freers push blocks here, one list per bin: on lines of their own. */
  alignas(CORONA_CACHE_LINE) _Atomic(void *) mailbox[CORONA_NUM_BINS]; /* blocks (cr_list_push) */
  /* Set by a notifier after its push, cleared by the owner before a sweep
   * of all mailboxes: a hint that lets the sweep be skipped when no mail
   * came (the mailboxes themselves stay the truth). */
  _Atomic(uint32_t) mail_pending;
} cr_inbox_t;

/* Marker in a block's public free list: the block is orphaned (or being
 * orphaned), so a remote free must not notify any mailbox.  It also ends
 * the list, like NULL does. */
#define CR_UNUSABLE ((void *)(uintptr_t)1)

/* Which of its owner's lists a block is on (block->list). */
enum cr_list_e {
  CR_LIST_NONE = 0,  /* a thread's empty cache, the pool's empty list, an orphan list, or free */
  CR_LIST_ACTIVE,    /* tls->bins.block[CR_ROW(bin)] */
  CR_LIST_PARTIAL,   /* tls->partial[bin]: has free objects */
  CR_LIST_FULL,      /* tls->full[bin]: exhausted when it was last active */
  CR_LIST_OWED       /* thread exit: a mailbox notice for it is still on its way */
};

/* ---- a block: a 16 KB slab, or a medium block of 64 or 128 KB -----------
 * Layout: objects are carved downwards from the block end, so an object of
 * class c is aligned to the largest power of two dividing c (the end is
 * aligned to the block's span); the first object never overlaps the header
 * (CORONA_BLOCK_HEADER bytes).
 *
 * Line 0 is the only line other threads write (public_free, mail_next);
 * line 2 holds what the owner's slow paths of malloc and free touch, so a
 * remote free never invalidates the owner's line (brief §2, note a); line
 * 1, between them, the owner's block-list fields, touched only when the
 * block changes lists.  The lines are 64 bytes (CORONA_BLOCK_LINE) on every machine: on
 * one with 64-byte cache lines (x86, most arm64 cores) each is a cache line
 * of its own; on one with 128-byte lines (Apple's arm64 cores) lines 0 and 1
 * share one, and line 2 still lies on another, 128 bytes from anything
 * other threads write.
 *
 * Object accounting: allocated = objects that left the block and have not
 * come back, where "left" means moved to the owner's bin lists (tls->bins
 * .free/.local) and "came back" means pushed on
 * free_list by the owner or taken from public_free by the owner.  Objects in
 * public_free, in the bin lists or held in another thread's batch of remote
 * frees (cr_remote_t, thread.h) count as allocated.  So allocated == 0
 * implies public_free is empty and the block is not in any mailbox, and a
 * block whose free_list and bump area are empty while the bin list is empty
 * has allocated == capacity.
 *
 * Mailbox protocol: the remote freer whose CAS turns public_free from NULL
 * into a list is the one that pushes the block onto its owner's mailbox for
 * this bin; while the block sits in a mailbox, public_free stays non-NULL
 * (only the owner clears it, and only after taking the block out of the
 * mailbox), so a block is in at most one mailbox at a time.  An orphaned
 * block's list holds CR_UNUSABLE instead of NULL, so nobody notifies. */
/* Guards: the second word of every 16-byte slot of the header holds the
 * block's own address (cr_block_guard), from the moment the block serves a
 * class.  The header lies in the slab beside the objects, so an address in
 * it can pass free's active-block test (block bits equal, the class's
 * alignment met); that word is what free reads as the free mark, so a free
 * of any such address looks like a double free and goes to the slow path,
 * which refuses it (cr_is_object_start) before anything is written.  Data
 * thus sits in the first word of each slot only. */
#define CR_GUARD(n) cr_block_t *guard##n
struct cr_block_s {
  /* line 0: written by other threads */
  alignas(CORONA_BLOCK_LINE) _Atomic(void *) public_free; /* atomic: remote frees (CAS push), owner takes all (exchange) */
  CR_GUARD(0);
  _Atomic(void *) mail_next;       /* atomic: mailbox link, written by the notifying freer */
  CR_GUARD(1);
  cr_pool_t *pool;                 /* immutable while owned */
  CR_GUARD(2);
  uint32_t bin;                    /* immutable while owned; remote notifiers read it */
  uint32_t backref;                /* backref index (backref.c), set while the backend lends
                                      the slab out; the table points back to this block */
  CR_GUARD(3);

  /* line 1: owner only, block lists */
  alignas(CORONA_BLOCK_LINE) uint32_t object_size; /* owner: immutable while owned */
  uint16_t capacity;       /* owner: objects per block for this class */
  uint8_t list;            /* owner: enum cr_list_e */
  CR_GUARD(4);
  cr_block_t *next;        /* owner (or lock of the list holding an unowned block) */
  CR_GUARD(5);
  cr_block_t *prev;        /* owner */
  CR_GUARD(6);
  uint64_t idle_since;     /* lock(pool->lock): when the block entered the pool's
                              empty list (ms), for time-based release */
  CR_GUARD(7);

  /* line 2: owner only, what the slow paths of malloc and free touch */
  alignas(CORONA_BLOCK_LINE) void *free_list; /* owner: local frees, linked through the objects' first word */
  CR_GUARD(8);
  char *bump;              /* owner: next object to carve (objects are carved downwards, a
                              batch at a time, into the bin list); exhausted when below
                              block + header */
  CR_GUARD(9);
  _Atomic(cr_inbox_t *) owner; /* atomic: written by the owner (or the adopter of an orphan);
                                other threads only compare it against their own TLS or, as
                                mailbox notifier, read it with acquire */
  CR_GUARD(10);
  int32_t allocated;       /* owner: see accounting above */
  int32_t threshold;       /* owner: a local free with allocated <= threshold after the
                              decrement takes the slow path; -1 while active (never),
                              0 on the partial list (empty), capacity*3/4 on the full list */
  CR_GUARD(11);
};

_Static_assert(offsetof(cr_block_t, object_size) == CORONA_BLOCK_LINE, "block lists must start on line 1");
_Static_assert(offsetof(cr_block_t, free_list) == 2 * CORONA_BLOCK_LINE,
               "the owner's fields must be 128 bytes from what other threads write");
_Static_assert(sizeof(cr_block_t) == CORONA_BLOCK_HEADER, "the header is exactly its 16-byte slots");
#define CR_GUARD_AT(n) _Static_assert(offsetof(cr_block_t, guard##n) == 16 * (n) + 8, "guard " #n " misplaced");
CR_GUARD_AT(0) CR_GUARD_AT(1) CR_GUARD_AT(2) CR_GUARD_AT(3) CR_GUARD_AT(4) CR_GUARD_AT(5)
CR_GUARD_AT(6) CR_GUARD_AT(7) CR_GUARD_AT(8) CR_GUARD_AT(9) CR_GUARD_AT(10) CR_GUARD_AT(11)
#undef CR_GUARD_AT
#undef CR_GUARD

/* ---- size classes (block.c) ------------------------------------------------ */
/* The row in the bins (CR_ROW of the bin) of a small size s
 * (0 <= s <= CORONA_MAX_SMALL) is cr_size_row[(s + 15) >> 4]: one table load
 * for every small size, and malloc's fast path indexes the bins with it as
 * it is. */
#define CR_SIZE_BIN_ENTRIES ((CORONA_MAX_SMALL + 15) / 16 + 1)
extern const uint8_t cr_size_row[CR_SIZE_BIN_ENTRIES];
extern const uint32_t cr_bin_size[CORONA_NUM_BINS];
/* What free's active-block test keeps of a pointer in each class: see
 * cr_bins_t.mask (thread.h). */
extern const uintptr_t cr_bin_mask[CORONA_NUM_BINS];
/* What free needs of a class to find an object's block and test that the
 * pointer starts an object, in one table: one base address for the three
 * loads (three tables cost free two more instructions).
 *   high   the bits of an address above its block: ~(span - 1) for the
 *          class's block span (a slab, or a medium block)
 *   magic, limit  cr_is_object_start's multiply and compare (block.c) */
typedef struct cr_bin_geometry_s {
  uintptr_t high[CORONA_NUM_BINS];
  uint64_t magic[CORONA_NUM_BINS];
  uint64_t limit[CORONA_NUM_BINS];
} cr_bin_geometry_t;
extern const cr_bin_geometry_t cr_bin_geometry;
CR_INLINE bool cr_bin_is_medium(unsigned bin) { return bin >= CORONA_MEDIUM_FIRST_BIN; }
/* Bytes of the blocks of class bin. */
CR_INLINE size_t cr_bin_span(unsigned bin) { return ~cr_bin_geometry.high[bin] + 1; }

/* Whether a (an address in a live block of bin) is the start of one of its
 * objects: past the header, and a whole number of objects below the block
 * end.  Keeps an interior or misaligned pointer out of every free list.
 * a | high is a's offset in its block less the span, so its negation is
 * the distance to the block end (1 .. span). */
CR_INLINE bool cr_is_object_start(uintptr_t a, unsigned bin) {
  uint64_t below_end = -(uint64_t)(a | cr_bin_geometry.high[bin]);
  return below_end * cr_bin_geometry.magic[bin] <= cr_bin_geometry.limit[bin];
}

CR_INLINE unsigned cr_row_index(size_t size) { return cr_size_row[(size + 15) >> 4]; }
CR_INLINE unsigned cr_bin_index(size_t size) { return cr_row_index(size) - 1; }

/* ---- block.c: one slab block ------------------------------------------ */
/* Makes the empty block b ready to serve class bin for owner tls. */
void cr_block_init(cr_block_t *b, cr_inbox_t *owner, cr_pool_t *pool, unsigned bin);
/* Takes the whole public free list of b (owner only, after b left the
 * mailbox or when adopting it); terminal is what public_free becomes (NULL,
 * or CR_UNUSABLE when orphaning). Returns the number of objects reclaimed. */
uint32_t cr_block_privatize(cr_block_t *b, void *terminal);
/* Frees by a thread that does not own b: the objects head .. tail, linked
 * through their first word and each carrying the free mark, go onto b's
 * public list in one push, and the owner is notified if the list was
 * empty.  The link stored in tail is overwritten. */
void cr_block_free_chain(cr_block_t *b, void *head, void *tail);

/* ---- the free mark --------------------------------------------------------
 * Every small object on a free list (a bin's, a block's, a public one) has
 * its block's address in its second word; handing an object out clears it.
 * The address of a block header is nothing a program stores in an object it
 * owns, so a free that finds the mark already there is a double free
 * (glibc's tcache does the same with a random key).  Every free tests the
 * mark: the active-block fast path, the other-block and cross-thread paths;
 * every list push sets it. */
CR_INLINE bool cr_free_marked(const void *p, const cr_block_t *b) { return ((void *const *)p)[1] == (const void *)b; }
CR_INLINE void cr_free_mark(void *p, cr_block_t *b) { ((void **)p)[1] = b; }
CR_INLINE void cr_free_mark_clear(void *p) { ((void **)p)[1] = NULL; }

/* The block holding p, an address in a block of page-map kind kind (a
 * small class, 1 .. CORONA_NUM_BINS). */
CR_INLINE cr_block_t *cr_block_of(const void *p, unsigned kind) {
  return (cr_block_t *)((uintptr_t)p & cr_bin_geometry.high[kind - 1]);
}

/* The objects head .. tail (n of them, linked through their first word and
 * each carrying the free mark) go back on the free list of their block b,
 * which the calling thread owns; true when b's fill level now asks for the
 * slow path (cr_block_threshold_reached).  The one place objects return to
 * a block of their owner: free (cr_block_put), and every list that goes
 * home a run of one block at a time (bin.c).  The link stored in tail is
 * overwritten. */
CR_INLINE bool cr_block_put_chain(cr_block_t *b, void *head, void *tail, int32_t n) {
  *(void **)tail = b->free_list;
  b->free_list = head;
  return (b->allocated -= n) <= b->threshold;
}

/* p goes back on the free list of its block b, which the calling thread
 * owns (see cr_block_put_chain). */
CR_INLINE bool cr_block_put(cr_block_t *b, void *p) {
  cr_free_mark(p, b);
  return cr_block_put_chain(b, p, p, 1);
}

/* A free of p into block b by a thread that does not own it. */
CR_INLINE void cr_block_free_remote(cr_block_t *b, void *p) {
  cr_free_mark(p, b);
  cr_block_free_chain(b, p, p);
}

#endif /* CORONA_BLOCK_H */
