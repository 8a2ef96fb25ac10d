/* os.h (layer: os) — the platform contract: everything corona asks of the operating
 * system and the CPU, and the only way the layers above reach either.  The
 * files behind it (src/README.md, layer os) are the only ones that include
 * OS headers or test for an OS or a CPU:
 *   os_linux.c      Linux: facts, time, environment, threads and process,
 *                   waiting, error output (shared by both Linux variants)
 *   os_linux_map.c  Linux: the memory group, on mmap/munmap/mremap/madvise
 *   os_fake.c       the memory group for tests, served from one reservation
 *                   (library corona_fakeos, in place of os_linux_map.c)
 *   os_windows.c    Windows: all of it
 * Policy (alignment of regions, retries, what to give back and when) stays
 * in the backend; the OS only does what it is asked, or says it cannot.
 *
 * Why these functions (issue 15 asked for about a dozen):
 *   - reserve + commit are one call, cr_os_map: corona commits every mapping
 *     whole when it takes it (a region is carved at once, an own mapping is
 *     the object), so a separate reserve and commit would be two calls where
 *     one does.  Its flags say what the memory is for (objects, sparse
 *     metadata, transparent huge pages, reserved huge pages): four mapping
 *     calls and the huge-page advice of the old contract are that one.
 *   - decommit/purge is cr_os_purge, release is cr_os_unmap; cr_os_remap
 *     stays on its own: it is how a big object grows without a copy.
 *   - page size, huge-page size and address width are three getters: each
 *     is read where it is needed, and a struct would only add a name.
 *   - the environment is one call, cr_os_env: both of its uses (an option's
 *     value, the CORONA_ variables that name no option) are "entries whose
 *     name starts so", and the platform's rule for names (Windows ignores
 *     case) lives in one place.
 *   - the thread-exit hook is two calls: registering it must happen before
 *     any thread can allocate, setting a thread's value on its first
 *     allocation.  Fork and exit handlers are one call (cr_os_process_hooks),
 *     which also keeps the copy of stderr that the exit report needs.
 *   - waiting is the lock's four: the spin hint (inline: it sits in a spin
 *     loop), yield, sleep on a word, wake.  Merging yield into the sleep
 *     would hide which callers have no word to sleep on.
 *   - cr_os_next_symbol is the override's way to the C library it replaces;
 *     error output is a write and an abort, kept apart because a report is
 *     not always fatal and the abort must be _Noreturn.
 *   - a statistics report names its process, and may go to a file instead
 *     of stderr (STATS_FILE): cr_os_process_id gives the id and the
 *     program's name in one call, cr_os_append_file is the file's write.
 * Twenty-two in all (from twenty-six). */
#ifndef CORONA_OS_H
#define CORONA_OS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- facts ------------------------------------------------------------------ */

/* Reads the facts below from the OS (defaults stay where it will not say).
 * Called first, before any other function here; may be called again (it
 * only reads).  Never allocates, never fails. */
void cr_os_init(void);
/* The OS page size in bytes (a power of two); valid after cr_os_init. */
size_t cr_os_page_size(void);
/* The size of the OS's huge pages in bytes; 0 when unknown or none. */
size_t cr_os_huge_page_size(void);
/* How many bits the addresses of the OS's mappings have when the caller
 * gives no hint: every such address is below 2^bits (47 on x86-64, 48 on
 * arm64 with 48-bit or 52-bit addresses, 39 on arm64 with 39).  Valid after
 * cr_os_init. */
unsigned cr_os_address_bits(void);

/* ---- memory ----------------------------------------------------------------- */

/* What a mapping is for (cr_os_map's flags; 0: object memory). */
enum {
  /* Metadata touched sparsely (page-map leaves, tables): not charged
   * against the commit limit up front where the OS allows (Linux:
   * MAP_NORESERVE).  Without it, the OS charges the mapping as it charges
   * the C library's malloc (Linux: no MAP_NORESERVE), so its overcommit
   * policy judges corona's requests as it judges glibc's: a mapping the
   * system could never back is refused at once, not paid for later by a
   * page fault that finds no memory. */
  CR_OS_META = 1,
  /* Back it with transparent huge pages where the OS can (a hint:
   * nothing to check afterwards; nothing on Windows). */
  CR_OS_HUGE = 2,
  /* Explicitly reserved huge pages only (Linux: MAP_HUGETLB; Windows:
   * large pages, where the process may lock memory): size, alignment and
   * offset are multiples of cr_os_huge_page_size; NULL when the system has
   * none reserved or free. */
  CR_OS_HUGE_ONLY = 4,
};

/* Maps size bytes (a page multiple, > 0) of zeroed, read-write memory.
 * alignment: 0, or a power of two >= the page size; then the mapping starts
 * where start + offset (a page multiple) is a multiple of it.  Finding such
 * an address may take a mapping of size + alignment for a moment, as glibc's
 * memalign does; the slack goes back before this returns.  flags: CR_OS_*.
 * Returns NULL on failure, with nothing left mapped. */
void *cr_os_map(size_t size, size_t alignment, size_t offset, unsigned flags);
/* Unmaps a whole mapping: addr is its start (from cr_os_map or cr_os_remap)
 * and size its size now.  Never a part of one: Windows can only release a
 * reservation whole.  Cannot fail. */
