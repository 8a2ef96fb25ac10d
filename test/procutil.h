/* procutil.h — Linux /proc and /sys readers for corona's memory tests:
 * resident set size and address-space size (/proc/self/statm), peak RSS and
 * its reset (VmHWM, /proc/self/clear_refs), AnonHugePages
 * (/proc/self/smaps_rollup), the VmFlags of the mapping holding an address
 * (/proc/self/smaps), the transparent-huge-page mode, and page touching.
 * Windows has stand-ins for the figures (see below) and pu_map/pu_unmap
 * give raw OS memory on both.
 * Like testutil.h it allocates nothing: files are read with open/read into
 * static or stack buffers (the test programs are single-threaded whenever
 * they call these), so the figures are not disturbed by the harness. */
#ifndef CORONA_PROCUTIL_H
#define CORONA_PROCUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define PU_MIB ((size_t)1 << 20)

#ifdef _WIN32
/* Windows: the working set stands in for RSS (GetProcessMemoryInfo), its
 * peak cannot be reset, there are no transparent huge pages, and a
 * "mapping" is the VirtualAlloc reservation holding an address (no flags). */
#define WIN32_LEAN_AND_MEAN
#include <windows.h>
#define PSAPI_VERSION 2
#include <psapi.h>

static inline size_t pu_page_size(void) {
  SYSTEM_INFO si;
  GetSystemInfo(&si);
  return si.dwPageSize ? si.dwPageSize : 4096;
}

static inline bool pu_counters(PROCESS_MEMORY_COUNTERS *pmc) {
  return K32GetProcessMemoryInfo(GetCurrentProcess(), pmc, sizeof *pmc) != 0;
}
static inline size_t pu_rss(void) {
  PROCESS_MEMORY_COUNTERS pmc;
  return pu_counters(&pmc) ? pmc.WorkingSetSize : 0;
}
/* Committed private memory: what a failing VirtualAlloc runs out of. */
static inline size_t pu_vm_size(void) {
  PROCESS_MEMORY_COUNTERS pmc;
  return pu_counters(&pmc) ? pmc.PagefileUsage : 0;
}
static inline size_t pu_peak_rss(void) {
  PROCESS_MEMORY_COUNTERS pmc;
  return pu_counters(&pmc) ? pmc.PeakWorkingSetSize : 0;
}
static inline bool pu_reset_peak_rss(void) { return false; }
static inline long pu_anon_huge_bytes(void) { return -1; }
static inline const char *pu_thp_mode(void) { return ""; }
static inline bool pu_thp_usable(void) { return false; }

static inline bool pu_mapping_of(const void *addr, uintptr_t *lo, uintptr_t *hi, char *flags, size_t flags_cap) {
  MEMORY_BASIC_INFORMATION mbi;
  if (VirtualQuery(addr, &mbi, sizeof mbi) == 0 || mbi.State == MEM_FREE) return false;
  *lo = (uintptr_t)mbi.BaseAddress;
  *hi = (uintptr_t)mbi.BaseAddress + mbi.RegionSize;
  if (flags_cap) flags[0] = '\0';
  return true;
}

/* len bytes of fresh zeroed read-write memory from the OS, or NULL. */
static inline void *pu_map(size_t len) { return VirtualAlloc(NULL, len, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE); }
static inline void pu_unmap(void *p, size_t len) {
  (void)len;
  VirtualFree(p, 0, MEM_RELEASE);
}

#else /* Linux */
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#ifdef MAP_ANONYMOUS /* not under a strict _POSIX_C_SOURCE */
/* len bytes of fresh zeroed read-write memory from the OS, or NULL. */
static inline void *pu_map(size_t len) {
  void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  return p == MAP_FAILED ? NULL : p;
}
static inline void pu_unmap(void *p, size_t len) { munmap(p, len); }
#endif

static inline size_t pu_page_size(void) {
  long ps = sysconf(_SC_PAGESIZE);
  return ps > 0 ? (size_t)ps : 4096;
}

/* Reads up to cap - 1 bytes of path into buf (NUL-terminated); returns the
 * length, or -1 when the file cannot be opened. */
static inline long pu_read_file(const char *path, char *buf, size_t cap) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  size_t n = 0;
  while (n + 1 < cap) {
    ssize_t r = read(fd, buf + n, cap - 1 - n);
    if (r <= 0) break;
    n += (size_t)r;
  }
  close(fd);
  buf[n] = '\0';
  return (long)n;
}

