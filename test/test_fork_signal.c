/* test_fork_signal.c — fork() from a signal handler that interrupted fork()
 * (finding 3 of the trust issue).  glibc completes such rounds; an
 * allocator whose atfork prepare handler is not re-entrant deadlocks in the
 * handler's fork on a lock the interrupted fork's prepare already holds.
 *
 * The scenario runs in a child process of its own process group; this
 * process waits for it under alarm() and reports "deadlock" (exit 1) when it
 * has not finished after DEADLINE_S seconds, killing the whole group.
 *
 * The scenario forks ROUNDS times.  Before each fork a one-shot timer is set
 * to a random delay within twice the measured time of a fork, so SIGALRM
 * lands at random points of the fork: in corona's prepare handler, in the
 * kernel's fork, before corona's parent handler.  The handler forks itself
 * (the child _exit()s at once, the handler waits for it) after setting the
 * timer again, up to MAX_DEPTH handlers deep (SA_NODEFER), so a handler's
 * fork is interrupted in turn.  The children of the main loop check, in the
 * heap they inherited, the objects the scenario filled before the rounds,
 * then allocate, fill, check and free objects of their own: every lock the
 * prepare handlers took must be free again in a child.  After the rounds
 * the scenario checks and frees its objects and allocates small, large and
 * huge ones: every lock must be free again in the parent too.
 *
 * Nesting is counted, not assumed: a handler that finds the default pool's
 * lock held (white-box: the scenario itself holds no corona lock while the
 * timer runs, so only a prepare handler can hold it) interrupted a fork
 * inside corona's locked window.  No such nesting in a whole run means the
 * test proved nothing: a failure.
 *
 * After the scenario, white-box and in every build: the fork handlers
 * called directly, prepare twice (the second a re-entry), then the releases;
 * the first release must leave the locks held, the second free them.
 *
 * Under ThreadSanitizer only that part runs, and the test says it skipped
 * (exit code 77): its runtime keeps a background thread, so glibc's fork
 * takes its atfork lock and a fork from a handler that interrupted fork
 * deadlocks in glibc; it reports the fork in a handler as a signal-unsafe
 * call (the child's new background thread allocates); and it delivers a
 * signal late, at its own safe points, which include corona's slow paths
 * under a lock and the child of a fork, where the handler's fork then waits
 * for a lock its own thread holds.
 *
 * The scenario process has no threads, by necessity: in a process that ever
 * had a second thread, glibc's fork takes its own atfork lock around the
 * handlers, and a fork from a signal handler that interrupted fork deadlocks
 * there whatever the allocator does.  So the locks are not contended by
 * other threads here; realprog_fork_threads covers fork beside
 * threads that allocate. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "corona.h"
#include "internal/fastpath.h"
#include "testutil.h"

enum { ROUNDS = 200, MAX_DEPTH = 3, KEEP = 48, CHILD_OBJS = 32, DEADLINE_S = 20, SKIP = 77 };

/* ---- the signal handler -------------------------------------------------------
 * Written by the handler (and by the main loop only while the timer is off,
 * except in_fork, which the main loop sets around its fork and the handler
 * saves and restores). */
static volatile sig_atomic_t in_fork;       /* a fork() of the scenario is running */
static volatile sig_atomic_t depth;         /* handlers active now */
static volatile sig_atomic_t max_depth;     /* deepest seen */
static volatile sig_atomic_t handler_forks; /* forks done by handlers */
static volatile sig_atomic_t nested;        /* ... that interrupted a fork() */
static volatile sig_atomic_t nested_locked; /* ... inside corona's locked window */
static volatile sig_atomic_t handler_bad;   /* a handler's fork failed or its child did not exit 0 */
static volatile long delay_max_us = 100;    /* twice a fork's time, measured */
static unsigned long handler_rng = 12345;   /* the handler's own generator */

/* A one-shot SIGALRM after a random delay in [1, delay_max_us] us. */
static void arm_timer(unsigned long *rng) {
  *rng = *rng * 6364136223846793005ul + 1442695040888963407ul;
  struct itimerval it = {{0, 0}, {0, (suseconds_t)(1 + (*rng >> 33) % (unsigned long)delay_max_us)}};
  setitimer(ITIMER_REAL, &it, NULL);
}

static void disarm_timer(void) {
  struct itimerval it = {{0, 0}, {0, 0}};
  setitimer(ITIMER_REAL, &it, NULL);
}

static bool default_pool_locked(void) {
  return atomic_load_explicit(&cr_default_pool.lock.locked, memory_order_relaxed) != 0;
}