void cr_os_unmap(void *addr, size_t size);
/* Tells the OS the contents of [addr, addr+size) (page multiples inside one
 * mapping) are no longer needed: the pages are released but stay mapped and
 * read back as zero when touched.  Cannot fail (Windows ends the process if
 * it cannot commit the pages again). */
void cr_os_purge(void *addr, size_t size);
/* Resizes the mapping [addr, addr+old_size) to new_size (page multiples).
 * target NULL: in place only.  Otherwise the pages move onto target (a
 * mapping of new_size, which they replace) without being copied.  Returns
 * the resulting address, or NULL with everything unchanged (also where the
 * OS cannot do this: Windows shrinks in place, grows in place only back into
 * what a shrink left, and never moves). */
void *cr_os_remap(void *addr, size_t old_size, size_t new_size, void *target);

/* ---- time and environment ------------------------------------------------------ */

/* Milliseconds of a monotonic clock (cheap: read on slow paths).  Cannot
 * fail. */
uint64_t cr_os_now_ms(void);
/* The i-th "NAME=value" entry of the environment whose text starts with
 * prefix, letters compared as the platform compares names (Windows ignores
 * case); NULL past the last.  A prefix ending in '=' finds one variable.
 * Never allocates (Windows: one copy of the block, at the first call). */
const char *cr_os_env(const char *prefix, size_t i);

/* ---- threads and the process ------------------------------------------------- */

/* Slots of per-thread values with an exit callback: the default heap's
 * TLS, and the table of a thread's TLS structs in user pools. */
#define CR_OS_THREAD_SLOTS 2
/* Registers the function the OS calls when a thread that stored a non-NULL
 * value in slot with cr_os_thread_set exits.  Called once per slot, before
 * any thread stores a value.  Returns false on failure. */
bool cr_os_thread_exit_init(unsigned slot, void (*on_exit)(void *value));
/* Stores this thread's value for the exit callback (NULL clears it).  May
 * allocate through malloc (glibc's pthread_setspecific can), so callers must
 * have made a re-entrant malloc safe first.  A failure goes unreported: the
 * thread's memory then stays with it until the process ends. */
void cr_os_thread_set(unsigned slot, void *value);
/* Registers fork handlers (prepare before fork; parent and child after;
 * nothing where there is no fork) and, unless at_exit is NULL, a function to
 * run at normal process exit, keeping a private copy of the standard error
 * stream for what it writes (cr_os_write_err falls back to it once the
 * program has closed its own).  May allocate: call once, after
 * initialisation.  Failures go unreported (the hooks then do not run). */
void cr_os_process_hooks(void (*prepare)(void), void (*parent)(void), void (*child)(void), void (*at_exit)(void));
/* The process's id (after a fork, the child's own); the program's file
 * name, without its directory, into name (NUL-terminated, cut to cap - 1
 * bytes; "" when unknown).  Never allocates. */
uint64_t cr_os_process_id(char *name, size_t cap);
/* The next definition of a C function after this library's own (the one
 * the allocator replaces), or NULL (none, or no such lookup on this
 * platform).  May allocate: call at initialisation, never from free. */
void *cr_os_next_symbol(const char *name);

/* ---- waiting ------------------------------------------------------------------- */

/* Tells the CPU we are spinning (saves power, frees the sibling thread):
 * pause on x86, yield on arm64 (the architecture's spin hint, as in the
 * kernel's cpu_relax there); elsewhere only a compiler barrier. */
static inline void cr_os_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield" ::: "memory");
#else
  atomic_signal_fence(memory_order_seq_cst);
#endif
}
/* Gives the CPU to another thread (back-off of waits without a wake-up). */
void cr_os_yield(void);
/* Sleeps while *addr holds expected, until cr_os_wake_one(addr) (may also
 * return early, spuriously: callers re-check).  The lock's slow path. */
void cr_os_wait(atomic_int *addr, int expected);
/* Wakes one thread asleep in cr_os_wait(addr) (none: nothing happens). */
void cr_os_wake_one(atomic_int *addr);

/* ---- background work (the purger, policy layer) --------------------------------
 * A block of its own: the rest of the contract is being reshaped apart from
 * it; these two use cr_os_wait's conventions and nothing else of it. */

/* Starts a detached thread running fn(arg) with every signal blocked in it
 * (a program's handler never runs there, so never inside corona's locks).
 * One start at a time (the caller serialises).  May allocate (glibc's
 * pthread_create does): call with no lock held, where a nested malloc is
 * safe.  false when the OS refuses, or has no such thread here (Windows). */
bool cr_os_thread_start(void (*fn)(void *arg), void *arg);
/* cr_os_wait that also returns after at most ms milliseconds. */
void cr_os_wait_ms(atomic_int *addr, int expected, uint64_t ms);

/* ---- error output -------------------------------------------------------------- */

/* Writes a message to the standard error stream (or the copy kept by
 * cr_os_process_hooks) without allocating; a failed write is dropped. */
void cr_os_write_err(const char *msg, size_t len);
/* Appends len bytes to the file at path, created if missing, with one write
 * where the OS allows (so that reports of several processes appending to
 * one file do not interleave).  false when it cannot be opened or written.
 * Never allocates. */
bool cr_os_append_file(const char *path, const char *data, size_t len);
/* Ends the process at once after a fatal error. */
_Noreturn void cr_os_abort(void);

#endif /* CORONA_OS_H */
