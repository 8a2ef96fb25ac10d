/* test_profile.c — heap profiling (issue 17), through the corona_* API of
 * the shared library (corona's own frames are left out of the stacks
 * there).  Parts:
 *   exact    at rate 1 every allocation is sampled: the profile's records
 *            for one function count exactly its live and allocated
 *            objects, before and after frees and a stop; sampled objects
 *            keep their contents through realloc, calloc reads zero, aligned
 *            requests stay aligned; bad dump paths fail
 *   sizes    large samples of 2048 sizes: every byte, in few records
 *   bound, churn  estimates of bytes allocated within 15 %: lists counted at
 *            a bound, short threads touching many classes
 *   threads  4 threads allocating with cross-thread frees, a thread dumping
 *            all the while, a fork while profiling (the child allocates and
 *            dumps): every dump well formed, nothing live at the end
 *   debug    in debug mode (MALLOC_DEBUG=1) profiling is refused (ENOTSUP);
 *            a skip without it
 * And `test_profile workload PATH`, the accuracy workload run by
 * test_profile.sh under google-pprof: three functions allocate 60/30/10 %
 * of 500 MB (16 B .. 1 MiB), fb leaks a fifth of its objects; it dumps to
 * PATH and prints what each function allocated and holds, as the sampler
 * counts bytes (a small request counts as its size class). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "corona.h"
#include "testutil.h"

#define MAX_SMALL 32704

/* ---- reading a profile back ----------------------------------------------- */

typedef struct {
  uint64_t live, live_bytes, allocs, alloc_bytes;
  double alloc_estimate; /* bytes allocated, each record's scaled as pprof does (1 / (1 - exp(-size/rate))) */
  int lines;       /* record lines */
  int matched;     /* of them, those summed */
  bool header, mappings;
} profile_sum_t;

/* Sums the records of the profile at path whose innermost frame is in
 * function fn (all records when fn is NULL); checks the format as it goes. */
static bool read_profile_in(const char *path, const char *fn, const char *caller, profile_sum_t *sum);
static bool read_profile(const char *path, const char *fn, profile_sum_t *sum) {
  return read_profile_in(path, fn, NULL, sum);
}

/* The name of the function holding return address pc, or "". */
static const char *pc_function(void *pc) {
  Dl_info info;
  if (dladdr((char *)pc - 1, &info) == 0 || info.dli_sname == NULL) return "";
  return info.dli_sname;
}

/* As read_profile, and when caller is not NULL, only the records whose
 * second frame is in function caller. */
static bool read_profile_in(const char *path, const char *fn, const char *caller, profile_sum_t *sum) {
  memset(sum, 0, sizeof *sum);
  FILE *f = fopen(path, "r");
  if (!CHECKF(f != NULL, "%s: %s", path, strerror(errno))) return false;
  char line[4096];
  bool ok = true;
  unsigned long long rate = 0;
  while (fgets(line, sizeof line, f) != NULL) {
    unsigned long long a, b, c, d;
    if (!sum->header) {
      sum->header = sscanf(line, "heap profile: %llu: %llu [ %llu: %llu] @ heap_v2/%llu", &a, &b, &c, &d, &rate) == 5;
      ok = CHECKF(sum->header && rate > 0, "%s: first line: %s", path, line) && ok;
      continue;
    }
    if (strcmp(line, "MAPPED_LIBRARIES:\n") == 0) {
      sum->mappings = true;
      break;
    }
    if (line[0] == '\n') continue;
    int at = 0;
    if (!CHECKF(sscanf(line, " %llu: %llu [ %llu: %llu] @%n", &a, &b, &c, &d, &at) == 4 && at > 0 && a <= c,
                "%s: record line: %s", path, line)) {
      ok = false;
      continue;
    }
    sum->lines++;
    void *pc = NULL, *pc2 = NULL;
    if (fn != NULL && (sscanf(line + at, " %p", &pc) != 1 || strcmp(pc_function(pc), fn) != 0)) continue;
    if (caller != NULL && (sscanf(line + at, " %p %p", &pc, &pc2) != 2 || strcmp(pc_function(pc2), caller) != 0))
      continue;
    sum->matched++;
    sum->live += a, sum->live_bytes += b, sum->allocs += c, sum->alloc_bytes += d;
    if (c > 0) sum->alloc_estimate += (double)d / -expm1(-((double)d / (double)c) / (double)rate);
  }
  fclose(f);
  return CHECKF(sum->mappings, "%s: no MAPPED_LIBRARIES section", path) && ok;
}