static inline uint64_t pu_parse_u64(const char **s) {
  const char *p = *s;
  while (*p == ' ' || *p == '\t') p++;
  uint64_t v = 0;
  while (*p >= '0' && *p <= '9') v = v * 10 + (uint64_t)(*p++ - '0');
  *s = p;
  return v;
}

/* Field `index` (0: size, 1: resident) of /proc/self/statm, in bytes. */
static inline size_t pu_statm_bytes(int index) {
  char buf[256];
  if (pu_read_file("/proc/self/statm", buf, sizeof buf) <= 0) return 0;
  const char *p = buf;
  uint64_t v = 0;
  for (int i = 0; i <= index; i++) v = pu_parse_u64(&p);
  return (size_t)v * pu_page_size();
}

/* The line "key <n> kB" of /proc/self/status in bytes (key includes the
 * colon), or 0 when absent.  A buffer on the stack: threads may ask. */
static inline size_t pu_status_bytes(const char *key) {
  char buf[4096];
  if (pu_read_file("/proc/self/status", buf, sizeof buf) <= 0) return 0;
  size_t klen = strlen(key);
  for (const char *p = buf; *p; p++) {
    if ((p == buf || p[-1] == '\n') && strncmp(p, key, klen) == 0) {
      const char *q = p + klen;
      return (size_t)pu_parse_u64(&q) * 1024;
    }
  }
  return 0;
}

/* Resident set size in bytes.  From VmRSS, in kB, rather than statm, which
 * counts the kernel's pages: under qemu-user with an emulated page size
 * (QEMU_PAGESIZE=16384 or 65536) those are not the program's pages. */
static inline size_t pu_rss(void) {
  size_t b = pu_status_bytes("VmRSS:");
  return b != 0 ? b : pu_statm_bytes(1);
}
/* Mapped address space (what RLIMIT_AS limits) in bytes (VmSize). */
static inline size_t pu_vm_size(void) {
  size_t b = pu_status_bytes("VmSize:");
  return b != 0 ? b : pu_statm_bytes(0);
}

/* The value in kB of the line "key: <n> kB" of a /proc file (key includes
 * the colon), or -1 when absent. */
static inline long pu_proc_kb(const char *path, const char *key) {
  static char buf[16384];
  if (pu_read_file(path, buf, sizeof buf) <= 0) return -1;
  size_t klen = strlen(key);
  for (const char *p = buf; *p; p++) {
    if ((p == buf || p[-1] == '\n') && strncmp(p, key, klen) == 0) {
      const char *q = p + klen;
      return (long)pu_parse_u64(&q);
    }
  }
  return -1;
}

/* Peak RSS (VmHWM) in bytes, 0 when unknown. */
static inline size_t pu_peak_rss(void) {
  long kb = pu_proc_kb("/proc/self/status", "VmHWM:");
  return kb < 0 ? 0 : (size_t)kb * 1024;
}

