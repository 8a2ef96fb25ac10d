/* process.c (layer: api) — what concerns the whole process: initialisation
 * (once, before the first object), the fork handlers that take every lock in
 * rank order, and the exit report's hook. */
#include "internal/api.h"
#include "internal/options.h"
#include "internal/os.h"

enum { INIT_NONE, INIT_RUNNING, INIT_DONE };
static atomic_int init_state;

/* A 16 KB slab is one OS page at most: it is mapped, aligned, purged and
 * given back in whole pages (as are the 16 KB granules of big objects'
 * own mappings).  With bigger pages (64 KB, some arm64 kernels) the OS
 * would round those ranges out over the neighbours, so corona refuses to
 * start, at the first allocation, with one line that says why, instead of
 * losing memory or objects later.  Pages of 4 and 16 KB work. */
static _Noreturn CR_NOINLINE void page_size_unsupported(void) {
  cr_line_t l = CR_LINE_INIT;
  cr_line_str(&l, "the OS page size is ");
  cr_line_u64(&l, cr_os_info()->page_size >> 10);
  cr_line_str(&l, " KiB; corona needs pages of at most 16 KiB (its slab size) and cannot run here");
  cr_fatal_line(&l);
}

void cr_init(void) {
  if (cr_likely(cr_load_acquire(&init_state) == INIT_DONE)) return;
  int expected = INIT_NONE;
  if (atomic_compare_exchange_strong_explicit(&init_state, &expected, INIT_RUNNING, memory_order_acquire,
                                              memory_order_acquire)) {
    cr_pool_set_ranks(&cr_default_pool, false); /* before its first lock */
    if (cr_os_info()->page_size > CORONA_SLAB_SIZE) page_size_unsupported();
    cr_pagemap_init(); /* the machine's address width bounds the requests */
    cr_options_init();
    cr_debug_init(); /* decides checked mode, before the first object */
    cr_policy_init();
    cr_profile_init(); /* after checked mode is decided: no profiling there */
    bool report = cr_option(CR_OPT_STATS) || cr_option(CR_OPT_STATS_FILE); /* at exit */
    CR_STAT(cr_store_relaxed(&cr_stats_on, report));
    cr_store_release(&init_state, INIT_DONE); /* pairs with the acquire loads above and below */
    /* After DONE: registering may allocate, and that malloc must find the
     * allocator ready rather than wait for this very initialisation.  The
     * report at exit (statistics, the quarantine's last check) gets a copy
     * of stderr that survives a program closing its own. */
    bool report_at_exit = report || cr_checked || cr_profile_at_exit_wanted();
    cr_os_process_hooks(cr_fork_prepare, cr_fork_release, cr_fork_child, report_at_exit ? cr_at_exit : NULL);
    return;
  }
  while (cr_load_acquire(&init_state) != INIT_DONE) cr_os_yield();
}

/* ---- fork: re-entry from a signal handler ----------------------------------
 * A signal handler may call fork() while its thread is inside fork(), between
 * our prepare handler and our parent or child handler (glibc completes such
 * forks in a single-threaded process; with threads its own atfork lock
 * deadlocks first).  The handler's fork runs cr_fork_prepare again on the same
 * thread, and taking the locks again would wait for ourselves.  So the thread
 * that takes the locks records itself as the fork holder, and a prepare that
 * finds its own thread holding only counts a re-entry; the matching release
 * (parent or child: glibc runs one of them after every prepare, failed forks
 * included) takes the count back, and the holder's last release lets go.
 * The child of a nested fork inherits the holder record and the count, and
 * its only thread is the one that forked (same TLS address), so its
 * releases balance in the same way.
 *
 * fork_holder: 0, or the identity of the thread between its outermost
 * prepare and last release.  Set by a CAS from 0 (acquire: after the previous
 * holder's release store), so taking ownership and recording who took it is
 * one step that a signal sees whole; cleared by its holder with a release
 * store after it has let go of every lock.  A thread reads its own identity
 * there only between its own set and clear (nobody else writes it then).
 * fork_reentries: written only by the holder thread, signal handlers
 * included; a handler's changes are balanced before it returns, so the
 * interrupted code's plain load and store cannot lose one.
 *
 * A signal after the CAS but mid-way through taking or releasing the locks
 * gets a nested fork with only some of them held.  That is not a deadlock,
 * and in a single-threaded process (the only one where glibc completes such
 * a fork) no other thread can hold the rest mid-update.  What still
 * deadlocks, as with glibc's malloc, is a handler that allocates while its
 * thread holds the locks. */
static _Atomic(uintptr_t) fork_holder;
static atomic_uint fork_reentries;

/* This thread's identity: the address of its TLS pointer, distinct among
 * live threads, and the forking thread's in a child (the address space is
 * copied).  initial-exec TLS: taking the address never allocates. */
static uintptr_t fork_self(void) { return (uintptr_t)&cr_tls_current; }

/* Takes every lock in rank order (cr_rank_t, sync.h): checked in
 * CORONA_LOCK_CHECK builds like any other wait. */
void cr_fork_prepare(void) {
  uintptr_t self = fork_self();
  if (cr_load_relaxed(&fork_holder) == self) { /* a signal handler's fork inside ours */
    cr_store_relaxed(&fork_reentries, cr_load_relaxed(&fork_reentries) + 1);
    return;
  }
  /* Another thread forking at the same time: glibc serialises its atfork
   * handlers, so this wait is for C libraries that do not. */
  for (uintptr_t none = 0; !atomic_compare_exchange_weak_explicit(&fork_holder, &none, self, memory_order_acquire,
                                                                   memory_order_relaxed);
       none = 0)
    cr_os_yield();
  cr_debug_fork_lock(true);
  cr_pools_fork_lock(true); /* the user pools, each in the order below */
  cr_pool_lock_all(&cr_default_pool, true);
  cr_chunk_desc_fork_lock(true);
  cr_profile_fork_lock(true);
  cr_meta_fork_lock(true);
  cr_backref_fork_lock(true);
}

void cr_fork_release(void) {
  unsigned reentries = cr_load_relaxed(&fork_reentries);
  if (reentries > 0) { /* the end of a nested fork: the outer one still holds */
    cr_store_relaxed(&fork_reentries, reentries - 1);
    return;
  }
  cr_backref_fork_lock(false);
  cr_meta_fork_lock(false);
  cr_profile_fork_lock(false);
  cr_chunk_desc_fork_lock(false);
  cr_pool_lock_all(&cr_default_pool, false);
  cr_pools_fork_lock(false);
  cr_debug_fork_lock(false);
  cr_store_release(&fork_holder, 0); /* after every unlock: see above */
}

/* Whatever the nesting, a child has one thread: never the purger's. */
void cr_fork_child(void) {
  cr_fork_release();
  cr_purger_fork_child();
}
