/* os_linux.c (layer: os) — the Linux side of the platform contract (internal/os.h),
 * all but the memory group: the facts (sysconf, /proc/meminfo, the initial
 * stack), the clock, environ, pthread keys for thread exit, fork and exit
 * handlers, dlsym, futexes and sched_yield, the purger's thread, write(2),
 * and the heap profiler's stacks (libgcc's unwinder), symbols (dladdr) and
 * files.  The memory group is os_linux_map.c, or os_fake.c in the test
 * library corona_fakeos: both link with this file. */
#include <dlfcn.h>
#include <link.h>
#include <errno.h>
#include <fcntl.h>
#include <time.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <linux/futex.h>
#include <sys/auxv.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <unwind.h>

#include "internal/config.h"
#include "internal/os.h"

/* ---- facts ------------------------------------------------------------------ */
/* Written once, by os_read_facts under os_facts_once: pthread_once orders
 * the writes before every return of cr_os_info. */
static cr_os_info_t os_facts = {.page_size = 4096, .address_bits = 47};
static pthread_once_t os_facts_once = PTHREAD_ONCE_INIT;

/* Reads "Hugepagesize:  2048 kB" from /proc/meminfo without allocating. */
static size_t read_huge_page_size(void) {
  int fd = open("/proc/meminfo", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  char buf[4096];
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return 0;
  buf[n] = 0;
  static const char key[] = "Hugepagesize:";
  for (char *p = buf; *p; p++) {
    size_t i = 0;
    while (key[i] && p[i] == key[i]) i++;
    if (key[i] != 0) continue;
    p += i;
    while (*p == ' ') p++;
    size_t kb = 0;
    while (*p >= '0' && *p <= '9') kb = kb * 10 + (size_t)(*p++ - '0');
    return kb * 1024;
  }
  return 0;
}

/* The width of the addresses mmap returns without a hint.  Linux puts the
 * main thread's stack at the top of that window (below 2^47 on x86-64 even
 * with 5-level paging, below 2^48 on arm64 even with 52-bit addresses) and
 * the mmap area below the stack, so the bit length of an address on the
 * initial stack is the width.  AT_RANDOM points at 16 bytes the kernel put
 * there; the caller's own stack (the main thread's, or a thread stack in the
 * mmap area, lower) stands in where the auxiliary vector lacks it. */
static unsigned read_address_bits(void) {
  char here = 0;
  uintptr_t top = (uintptr_t)getauxval(AT_RANDOM);
  if ((uintptr_t)&here > top) top = (uintptr_t)&here;
  return (unsigned)(64 - __builtin_clzll((unsigned long long)top));
}

static void os_read_facts(void) {
  long ps = sysconf(_SC_PAGESIZE);
  if (ps > 0) os_facts.page_size = (size_t)ps;
  os_facts.huge_page_size = read_huge_page_size();
  os_facts.address_bits = read_address_bits();
}

const cr_os_info_t *cr_os_info(void) {
  pthread_once(&os_facts_once, os_read_facts);
  return &os_facts;
}

/* ---- time and names ---------------------------------------------------------------- */

uint64_t cr_os_now_ms(void) {
  /* The coarse clock (the last tick's time, a few ms old at most): corona
   * reads the time at every large free and cache decision, and the fine
   * clock's read showed as 5 % of a churn of 8 KiB..2 MiB objects
   * (suite-buffers mid); milliseconds of decay need no better. */
  struct timespec ts;
#ifdef CLOCK_MONOTONIC_COARSE
  if (clock_gettime(CLOCK_MONOTONIC_COARSE, &ts) != 0)
#endif
    clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* environ itself, as getenv reads it: names compare with case. */
extern char **environ;
const char *cr_os_env(const char *prefix, size_t i) {
  char **env = environ;
  if (env == NULL) return NULL;
  for (; *env != NULL; env++) {
    const char *e = *env, *p = prefix;
    while (*p != '\0' && *e == *p) e++, p++;
    if (*p == '\0' && i-- == 0) return *env;
  }
  return NULL;
}

void *cr_os_next_symbol(const char *name) { return dlsym(RTLD_NEXT, name); }

/* program_invocation_short_name (errno.h, _GNU_SOURCE): glibc's and musl's
 * argv[0] without its directory, set before main, also in a fully static
 * program; read at each call, as late as the report that asks. */
uint64_t cr_os_process_id(char *name, size_t cap) {
  const char *from = program_invocation_short_name;
  size_t n = 0;
  for (; cap > 0 && from != NULL && from[n] != '\0' && n < cap - 1; n++) name[n] = from[n];
  if (cap > 0) name[n] = '\0';
  return (uint64_t)getpid();
}

/* ---- hooks ------------------------------------------------------------------ */
/* One pthread key per slot, made at the slot's first cr_os_thread_exit (it
 * never allocates).  os_key_exit[slot]: the slot's callback, stored by every
 * caller (always the same function) before pthread_once, which runs
 * os_key_make in one of them; os_key[slot] and os_key_ok[slot] are written
 * there and read after pthread_once has returned, which orders them. */
static pthread_key_t os_key[CR_OS_THREAD_SLOTS];
static bool os_key_ok[CR_OS_THREAD_SLOTS];
static _Atomic(void (*)(void *)) os_key_exit[CR_OS_THREAD_SLOTS];
static pthread_once_t os_key_once[CR_OS_THREAD_SLOTS] = {PTHREAD_ONCE_INIT, PTHREAD_ONCE_INIT};

static void os_key_make(unsigned slot) {
  os_key_ok[slot] = pthread_key_create(&os_key[slot], atomic_load_explicit(&os_key_exit[slot], memory_order_relaxed)) == 0;
}
static void os_key_make0(void) { os_key_make(0); }
static void os_key_make1(void) { os_key_make(1); }
static void (*const os_key_makers[CR_OS_THREAD_SLOTS])(void) = {os_key_make0, os_key_make1};
_Static_assert(CR_OS_THREAD_SLOTS == 2, "one once-function per slot");

bool cr_os_thread_exit(unsigned slot, void (*on_exit)(void *value), void *value) {
  atomic_store_explicit(&os_key_exit[slot], on_exit, memory_order_relaxed);
  pthread_once(&os_key_once[slot], os_key_makers[slot]);
  return os_key_ok[slot] && pthread_setspecific(os_key[slot], value) == 0;
}

/* A copy of stderr taken at start-up (cr_os_process_hooks), for reports due
 * after the program has closed its own (coreutils close it at exit). */
static int kept_err_fd = -1;

void cr_os_process_hooks(void (*prepare)(void), void (*parent)(void), void (*child)(void), void (*at_exit)(void)) {
  pthread_atfork(prepare, parent, child);
  if (at_exit == NULL) return;
  if (kept_err_fd < 0) kept_err_fd = fcntl(2, F_DUPFD_CLOEXEC, 3);
  atexit(at_exit);
}

/* ---- waiting ------------------------------------------------------------------- */
void cr_os_yield(void) { sched_yield(); }

/* Private futexes: the lock words are never shared between processes. */
void cr_os_wait(atomic_int *addr, int expected, uint64_t ms) {
  struct timespec rel = {.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000L};
  syscall(SYS_futex, (int *)addr, FUTEX_WAIT_PRIVATE, expected, ms == CR_OS_FOREVER ? NULL : &rel, NULL,
          0); /* a relative limit */
}

void cr_os_wake_one(atomic_int *addr) { syscall(SYS_futex, (int *)addr, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0); }

/* ---- background work ------------------------------------------------------------ */
/* What the started thread runs: written before pthread_create, which
 * publishes it to the new thread; one start at a time (os.h). */
static void (*os_start_fn)(void *);
static void *os_start_arg;

static void *os_thread_main(void *unused) {
  (void)unused;
  os_start_fn(os_start_arg);
  return NULL;
}

bool cr_os_thread_start(void (*fn)(void *arg), void *arg) {
  os_start_fn = fn;
  os_start_arg = arg;
  pthread_attr_t attr;
  if (pthread_attr_init(&attr) != 0) return false;
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  /* The new thread inherits the mask: block everything around the create. */
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pthread_t t;
  int err = pthread_create(&t, &attr, os_thread_main, NULL);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  pthread_attr_destroy(&attr);
  if (err == 0) pthread_setname_np(t, "corona-purge"); /* what top and ps show, from the start */
  return err == 0;
}

/* ---- output -------------------------------------------------------------------- */
/* Writes all of data to fd; false at the first failure.  err: fd is the
 * standard error, and the kept copy stands in once the program closed it. */
static bool os_write_fd(int fd, const char *data, size_t len, bool err) {
  while (len > 0) {
    ssize_t n = write(fd, data, len);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EBADF && err && fd == 2 && kept_err_fd >= 0) {
      fd = kept_err_fd;
      continue;
    }
    if (n <= 0) return false;
    data += n;
    len -= (size_t)n;
  }
  return true;
}

static int os_open(const char *path, int how) {
  int fd;
  do fd = open(path, how | O_CLOEXEC, 0666);
  while (fd < 0 && errno == EINTR);
  return fd;
}

bool cr_os_write(const char *path, const char *data, size_t len) {
  if (path == NULL) return os_write_fd(2, data, len, true);
  int fd = os_open(path, data == NULL ? O_WRONLY | O_CREAT | O_TRUNC : O_WRONLY | O_CREAT | O_APPEND);
  if (fd < 0) return false;
  bool ok = data == NULL || os_write_fd(fd, data, len, false);
  close(fd);
  return ok;
}

_Noreturn void cr_os_fatal(const char *msg, size_t len) {
  os_write_fd(2, msg, len, true);
  abort();
}

/* ---- stacks and files (the heap profiler) ------------------------------------ */

/* _Unwind_Backtrace rather than a frame-pointer walk (Debian builds its
 * libraries and python3 without frame pointers: such a walk stops, or
 * worse, wanders, at the first frame that has none) or glibc's backtrace()
 * (which dlopens libgcc_s on its first call, and dlopen allocates).  The
 * unwinder is libgcc's, linked into the shared library (-static-libgcc,
 * CMakeLists.txt; a program on the static library brings its own), so
 * nothing is loaded for it, and walking reads the .eh_frame tables found
 * through dl_iterate_phdr (or _dl_find_object) without allocating. */
typedef struct {
  void **raw;                /* return addresses seen, innermost first: cr_os_backtrace's own frame first */
  uintptr_t *cfa;            /* and their frames' CFAs (libgcc's: see os_memo_matches) */
  int cap, n;
  cr_os_stack_memo_t *memo;  /* or NULL */
  bool capped;               /* the walk stopped at cap */
} os_unwind_t;

/* Whether the calling thread's stack is the memo's, its frame 1 (the
 * caller of cr_os_backtrace) given by its return address ip and the stack
 * pointer cfa of its call, which the caller reads without the unwinder.
 * libgcc gives a frame the CFA of the frame it called (its stack pointer
 * at that call), and on x86-64 the return address into a frame is the word
 * just below that.  Each return address of the memo is checked where the
 * last walk found it, from the innermost frame up, so a read is made only
 * in a frame the previous check has shown to be there (the same call site
 * below it).  A function whose frame size varies (alloca, stack
 * realignment) could hold a stale copy of a return address at the memo's
 * place, an unlikely coincidence that would give the last stack again from
 * that frame up. */
static bool os_memo_matches(const cr_os_stack_t *m, uintptr_t ip, uintptr_t cfa) {
  if (m->n < 2 || m->ip[1] != ip || m->cfa[1] != cfa) return false;
  for (uint32_t i = 2; i < m->n; i++)
    if (*(const uintptr_t *)(m->cfa[i] - sizeof(uintptr_t)) != m->ip[i]) return false;
  return true;
}

/* The memo's stack that the calling thread's is (see os_memo_matches), or
 * NULL. */
static const cr_os_stack_t *os_memo_find(cr_os_stack_memo_t *memo, uintptr_t ip, uintptr_t cfa) {
  for (uint32_t k = 0; k < CR_OS_STACK_MEMOS; k++) {
    uint32_t i = (memo->last + k) % CR_OS_STACK_MEMOS; /* the last one first */
    if (os_memo_matches(&memo->stack[i], ip, cfa)) {
      memo->last = i;
      return &memo->stack[i];
    }
  }
  return NULL;
}

/* Where the return address has that fixed place (os.h): elsewhere
 * cr_os_backtrace keeps no memo and always unwinds. */
#if defined(__x86_64__)
#define OS_STACK_MEMO 1
#else
#define OS_STACK_MEMO 0
#endif

static _Unwind_Reason_Code os_unwind_frame(struct _Unwind_Context *ctx, void *arg) {
  os_unwind_t *u = arg;
  uintptr_t ip = _Unwind_GetIP(ctx);
  if (ip == 0) return _URC_END_OF_STACK;
  u->raw[u->n] = (void *)ip;
  u->cfa[u->n++] = _Unwind_GetCFA(ctx);
  if (u->n < u->cap) return _URC_NO_REASON;
  u->capped = true;
  return _URC_END_OF_STACK;
}

/* Keeps a whole walk of u in the memo, in place of the stacks in turn:
 * one that reached the stack's end, short enough, its CFAs rising as
 * callers' frames do; else leaves the memo as it is. */
static void os_memo_keep(const os_unwind_t *u) {
  bool keep = !u->capped && u->n >= 2 && u->n <= CR_OS_STACK_MEMO_FRAMES;
  for (int i = 1; keep && i < u->n; i++) keep = u->cfa[i] > u->cfa[i - 1];
  if (!keep) return;
  uint32_t slot = u->memo->next;
  u->memo->next = (slot + 1) % CR_OS_STACK_MEMOS;
  cr_os_stack_t *m = &u->memo->stack[slot];
  for (int i = 0; i < u->n; i++) m->ip[i] = (uintptr_t)u->raw[i], m->cfa[i] = u->cfa[i];
  m->n = (uint32_t)u->n;
  u->memo->last = slot;
}

/* The object holding this very function, found among the loaded ones;
 * the program itself comes first in dl_iterate_phdr's order. */
typedef struct {
  uintptr_t addr, lo, hi;
  bool found, program;
} os_code_t;

static int os_code_object(struct dl_phdr_info *info, size_t size, void *arg) {
  (void)size;
  os_code_t *c = arg;
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    uintptr_t lo = info->dlpi_addr + ph->p_vaddr, hi = lo + ph->p_memsz;
    if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X) || c->addr < lo || c->addr >= hi) continue;
    c->lo = lo, c->hi = hi, c->found = true;
    c->program = info->dlpi_name == NULL || info->dlpi_name[0] == '\0';
    return 1;
  }
  return 0;
}