/* An allocating function that keeps its frame and its name: a plain
 * wrapper would reach corona_malloc by a jump, leaving its caller as the
 * innermost frame, and gcc may clone it for a constant argument under a
 * local name (noipa). */
#if defined(__clang__)
#define TU_KEEP __attribute__((noinline))
#else
#define TU_KEEP __attribute__((noinline, noipa))
#endif
#define ALLOCATOR(name)                             \
  TU_KEEP void *name(size_t n) {                    \
    void *p = corona_malloc(n);                     \
    __asm__ volatile("" : : "r"(p) : "memory");     \
    return p;                                       \
  }

static char dir[256];

static void make_dir(void) {
  snprintf(dir, sizeof dir, "/tmp/corona-profile-test.%d", (int)getpid());
  CHECK(mkdir(dir, 0700) == 0 || errno == EEXIST);
}

/* ---- exact ---------------------------------------------------------------- */

ALLOCATOR(exact_small)
ALLOCATOR(exact_large)

static void part_exact(void) {
  char path[320];
  snprintf(path, sizeof path, "%s/exact.heap", dir);
  void *probe = corona_malloc(100);
  size_t cls = corona_usable_size(probe);
  corona_free(probe);
  if (!CHECK(corona_profile_start(1) == 0)) return;
  enum { N = 64 };
  void *p[N];
  for (int i = 0; i < N; i++) {
    p[i] = exact_small(100);
    if (!CHECK(p[i] != NULL)) return;
    CHECK(corona_usable_size(p[i]) >= 100);
    tu_fill(p[i], 100, tu_seed(p[i], 100));
  }
  void *big[4];
  for (int i = 0; i < 4; i++) big[i] = exact_large(100000);
  profile_sum_t s;
  if (CHECK(corona_profile_dump(path) == 0)) {
    CHECK(read_profile(path, "exact_small", &s));
    CHECKF(s.live == N && s.allocs == N && s.live_bytes == N * cls, "live %llu of %d, %llu bytes (class %zu)",
           (unsigned long long)s.live, N, (unsigned long long)s.live_bytes, cls);
    CHECK(read_profile(path, "exact_large", &s));
    CHECK(s.live == 4 && s.live_bytes == 400000);
  }
  for (int i = 0; i < N; i += 2) {
    CHECK_PATTERN(p[i], 100, tu_seed(p[i], 100));
    corona_free(p[i]);
  }
  for (int i = 0; i < 4; i++) corona_free(big[i]);
  CHECK(corona_profile_dump(path) == 0 && read_profile(path, "exact_small", &s));
  CHECKF(s.live == N / 2 && s.allocs == N, "live %llu, allocated %llu", (unsigned long long)s.live,
         (unsigned long long)s.allocs);
  CHECK(read_profile(path, "exact_large", &s) && s.live == 0 && s.allocs == 4);

  /* Sampled objects behave as any other. */
  for (size_t align = 32; align <= 4096; align *= 2) {
    void *a = corona_aligned_malloc(align, align);
    if (!CHECK(a != NULL)) continue;
    CHECKF(tu_is_aligned(a, align), "%p not aligned to %zu", a, align);
    tu_fill(a, align, 7);
    CHECK_PATTERN(a, align, 7);
    corona_free(a);
  }
  for (int i = 0; i < 8; i++) {
    unsigned char *z = corona_calloc(10, 30 + (size_t)i * 100);
    if (CHECK(z != NULL)) CHECK_ZERO(z, 10 * (30 + (size_t)i * 100));
    if (z != NULL) memset(z, 0xee, 10 * (30 + (size_t)i * 100)); /* the next calloc may reuse it */
    corona_free(z);
  }
  char *r = corona_malloc(50);
  tu_fill(r, 50, 9);
  size_t sizes[] = {200, 5000, 20000, 70000, 3000, 40};
  size_t have = 50;
  for (size_t i = 0; i < sizeof sizes / sizeof *sizes && r != NULL; i++) {
    r = corona_realloc(r, sizes[i]);
    if (!CHECK(r != NULL)) break;
    size_t keep = have < sizes[i] ? have : sizes[i];
    CHECK_PATTERN(r, keep, 9);
    tu_fill(r, sizes[i], 9);
    have = sizes[i];
  }
  corona_free(r);

  /* Stopped: no new samples; frees of sampled objects still count. */
  CHECK(corona_profile_stop() == 0);
  void *q[10];
  for (int i = 0; i < 10; i++) q[i] = exact_small(100);
  for (int i = 1; i < N; i += 2) corona_free(p[i]);
  for (int i = 0; i < 10; i++) corona_free(q[i]);
  CHECK(corona_profile_dump(path) == 0 && read_profile(path, "exact_small", &s));
  CHECK(s.live == 0 && s.allocs == N);
  CHECK(corona_profile_dump(NULL) == EINVAL);
  CHECK(corona_profile_dump("/nonexistent-corona-dir/x.heap") != 0);
  unlink(path);
}

