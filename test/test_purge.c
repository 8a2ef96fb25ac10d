/* test_purge.c — the background purger (src/purger.c): idle memory goes back
 * to the OS after DECAY_MS with no allocator call.  Parts (one per ctest
 * entry, see CMakeLists.txt; all figures printed):
 *   rss_small  4 threads allocate and touch 1 GiB of small objects in all
 *              (16 B .. 8 KB), check their contents, free them and exit;
 *              the main thread then sleeps with no allocator call: within
 *              DECAY_MS + 1 s, RSS (/proc/self/statm) is back within 16 MiB
 *              of where it started;
 *   rss_large  the same with large objects (16 KB .. 6 MB: shared regions
 *              and mappings of their own);
 *   small_stale  12 MiB of small objects freed by a thread that exits but
 *              for a few survivors (the empty blocks all on the heap's list,
 *              no slab region unmappable, nothing else resident):
 *              back within 4 MiB of the start within 1.5 DECAY_MS, so
 *              blocks idle for DECAY_MS are purged as they leave that list,
 *              not kept resident in the backend for a second DECAY_MS;
 *   sleeper    a thread fills its own caches (a large-object cache and
 *              empty blocks) and sleeps: after DECAY_MS + 1 s they are
 *              still resident (a thread's caches are its own), its next
 *              call hands them back, and DECAY_MS + 1 s later they are gone;
 *   never      a process that allocates 64 MiB and frees nothing starts no
 *              thread (none named corona-purge in /proc/self/task);
 *   lone       one thread grows a heap past CORONA_PURGER_EAGER_BYTES
 *              with 4000-byte objects, frees them all by small frees and
 *              makes no call: within DECAY_MS + 1 s its RSS is back within
 *              16 MiB of its start (the purger was wanted early);
 *   off        with BACKGROUND_PURGE=0 (the ctest entry sets it) a process
 *              that frees 64 MiB starts no thread, and the memory stays
 *              resident until a call: the purger is what gave it back;
 *   fork       fork while the purger waits for a deadline: the child starts
 *              its own purger when it frees, and both processes are back
 *              within 16 MiB of their start within DECAY_MS + 1 s;
 *   exit       children exit (return from main) at staggered moments while
 *              the purger works: every one exits 0 at once, no crash, no
 *              hang, and under AddressSanitizer no leak report;
 *   join       threads on stacks of the program's own, never allocating,
 *              joined: glibc frees their DTVs (corona's) holding the lock
 *              pthread_create takes; the purger must not start there (in a
 *              child, killed after 20 s: a deadlock).  It bites where glibc's
 *              own calloc is corona's: purge_names_join, purge_preload_join;
 *   idle       for test_purge_idle.sh (strace): frees, waits until the
 *              purger is done, then writes "idle begin", sleeps 3 s, writes
 *              "idle end"; the script counts the purger's system calls
 *              in between (none is allowed).
 * Built twice: against corona_static through corona_* (test_purge), and
 * plain through the standard names for LD_PRELOAD of libcorona.so
 * (test_purge_plain, PURGE_STANDARD_NAMES).  The measuring loops allocate
 * nothing: /proc is read with open/read into stack buffers, bookkeeping
 * lives in mappings of the test's own (pu_map).  Under ThreadSanitizer RSS
 * includes shadow memory, so RSS is printed, not asserted there. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "procutil.h"
#include "testutil.h"

#ifdef PURGE_STANDARD_NAMES
#define t_malloc malloc
#define t_free free
#else
#include "corona.h"
#define t_malloc corona_malloc
#define t_free corona_free
#endif

#define MB ((size_t)1 << 20)
#define SLACK (16 * MB)
#define ASSERT_RSS (!TU_TSAN)

static uint64_t decay_ms(void) {
  const char *s = getenv("CORONA_DECAY_MS");
  if (s == NULL) s = getenv("MALLOC_DECAY_MS");
  return s != NULL && *s != '\0' ? strtoull(s, NULL, 10) : 1000;
}

static size_t rss(void) { return pu_statm_bytes(1); }
/* Threads named corona-purge (/proc/self/task/TID/comm), or -1 when the
 * list cannot be read.  getdents64 into a stack buffer: opendir would
 * allocate, and a free here could start the very thread being counted. */
