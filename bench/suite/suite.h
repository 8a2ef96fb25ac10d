/* suite.h — what the workload programs of bench/suite share.
 *
 * Every workload is a plain C program on the standard malloc API, linked
 * against nothing but libc and pthreads, so that scripts/bench can run the
 * very same binary under each allocator by LD_PRELOAD (glibc: no preload).
 *
 * Command line, the same for every program:
 *   PROG [-t THREADS] [-s SCALE] [MODE] [--which]
 *     -t N      worker threads (default 1)
 *     -s X      multiplies the amount of work (default 1.0; scripts/bench
 *               --quick uses less)
 *     MODE      the variant, for the programs that have more than one
 *     --which   print the file that defines malloc, free, realloc and calloc
 *               in this process (dladdr), and exit
 * Output: one line on stdout,
 *   workload=W threads=N checksum=HEX alloc=FILE work_ms=F [key=value ...]
 * The checksum depends only on the work (fixed seeds, never on addresses or
 * timing), so it must be the same under every allocator; alloc= is the
 * basename of the file that defines malloc, which scripts/bench checks
 * against the allocator it meant to preload.  A content check that fails
 * prints a message and exits with status 3. */
#ifndef CORONA_SUITE_H
#define CORONA_SUITE_H

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../benchutil.h" /* NOINLINE, TOUCHED, NORETURN, COLD */

/* ---- random numbers: splitmix64, one state per user -------------------- */

typedef struct rng {
  uint64_t s;
} rng_t;

static inline rng_t rng_make(uint64_t seed) {
  rng_t r = {seed * 0x9e3779b97f4a7c15ull + 0x5eed0c0120a2024ull};
  return r;
}
static inline uint64_t rng_u64(rng_t *r) {
  uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}
/* Uniform in [lo, hi]. */
static inline size_t rng_between(rng_t *r, size_t lo, size_t hi) {
  return lo + (size_t)(rng_u64(r) % (uint64_t)(hi - lo + 1));
}
/* Log-uniform by octave in [lo, lo << octaves). */
static inline size_t rng_octaves(rng_t *r, size_t lo, unsigned octaves) {
  size_t base = lo << (rng_u64(r) % octaves);
  return base + (size_t)(rng_u64(r) % base);
}
/* A stateless hash of one number (for per-item seeds and tags). */
static inline uint64_t mix64(uint64_t x) {
  rng_t r = {x};
  return rng_u64(&r);
}
/* The byte written at OFF of object ID, checked before the object is freed. */
static inline unsigned char tag_byte(uint64_t id, size_t off) {
  return (unsigned char)(id * 0x9dull + off * 0x3bull + 1);
}

/* ---- errors -------------------------------------------------------------- */

static const char *suite_prog = "suite";

NORETURN COLD static inline void suite_die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "%s: ", suite_prog);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  exit(3);
}

NORETURN COLD static inline void suite_oom(size_t n) { suite_die("malloc returned NULL for %zu bytes", n); }

/* malloc that dies on NULL (for bookkeeping and workloads alike). */
static inline void *xmalloc(size_t n) {
  void *p = malloc(n);
  if (p == NULL)
    suite_oom(n);
  return p;
}

NORETURN COLD static inline void suite_corrupt(const char *what, uint64_t id, size_t off, unsigned got,
                                        unsigned want) {
  suite_die("CONTENT CHECK FAILED: %s: object %llu byte %zu is %#x, expected %#x", what,
            (unsigned long long)id, off, got, want);
}

/* A tagged object of N >= 8 bytes: ID in its first word and, when there is
 * room, the tag of (KEY, N - 1) in its last byte.  suite_tagged_free checks
 * both (WHAT names the workload in a failure), frees the object and returns
 * the tag byte (0 for an 8-byte object). */
static inline uint64_t *suite_tagged_new(uint64_t id, uint64_t key, size_t n) {
  uint64_t *p = xmalloc(n);
  p[0] = id;
  if (n > 8)
    ((unsigned char *)p)[n - 1] = tag_byte(key, n - 1);
  return p;
}
static inline unsigned char suite_tagged_free(uint64_t *p, uint64_t id, uint64_t key, size_t n,
                                              const char *what) {
  if (p[0] != id)
    suite_corrupt(what, id, 0, (unsigned)(p[0] & 0xff), (unsigned)(id & 0xff));
  unsigned char last = 0;
  if (n > 8) {
    last = ((unsigned char *)p)[n - 1];
    if (last != tag_byte(key, n - 1))
      suite_corrupt(what, id, n - 1, last, tag_byte(key, n - 1));
  }
  free(p);
  return last;
}

/* ---- which allocator is this? ------------------------------------------- */

static inline const char *suite_file_of(void *fn) {
  Dl_info info;
  if (fn != NULL && dladdr(fn, &info) && info.dli_fname != NULL && info.dli_fname[0] != '\0')
    return info.dli_fname;
  return "?";
}

static inline const char *suite_basename(const char *path) {
  const char *s = strrchr(path, '/');
  return s ? s + 1 : path;
}

