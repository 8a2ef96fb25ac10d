/* os.h — the platform contract.  os_linux.c and os_windows.c are the only
 * files that include OS headers; everything above speaks to the OS
 * through these functions.  Policy (alignment, retries, what to give back)
 * stays in the backend. */
#ifndef CORONA_OS_H
#define CORONA_OS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Fills in the page size.  Called once, before any other function here;
 * must not allocate. */
void cr_os_init(void);
/* The OS page size in bytes (a power of two); valid after cr_os_init. */
size_t cr_os_page_size(void);
/* How many bits the addresses of the OS's mappings have when the caller
 * gives no hint: every such address is below 2^bits (47 on x86-64, 48 on
 * arm64 with 48-bit or 52-bit addresses, 39 on arm64 with 39).  Valid after
 * cr_os_init. */
unsigned cr_os_address_bits(void);

/* Maps size bytes (a multiple of the page size) of zeroed, read-write memory
 * for objects and the regions they are cut from.  The OS charges it against
 * its commit limit as it charges the C library's malloc (Linux: no
 * MAP_NORESERVE), so its overcommit policy judges corona's requests as it
 * judges glibc's: a mapping the system could never back is refused here, at
 * once, rather than granted and paid for by a page fault that finds no
 * memory.  alignment: 0, or a power of two >= the page size; then the
 * mapping starts where start + offset (a page multiple) is a multiple of it.
 * Finding such an address may take a mapping of size + alignment for a
 * moment, as glibc's memalign does; the slack goes back before this returns.
 * Returns NULL on failure (nothing stays mapped). */
void *cr_os_map(size_t size, size_t alignment, size_t offset);
/* Maps size bytes (a page multiple) of zeroed, read-write metadata that
 * corona touches sparsely (page-map leaves, tables): not charged up front
 * where the OS allows that (Linux: MAP_NORESERVE).  NULL on failure. */
void *cr_os_map_meta(size_t size);
/* Unmaps a whole mapping: addr is its start (from cr_os_map, cr_os_map_meta,
 * cr_os_map_huge or cr_os_remap) and size its size now.  Never a part of one: Windows can
 * only release a reservation whole. */
void cr_os_unmap(void *addr, size_t size);
/* Tells the OS the contents of [addr, addr+size) are no longer needed: the
 * pages are released but stay mapped and read back as zero when touched. */
void cr_os_purge(void *addr, size_t size);

/* Resizes the mapping [addr, addr+old_size) to new_size (page multiples).
 * target NULL: in place only.  Otherwise the pages move onto target (a
 * mapping of new_size, which they replace) without being copied.  Returns
 * the resulting address, or NULL with everything unchanged (also where the
 * OS cannot do this: Windows shrinks in place, grows in place only back into
 * what a shrink left, and never moves). */
void *cr_os_remap(void *addr, size_t old_size, size_t new_size, void *target);
/* Asks the OS to back [addr, addr+size) with transparent huge pages where it
 * can (a hint: nothing to check afterwards). */
void cr_os_advise_huge(void *addr, size_t size);
/* Maps size bytes (a multiple of the huge page size) of explicitly reserved
 * huge pages aligned to the huge page size, or returns NULL when the system
 * has none reserved or free. */
void *cr_os_map_huge(size_t size);
/* The huge page size (from the OS), 0 if unknown. */
size_t cr_os_huge_page_size(void);

/* Milliseconds of a monotonic clock (cheap: read on slow paths). */
uint64_t cr_os_now_ms(void);
/* The environment variable name, or NULL; never allocates. */
const char *cr_os_getenv(const char *name);
/* The i-th "NAME=value" entry of the environment, NULL past the last. */
const char *cr_os_env_entry(size_t i);

/* Slots of per-thread values with an exit callback: the default heap's
 * TLS, and the table of a thread's TLS structs in user pools. */
#define CR_OS_THREAD_SLOTS 2
/* Registers the function the OS calls when a thread that stored a non-NULL
 * value in slot with cr_os_thread_set exits.  Called once per slot.
 * Returns false on failure. */
bool cr_os_thread_exit_init(unsigned slot, void (*on_exit)(void *value));
/* Stores this thread's value for the exit callback (NULL clears it).  May
 * allocate through malloc (glibc's pthread_setspecific can), so callers must
 * have made a re-entrant malloc safe first. */
void cr_os_thread_set(unsigned slot, void *value);

/* The next definition of a C function after this library's own (the one
 * the allocator replaces), or NULL.  May allocate: call at initialisation,
 * never from free. */
void *cr_os_next_symbol(const char *name);
/* Registers fork handlers (prepare before fork; parent and child after). */
void cr_os_atfork(void (*prepare)(void), void (*parent)(void), void (*child)(void));

/* Registers a function to run at normal process exit (may allocate). */
void cr_os_atexit(void (*fn)(void));

/* Tells the CPU we are spinning (saves power, frees the sibling thread). */
static inline void cr_os_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
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
/* Keeps a private copy of the standard error stream, used by
 * cr_os_write_err once the program has closed its own (exit reports). */
void cr_os_keep_stderr(void);
/* Writes a message to the standard error stream without allocating. */
void cr_os_write_err(const char *msg, size_t len);
/* Ends the process at once after a fatal error. */
_Noreturn void cr_os_abort(void);

#endif /* CORONA_OS_H */
