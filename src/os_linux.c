/* os_linux.c (layer: os) — the Linux side of the platform contract (internal/os.h),
 * all but the memory group: the facts (sysconf, /proc/meminfo, the initial
 * stack), the clock, environ, pthread keys for thread exit, fork and exit
 * handlers, dlsym, futexes and sched_yield, the purger's thread, write(2).
 * The memory group is os_linux_map.c, or os_fake.c in the test library
 * corona_fakeos: both link with this file. */
#include <dlfcn.h>
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

#include "internal/os.h"

/* ---- facts ------------------------------------------------------------------ */
static size_t os_page_size = 4096;
static size_t os_huge_page_size;
static unsigned os_address_bits = 47;

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

void cr_os_init(void) {
  long ps = sysconf(_SC_PAGESIZE);
  if (ps > 0) os_page_size = (size_t)ps;
  os_huge_page_size = read_huge_page_size();
  os_address_bits = read_address_bits();
}

size_t cr_os_page_size(void) { return os_page_size; }
size_t cr_os_huge_page_size(void) { return os_huge_page_size; }
unsigned cr_os_address_bits(void) { return os_address_bits; }

/* ---- time and environment ------------------------------------------------------ */

uint64_t cr_os_now_ms(void) {
  struct timespec ts;
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

/* ---- threads and the process ------------------------------------------------- */
static pthread_key_t os_thread_key[CR_OS_THREAD_SLOTS];

bool cr_os_thread_exit_init(unsigned slot, void (*on_exit)(void *value)) {
  return pthread_key_create(&os_thread_key[slot], on_exit) == 0;
}

void cr_os_thread_set(unsigned slot, void *value) { pthread_setspecific(os_thread_key[slot], value); }

void *cr_os_next_symbol(const char *name) { return dlsym(RTLD_NEXT, name); }

/* A copy of stderr taken at start-up (cr_os_process_hooks), for reports due
 * after the program has closed its own (coreutils close it at exit). */
static int kept_err_fd = -1;

static void os_keep_stderr(void) {
  if (kept_err_fd < 0) kept_err_fd = fcntl(2, F_DUPFD_CLOEXEC, 3);
}

void cr_os_process_hooks(void (*prepare)(void), void (*parent)(void), void (*child)(void), void (*at_exit)(void)) {
  pthread_atfork(prepare, parent, child);
  if (at_exit == NULL) return;
  os_keep_stderr();
  atexit(at_exit);
}

/* ---- waiting ------------------------------------------------------------------- */
void cr_os_yield(void) { sched_yield(); }

/* Private futexes: the lock words are never shared between processes. */
void cr_os_wait(atomic_int *addr, int expected) {
  syscall(SYS_futex, (int *)addr, FUTEX_WAIT_PRIVATE, expected, NULL, NULL, 0);
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

void cr_os_wait_ms(atomic_int *addr, int expected, uint64_t ms) {
  struct timespec rel = {.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000L};
  syscall(SYS_futex, (int *)addr, FUTEX_WAIT_PRIVATE, expected, &rel, NULL, 0); /* relative */
}

/* ---- error output -------------------------------------------------------------- */
void cr_os_write_err(const char *msg, size_t len) {
  int fd = 2;
  while (len > 0) {
    ssize_t n = write(fd, msg, len);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EBADF && fd == 2 && kept_err_fd >= 0) {
      fd = kept_err_fd;
      continue;
    }
    if (n <= 0) return;
    msg += n;
    len -= (size_t)n;
  }
}

bool cr_os_append_file(const char *path, const char *data, size_t len) {
  int fd;
  do fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0666);
  while (fd < 0 && errno == EINTR);
  if (fd < 0) return false;
  bool ok = true;
  while (len > 0 && ok) {
    ssize_t n = write(fd, data, len);
    if (n < 0 && errno == EINTR) continue;
    ok = n > 0;
    if (ok) data += n, len -= (size_t)n;
  }
  close(fd);
  return ok;
}

/* program_invocation_short_name (errno.h, _GNU_SOURCE): glibc's and musl's
 * argv[0] without its directory, set before main, also in a fully static
 * program. */
uint64_t cr_os_process_id(char *name, size_t cap) {
  const char *from = program_invocation_short_name;
  size_t n = 0;
  for (; cap > 0 && from != NULL && from[n] != '\0' && n < cap - 1; n++) name[n] = from[n];
  if (cap > 0) name[n] = '\0';
  return (uint64_t)getpid();
}

_Noreturn void cr_os_abort(void) { abort(); }
