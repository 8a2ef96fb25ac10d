/* os_linux.c — the Linux side of the platform contract (internal/os.h):
 * mmap/munmap/madvise, pthread keys for thread exit, sched_yield, write(2).
 * The only file of the core that includes OS headers. */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <time.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <linux/futex.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal/os.h"

static size_t os_page_size = 4096;
static size_t os_huge_page_size;
static pthread_key_t os_thread_key[CR_OS_THREAD_SLOTS];

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

static unsigned os_address_bits = 47;

void cr_os_init(void) {
  long ps = sysconf(_SC_PAGESIZE);
  if (ps > 0) os_page_size = (size_t)ps;
  os_huge_page_size = read_huge_page_size();
  os_address_bits = read_address_bits();
}

unsigned cr_os_address_bits(void) { return os_address_bits; }

size_t cr_os_huge_page_size(void) { return os_huge_page_size; }

#if defined(__SANITIZE_THREAD__)
#define OS_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define OS_TSAN 1
#endif
#endif

void *cr_os_remap(void *addr, size_t old_size, size_t new_size, void *target) {
#ifdef OS_TSAN
  /* TSan does not intercept mremap: a range that pages were moved out of
   * keeps its old shadow, and growing another mapping into it in place
   * reports races that are not there.  Under TSan, only move. */
  if (target == NULL && new_size > old_size) return NULL;
#endif
  void *p = target == NULL ? mremap(addr, old_size, new_size, 0)
                           : mremap(addr, old_size, new_size, MREMAP_MAYMOVE | MREMAP_FIXED, target);
  return p == MAP_FAILED ? NULL : p;
}

void cr_os_advise_huge(void *addr, size_t size) { madvise(addr, size, MADV_HUGEPAGE); }

void *cr_os_map_huge(size_t size) {
  void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
  return p == MAP_FAILED ? NULL : p;
}

uint64_t cr_os_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

const char *cr_os_getenv(const char *name) { return getenv(name); }

extern char **environ;
const char *cr_os_env_entry(size_t i) {
  if (environ == NULL) return NULL;
  for (size_t k = 0; k < i; k++)
    if (environ[k] == NULL) return NULL;
  return environ[i];
}

size_t cr_os_page_size(void) { return os_page_size; }

static void *os_mmap(size_t size, int flags) {
  void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | flags, -1, 0);
  return p == MAP_FAILED ? NULL : p;
}

void *cr_os_map(size_t size, size_t alignment, size_t offset) {
  void *p = os_mmap(size, 0);
  if (p == NULL || alignment <= os_page_size || (((uintptr_t)p + offset) & (alignment - 1)) == 0) return p;
  /* Misaligned: over-map by the alignment and trim both ends.  Mappings of
   * the same size then tend to land aligned next to this one, so for
   * regions the retry is rare in practice.  The over-mapping is charged in
   * full for a moment, as glibc's memalign charges it: an alignment the
   * system could not back fails here as it fails there. */
  munmap(p, size);
  size_t over = size + alignment - os_page_size;
  if (over < size) return NULL;
  char *q = os_mmap(over, 0);
  if (q == NULL) return NULL;
  uintptr_t start = (((uintptr_t)q + offset + alignment - 1) & ~(uintptr_t)(alignment - 1)) - offset;
  size_t head = start - (uintptr_t)q; /* < alignment: start + size stays inside */
  size_t tail = over - head - size;
  if (head) munmap(q, head);
  if (tail) munmap((char *)start + size, tail);
  return (void *)start;
}

void *cr_os_map_meta(size_t size) { return os_mmap(size, MAP_NORESERVE); }

void cr_os_unmap(void *addr, size_t size) { munmap(addr, size); }

void cr_os_purge(void *addr, size_t size) { madvise(addr, size, MADV_DONTNEED); }

bool cr_os_thread_exit_init(unsigned slot, void (*on_exit)(void *value)) {
  return pthread_key_create(&os_thread_key[slot], on_exit) == 0;
}

void cr_os_thread_set(unsigned slot, void *value) { pthread_setspecific(os_thread_key[slot], value); }

void *cr_os_next_symbol(const char *name) { return dlsym(RTLD_NEXT, name); }

void cr_os_atfork(void (*prepare)(void), void (*parent)(void), void (*child)(void)) {
  pthread_atfork(prepare, parent, child);
}

void cr_os_atexit(void (*fn)(void)) { atexit(fn); }

void cr_os_yield(void) { sched_yield(); }

/* Private futexes: the lock words are never shared between processes. */
void cr_os_wait(atomic_int *addr, int expected) {
  syscall(SYS_futex, (int *)addr, FUTEX_WAIT_PRIVATE, expected, NULL, NULL, 0);
}

void cr_os_wake_one(atomic_int *addr) { syscall(SYS_futex, (int *)addr, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0); }

/* A copy of stderr taken at start-up (cr_os_keep_stderr), for reports due
 * after the program has closed its own (coreutils close it at exit). */
static int kept_err_fd = -1;

void cr_os_keep_stderr(void) {
  if (kept_err_fd < 0) kept_err_fd = fcntl(2, F_DUPFD_CLOEXEC, 3);
}

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

_Noreturn void cr_os_abort(void) { abort(); }