/* corona's own code when it is a shared object, found once: [lo, hi), both
 * 0 when corona is linked into the program (its frames then stay). */
static void os_own_code(uintptr_t *lo, uintptr_t *hi) {
  os_code_t c = {(uintptr_t)&os_own_code, 0, 0, false, false};
  dl_iterate_phdr(os_code_object, &c);
  if (c.found && !c.program) *lo = c.lo, *hi = c.hi;
}

__attribute__((noinline)) int cr_os_backtrace(void **pcs, int max, cr_os_stack_memo_t *memo) {
  static _Atomic(uintptr_t) own_lo, own_hi;
  static atomic_bool own_known;
  if (!atomic_load_explicit(&own_known, memory_order_acquire)) {
    uintptr_t lo = 0, hi = 0; /* racing callers find the same range */
    os_own_code(&lo, &hi);
    atomic_store_explicit(&own_lo, lo, memory_order_relaxed);
    atomic_store_explicit(&own_hi, hi, memory_order_relaxed);
    atomic_store_explicit(&own_known, true, memory_order_release);
  }
  uintptr_t lo = atomic_load_explicit(&own_lo, memory_order_relaxed);
  uintptr_t hi = atomic_load_explicit(&own_hi, memory_order_relaxed);
  void *raw[CORONA_BACKTRACE_MAX + 17]; /* room for this function's frame and corona's, dropped below */
  uintptr_t cfa[CORONA_BACKTRACE_MAX + 17];
  if (max > CORONA_BACKTRACE_MAX) max = CORONA_BACKTRACE_MAX;
  if (max <= 0) return 0;
  if (!OS_STACK_MEMO) memo = NULL;
  os_unwind_t u = {raw, cfa, max + 17, 0, memo, false};
  /* Frame 1 as the unwinder would see it: no unwinding at all when the
   * memo holds this stack. */
  const cr_os_stack_t *m = NULL;
  if (memo != NULL) m = os_memo_find(memo, (uintptr_t)__builtin_return_address(0), (uintptr_t)__builtin_dwarf_cfa());
  if (m != NULL) {
    for (uint32_t i = 0; i < m->n && u.n < u.cap; i++) raw[u.n++] = (void *)m->ip[i];
  } else {
    _Unwind_Backtrace(os_unwind_frame, &u);
    if (memo != NULL) os_memo_keep(&u);
  }
  int first = 1; /* this function's own frame, then corona's: innermost, dropped */
  while (first < u.n && (uintptr_t)raw[first] >= lo && (uintptr_t)raw[first] < hi) first++;
  int n = 0;
  for (int k = first; k < u.n && n < max; k++) pcs[n++] = raw[k];
  return n;
}