/* ---- sizes: large samples of many sizes ----------------------------------- */

/* Large samples are kept a record per sixteenth of an octave of sizes,
 * their bytes summed (a record per size made one per sample: 35,000 in
 * suite-buffers mid, most of the profiling's cost).  At rate 1 every
 * allocation is sampled: 2048 distinct sizes of 33000 B .. 8.5 MB (8
 * octaves) from one function, one in 16 kept, give every byte exactly, in
 * at most 16 records an octave; a sampled object grown by realloc moves
 * (its free takes back what was counted), and once all are freed nothing
 * is live, to the byte. */
ALLOCATOR(sizes_alloc)

static void part_sizes(void) {
  char path[320];
  snprintf(path, sizeof path, "%s/sizes.heap", dir);
  enum { N = 2048, KEEP = 16 };
  static void *p[N / KEEP];
  static size_t n[N / KEEP];
  uint64_t total = 0, kept = 0;
  if (!CHECK(corona_profile_start(1) == 0)) return;
  for (int i = 0; i < N; i++) {
    size_t size = (size_t)(33000 * exp2(8.0 * i / N)) + (size_t)i; /* distinct */
    void *q = sizes_alloc(size);
    if (!CHECK(q != NULL)) return;
    tu_fill(q, 64, (uint64_t)i);
    total += size;
    if (i % KEEP != 0) {
      corona_free(q);
      continue;
    }
    p[i / KEEP] = q, n[i / KEEP] = size;
    kept += size;
  }
  profile_sum_t s;
  if (CHECK(corona_profile_dump(path) == 0) && CHECK(read_profile(path, "sizes_alloc", &s))) {
    CHECKF(s.allocs == N && s.live == N / KEEP && s.alloc_bytes == total && s.live_bytes == kept,
           "%llu samples, %llu live, %llu bytes, %llu live (allocated %d, %llu bytes; kept %d, %llu bytes)",
           (unsigned long long)s.allocs, (unsigned long long)s.live, (unsigned long long)s.alloc_bytes,
           (unsigned long long)s.live_bytes, N, (unsigned long long)total, N / KEEP, (unsigned long long)kept);
    CHECKF(s.matched <= 16 * 9, "%d records for %d sizes in 8 octaves", s.matched, N);
  }
  for (int i = 0; i < N / KEEP; i++) { /* grown in place unless sampled: these move */
    void *q = corona_realloc(p[i], n[i] + 4096);
    if (!CHECK(q != NULL)) continue;
    CHECK_PATTERN(q, 64, (uint64_t)i * KEEP);
    p[i] = q;
  }
  CHECK(corona_profile_stop() == 0);
  for (int i = 0; i < N / KEEP; i++) corona_free(p[i]);
  if (CHECK(corona_profile_dump(path) == 0) && CHECK(read_profile(path, "sizes_alloc", &s)))
    CHECKF(s.live == 0 && s.live_bytes == 0 && s.alloc_bytes == total, "%llu live, %llu bytes live",
           (unsigned long long)s.live, (unsigned long long)s.live_bytes);
  unlink(path);
}

/* ---- threads -------------------------------------------------------------- */

#define SLOTS 1024
static pthread_mutex_t exchange_lock = PTHREAD_MUTEX_INITIALIZER;
static void *exchange[SLOTS];
static size_t exchange_size[SLOTS];
static atomic_bool workers_done;
static atomic_int dumps;