static long purgers(void) {
  int fd = open("/proc/self/task", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return -1;
  long n = 0;
  char buf[4096];
  for (;;) {
    long got = syscall(SYS_getdents64, fd, buf, sizeof buf);
    if (got <= 0) break;
    for (long at = 0; at < got;) {
      struct {
        uint64_t ino;
        int64_t off;
        unsigned short reclen;
        unsigned char type;
        char name[];
      } *d = (void *)(buf + at);
      at += d->reclen;
      if (d->name[0] < '0' || d->name[0] > '9') continue;
      char path[64], comm[64];
      snprintf(path, sizeof path, "/proc/self/task/%s/comm", d->name);
      if (pu_read_file(path, comm, sizeof comm) > 0 && strcmp(comm, "corona-purge\n") == 0) n++;
    }
  }
  close(fd);
  return n;
}

static void sleep_ms(uint64_t ms) {
  struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

/* Polls RSS every 20 ms, with no allocator call, until it is at most
 * target or limit_ms have passed; returns the milliseconds it took (or
 * limit_ms + 1), *last the last figure. */
static uint64_t wait_rss_below(size_t target, uint64_t limit_ms, size_t *last) {
  double t0 = tu_now();
  for (;;) {
    uint64_t el = (uint64_t)((tu_now() - t0) * 1000);
    *last = rss();
    if (*last <= target) return el;
    if (el > limit_ms) return limit_ms + 1;
    sleep_ms(20);
  }
}

/* ---- 1 GiB through 4 threads ------------------------------------------------------------ */

typedef struct {
  size_t lo, hi; /* object sizes */
  size_t bytes;  /* this thread's share */
  unsigned seed;
  size_t keep_every; /* 0, or: every keep_every-th object survives, into kept[] */
  void **kept;
  size_t n_kept;
} work_t;

static void *worker(void *arg) {
  work_t *w = arg;
  size_t cap = w->bytes / w->lo + 1;
  void **objs = pu_map(cap * sizeof *objs); /* not from the allocator under test */
  size_t *sizes = pu_map(cap * sizeof *sizes);
  if (!CHECK(objs != NULL && sizes != NULL)) return NULL;
  tu_rng_t r;
  tu_rng_seed(&r, w->seed);
  size_t n = 0, total = 0;
  while (total < w->bytes && n < cap) {
    size_t s = tu_log_range(&r, w->lo, w->hi);
    void *p = t_malloc(s);
    if (!CHECKF(p != NULL, "malloc(%zu) failed", s)) break;
    tu_fill(p, s, tu_seed(p, s)); /* touches every page */
    objs[n] = p;
    sizes[n++] = s;
    total += s;
  }
  for (size_t i = 0; i < n; i++) {
    CHECK_PATTERN(objs[i], sizes[i], tu_seed(objs[i], sizes[i]));
    if (w->keep_every != 0 && i % w->keep_every == 0) w->kept[w->n_kept++] = objs[i];
    else t_free(objs[i]);
  }
  pu_unmap(objs, cap * sizeof *objs);
  pu_unmap(sizes, cap * sizeof *sizes);
  return NULL;
}

static void through_4_threads(const char *label, size_t lo, size_t hi) {
  size_t total = tu_scaled((size_t)1 << 30, 64 * MB), base = rss();
  pthread_t t[4];
  work_t w[4];
  for (int i = 0; i < 4; i++) {
    w[i] = (work_t){lo, hi, total / 4, 1234u + (unsigned)i, 0, NULL, 0};
    if (!CHECK(pthread_create(&t[i], NULL, worker, &w[i]) == 0)) return;
  }
  for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
  size_t freed = rss(), last;
  uint64_t decay = decay_ms(), took = wait_rss_below(base + SLACK, decay + 1000, &last);
  long n_purgers = purgers();
  printf("    %s: %zu MiB through 4 threads; RSS start %.1f MiB, after the frees %.1f, %s %.1f after %llu ms "
         "(DECAY_MS %llu); purger threads %ld\n",
         label, total / MB, (double)base / MB, (double)freed / MB, took <= decay + 1000 ? "back to" : "still",
         (double)last / MB, (unsigned long long)took, (unsigned long long)decay, n_purgers);
  if (ASSERT_RSS)
    CHECKF(last <= base + SLACK, "%s: RSS %.1f MiB is more than 16 MiB above its start %.1f MiB %llu ms after the "
           "frees, with no allocator call", label, (double)last / MB, (double)base / MB, (unsigned long long)took);
  CHECKF(n_purgers == 1, "%s: %ld purger threads, expected 1", label, n_purgers);
}

static void rss_small(void) { through_4_threads("small", 16, 8064); }
static void rss_large(void) { through_4_threads("large", 16 << 10, 6 * MB); }

/* ---- empty blocks idle for DECAY_MS go back in one decay, not two ------------------------------ */

/* 12 MiB of 1 KB objects freed by a thread that then exits, but for one in
 * 2048 (about one slab in 128 keeps one: no slab region can be unmapped):
 * the empty blocks all rest on the heap's list (room for 16 MiB) and the
 * backend has nothing else resident, so once they are stale nothing pushes
 * them out of its budget: they must be purged as they leave the list, not
 * kept resident there for a second decay time. */
static void small_stale(void) {
  static void *kept[64];
  size_t base = rss(), last;
  work_t w = {1000, 1000, 12 * MB, 99, 2048, kept, 0};
  pthread_t t;
  if (!CHECK(pthread_create(&t, NULL, worker, &w) == 0)) return;
  pthread_join(t, NULL);
  size_t freed = rss();
  uint64_t decay = decay_ms(), took = wait_rss_below(base + 4 * MB, decay + decay / 2, &last);
  printf("    small_stale: 12 MiB freed; RSS start %.1f MiB, after the free %.1f, %.1f after %llu ms (DECAY_MS "
         "%llu)\n", (double)base / MB, (double)freed / MB, (double)last / MB, (unsigned long long)took,
         (unsigned long long)decay);
  if (ASSERT_RSS)
    CHECKF(last <= base + 4 * MB, "small_stale: %.1f MiB still resident %llu ms after the free (start %.1f)",
           (double)last / MB, (unsigned long long)took, (double)base / MB);
  for (size_t i = 0; i < w.n_kept; i++) t_free(kept[i]);
}

/* 64 MiB allocated and touched (small and large); freed when free_it. */
static void churn_64(bool free_it) {
  static void *p[64 + 4096];
  size_t n = 0;
  for (int i = 0; i < 32; i++) p[n++] = t_malloc(MB);
  for (int i = 0; i < 4096; i++) p[n++] = t_malloc(8000);
  for (size_t i = 0; i < n; i++)
    if (CHECK(p[i] != NULL)) memset(p[i], 1, i < 32 ? MB : 8000);
  if (free_it)
    for (size_t i = 0; i < n; i++) t_free(p[i]);
}

/* Starts the purger as a program does: memory freed into the caches, then
 * an allocation's slow path (the thread never starts inside a free). */
static void start_purger(void) {
  churn_64(true);
  t_free(t_malloc(MB));
  CHECKF(purgers() == 1, "no purger thread after frees and an allocation (%ld)", purgers());
}

/* ---- a sleeping thread's caches ------------------------------------------------------------ */

static pthread_mutex_t sl_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t sl_cv = PTHREAD_COND_INITIALIZER;
static int sl_step; /* sl_mu: 1 filled, 2 main asks for a call, 3 called, 4 exit */

static void sl_wait_for(int step) {
  pthread_mutex_lock(&sl_mu);
  while (sl_step < step) pthread_cond_wait(&sl_cv, &sl_mu);
  pthread_mutex_unlock(&sl_mu);
}
static void sl_set(int step) {
  pthread_mutex_lock(&sl_mu);
  sl_step = step;
  pthread_cond_broadcast(&sl_cv);
  pthread_mutex_unlock(&sl_mu);
}

/* Fills this thread's caches: three 1 MiB large objects (its local
 * large-object cache keeps them) and 64 slabs of 1 KiB objects, all freed
 * (its empty-block cache keeps them). */
#define SL_SMALL (64 * 16)
static void *sleeper_thread(void *arg) {
  (void)arg;
  void *big[3], **small = pu_map(SL_SMALL * sizeof(void *));
  if (!CHECK(small != NULL)) return NULL;
  for (int i = 0; i < 3; i++) {
    big[i] = t_malloc(MB - 4096);
    if (big[i] != NULL) memset(big[i], 0x5a, MB - 4096);
  }
  for (int i = 0; i < SL_SMALL; i++) {
    small[i] = t_malloc(1000);
    if (small[i] != NULL) memset(small[i], 0x33, 1000);
  }
  for (int i = 0; i < 3; i++) t_free(big[i]);
  for (int i = 0; i < SL_SMALL; i++) t_free(small[i]);
  pu_unmap(small, SL_SMALL * sizeof(void *));
  sl_set(1);
  sl_wait_for(2);
  t_free(t_malloc(64 << 10)); /* the next call: a large one, off the fast path */
  sl_set(3);
  sl_wait_for(4);
  return NULL;
}

static void sleeper(void) {
  uint64_t decay = decay_ms();
  size_t base = rss(), settled;
  start_purger();
  wait_rss_below(base + 4 * MB, decay + 1000, &settled); /* what starting it took is gone again */
  pthread_t t;
  if (!CHECK(pthread_create(&t, NULL, sleeper_thread, NULL) == 0)) return;
  sl_wait_for(1);
  size_t filled = rss();
  sleep_ms(decay + 1000);
  size_t slept = rss();
  sl_set(2);
  sl_wait_for(3);
  size_t last, kept = 3 * MB; /* at least what its large-object cache held */
  uint64_t took = wait_rss_below(slept - kept, decay + 1000, &last);
  printf("    sleeper: RSS with its caches filled %.1f MiB, after %llu ms asleep %.1f, %llu ms after its next "
         "call %.1f\n",
         (double)filled / MB, (unsigned long long)(decay + 1000), (double)slept / MB, (unsigned long long)took,
         (double)last / MB);
  if (ASSERT_RSS) {
    CHECKF(slept + MB > filled, "sleeper: its caches went while it slept (%.1f -> %.1f MiB): this test's "
           "premise (a sleeping thread's caches are its own) no longer holds", (double)filled / MB,
           (double)slept / MB);
    CHECKF(last + kept <= slept, "sleeper: its caches (>= 3 MiB) are still resident %llu ms after its next call "
           "(%.1f -> %.1f MiB)", (unsigned long long)took, (double)slept / MB, (double)last / MB);
  }
  sl_set(4);
  pthread_join(t, NULL);
}

/* ---- no thread where none is needed --------------------------------------------------------- */

static void never(void) {
  size_t base = rss();
  churn_64(false);
  sleep_ms(decay_ms() + 500);
  long n = purgers();
  printf("    never: RSS %.1f -> %.1f MiB (nothing freed); purger threads %ld\n", (double)base / MB,
         (double)rss() / MB, n);
  CHECKF(n == 0, "never: %ld purger threads in a process that never freed", n);
}

/* One thread, a heap past CORONA_PURGER_EAGER_BYTES of 4000-byte objects,
 * every one freed by small frees (no safe point after the first cached
 * byte), then no call at all: the purger, wanted since the heap grew past
 * that size, gives the pages back.  Without the early start it never runs. */
static void lone(void) {
  enum { N = (320u << 20) / 4000 };
  static void *p[N];
  size_t base = rss();
  for (size_t i = 0; i < N; i++)
    if (CHECK((p[i] = t_malloc(4000)) != NULL)) memset(p[i], (int)(i & 0xff), 4000);
  uint64_t sum = 0;
  for (size_t i = 0; i < N; i++) sum += ((unsigned char *)p[i])[3999] == (i & 0xff);
  CHECKF(sum == N, "lone: %llu of %u objects kept their fill", (unsigned long long)sum, (unsigned)N);
  size_t full = rss();
  for (size_t i = 0; i < N; i++) t_free(p[i]);
  size_t freed = rss();
  sleep_ms(decay_ms() + 1000);
  size_t last = rss();
  printf("    lone: one thread, 320 MiB freed by small frees; RSS start %.1f MiB, full %.1f, freed %.1f, "
         "%.1f after %llu ms; purger threads %ld\n", (double)base / MB, (double)full / MB, (double)freed / MB,
         (double)last / MB, (unsigned long long)(decay_ms() + 1000), purgers());
  if (ASSERT_RSS)
    CHECKF(last <= base + SLACK, "lone: RSS %.1f MiB is more than 16 MiB above its start %.1f MiB with no call",
           (double)last / MB, (double)base / MB);
}

static void off(void) {
  const char *v = getenv("CORONA_BACKGROUND_PURGE");
  if (v == NULL || strcmp(v, "0") != 0) {
    tu_skip("off: CORONA_BACKGROUND_PURGE=0 is not set (the ctest entry sets it)");
    return;
  }
  size_t base = rss();
  churn_64(true);
  sleep_ms(decay_ms() + 1000);
  long n = purgers();
  size_t after = rss();
  printf("    off: RSS start %.1f MiB, %llu ms after freeing 64 MiB %.1f; purger threads %ld\n", (double)base / MB,
         (unsigned long long)(decay_ms() + 1000), (double)after / MB, n);
  CHECKF(n == 0, "off: %ld purger threads with BACKGROUND_PURGE=0", n);
  if (ASSERT_RSS) /* it stays: nothing runs without a call (up to the resident budget, 32 MiB) */
    CHECKF(after > base + 16 * MB, "off: RSS fell back (%.1f -> %.1f MiB) with no purger and no call: "
           "this test cannot tell the purger's work from something else", (double)base / MB, (double)after / MB);
}

/* ---- fork --------------------------------------------------------------------------------- */

static int fork_child(size_t base) {
  churn_64(true); /* needs a purger of its own: it starts one here */
  size_t last;
  uint64_t decay = decay_ms(), took = wait_rss_below(base + SLACK, decay + 1000, &last);
  long n = purgers();
  printf("    fork: child: RSS back to %.1f MiB (parent's start %.1f) after %llu ms; purger threads %ld\n",
         (double)last / MB, (double)base / MB, (unsigned long long)took, n);
  bool ok = n == 1 && (!ASSERT_RSS || last <= base + SLACK);
  return ok ? 0 : 1;
}

static void fork_test(void) {
  size_t base = rss();
  start_purger();
  churn_64(true); /* the purger waits for this memory's deadline */
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) _exit(fork_child(base));
  if (!CHECK(pid > 0)) return;
  churn_64(true);
  size_t last;
  uint64_t decay = decay_ms(), took = wait_rss_below(base + SLACK, decay + 1000, &last);
  int status = 0;
  CHECK(waitpid(pid, &status, 0) == pid);
  printf("    fork: parent: RSS start %.1f MiB, %.1f after %llu ms\n", (double)base / MB, (double)last / MB,
         (unsigned long long)took);
  CHECKF(WIFEXITED(status) && WEXITSTATUS(status) == 0, "fork: the child failed (status %#x)", status);
  if (ASSERT_RSS) CHECKF(last <= base + SLACK, "fork: parent's RSS %.1f MiB, start %.1f", (double)last / MB,
                         (double)base / MB);
  CHECK(purgers() == 1);
}

/* ---- exit while the purger runs --------------------------------------------------------------- */

static void exit_test(void) {
  uint64_t decay = decay_ms();
  int bad = 0;
  for (int i = 0; i < 12; i++) {
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
      start_purger();
      sleep_ms(decay * (uint64_t)i / 8); /* before, at and after the purger's deadline */
      churn_64(true);
      exit(0); /* atexit handlers, and LeakSanitizer where built with it */
    }
    if (!CHECK(pid > 0)) return;
    int status = 0;
    double t0 = tu_now();
    while (waitpid(pid, &status, WNOHANG) == 0) {
      if (tu_now() - t0 > (double)decay / 1000 * 2 + 10) { /* a hang */
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        break;
      }
      sleep_ms(5);
    }
    if (!CHECKF(WIFEXITED(status) && WEXITSTATUS(status) == 0, "exit: child %d: status %#x", i, status)) bad++;
  }
  printf("    exit: 12 children exited at staggered moments, %d failed\n", bad);
}