bool cr_os_symbol(const void *pc, char *name, size_t cap) {
  Dl_info info;
  if (cap == 0 || dladdr(pc, &info) == 0) return false;
  size_t n = 0;
  const char *from = info.dli_sname;
  uintptr_t offset = 0;
  if (from == NULL) { /* no symbol: the object's file name and the offset in it */
    from = info.dli_fname != NULL ? info.dli_fname : "?";
    for (const char *c = from; *c; c++)
      if (*c == '/') from = c + 1;
    offset = (uintptr_t)pc - (uintptr_t)info.dli_fbase;
  }
  for (; from[n] != '\0' && n < cap - 1; n++) name[n] = from[n];
  if (offset != 0 && n + 20 < cap) {
    name[n++] = '+';
    name[n++] = '0';
    name[n++] = 'x';
    int shift = 60;
    while (shift > 0 && ((offset >> shift) & 15) == 0) shift -= 4;
    for (; shift >= 0; shift -= 4) name[n++] = "0123456789abcdef"[(offset >> shift) & 15];
  }
  name[n] = '\0';
  return true;
}

bool cr_os_write_mappings(const char *path) {
  int maps = os_open("/proc/self/maps", O_RDONLY);
  if (maps < 0) return false;
  int fd = os_open(path, O_WRONLY | O_CREAT | O_APPEND);
  char buf[4096];
  ssize_t n = -1;
  bool ok = fd >= 0;
  while (ok) {
    do n = read(maps, buf, sizeof buf);
    while (n < 0 && errno == EINTR);
    if (n <= 0) break;
    ok = os_write_fd(fd, buf, (size_t)n, false);
  }
  if (fd >= 0) close(fd);
  close(maps);
  return ok && n == 0;
}