ALLOCATOR(worker_alloc)

static void *worker(void *arg) {
  tu_rng_t rng;
  tu_rng_seed(&rng, (uint64_t)(uintptr_t)arg);
  size_t rounds = tu_scaled(200000, 5000);
  for (size_t i = 0; i < rounds; i++) {
    size_t n = tu_below(&rng, 64) == 0 ? tu_range(&rng, 9000, 300000) : tu_log_range(&rng, 1, 4096);
    void *p = worker_alloc(n);
    if (!CHECK(p != NULL)) break;
    tu_fill(p, n, tu_seed(p, n));
    size_t slot = tu_below(&rng, SLOTS);
    pthread_mutex_lock(&exchange_lock); /* take another thread's object, leave ours */
    void *old = exchange[slot];
    size_t old_n = exchange_size[slot];
    exchange[slot] = p, exchange_size[slot] = n;
    pthread_mutex_unlock(&exchange_lock);
    if (old != NULL) {
      CHECK_PATTERN(old, old_n, tu_seed(old, old_n));
      corona_free(old);
    }
  }
  return NULL;
}

static void *dumper(void *arg) {
  (void)arg;
  char path[320];
  snprintf(path, sizeof path, "%s/dumper.heap", dir);
  while (!atomic_load(&workers_done)) {
    profile_sum_t s;
    CHECK(corona_profile_dump(path) == 0 && read_profile(path, NULL, &s));
    atomic_fetch_add(&dumps, 1);
  }
  unlink(path);
  return NULL;
}

/* A child of a fork while profiling: allocates, dumps, checks; its own
 * objects are all live in its profile. */
static int failures_at_fork;
static int fork_child(void) {
  char path[320];
  snprintf(path, sizeof path, "%s/child.%d.heap", dir, (int)getpid());
  void *p[100];
  for (int i = 0; i < 100; i++) p[i] = worker_alloc(50000);
  profile_sum_t s;
  bool ok = corona_profile_dump(path) == 0 && read_profile(path, "worker_alloc", &s) && s.live >= 100;
  for (int i = 0; i < 100; i++) corona_free(p[i]);
  unlink(path);
  return ok && tu_failure_count() == failures_at_fork ? 0 : 1;
}

static void fork_and_wait(void) {
  failures_at_fork = tu_failure_count();
  pid_t pid = fork();
  if (!CHECK(pid >= 0)) return;
  if (pid == 0) _exit(fork_child());
  int status = 0;
  for (int waited = 0; waitpid(pid, &status, WNOHANG) == 0; waited++) {
    if (waited >= 2000 && tu_emulator() != NULL) { /* see realprog/fork_threads.c, EMULATOR_HANGS */
      tu_skip("the child of a fork hangs under the emulator (qemu-user can deadlock on its own locks in the child "
              "of a multi-threaded fork); killing it");
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      return;
    }
    if (!CHECKF(waited < 2000, "the child of a fork while profiling hangs")) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      return;
    }
    usleep(10000);
  }
  CHECKF(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %d", status);
}

static void part_threads(void) {
  if (!CHECK(corona_profile_start(4096) == 0)) return;
  if (TU_TSAN) fork_and_wait(); /* ThreadSanitizer: no fork with threads running */
  pthread_t t[4], d;
  for (int i = 0; i < 4; i++) pthread_create(&t[i], NULL, worker, (void *)(uintptr_t)(i + 1));
  pthread_create(&d, NULL, dumper, NULL);
  if (!TU_TSAN) fork_and_wait();
  for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
  atomic_store(&workers_done, true);
  pthread_join(d, NULL);
  CHECK(atomic_load(&dumps) > 0);
  for (size_t i = 0; i < SLOTS; i++) {
    if (exchange[i] == NULL) continue;
    CHECK_PATTERN(exchange[i], exchange_size[i], tu_seed(exchange[i], exchange_size[i]));
    corona_free(exchange[i]);
    exchange[i] = NULL;
  }
  char path[320];
  snprintf(path, sizeof path, "%s/threads.heap", dir);
  profile_sum_t s;
  CHECK(corona_profile_dump(path) == 0 && read_profile(path, "worker_alloc", &s));
  CHECKF(s.live == 0 && s.allocs > 100, "live %llu, allocated %llu", (unsigned long long)s.live,
         (unsigned long long)s.allocs);
  unlink(path);
  CHECK(corona_profile_stop() == 0);
}

