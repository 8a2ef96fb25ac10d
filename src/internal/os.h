/* os.h (layer: os) — the platform contract: everything corona asks of the operating
 * system and the CPU, and the only way the layers above reach either.  The
 * files behind it (src/README.md, layer os) are the only ones that include
 * OS headers or test for an OS or a CPU:
 *   os_linux.c      Linux: facts, time, environment, threads and process,
 *                   waiting, output (shared by both Linux variants)
 *   os_linux_map.c  Linux: the memory group, on mmap/munmap/mremap/madvise
 *   os_fake.c       the memory group for tests, served from one reservation
 *                   (library corona_fakeos, in place of os_linux_map.c)
 *   os_windows.c    Windows: all of it
 * Policy (alignment of regions, retries, what to give back and when) stays
 * in the backend; the OS only does what it is asked, or says it cannot.
 *
 * Twenty-three entries in nine groups.  Issue 15 asked for about a dozen,
 * from twenty-two; the twelve concerns it named (reserve, commit, purge,
 * release, huge-page advice, page size, huge-page size, address width,
 * thread-exit hook, time, environment, error output) take nine entries
 * below; the rest serve what came with or after it: fork and exit hooks,
 * the lock's waiting, the purger's thread, the profiler's stacks, and big
 * buffers' cut and populate.
 *   facts    cr_os_info: what does not change, read once, never fails
 *   memory   cr_os_map (reserve + commit, huge-page advice), cr_os_unmap
 *            (release), cr_os_purge (decommit), cr_os_populate (bring
 *            pages in before their first write: a hint), cr_os_remap (grow
 *            a big object without a copy), cr_os_cut (one mapping becomes
 *            two, or two one: big buffers' resident pages reused by pieces)
 *   time     cr_os_now_ms
 *   names    cr_os_env (the environment), cr_os_next_symbol (the C
 *            library's function that corona replaces), cr_os_process_id
 *            (which process and program this is: read when asked, so a
 *            forked child names itself)
 *   hooks    cr_os_thread_exit (one thread's end), cr_os_process_hooks
 *            (fork and the process's end)
 *   waiting  the spin hint (inline: it sits in a spin loop), yield (for
 *            waits with no word to sleep on), sleep on a word (with a time
 *            limit or none), wake
 *   threads  cr_os_thread_start (the purger's thread)
 *   output   cr_os_write (standard error or a file, appended or emptied),
 *            cr_os_fatal (the last line, then the end: _Noreturn, so kept
 *            apart)
 *   stacks   cr_os_backtrace, cr_os_symbol, cr_os_write_mappings (the heap
 *            profiler's)
 * corona maps every mapping whole and committed (a region is carved at
 * once, an own mapping is the object), so reserve and commit are one call;
 * cr_os_map's flags say what the memory is for. */
#ifndef CORONA_OS_H
#define CORONA_OS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- facts ------------------------------------------------------------------ */

typedef struct {
  size_t page_size;      /* the OS page size in bytes (a power of two) */
  size_t huge_page_size; /* the OS's huge pages in bytes; 0 when unknown or none */
  /* Every address of a mapping made without a hint is below 2^address_bits
   * (47 on x86-64, 48 on arm64 with 48-bit or 52-bit addresses, 39 on arm64
   * with 39). */
  unsigned address_bits;
} cr_os_info_t;
/* The facts above, read from the OS at the first call (defaults stay where
 * it will not say) and the same ever after.  Never allocates, never fails. */
const cr_os_info_t *cr_os_info(void);

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
   * offset are multiples of the huge-page size; NULL when the system has
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
/* Asks the OS to back [addr, addr+size) (page multiples inside one mapping,
 * about to be written) with memory now: one call instead of a page fault
 * per page.  A hint only: it may do nothing (Linux before 5.14, Windows),
 * and it changes no contents (fresh pages read as zero, as they would
 * have).  Cannot fail. */
