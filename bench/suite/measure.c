/* measure.c — runs one command and reports what it cost: wall time, user
 * and system time, peak RSS, page faults and context switches (wait4's
 * rusage of the child), like /usr/bin/time -f.  scripts/bench runs every
 * workload through it.
 *
 * Why not from the runner itself: Linux starts a process's peak RSS at the
 * RSS of the process that forked it (the high-water mark of the memory map
 * it had before exec), so a child of the Python runner would report at
 * least the runner's ~20 MB.  This program is small, and the allocator is
 * preloaded into the child only (LD_PRELOAD is set between fork and exec),
 * so the floor is the same ~1 MB for every allocator.
 *
 * Usage: suite-measure [--preload LIB] [--timeout SECONDS] --report FILE -- PROG [ARGS...]
 * The report, one line in FILE:
 *   status=ok|exit-N|signal-N|timeout wall_ms=F user_ms=F sys_ms=F maxrss_kb=N
 *   minflt=N majflt=N nvcsw=N nivcsw=N
 * The command's stdin, stdout and stderr are this program's.  Exit status:
 * 0 when the report was written (whatever the command did), 2 otherwise. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t timed_out;
static pid_t child;

static void on_alarm(int sig) {
  (void)sig;
  timed_out = 1;
  if (child > 0)
    kill(child, SIGKILL);
}

static double tv_ms(struct timeval tv) { return (double)tv.tv_sec * 1e3 + (double)tv.tv_usec * 1e-3; }

static int usage(void) {
  fprintf(stderr, "usage: suite-measure [--preload LIB] [--timeout SECONDS] --report FILE -- PROG [ARGS...]\n");
  return 2;
}

int main(int argc, char **argv) {
  const char *preload = NULL, *report = NULL;
  double timeout = 0;
  int i = 1;
  for (; i < argc; i++) {
    if (strcmp(argv[i], "--") == 0) {
      i++;
      break;
    } else if (strcmp(argv[i], "--preload") == 0 && i + 1 < argc) {
      preload = argv[++i];
    } else if (strcmp(argv[i], "--report") == 0 && i + 1 < argc) {
      report = argv[++i];
    } else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc) {
      timeout = atof(argv[++i]);
    } else {
      return usage();
    }
  }
  if (i >= argc || report == NULL)
    return usage();
  FILE *out = fopen(report, "w");
  if (out == NULL) {
    fprintf(stderr, "suite-measure: %s: %s\n", report, strerror(errno));
    return 2;
  }

  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_alarm;
  sigaction(SIGALRM, &sa, NULL);

  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  child = fork();
  if (child < 0) {
    fprintf(stderr, "suite-measure: fork: %s\n", strerror(errno));
    return 2;
  }
  if (child == 0) {
    if (preload && setenv("LD_PRELOAD", preload, 1) != 0)
      _exit(127);
    execvp(argv[i], argv + i);
    fprintf(stderr, "suite-measure: %s: %s\n", argv[i], strerror(errno));
    _exit(127);
  }
  if (timeout > 0) {
    struct itimerval it = {{0, 0}, {(time_t)timeout, (suseconds_t)((timeout - (double)(time_t)timeout) * 1e6)}};
    setitimer(ITIMER_REAL, &it, NULL);
  }
  int status;
  struct rusage ru;
  pid_t r;
  while ((r = wait4(child, &status, 0, &ru)) < 0 && errno == EINTR) {
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  if (r < 0) {
    fprintf(stderr, "suite-measure: wait4: %s\n", strerror(errno));
    return 2;
  }
  char st[32];
  if (timed_out)
    snprintf(st, sizeof st, "timeout");
  else if (WIFSIGNALED(status))
    snprintf(st, sizeof st, "signal-%d", WTERMSIG(status));
  else if (WEXITSTATUS(status) != 0)
    snprintf(st, sizeof st, "exit-%d", WEXITSTATUS(status));
  else
    snprintf(st, sizeof st, "ok");
  double wall = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-6;
  fprintf(out,
          "status=%s wall_ms=%.3f user_ms=%.3f sys_ms=%.3f maxrss_kb=%ld minflt=%ld majflt=%ld "
          "nvcsw=%ld nivcsw=%ld\n",
          st, wall, tv_ms(ru.ru_utime), tv_ms(ru.ru_stime), ru.ru_maxrss, ru.ru_minflt, ru.ru_majflt,
          ru.ru_nvcsw, ru.ru_nivcsw);
  if (fclose(out) != 0)
    return 2;
  return 0;
}
