/* fork_threads.c — a multi-threaded program that forks, for the real-program
 * tests.
 *
 * Four worker threads allocate, fill, check and free continuously (sizes
 * 16 B .. 64 KB, now and then up to 1 MB; calloc, realloc; objects passed
 * between workers through an exchange array, so frees are cross-thread).
 * Meanwhile the main thread forks 50 times.  Each child, which inherits a
 * heap that other threads were using at the instant of the fork:
 *   - checks and frees the objects the parent prepared for it, and the
 *     workers' live objects (their owners do not exist in the child);
 *   - allocates, checks and frees a lot on its own, from the main thread
 *     and from two new threads that free each other's objects;
 *   - every 10th child also forks a grandchild while its threads run;
 *   - _exit()s with 0 when every check passed, 1 when one failed.
 * The parent waits for each child with a deadline (a child stuck in a lock
 * held at fork time is killed and reported as a deadlock), checks its own
 * objects after each fork, and finally stops and joins the workers.  A
 * watchdog alarm reports a hang of the parent itself.
 *
 * stdout: one summary line that does not depend on timing.  Details go to
 * stderr.  Exit status 0 when everything passed.  Linked plain (run with
 * and without LD_PRELOAD=libcorona.so) and with libcorona.a. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"
#include "realprog.h"

enum { WORKERS = 4, SLOTS = 256, EXCHANGE = 64, FORKS = 50, PREPARED = 64, CHILD_DEADLINE_S = 30, WATCHDOG_S = 100 };

/* EMULATOR_HANGS: under qemu-user 7.2 (the arm64 suite) a child forked
 * while other threads run now and then blocks for good in a futex of the
 * emulator's own memory, waited on from the emulator's code (seen through
 * /proc/PID/task/N/syscall and the maps): a lock of qemu's that another
 * thread held at the fork.  There a child that does not exit is a visible
 * skip, not a failure; natively it is a failure. */

/* tu_failure_count() just before the fork: a child's (or grandchild's)
 * verdict is about its own checks, not the parent's earlier failures. */
static int failures_at_fork, child_failures_at_fork;

/* An object's first 16 bytes hold its size and a tag; the rest is the
 * pattern of testutil.h. */
typedef struct {
  size_t n;
  uint64_t tag;
} obj_head_t;

#define OBJ_TAG 0x0B1EC7C0DEull

static void *obj_new(tu_rng_t *r, size_t max) {
  size_t n = tu_below(r, 64) == 0 ? tu_log_range(r, 16, max) : tu_log_range(r, 16, 4096);
  if (n < sizeof(obj_head_t)) n = sizeof(obj_head_t);
  unsigned char *p;
  if (tu_below(r, 8) == 0) {
    p = calloc(1, n);
    if (!CHECKF(p != NULL, "calloc(1, %zu) failed", n)) return NULL;
    CHECK_ZERO(p, n);
  } else {
    p = malloc(n);
    if (!CHECKF(p != NULL, "malloc(%zu) failed", n)) return NULL;
  }
  obj_head_t h = {n, OBJ_TAG};
  memcpy(p, &h, sizeof h);
  tu_fill(p + sizeof h, n - sizeof h, tu_seed(p, n));
  return p;
}

static bool obj_ok(const void *p) {
  obj_head_t h;
  memcpy(&h, p, sizeof h);
  if (!CHECKF(h.tag == OBJ_TAG, "object %p: header tag %#llx destroyed", p, (unsigned long long)h.tag)) return false;
  return CHECK_PATTERN((const unsigned char *)p + sizeof h, h.n - sizeof h, tu_seed(p, h.n));
}

static void obj_free(void *p) {
  if (p == NULL) return;
  obj_ok(p);
  free(p);
}

/* realloc keeps the prefix; the object is then refilled for its new size. */
static void *obj_realloc(tu_rng_t *r, void *p) {
  if (!obj_ok(p)) return p;
  obj_head_t h;
  memcpy(&h, p, sizeof h);
  size_t n2 = tu_log_range(r, 16, tu_below(r, 16) == 0 ? 300000 : 6000);
  if (n2 < sizeof h) n2 = sizeof h;
  uint64_t old_seed = tu_seed(p, h.n);
  uintptr_t old = (uintptr_t)p; /* still the object if realloc fails (gcc -O0 warns of p there) */
  unsigned char *q = realloc(p, n2);
  if (!CHECKF(q != NULL, "realloc(%p, %zu) failed", (void *)old, n2)) return (void *)old;
  size_t keep = (h.n < n2 ? h.n : n2) - sizeof h;
  /* the kept prefix is the old pattern, seeded by the old address and size */
  CHECK_PATTERN(q + sizeof h, keep, old_seed);
  h.n = n2;
  memcpy(q, &h, sizeof h);
  tu_fill(q + sizeof h, n2 - sizeof h, tu_seed(q, n2));
  return q;
}

/* ---- workers: keep allocating while the main thread forks -------------- */

static _Atomic(void *) slots[WORKERS][SLOTS];
static _Atomic(void *) exchange[EXCHANGE];
static atomic_bool stop_workers;
static atomic_ulong worker_ops[WORKERS];