/* ---- memo: stacks alike up to a caller ------------------------------------ */

/* Two callers of one allocating function, their frames alike, so that a
 * sample's innermost frames are the same in both, at the same stack
 * address: the unwinder's shortcut (cr_os_backtrace's memo of the last
 * stack) must still tell them apart, by the return address into each
 * caller.  Every allocation is sampled (rate 1). */
ALLOCATOR(memo_alloc)
TU_KEEP void memo_caller_a(void **out, int n) {
  for (int i = 0; i < n; i++) out[i] = memo_alloc(64);
  __asm__ volatile("" : : : "memory");
}
TU_KEEP void memo_caller_b(void **out, int n) {
  for (int i = 0; i < n; i++) out[i] = memo_alloc(64);
  __asm__ volatile("" : : : "memory");
}

static void part_memo(void) {
  char path[320];
  snprintf(path, sizeof path, "%s/memo.heap", dir);
  if (!CHECK(corona_profile_start(1) == 0)) return;
  enum { ROUNDS = 20, RUN = 25 };
  static void *a[ROUNDS * RUN], *b[ROUNDS * RUN];
  for (int r = 0; r < ROUNDS; r++) { /* runs of each, alternating, the last stack left by the other */
    memo_caller_a(a + r * RUN, RUN);
    memo_caller_b(b + r * RUN, r % 3 == 0 ? RUN : RUN - 1);
  }
  int nb = 0;
  for (int r = 0; r < ROUNDS; r++) nb += r % 3 == 0 ? RUN : RUN - 1;
  profile_sum_t sa, sb, all;
  if (CHECK(corona_profile_dump(path) == 0)) {
    CHECK(read_profile_in(path, "memo_alloc", "memo_caller_a", &sa));
    CHECK(read_profile_in(path, "memo_alloc", "memo_caller_b", &sb));
    CHECK(read_profile(path, "memo_alloc", &all));
    CHECKF(sa.allocs == ROUNDS * RUN && sb.allocs == (uint64_t)nb && all.allocs == sa.allocs + sb.allocs,
           "memo_alloc sampled %llu times: %llu through memo_caller_a (expected %d), %llu through memo_caller_b "
           "(expected %d)",
           (unsigned long long)all.allocs, (unsigned long long)sa.allocs, ROUNDS * RUN,
           (unsigned long long)sb.allocs, nb);
  }
  CHECK(corona_profile_stop() == 0);
  for (int i = 0; i < ROUNDS * RUN; i++) corona_free(a[i]);
  for (int r = 0; r < ROUNDS; r++)
    for (int i = 0; i < (r % 3 == 0 ? RUN : RUN - 1); i++) corona_free(b[r * RUN + i]);
  unlink(path);
}

/* ---- bound: lists taken at their bound stay unbiased ----------------------- */

/* A power-of-two class's local lists are not counted: their bytes are taken
 * at a bound, and sample points past a list's real end are dropped
 * (bin.c, sample_take).  The estimate of the bytes allocated must still be
 * right: 64 B objects (a power of two, local lists of a few dozen, taken
 * at a slab's worth) and 48 B ones (taken at the block's capacity; their
 * walk for the interior-pointer check does not count) churned by two
 * functions, at a rate giving about a thousand samples each; the estimate
 * (the samples' bytes scaled by 1 / (1 - exp(-size/rate)), as pprof does)
 * within 15 % of the truth (about 5 standard errors). */
ALLOCATOR(bound_64)
ALLOCATOR(bound_48)

static double bound_estimate(const char *path, const char *fn, size_t size, size_t rate) {
  profile_sum_t s;
  if (!CHECK(read_profile(path, fn, &s))) return 0;
  double x = (double)size / (double)rate; /* tiny: 1 - exp(-x) by its series */
  return (double)s.alloc_bytes / (x - x * x / 2 + x * x * x / 6);
}