void cr_os_populate(void *addr, size_t size);
/* Resizes the mapping [addr, addr+old_size) to new_size (page multiples).
 * target NULL: in place only.  Otherwise the pages move onto target (a
 * mapping of new_size, which they replace) without being copied.  Returns
 * the resulting address, or NULL with everything unchanged (also where the
 * OS cannot do this: Windows shrinks in place, grows in place only back into
 * what a shrink left, and never moves). */
void *cr_os_remap(void *addr, size_t old_size, size_t new_size, void *target);
/* join false: cuts the whole mapping [addr, addr+size) in two at addr+at
 * (a page multiple inside it); join true: makes the adjacent whole
 * mappings [addr, addr+at) and [addr+at, addr+size) of the same flags one.
 * From then on cr_os_unmap and cr_os_remap take the resulting mappings.
 * Nothing is touched; the resident pages stay.  Returns false, with
 * nothing changed, where the OS cannot (Windows releases a reservation
 * only whole).  A remap that moves or grows a joined mapping may fail
 * where the OS still keeps two (Linux: mremap takes one of its own). */
bool cr_os_cut(void *addr, size_t size, size_t at, bool join);

/* ---- time ------------------------------------------------------------------- */

/* Milliseconds of a monotonic clock (cheap: read on slow paths).  Cannot
 * fail. */
uint64_t cr_os_now_ms(void);

/* ---- names ------------------------------------------------------------------ */

/* The i-th "NAME=value" entry of the environment whose text starts with
 * prefix, letters compared as the platform compares names (Windows ignores
 * case); NULL past the last.  A prefix ending in '=' finds one variable.
 * Never allocates (Windows: one copy of the block, at the first call). */
const char *cr_os_env(const char *prefix, size_t i);
/* The next definition of a C function after this library's own (the one
 * the allocator replaces), or NULL (none, or no such lookup on this
 * platform).  May allocate: call at initialisation, never from free. */
void *cr_os_next_symbol(const char *name);

/* The process's id (after a fork, the child's own); the program's file
 * name, without its directory, into name (NUL-terminated, cut to cap - 1
 * bytes; "" when unknown).  Never allocates. */
uint64_t cr_os_process_id(char *name, size_t cap);

/* ---- hooks ------------------------------------------------------------------ */

/* Slots of per-thread values with an exit callback: the default heap's
 * TLS, and the table of a thread's TLS structs in user pools. */
#define CR_OS_THREAD_SLOTS 2
/* Has on_exit(value) run when this thread exits (value NULL: nothing runs
 * for it).  A slot always gets the same on_exit: the first call registers
 * it for every thread.  May allocate through malloc (glibc's
 * pthread_setspecific can), so callers must have made a re-entrant malloc
 * safe first.  false when the hook cannot be registered or the value not
 * stored: the thread's memory then stays with it until the process ends. */
bool cr_os_thread_exit(unsigned slot, void (*on_exit)(void *value), void *value);
/* Registers fork handlers (prepare before fork; parent and child after;
 * nothing where there is no fork) and, unless at_exit is NULL, a function to
 * run at normal process exit, keeping a private copy of the standard error
 * stream for what it writes (cr_os_write falls back to it once the program
 * has closed its own).  May allocate: call once, after initialisation.
 * Failures go unreported (the hooks then do not run). */
void cr_os_process_hooks(void (*prepare)(void), void (*parent)(void), void (*child)(void), void (*at_exit)(void));

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
/* Sleeps while *addr holds expected, until cr_os_wake_one(addr) or, unless
 * ms is CR_OS_FOREVER, at most ms milliseconds (may also return early,
 * spuriously: callers re-check).  The lock's slow path; the purger's
 * sleep until its next deadline. */
#define CR_OS_FOREVER UINT64_MAX
void cr_os_wait(atomic_int *addr, int expected, uint64_t ms);
/* Wakes one thread asleep in cr_os_wait(addr) (none: nothing happens). */
void cr_os_wake_one(atomic_int *addr);

/* ---- background work (the purger, policy layer) -------------------------------- */