static void on_alarm(int sig) {
  (void)sig;
  int saved_errno = errno;
  if (depth >= MAX_DEPTH) return;
  int d = depth + 1;
  depth = d;
  if (d > max_depth) max_depth = d;
  int interrupted_fork = in_fork;
  /* Single-threaded scenario: only a prepare handler can hold this. */
  bool locked = default_pool_locked();
  if (d < MAX_DEPTH) arm_timer(&handler_rng); /* may interrupt the fork below */
  in_fork = 1;
  pid_t pid = fork();
  if (pid == 0) _exit(0);
  in_fork = interrupted_fork;
  if (pid < 0) {
    handler_bad = handler_bad + 1;
  } else {
    handler_forks = handler_forks + 1;
    if (interrupted_fork) nested = nested + 1;
    if (locked) nested_locked = nested_locked + 1;
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) handler_bad = handler_bad + 1;
  }
  depth = d - 1;
  errno = saved_errno;
}

/* ---- objects ------------------------------------------------------------------ */
static void *kept[KEEP];
static size_t kept_size[KEEP];

static size_t kept_size_of(unsigned i) {
  if (i % 16 == 15) return (size_t)3 << 20; /* huge: the backend */
  if (i % 8 == 7) return (size_t)200 << 10; /* large */
  return 16 + (size_t)i * 97;
}

/* Allocates, fills, checks and frees n objects of mixed sizes. */
static void churn(tu_rng_t *r, unsigned n) {
  void *p[CHILD_OBJS];
  size_t size[CHILD_OBJS];
  if (n > CHILD_OBJS) n = CHILD_OBJS;
  for (unsigned i = 0; i < n; i++) {
    size[i] = i % 8 == 7 ? tu_log_range(r, 16 << 10, 4 << 20) : tu_log_range(r, 1, 8192);
    p[i] = corona_malloc(size[i]);
    if (CHECKF(p[i] != NULL, "corona_malloc(%zu)", size[i])) tu_fill(p[i], size[i], tu_seed(p[i], size[i]));
  }
  for (unsigned i = 0; i < n; i++) {
    if (p[i] == NULL) continue;
    CHECK_PATTERN(p[i], size[i], tu_seed(p[i], size[i]));
    corona_free(p[i]);
  }
}

static void check_kept(void) {
  for (unsigned i = 0; i < KEEP; i++)
    if (kept[i] != NULL) CHECK_PATTERN(kept[i], kept_size[i], tu_seed(kept[i], kept_size[i]));
}

/* A child of the main loop: the inherited heap is intact, and every lock
 * the prepare handlers took is free (a held one hangs here: the deadline). */
static _Noreturn void round_child(unsigned round) {
  check_kept();
  tu_rng_t r;
  tu_rng_seed(&r, 1000 + round);
  churn(&r, CHILD_OBJS);
  _exit(tu_failure_count() == 0 ? 0 : 1);
}

