/* os_linux.c — the Linux side of the platform contract (internal/os.h):
 * mmap/munmap/madvise, pthread keys for thread exit, sched_yield, write(2).
 * The only file of the core that includes OS headers. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "internal/os.h"

static size_t os_page_size = 4096;
static pthread_key_t os_thread_key;

void cr_os_init(void) {
  long ps = sysconf(_SC_PAGESIZE);
  if (ps > 0) os_page_size = (size_t)ps;
}

size_t cr_os_page_size(void) { return os_page_size; }

static void *os_mmap(size_t size) {
  void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  return p == MAP_FAILED ? NULL : p;
}

void *cr_os_map(size_t size, size_t alignment) {
  void *p = os_mmap(size);
  if (p == NULL || alignment <= os_page_size || ((uintptr_t)p & (alignment - 1)) == 0) return p;
  /* Misaligned: over-map by the alignment and trim both ends.  Mappings of
   * the same size then tend to land aligned next to this one, so the
   * retry is rare in practice. */
  munmap(p, size);
  size_t over = size + alignment - os_page_size;
  if (over < size) return NULL;
  char *q = os_mmap(over);
  if (q == NULL) return NULL;
  uintptr_t start = ((uintptr_t)q + alignment - 1) & ~(uintptr_t)(alignment - 1);
  size_t head = start - (uintptr_t)q;
  size_t tail = over - head - size;
  if (head) munmap(q, head);
  if (tail) munmap((char *)start + size, tail);
  return (void *)start;
}

void cr_os_unmap(void *addr, size_t size) { munmap(addr, size); }

void cr_os_purge(void *addr, size_t size) { madvise(addr, size, MADV_DONTNEED); }

bool cr_os_thread_exit_init(void (*on_exit)(void *value)) {
  return pthread_key_create(&os_thread_key, on_exit) == 0;
}

void cr_os_thread_set(void *value) { pthread_setspecific(os_thread_key, value); }

void cr_os_yield(void) { sched_yield(); }

void cr_os_write_err(const char *msg, size_t len) {
  while (len > 0) {
    ssize_t n = write(2, msg, len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    msg += n;
    len -= (size_t)n;
  }
}

_Noreturn void cr_os_abort(void) { abort(); }