static void *worker(void *arg) {
  int w = (int)(intptr_t)arg;
  tu_rng_t r;
  tu_rng_seed(&r, 77 + (uint64_t)w);
  unsigned long ops = 0;
  while (!atomic_load_explicit(&stop_workers, memory_order_relaxed)) {
    size_t i = tu_below(&r, SLOTS);
    /* A slot holds a complete object; it is emptied before the object is
     * touched, so a child sees every non-empty slot as a live object. */
    void *p = atomic_exchange(&slots[w][i], NULL);
    unsigned op = (unsigned)tu_below(&r, 10);
    if (p == NULL) {
      p = obj_new(&r, 1 << 20);
    } else if (op < 5) {
      obj_free(p);
      p = NULL;
    } else if (op < 7) {
      p = obj_realloc(&r, p);
    } else {
      /* hand it to another worker (or take one from there) */
      p = atomic_exchange(&exchange[tu_below(&r, EXCHANGE)], p);
      if (p != NULL) obj_ok(p);
    }
    atomic_store(&slots[w][i], p);
    ops++;
  }
  atomic_store(&worker_ops[w], ops);
  return NULL;
}

/* ---- the child --------------------------------------------------------- */

typedef struct {
  tu_rng_t r;
  _Atomic(void *) *box; /* shared between the child's two threads */
} cthread_t;

static void *child_thread(void *arg) {
  cthread_t *c = arg;
  void *live[64] = {0};
  for (int k = 0; k < 4000; k++) {
    size_t i = tu_below(&c->r, 64);
    if (live[i] == NULL) {
      live[i] = obj_new(&c->r, 200000);
    } else if (tu_below(&c->r, 3) == 0) {
      /* swap with the other thread: it frees what we made */
      live[i] = atomic_exchange(&c->box[tu_below(&c->r, 16)], live[i]);
      if (live[i] != NULL) obj_ok(live[i]);
    } else {
      obj_free(live[i]);
      live[i] = NULL;
    }
  }
  for (int i = 0; i < 64; i++) obj_free(live[i]);
  return NULL;
}