static void part_bound(void) {
  char path[320];
  snprintf(path, sizeof path, "%s/bound.heap", dir);
  size_t n64 = tu_scaled(4000000, 400000), n48 = tu_scaled(4000000, 400000);
  size_t rate = (n64 * 64 + n48 * 48) / 2000;
  if (!CHECK(corona_profile_start(rate) == 0)) return;
  static void *ring[64];
  for (size_t i = 0; i < n64; i++) { /* 64 live: lists of a few dozen */
    void *p = bound_64(64);
    *(volatile char *)p = 1;
    corona_free(ring[i & 63]);
    ring[i & 63] = p;
  }
  for (size_t i = 0; i < n48; i++) {
    void *p = bound_48(48);
    *(volatile char *)p = 1;
    corona_free(ring[i & 63]);
    ring[i & 63] = p;
  }
  if (CHECK(corona_profile_dump(path) == 0)) {
    double e64 = bound_estimate(path, "bound_64", 64, rate), e48 = bound_estimate(path, "bound_48", 48, rate);
    double t64 = (double)n64 * 64, t48 = (double)n48 * 48;
    printf("    allocated, estimated / true: 64 B %.3f, 48 B %.3f (rate %zu)\n", e64 / t64, e48 / t48, rate);
    CHECKF(e64 > t64 * 0.85 && e64 < t64 * 1.15, "64 B objects: %.0f bytes estimated, %.0f allocated", e64, t64);
    CHECKF(e48 > t48 * 0.85 && e48 < t48 * 1.15, "48 B objects: %.0f bytes estimated, %.0f allocated", e48, t48);
  }
  CHECK(corona_profile_stop() == 0);
  for (int i = 0; i < 64; i++) corona_free(ring[i]);
  unlink(path);
}

/* ---- churn: short threads, many classes ----------------------------------- */

/* A thread's first list in a class counts no hot objects: a new thread (or
 * a recycled TLS) has had no turn there, so nothing it freed was kept hot.
 * Counting a full turn's worth for each class it touches (the limit it
 * starts at) gave this part eleven times its samples, and equal seeds of
 * threads started within one millisecond an estimate off by 30 %.
 * Threads one after the other, each allocating CHURN_EACH objects of every
 * one of CHURN_SIZES sizes (power-of-two classes and others) and freeing
 * them; the estimate of the bytes allocated within 15 % of the truth at a
 * rate giving about a thousand samples. */
#define CHURN_EACH 8
static const size_t churn_size[] = {16, 48, 80, 128, 200, 256, 400, 512, 700, 1024, 1500, 2048};
#define CHURN_SIZES (sizeof churn_size / sizeof *churn_size)
ALLOCATOR(churn_alloc)

static void *churn_thread(void *arg) {
  void *p[CHURN_SIZES * CHURN_EACH];
  size_t k = 0;
  for (size_t i = 0; i < CHURN_SIZES; i++)
    for (int j = 0; j < CHURN_EACH; j++, k++) {
      p[k] = churn_alloc(churn_size[i]);
      if (!CHECK(p[k] != NULL)) return arg;
      tu_fill(p[k], churn_size[i], k);
    }
  k = 0;
  for (size_t i = 0; i < CHURN_SIZES; i++)
    for (int j = 0; j < CHURN_EACH; j++, k++) {
      CHECK_PATTERN(p[k], churn_size[i], k);
      corona_free(p[k]);
    }
  return arg;
}

static void part_churn(void) {
  size_t threads = tu_scaled(3000, 300), per_thread = 0;
  for (size_t i = 0; i < CHURN_SIZES; i++) { /* the sampler counts a small request as its size class */
    void *probe = corona_malloc(churn_size[i]);
    per_thread += corona_usable_size(probe) * CHURN_EACH;
    corona_free(probe);
  }
  double truth = (double)threads * (double)per_thread;
  size_t rate = (size_t)(truth / 1000);
  if (!CHECK(corona_profile_start(rate) == 0)) return;
  for (size_t i = 0; i < threads; i++) {
    pthread_t t;
    if (!CHECK(pthread_create(&t, NULL, churn_thread, NULL) == 0)) break;
    pthread_join(t, NULL);
  }
  char path[320];
  snprintf(path, sizeof path, "%s/churn.heap", dir);
  profile_sum_t s;
  if (CHECK(corona_profile_dump(path) == 0) && CHECK(read_profile(path, "churn_alloc", &s))) {
    printf("    allocated, estimated / true: %.3f (%llu samples, rate %zu, %zu threads)\n", s.alloc_estimate / truth,
           (unsigned long long)s.allocs, rate, threads);
    CHECKF(s.alloc_estimate > truth * 0.85 && s.alloc_estimate < truth * 1.15,
           "%.0f bytes estimated, %.0f allocated", s.alloc_estimate, truth);
    CHECKF(s.live == 0, "%llu samples still live", (unsigned long long)s.live);
  }
  CHECK(corona_profile_stop() == 0);
  unlink(path);
}