/* ---- no start inside glibc's stack-cache lock ------------------------------------------------- */

static void *noop_thread(void *arg) { return arg; }

/* Threads on stacks of the program's own, which never allocate, joined:
 * glibc frees each one's DTV (which pthread_create calloc'ed from corona)
 * while it holds the lock of its stack cache, and pthread_create takes
 * that lock too.  Those frees are the process's first to empty a block, so
 * a purger started there would deadlock, with every signal blocked (its
 * creator blocks them around pthread_create): in a child, killed after
 * 20 s. */
#define JOIN_THREADS 600
#define JOIN_STACK ((size_t)64 << 10)
static void join_dtv(void) {
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    char *stacks = pu_map(JOIN_THREADS * JOIN_STACK);
    static pthread_t t[JOIN_THREADS];
    if (stacks == NULL) _exit(2);
    for (int i = 0; i < JOIN_THREADS; i++) {
      pthread_attr_t a;
      pthread_attr_init(&a);
      pthread_attr_setstack(&a, stacks + (size_t)i * JOIN_STACK, JOIN_STACK);
      if (pthread_create(&t[i], &a, noop_thread, NULL) != 0) _exit(3);
      pthread_attr_destroy(&a);
    }
    for (int i = 0; i < JOIN_THREADS; i++) pthread_join(t[i], NULL);
    _exit(0);
  }
  if (!CHECK(pid > 0)) return;
  int status = 0;
  double t0 = tu_now();
  while (waitpid(pid, &status, WNOHANG) == 0) {
    if (tu_now() - t0 > 20) { /* a deadlock */
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      break;
    }
    sleep_ms(5);
  }
  printf("    join: %d threads on their own stacks joined: child %s\n", JOIN_THREADS,
         WIFEXITED(status) ? "exited" : "killed after 20 s (a deadlock)");
  CHECKF(WIFEXITED(status) && WEXITSTATUS(status) == 0, "join: child status %#x", status);
}

