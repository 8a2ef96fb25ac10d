/* os_linux_map.c (layer: os) — the memory group of the platform contract on Linux
 * (internal/os.h): mmap, munmap, mremap, madvise.  The rest of the Linux
 * side is os_linux.c; the test library corona_fakeos links os_fake.c in
 * this file's place. */
#include <stdint.h>
#include <sys/mman.h>

#include "internal/os.h"

#if defined(__SANITIZE_THREAD__)
#define OS_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define OS_TSAN 1
#endif
#endif

static void *os_mmap(size_t size, int flags) {
  void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | flags, -1, 0);
  return p == MAP_FAILED ? NULL : p;
}

void *cr_os_map(size_t size, size_t alignment, size_t offset, unsigned flags) {
  int mflags = (flags & CR_OS_META ? MAP_NORESERVE : 0) | (flags & CR_OS_HUGE_ONLY ? MAP_HUGETLB : 0);
  const cr_os_info_t *os = cr_os_info();
  size_t page = flags & CR_OS_HUGE_ONLY ? os->huge_page_size : os->page_size;
  if (page == 0) return NULL; /* huge pages of unknown size: none to ask for */
  char *p = os_mmap(size, mflags);
  if (p != NULL && alignment > page && (((uintptr_t)p + offset) & (alignment - 1)) != 0) {
    /* Misaligned: over-map by the alignment and trim both ends.  Mappings
     * of the same size then tend to land aligned next to this one, so for
     * regions the retry is rare in practice.  The over-mapping is charged
     * in full for a moment, as glibc's memalign charges it: an alignment
     * the system could not back fails here as it fails there.  Huge pages
     * trim in whole huge pages (the contract makes every length one). */
    munmap(p, size);
    size_t over = size + alignment - page;
    char *q = over < size ? NULL : os_mmap(over, mflags);
    if (q == NULL) return NULL;
    uintptr_t start = (((uintptr_t)q + offset + alignment - 1) & ~(uintptr_t)(alignment - 1)) - offset;
    size_t head = start - (uintptr_t)q; /* < alignment: start + size stays inside */
    size_t tail = over - head - size;
    if (head) munmap(q, head);
    if (tail) munmap((char *)start + size, tail);
    p = (char *)start;
  }
  if (p != NULL && (flags & CR_OS_HUGE)) madvise(p, size, MADV_HUGEPAGE);
  return p;
}

void cr_os_unmap(void *addr, size_t size) { munmap(addr, size); }

void cr_os_purge(void *addr, size_t size) { madvise(addr, size, MADV_DONTNEED); }

/* MADV_POPULATE_WRITE (Linux 5.14) faults the pages in for writing, as the
 * first stores would, in one call; an older kernel answers EINVAL and the
 * stores fault them in as before. */
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
void cr_os_populate(void *addr, size_t size) { (void)madvise(addr, size, MADV_POPULATE_WRITE); }

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

/* Any page range of a mapping can be unmapped or remapped alone: a cut
 * changes nothing here.  A join neither: where the kernel keeps the parts
 * apart (different advice, or pages faulted in before they met), a later
 * mremap of the whole fails, as the contract allows. */
bool cr_os_cut(void *addr, size_t size, size_t at, bool join) {
  (void)addr, (void)size, (void)at, (void)join;
  return true;
}