/* Starts a detached thread running fn(arg) with every signal blocked in it
 * (a program's handler never runs there, so never inside corona's locks).
 * One start at a time (the caller serialises).  May allocate (glibc's
 * pthread_create does): call with no lock held, where a nested malloc is
 * safe.  false when the OS refuses, or has no such thread here (Windows). */
bool cr_os_thread_start(void (*fn)(void *arg), void *arg);

/* ---- output -------------------------------------------------------------------- */

/* Writes len bytes without allocating.  path NULL: to the standard error
 * stream (or the copy kept by cr_os_process_hooks once the program has
 * closed its own).  Otherwise appended to the file at path, created if
 * missing, with one write where the OS allows (so that reports of several
 * processes appending to one file do not interleave); data NULL (a path
 * given): the file is created empty, or emptied.  false when the bytes
 * could not all be written (or the file not opened, errno saying why). */
bool cr_os_write(const char *path, const char *data, size_t len);
/* Writes msg as cr_os_write(NULL, ...) does, then ends the process at once
 * (a SIGABRT handler of the program runs first, as with abort()). */
_Noreturn void cr_os_fatal(const char *msg, size_t len);

/* ---- stacks and files (the heap profiler, profile.c) --------------------------- */

/* A thread's last stacks, which cr_os_backtrace keeps for its next calls
 * (the caller owns it, one per thread; all zero: empty).  A sample taken
 * where one of them was -- the same return address and stack address in
 * the innermost frame, and every return address of the frames above where
 * the last walk found it -- is that stack again, read from here instead of
 * unwound (the unwinder costs ~1000-2000 instructions a frame).  Four:
 * the heap profiler takes stacks from two places (small and large
 * samples), which alternate in a program that allocates both, each from
 * the program's call sites (one memo missed on every change: thread churn,
 * half the walks; with two, a server's two call sites, small and large,
 * unwound 13 % of the walks, 5 % of its instructions).  Only where the return
 * address has a fixed place (x86-64: the word below the stack pointer of
 * the call); elsewhere it stays empty. */
#define CR_OS_STACK_MEMO_FRAMES 32
#define CR_OS_STACK_MEMOS 4
typedef struct {
  uintptr_t ip[CR_OS_STACK_MEMO_FRAMES];  /* return addresses, innermost first */
  uintptr_t cfa[CR_OS_STACK_MEMO_FRAMES]; /* each frame's stack pointer at its call, rising */
  uint32_t n;                             /* frames kept; 0: none */
} cr_os_stack_t;
typedef struct {
  cr_os_stack_t stack[CR_OS_STACK_MEMOS];
  uint32_t last; /* the stack matched or kept last: the search starts there */
  uint32_t next; /* the stack a walk replaces next (in turn) */
} cr_os_stack_memo_t;

/* The return addresses of the calling thread's stack, innermost first,
 * starting with the first frame outside corona's own code (when corona is
 * a shared object; linked into the program, its frames stay on top), at
 * most max of them; returns how many.  Never allocates and never calls
 * corona (so a malloc may take one), and reads only the unwind tables every
 * binary carries (Linux: libgcc's _Unwind_Backtrace; Windows:
 * RtlCaptureStackBackTrace).  max is at most CORONA_BACKTRACE_MAX.  memo:
 * the calling thread's own, or NULL. */
int cr_os_backtrace(void **pcs, int max, cr_os_stack_memo_t *memo);
/* The name of the function holding code address pc, as the dynamic linker
 * knows it (exported symbols only), else "object+0xoffset", into name
 * (NUL-terminated, cut to cap - 1); false when neither is known.  Never
 * allocates. */
bool cr_os_symbol(const void *pc, char *name, size_t cap);
/* Appends the process's memory mappings to the file at path, in the format
 * of Linux's /proc/self/maps (which pprof reads to find each address's
 * object); false where the platform has no such list, or on a failed
 * write.  Never allocates. */
bool cr_os_write_mappings(const char *path);

#endif /* CORONA_OS_H */