static bool wait_ok(pid_t pid, const char *what, unsigned round) {
  int status = 0;
  while (waitpid(pid, &status, 0) < 0)
    if (!CHECKF(errno == EINTR, "waitpid: %s", strerror(errno))) return false;
  return CHECKF(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s of round %u: status %#x", what, round, status);
}

/* ---- the scenario (a child process) ------------------------------------------ */
static int scenario(void) {
  for (unsigned i = 0; i < KEEP; i++) {
    kept_size[i] = kept_size_of(i);
    kept[i] = corona_malloc(kept_size[i]);
    if (CHECKF(kept[i] != NULL, "corona_malloc(%zu)", kept_size[i]))
      tu_fill(kept[i], kept_size[i], tu_seed(kept[i], kept_size[i]));
  }

  /* A fork's time, so the delays spread over it. */
  double t = tu_now();
  for (unsigned i = 0; i < 10; i++) {
    pid_t pid = fork();
    if (pid == 0) _exit(0);
    if (!CHECK(pid > 0)) return 1;
    double after = tu_now();
    wait_ok(pid, "calibration child", i);
    t += tu_now() - after; /* the wait does not count */
  }
  double fork_us = (tu_now() - t) / 10 * 1e6;
  delay_max_us = fork_us < 10 ? 20 : (long)(2 * fork_us);

  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_alarm;
  sa.sa_flags = SA_RESTART | SA_NODEFER; /* a handler's fork can be interrupted too */
  sigemptyset(&sa.sa_mask);
  if (!CHECK(sigaction(SIGALRM, &sa, NULL) == 0)) return 1;

  unsigned long rng = 777;
  for (unsigned round = 0; round < ROUNDS; round++) {
    arm_timer(&rng);
    in_fork = 1;
    pid_t pid = fork();
    if (pid == 0) round_child(round);
    in_fork = 0;
    disarm_timer(); /* a signal still pending runs the handler outside a fork: fine */
    if (!CHECKF(pid > 0, "fork: %s", strerror(errno))) break;
    if (!wait_ok(pid, "child", round)) break;
  }
  disarm_timer();
  signal(SIGALRM, SIG_IGN);

  /* Every lock is free in the parent too. */
  check_kept();
  for (unsigned i = 0; i < KEEP; i++) {
    corona_free(kept[i]);
    kept[i] = NULL;
  }
  tu_rng_t r;
  tu_rng_seed(&r, 99);
  for (unsigned i = 0; i < 8; i++) churn(&r, CHILD_OBJS);
  pid_t pid = fork();
  if (pid == 0) round_child(ROUNDS);
  if (CHECK(pid > 0)) wait_ok(pid, "last child", ROUNDS);

  CHECKF(handler_bad == 0, "%d handler forks failed or their child did not exit 0", (int)handler_bad);
  printf("  fork %.0f us; %d handler forks, %d interrupted a fork, %d inside corona's fork handlers; depth %d\n",
         fork_us, (int)handler_forks, (int)nested, (int)nested_locked, (int)max_depth);
  fflush(stdout);
  if (tu_failure_count() != 0) return 1;
  if (nested_locked == 0) {
    printf("  FAIL: no signal landed inside corona's fork handlers: the test proved nothing\n");
    return 1;
  }
  return 0;
}

/* ---- re-entry, called directly ------------------------------------------------- */
static void direct_reentry(void) {
  void *p = corona_malloc(100); /* initialises corona: its handlers are registered */
  if (CHECK(p != NULL)) tu_fill(p, 100, 5);
  CHECK(!default_pool_locked());
  cr_fork_prepare();
  CHECK(default_pool_locked());
  cr_fork_prepare(); /* a signal handler's fork: must return, not wait for ourselves */
  cr_fork_release(); /* the nested fork's end: the outer fork still holds */
  CHECK(default_pool_locked());
  cr_fork_release();
  CHECK(!default_pool_locked());
  if (p != NULL) CHECK_PATTERN(p, 100, 5);
  tu_rng_t r;
  tu_rng_seed(&r, 3);
  churn(&r, CHILD_OBJS); /* every lock is free again */
  corona_free(p);
}

/* ---- the watchdog ---------------------------------------------------------------- */
static volatile sig_atomic_t deadline_passed;
static void on_deadline(int sig) {
  (void)sig;
  deadline_passed = 1;
}

/* The scenario in a child of its own process group, under the deadline;
 * true when it passed. */
static bool run_scenario(void) {
  fflush(stdout);
  pid_t pid = fork();
  if (!CHECKF(pid >= 0, "fork: %s", strerror(errno))) return false;
  if (pid == 0) {
    setpgid(0, 0);
    _exit(scenario());
  }
  setpgid(pid, pid); /* either side may run first */
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_deadline; /* no SA_RESTART: waitpid returns EINTR */
  sigemptyset(&sa.sa_mask);
  sigaction(SIGALRM, &sa, NULL);
  alarm(DEADLINE_S);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (!CHECKF(errno == EINTR, "waitpid: %s", strerror(errno))) return false;
    if (deadline_passed) {
      kill(-pid, SIGKILL); /* the scenario and whatever it forked */
      kill(pid, SIGKILL);
      while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
      return CHECKF(false, "deadlock: the scenario did not finish within %d s (killed)", DEADLINE_S);
    }
  }
  alarm(0);
  return CHECKF(WIFEXITED(status) && WEXITSTATUS(status) == 0, "scenario: status %#x", status);
}

/* A re-entered prepare that waits for its own thread never returns. */
static void on_direct_deadline(int sig) {
  (void)sig;
  static const char msg[] = "test_fork_signal: FAILED: deadlock: a re-entered prepare handler waits for its own thread\n";
  ssize_t w = write(1, msg, sizeof msg - 1);
  (void)w;
  _exit(1);
}

int main(void) {
  double t0 = tu_now();
  if (!TU_TSAN && !run_scenario()) return tu_finish("test_fork_signal", t0);
  signal(SIGALRM, on_direct_deadline);
  alarm(DEADLINE_S);
  direct_reentry();
  alarm(0);
  printf("  fork handlers re-entered directly: %s\n", tu_failure_count() == 0 ? "ok" : "FAILED");
  if (TU_TSAN && tu_failure_count() == 0) {
    printf("test_fork_signal: SKIPPED the forks from signal handlers: ThreadSanitizer's background thread makes\n"
           "  glibc's fork deadlock on its own atfork lock, and it delivers signals inside locked slow paths\n");
    return SKIP;
  }
  return tu_finish("test_fork_signal", t0);
}