/* ---- idle: for strace ------------------------------------------------------------------------- */

static void idle(void) {
  size_t base = rss(), last;
  start_purger();
  churn_64(true);
  uint64_t decay = decay_ms();
  uint64_t took = wait_rss_below(base + SLACK, decay + 1000, &last);
  sleep_ms(decay + decay / 2 + 200); /* the purger's last rounds find nothing left and it waits untimed */
  if (write(1, "idle begin\n", 11) != 11) tu_fail(__FILE__, __LINE__, "write", NULL);
  sleep_ms(3000);
  if (write(1, "idle end\n", 9) != 9) tu_fail(__FILE__, __LINE__, "write", NULL);
  long n = purgers();
  printf("    idle: RSS back to %.1f MiB (start %.1f) after %llu ms; purger threads %ld\n", (double)last / MB,
         (double)base / MB, (unsigned long long)took, n);
  CHECK(n == 1);
}

int main(int argc, char **argv) {
  double t0 = tu_now();
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (rss() == 0 || purgers() < 0) {
    tu_skip("/proc/self/statm or /proc/self/task unreadable: nothing checked");
    return tu_finish("test_purge", t0);
  }
  if (tu_emulator() != NULL) { /* qemu-user: its own threads and memory are the process's */
    tu_skip("under an emulator: its threads and RSS are not the program's; nothing checked");
    return tu_finish("test_purge", t0);
  }
  if (!ASSERT_RSS) tu_skip("ThreadSanitizer build: RSS figures are printed, not asserted");
  static const tu_part_t parts[] = {
      {"rss_small", rss_small}, {"rss_large", rss_large}, {"small_stale", small_stale},
      {"sleeper", sleeper},     {"never", never},         {"lone", lone},           {"off", off},
      {"fork", fork_test},      {"exit", exit_test},      {"join", join_dtv},
      {"idle", idle},
  };
  tu_run_parts(argc, argv, parts, sizeof parts / sizeof parts[0], 11);
  return tu_finish("test_purge", t0);
}