/* Resets VmHWM to the current RSS (Linux >= 4.0); false when not allowed. */
static inline bool pu_reset_peak_rss(void) {
  int fd = open("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok = write(fd, "5", 1) == 1;
  close(fd);
  return ok;
}

/* AnonHugePages of the whole process in bytes, or -1 when unknown. */
static inline long pu_anon_huge_bytes(void) {
  long kb = pu_proc_kb("/proc/self/smaps_rollup", "AnonHugePages:");
  return kb < 0 ? -1 : kb * 1024;
}

/* The bracketed word of /sys/kernel/mm/transparent_hugepage/enabled
 * ("always", "madvise", "never"), or "" when there is no THP. */
static inline const char *pu_thp_mode(void) {
  static char mode[32];
  char buf[256];
  mode[0] = '\0';
  if (pu_read_file("/sys/kernel/mm/transparent_hugepage/enabled", buf, sizeof buf) <= 0) return mode;
  const char *a = strchr(buf, '[');
  const char *b = a ? strchr(a, ']') : NULL;
  if (a && b && (size_t)(b - a - 1) < sizeof mode) {
    memcpy(mode, a + 1, (size_t)(b - a - 1));
    mode[b - a - 1] = '\0';
  }
  return mode;
}

static inline bool pu_thp_usable(void) {
  const char *m = pu_thp_mode();
  return strcmp(m, "always") == 0 || strcmp(m, "madvise") == 0;
}

static inline uint64_t pu_parse_hex(const char **s) {
  const char *p = *s;
  uint64_t v = 0;
  for (;; p++) {
    int d;
    if (*p >= '0' && *p <= '9') d = *p - '0';
    else if (*p >= 'a' && *p <= 'f') d = *p - 'a' + 10;
    else break;
    v = v * 16 + (uint64_t)d;
  }
  *s = p;
  return v;
}

/* Finds the mapping of /proc/self/smaps that holds addr; copies its range to
 * *lo / *hi and its VmFlags line (without the key) to flags.  Returns false
 * when no mapping holds addr.  Streams the file through a static buffer. */
static inline bool pu_mapping_of(const void *addr, uintptr_t *lo, uintptr_t *hi, char *flags, size_t flags_cap) {
  static char chunk[65536];
  static char line[4096];
  int fd = open("/proc/self/smaps", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  uintptr_t a = (uintptr_t)addr;
  bool inside = false, found = false;
  size_t ll = 0;
  if (flags_cap) flags[0] = '\0';
  for (;;) {
    ssize_t r = read(fd, chunk, sizeof chunk);
    if (r <= 0) break;
    for (ssize_t i = 0; i < r && !found; i++) {
      char c = chunk[i];
      if (c != '\n') {
        if (ll + 1 < sizeof line) line[ll++] = c;
        continue;
      }
      line[ll] = '\0';
      ll = 0;
      const char *p = line;
      /* A mapping header starts "lo-hi perms": hex, '-', hex, ' '. */
      const char *q = p;
      uint64_t l = pu_parse_hex(&q);
      if (q != p && *q == '-') {
        q++;
        const char *q2 = q;
        uint64_t h = pu_parse_hex(&q2);
        if (q2 != q && *q2 == ' ') {
          inside = a >= l && a < h;
          if (inside) {
            *lo = (uintptr_t)l;
            *hi = (uintptr_t)h;
          }
          continue;
        }
      }
      if (inside && strncmp(line, "VmFlags:", 8) == 0) {
        const char *f = line + 8;
        while (*f == ' ') f++;
        size_t n = strlen(f);
        if (n + 1 > flags_cap) n = flags_cap ? flags_cap - 1 : 0;
        if (flags_cap) {
          memcpy(flags, f, n);
          flags[n] = '\0';
        }
        found = true;
      }
    }
    if (found) break;
  }
  close(fd);
  return found;
}

#endif /* _WIN32 */

/* Whether the space-separated flag list holds the two-letter flag. */
static inline bool pu_has_flag(const char *flags, const char *flag) {
  size_t n = strlen(flag);
  for (const char *p = flags; *p;) {
    while (*p == ' ') p++;
    const char *e = p;
    while (*e && *e != ' ') e++;
    if ((size_t)(e - p) == n && strncmp(p, flag, n) == 0) return true;
    p = e;
  }
  return false;
}

/* Writes one byte in every page of p[0..n) (and the last byte), so every
 * page is resident. */
static inline void pu_touch(void *p, size_t n, unsigned char v) {
  volatile unsigned char *c = (volatile unsigned char *)p;
  size_t ps = pu_page_size();
  for (size_t i = 0; i < n; i += ps) c[i] = v;
  if (n) c[n - 1] = v;
}

/* Checks the page-stride bytes pu_touch wrote in p[0..n) (n may be less
 * than the touched length); returns the first bad offset or (size_t)-1. */
static inline size_t pu_pages_ok(const void *p, size_t n, unsigned char v) {
  const volatile unsigned char *c = (const volatile unsigned char *)p;
  size_t ps = pu_page_size();
  for (size_t i = 0; i < n; i += ps)
    if (c[i] != v) return i;
  return (size_t)-1;
}

/* Checks what pu_touch(p, n, v) wrote; returns the first bad offset or
 * (size_t)-1. */
static inline size_t pu_touched_ok(const void *p, size_t n, unsigned char v) {
  const volatile unsigned char *c = (const volatile unsigned char *)p;
  size_t ps = pu_page_size();
  for (size_t i = 0; i < n; i += ps)
    if (c[i] != v) return i;
  if (n && c[n - 1] != v) return n - 1;
  return (size_t)-1;
}

static inline double pu_mib(size_t bytes) { return (double)bytes / (double)PU_MIB; }
static inline double pu_mib_signed(size_t a, size_t b) { return ((double)a - (double)b) / (double)PU_MIB; }

#endif /* CORONA_PROCUTIL_H */