static void part_debug(void) {
  const char *debug = getenv("MALLOC_DEBUG");
  if (debug == NULL || strcmp(debug, "1") != 0) {
    tu_skip("debug: needs MALLOC_DEBUG=1 (ctest profile_debug)");
    return;
  }
  CHECK(corona_profile_start(0) == ENOTSUP);
}

/* ---- the accuracy workload ------------------------------------------------ */

static size_t class_of[MAX_SMALL + 1]; /* the size class of each small request */

typedef struct {
  const char *name;
  void *(*alloc)(size_t);
  double share, keep; /* of the 500 MB; the fraction of objects kept live */
  uint64_t alloc_bytes, live_bytes;
} workload_fn_t;

ALLOCATOR(fa)
ALLOCATOR(fb)
ALLOCATOR(fc)

static int workload(const char *path) {
  corona_profile_stop(); /* started from the environment: measure the classes first */
  for (size_t n = 1; n <= MAX_SMALL; n++) {
    void *p = corona_malloc(n);
    class_of[n] = corona_usable_size(p);
    corona_free(p);
  }
  if (corona_profile_start(0) != 0) return 1;
  workload_fn_t fns[3] = {{"fa", fa, 0.6, 0.05, 0, 0}, {"fb", fb, 0.3, 0.2, 0, 0}, {"fc", fc, 0.1, 0, 0, 0}};
  static void *kept[3][400000];
  size_t nkept[3] = {0};
  tu_rng_t rng;
  tu_rng_seed(&rng, 17);
  /* The three interleaved at random, in their shares: a sample point may
   * be taken late (hot objects), never charged to the wrong function. */
  for (double done = 0; done < 500.0 * (1 << 20);) {
    size_t pick = tu_below(&rng, 1000);
    int f = pick < (size_t)(fns[0].share * 1000) ? 0 : pick < (size_t)((fns[0].share + fns[1].share) * 1000) ? 1 : 2;
    /* About half the bytes in small objects (mean about 1.4 KB), half in
     * large ones (mean about 390 KB). */
    size_t n = tu_below(&rng, 1000) < 3 ? tu_log_range(&rng, MAX_SMALL + 1, 1 << 20) : tu_log_range(&rng, 16, MAX_SMALL);
    char *p = fns[f].alloc(n);
    if (p == NULL) return 1;
    memset(p, f, n < 64 ? n : 64);
    size_t counted = n <= MAX_SMALL ? class_of[n] : n;
    fns[f].alloc_bytes += counted;
    done += (double)n;
    if (tu_below(&rng, 1000) < (size_t)(fns[f].keep * 1000) && nkept[f] < 400000) {
      kept[f][nkept[f]++] = p;
      fns[f].live_bytes += counted;
    } else {
      corona_free(p);
    }
  }
  if (corona_profile_dump(path) != 0) return 1;
  for (int f = 0; f < 3; f++)
    printf("expect %s %llu %llu\n", fns[f].name, (unsigned long long)fns[f].live_bytes,
           (unsigned long long)fns[f].alloc_bytes);
  fflush(stdout);
  for (size_t i = 0; i < nkept[0]; i++) corona_free(kept[0][i]); /* fb's stay: the leak */
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 3 && strcmp(argv[1], "workload") == 0) return workload(argv[2]);
  double t0 = tu_now();
  make_dir();
  static const tu_part_t parts[] = {{"exact", part_exact}, {"memo", part_memo}, {"sizes", part_sizes}, {"bound", part_bound}, {"churn", part_churn}, {"threads", part_threads}, {"debug", part_debug}};
  tu_run_parts(argc, argv, parts, sizeof parts / sizeof *parts, 8);
  rmdir(dir);
  return tu_finish("test_profile", t0);
}