/* The file that defines the function the program's own call to NAME reaches. */
static inline const char *suite_alloc_file(const char *name) {
  void *fn = NULL;
  /* Through the program's own references (the GOT), so that an LD_PRELOAD
   * interposer is what we see, exactly as the workload calls it. */
  void *(*volatile m)(size_t) = malloc;
  void (*volatile f)(void *) = free;
  void *(*volatile r)(void *, size_t) = realloc;
  void *(*volatile c)(size_t, size_t) = calloc;
  if (strcmp(name, "malloc") == 0)
    memcpy(&fn, (void *)&m, sizeof fn);
  else if (strcmp(name, "free") == 0)
    memcpy(&fn, (void *)&f, sizeof fn);
  else if (strcmp(name, "realloc") == 0)
    memcpy(&fn, (void *)&r, sizeof fn);
  else
    memcpy(&fn, (void *)&c, sizeof fn);
  return suite_file_of(fn);
}

/* ---- arguments, timing, output ------------------------------------------ */

typedef struct suite_args {
  int threads;
  double scale;
  const char *mode;
} suite_args;

static inline double suite_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

static double suite_t0;

/* Parses the command line.  MODES: NULL-terminated list of the allowed modes
 * (the first is the default), or NULL for a program without modes. */
static inline suite_args suite_init(int argc, char **argv, const char *prog, const char *usage,
                             const char *const *modes) {
  suite_args a = {1, 1.0, modes ? modes[0] : ""};
  suite_prog = prog;
  int which = 0;
  for (int i = 1; i < argc; i++) {
    const char *s = argv[i];
    if (strcmp(s, "-t") == 0 && i + 1 < argc) {
      char *end;
      errno = 0;
      long t = strtol(argv[++i], &end, 10);
      if (errno || *end || t < 1 || t > 4096)
        suite_die("-t needs a number of threads from 1 to 4096");
      a.threads = (int)t;
    } else if (strcmp(s, "-s") == 0 && i + 1 < argc) {
      char *end;
      errno = 0;
      double x = strtod(argv[++i], &end);
      if (errno || *end || !(x > 0 && x <= 1000))
        suite_die("-s needs a scale above 0 and at most 1000");
      a.scale = x;
    } else if (strcmp(s, "--which") == 0) {
      which = 1;
    } else if (strcmp(s, "-h") == 0 || strcmp(s, "--help") == 0) {
      printf("usage: %s [-t THREADS] [-s SCALE]%s [--which]\n%s", prog, modes ? " [MODE]" : "",
             usage);
      if (modes) {
        printf("modes:");
        for (int k = 0; modes[k]; k++)
          printf(" %s", modes[k]);
        printf("\n");
      }
      exit(0);
    } else if (modes && s[0] != '-') {
      int k = 0;
      while (modes[k] && strcmp(modes[k], s) != 0)
        k++;
      if (!modes[k])
        suite_die("unknown mode '%s' (see --help)", s);
      a.mode = modes[k];
    } else {
      suite_die("unknown argument '%s' (see --help)", s);
    }
  }
  if (which) {
    printf("malloc=%s\nfree=%s\nrealloc=%s\ncalloc=%s\n", suite_alloc_file("malloc"),
           suite_alloc_file("free"), suite_alloc_file("realloc"), suite_alloc_file("calloc"));
    exit(0);
  }
  suite_t0 = suite_now_ms();
  return a;
}

/* The result line (EXTRA: more " key=value" text, or ""). */
static inline void suite_report(const char *workload, const suite_args *a, uint64_t checksum,
                         const char *extra) {
  double ms = suite_now_ms() - suite_t0;
  printf("workload=%s threads=%d checksum=%016llx alloc=%s work_ms=%.3f%s%s\n", workload,
         a->threads, (unsigned long long)checksum, suite_basename(suite_alloc_file("malloc")),
         ms, extra && *extra ? " " : "", extra ? extra : "");
  fflush(stdout);
}

/* Work items [0, total) split into N nearly equal consecutive shares. */
static inline size_t share_begin(size_t total, int n, int i) {
  return (size_t)((uint64_t)total * (uint64_t)i / (uint64_t)n); /* total < 2^52 */
}

/* ---- threads ------------------------------------------------------------- */

/* Runs FN(ARGS + i * ARGSZ) on N threads and waits for all of them. */
static inline void suite_run_threads(int n, void *(*fn)(void *), void *args, size_t argsz) {
  pthread_t *tid = xmalloc((size_t)n * sizeof *tid);
  for (int i = 0; i < n; i++) {
    int err = pthread_create(&tid[i], NULL, fn, (char *)args + (size_t)i * argsz);
    if (err)
      suite_die("pthread_create: %s", strerror(err));
  }
  for (int i = 0; i < n; i++)
    pthread_join(tid[i], NULL);
  free(tid);
}

/* The common shape: work items [0, total) shared among N threads, each
 * returning a checksum in its span's sum; returns the sum of the sums. */
typedef struct suite_span {
  size_t begin, end;
  uint64_t sum;
} suite_span;

static inline uint64_t suite_run_spans(int n, size_t total, void *(*fn)(void *)) {
  suite_span *spans = xmalloc((size_t)n * sizeof *spans);
  for (int i = 0; i < n; i++)
    spans[i] = (suite_span){share_begin(total, n, i), share_begin(total, n, i + 1), 0};
  suite_run_threads(n, fn, spans, sizeof *spans);
  uint64_t sum = 0;
  for (int i = 0; i < n; i++)
    sum += spans[i].sum;
  free(spans);
  return sum;
}

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __asm__ volatile("pause");
#elif defined(__aarch64__)
  __asm__ volatile("yield");
#endif
}

/* Spin a little, then give the core away (oversubscribed runs). */
static inline void backoff(unsigned *spins) {
  if (++*spins < 64) {
    cpu_relax();
  } else {
    sched_yield();
    *spins = 0;
  }
}

#endif /* CORONA_SUITE_H */