static void child_work(int round, void **prepared) {
  /* What the parent prepared: check, free half, realloc the rest. */
  tu_rng_t r;
  tu_rng_seed(&r, 5000 + (uint64_t)round);
  for (int i = 0; i < PREPARED; i++) {
    if (i % 2 == 0) {
      obj_free(prepared[i]);
      prepared[i] = NULL;
    } else {
      prepared[i] = obj_realloc(&r, prepared[i]);
    }
  }
  /* The workers' objects: they were allocated by threads that do not exist
   * here.  Check and free them all. */
  for (int w = 0; w < WORKERS; w++)
    for (int i = 0; i < SLOTS; i++) obj_free(atomic_exchange(&slots[w][i], NULL));
  for (int i = 0; i < EXCHANGE; i++) obj_free(atomic_exchange(&exchange[i], NULL));

  /* Two new threads, exchanging objects. */
  static _Atomic(void *) box[16];
  cthread_t ct[2];
  pthread_t th[2];
  int started = 0;
  for (int t = 0; t < 2; t++) {
    tu_rng_seed(&ct[t].r, 9000 + (uint64_t)round * 2 + (uint64_t)t);
    ct[t].box = box;
    if (CHECKF(pthread_create(&th[t], NULL, child_thread, &ct[t]) == 0, "child %d: pthread_create failed", round))
      started++;
  }
  /* A grandchild, forked while this child's threads run. */
  if (round % 10 == 0) {
    child_failures_at_fork = tu_failure_count();
    pid_t g = fork();
    if (g == 0) {
      tu_rng_t gr;
      tu_rng_seed(&gr, 123);
      void *v[32] = {0};
      for (int k = 0; k < 3000; k++) {
        size_t i = tu_below(&gr, 32);
        if (v[i] != NULL) obj_free(v[i]);
        v[i] = obj_new(&gr, 100000);
      }
      for (int i = 0; i < 32; i++) obj_free(v[i]);
      for (int i = 1; i < PREPARED; i += 2) obj_ok(prepared[i]);
      _exit(tu_failure_count() == child_failures_at_fork ? 0 : 1);
    }
    int st = 0;
    if (CHECKF(g > 0, "child %d: fork of a grandchild failed: %s", round, strerror(errno))) {
      CHECKF(waitpid(g, &st, 0) == g, "child %d: waitpid(grandchild) failed", round);
      CHECKF(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child %d: grandchild failed (status %#x)", round, st);
    }
  }
  /* The main thread works too. */
  void *mine[128] = {0};
  for (int k = 0; k < 6000; k++) {
    size_t i = tu_below(&r, 128);
    if (mine[i] != NULL && tu_below(&r, 4) == 0)
      mine[i] = obj_realloc(&r, mine[i]);
    else {
      obj_free(mine[i]);
      mine[i] = obj_new(&r, 500000);
    }
  }
  for (int t = 0; t < started; t++) pthread_join(th[t], NULL);
  for (int i = 0; i < 128; i++) obj_free(mine[i]);
  for (int i = 0; i < 16; i++) obj_free(atomic_exchange(&box[i], NULL));
  for (int i = 0; i < PREPARED; i++) obj_free(prepared[i]);
}

/* ---- the parent -------------------------------------------------------- */

static void watchdog(int sig) {
  (void)sig;
  static const char msg[] = "fork_threads: FAIL: watchdog: the parent made no progress for 100 s (deadlock?)\n";
  ssize_t rc = write(2, msg, sizeof msg - 1);
  (void)rc;
  _exit(3);
}

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

int main(void) {
  double t0 = tu_now();
  signal(SIGALRM, watchdog);
  alarm(WATCHDOG_S);
  if (rp_expect_corona()) {
    void *p = malloc(123);
    if (!rp_is_corona("fork_threads", "malloc(123)", p, 123)) tu_fail(__FILE__, __LINE__, "served by corona", NULL);
    free(p);
  }
  pthread_t th[WORKERS];
  for (int w = 0; w < WORKERS; w++)
    if (pthread_create(&th[w], NULL, worker, (void *)(intptr_t)w) != 0) {
      fprintf(stderr, "fork_threads: FAIL: pthread_create\n");
      return 1;
    }
  sleep_ms(20); /* let the workers fill their slots */

  tu_rng_t r;
  tu_rng_seed(&r, 4242);
  int children_ok = 0;
  for (int round = 0; round < FORKS; round++) {
    void *prepared[PREPARED];
    for (int i = 0; i < PREPARED; i++) prepared[i] = obj_new(&r, 200000);
    failures_at_fork = tu_failure_count(); /* a child's verdict is its own failures */
    pid_t pid = fork();
    if (pid == 0) {
      alarm(0);
      child_work(round, prepared);
      _exit(tu_failure_count() == failures_at_fork ? 0 : 1);
    }
    if (!CHECKF(pid > 0, "fork %d failed: %s", round, strerror(errno))) break;
    /* The parent goes on allocating while the child runs. */
    void *busy[32] = {0};
    int st = 0;
    pid_t got = 0;
    double deadline = tu_now() + CHILD_DEADLINE_S;
    for (int k = 0;; k++) {
      got = waitpid(pid, &st, WNOHANG);
      if (got != 0) break;
      if (tu_now() > deadline) {
        if (tu_emulator() != NULL) /* see EMULATOR_HANGS */
          tu_skip("fork %d: child %d did not exit within %d s under the emulator (qemu-user can deadlock on its own "
                  "locks in the child of a multi-threaded fork); killing it",
                  round, (int)pid, CHILD_DEADLINE_S);
        else
          tu_fail(__FILE__, __LINE__, "child exits",
                  "fork %d: child %d did not exit within %d s: deadlocked after fork? killing it", round, (int)pid,
                  CHILD_DEADLINE_S);
        kill(pid, SIGKILL);
        got = waitpid(pid, &st, 0);
        st = -1;
        break;
      }
      size_t i = (size_t)k % 32;
      obj_free(busy[i]);
      busy[i] = obj_new(&r, 50000);
      if (k % 32 == 31) sleep_ms(1);
    }
    for (int i = 0; i < 32; i++) obj_free(busy[i]);
    if (st != -1) {
      if (!CHECKF(got == pid, "fork %d: waitpid failed: %s", round, strerror(errno))) {
      } else if (WIFSIGNALED(st)) {
        tu_fail(__FILE__, __LINE__, "child exits normally", "fork %d: child %d killed by signal %d (%s)", round, (int)pid,
                WTERMSIG(st), strsignal(WTERMSIG(st)));
      } else if (WIFEXITED(st) && WEXITSTATUS(st) != 0) {
        tu_fail(__FILE__, __LINE__, "child checks pass", "fork %d: child %d exited with status %d (its content checks failed)",
                round, (int)pid, WEXITSTATUS(st));
      } else {
        children_ok++;
      }
    }
    /* The parent's copies are untouched by whatever the child did. */
    for (int i = 0; i < PREPARED; i++) obj_free(prepared[i]);
    alarm(WATCHDOG_S);
  }

  atomic_store(&stop_workers, true);
  unsigned long ops = 0;
  for (int w = 0; w < WORKERS; w++) {
    pthread_join(th[w], NULL);
    ops += atomic_load(&worker_ops[w]);
  }
  for (int w = 0; w < WORKERS; w++)
    for (int i = 0; i < SLOTS; i++) obj_free(atomic_exchange(&slots[w][i], NULL));
  for (int i = 0; i < EXCHANGE; i++) obj_free(atomic_exchange(&exchange[i], NULL));
  alarm(0);

  int f = tu_failure_count();
  printf("fork_threads: %d forks, %d children ok, %s\n", FORKS, children_ok, f == 0 ? "parent checks ok" : "FAILED");
  fprintf(stderr, "fork_threads: %lu worker operations during the forks, %.2f s\n", ops, tu_now() - t0);
  return f == 0 ? 0 : 1;
}
