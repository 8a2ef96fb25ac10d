/* childutil.h — child processes for corona's tests of what a program
 * prints: fork + execve with a chosen environment (stdin from /dev/null,
 * no core dump), stdout and stderr caught in caller-provided buffers, the
 * wait status back; an environment builder that starts from this process's
 * environment minus every CORONA_* / MALLOC_* variable and LD_PRELOAD, so a
 * child sees exactly the allocator settings a test gives it; and helpers
 * for the lines of what a child wrote.
 * Like testutil.h it allocates nothing: the environment table and the
 * buffers are the caller's (static) memory, strings are pointed to, not
 * copied.  The caller must not have threads running while it forks under
 * ThreadSanitizer (a child that only calls execve is fine anyway). */
#ifndef CORONA_CHILDUTIL_H
#define CORONA_CHILDUTIL_H

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* ---- environments ----------------------------------------------------------- */
#define CU_ENV_MAX 512

typedef struct cu_env_s {
  const char *v[CU_ENV_MAX + 1]; /* NULL-terminated */
  size_t n;
} cu_env_t;

static inline bool cu_starts(const char *s, const char *prefix) { return strncmp(s, prefix, strlen(prefix)) == 0; }

/* Length of the name part of "NAME=value". */
static inline size_t cu_name_len(const char *kv) {
  const char *eq = strchr(kv, '=');
  return eq ? (size_t)(eq - kv) : strlen(kv);
}

/* This process's environment without CORONA_*, MALLOC_* and LD_PRELOAD. */
static inline void cu_env_clean(cu_env_t *e) {
  e->n = 0;
  for (char **p = environ; p != NULL && *p != NULL && e->n < CU_ENV_MAX; p++) {
    if (cu_starts(*p, "CORONA_") || cu_starts(*p, "MALLOC_") || cu_starts(*p, "LD_PRELOAD=")) continue;
    e->v[e->n++] = *p;
  }
  e->v[e->n] = NULL;
}

/* Sets "NAME=value" (kv must outlive the environment), replacing an entry
 * of the same name. */
static inline void cu_env_set(cu_env_t *e, const char *kv) {
  size_t len = cu_name_len(kv);
  for (size_t i = 0; i < e->n; i++)
    if (cu_name_len(e->v[i]) == len && strncmp(e->v[i], kv, len) == 0) {
      e->v[i] = kv;
      return;
    }
  if (e->n < CU_ENV_MAX) e->v[e->n++] = kv;
  e->v[e->n] = NULL;
}

/* ---- running a child ------------------------------------------------------- */
typedef struct cu_child_s {
  int status;      /* wait status; -1 when the child could not be started */
  char *out, *err; /* NUL-terminated captures (caller's buffers) */
  size_t out_cap, err_cap, out_len, err_len;
  bool truncated; /* a capture was cut at its capacity */
} cu_child_t;

static inline void cu_child_init(cu_child_t *c, char *out, size_t out_cap, char *err, size_t err_cap) {
  memset(c, 0, sizeof *c);
  c->out = out;
  c->out_cap = out_cap;
  c->err = err;
  c->err_cap = err_cap;
}

static inline void cu_keep(char *buf, size_t cap, size_t *len, const char *data, size_t n, bool *truncated) {
  for (size_t i = 0; i < n; i++) {
    if (*len + 1 < cap) buf[(*len)++] = data[i];
    else *truncated = true;
  }
  buf[*len] = '\0';
}

/* Runs path with argv and env (NULL: this environment, unchanged) and
 * waits for it.  Returns the wait status (also in c->status), -1 if it could
 * not be started (exec failure shows as exit status 127). */
static inline int cu_run(cu_child_t *c, const char *path, char *const argv[], const cu_env_t *env) {
  int po[2], pe[2];
  c->status = -1;
  c->out_len = c->err_len = 0;
  c->truncated = false;
  c->out[0] = c->err[0] = '\0';
  if (pipe(po) != 0) return -1;
  if (pipe(pe) != 0) {
    close(po[0]);
    close(po[1]);
    return -1;
  }
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  if (pid < 0) {
    close(po[0]), close(po[1]), close(pe[0]), close(pe[1]);
    return -1;
  }
  if (pid == 0) {
    struct rlimit no_core = {0, 0};
    setrlimit(RLIMIT_CORE, &no_core);
    int null = open("/dev/null", O_RDONLY);
    if (null >= 0) dup2(null, 0);
    dup2(po[1], 1);
    dup2(pe[1], 2);
    close(po[0]), close(po[1]), close(pe[0]), close(pe[1]);
    if (null > 2) close(null);
    execve(path, argv, env != NULL ? (char *const *)env->v : environ);
    _exit(127);
  }
  close(po[1]);
  close(pe[1]);
  struct pollfd fds[2] = {{po[0], POLLIN, 0}, {pe[0], POLLIN, 0}};
  int open_fds = 2;
  while (open_fds > 0) {
    int r = poll(fds, 2, -1);
    if (r < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (int i = 0; i < 2; i++) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      char tmp[4096];
      ssize_t n = read(fds[i].fd, tmp, sizeof tmp);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        close(fds[i].fd);
        fds[i].fd = -1;
        open_fds--;
        continue;
      }
      if (i == 0) cu_keep(c->out, c->out_cap, &c->out_len, tmp, (size_t)n, &c->truncated);
      else cu_keep(c->err, c->err_cap, &c->err_len, tmp, (size_t)n, &c->truncated);
    }
  }
  for (int i = 0; i < 2; i++)
    if (fds[i].fd >= 0) close(fds[i].fd);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return -1;
  }
  c->status = status;
  return status;
}

static inline bool cu_exited(int status, int code) {
  return status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == code;
}
static inline bool cu_signalled(int status, int sig) {
  return status != -1 && WIFSIGNALED(status) && WTERMSIG(status) == sig;
}

/* "exit 3", "signal 6", "not started": for messages. */
static inline const char *cu_describe(int status) {
  static char buf[64];
  if (status == -1) snprintf(buf, sizeof buf, "not started");
  else if (WIFEXITED(status)) snprintf(buf, sizeof buf, "exit %d", WEXITSTATUS(status));
  else if (WIFSIGNALED(status)) snprintf(buf, sizeof buf, "signal %d", WTERMSIG(status));
  else snprintf(buf, sizeof buf, "status %#x", status);
  return buf;
}

/* ---- lines --------------------------------------------------------------------
 * A text's lines are separated by '\n'; a last line without one counts. */
static inline size_t cu_line_count(const char *text) {
  size_t n = 0;
  for (const char *p = text; *p; p++)
    if (*p == '\n' || p[1] == '\0') n++;
  return n;
}

/* Copies line i (0-based, without its '\n') to buf; false when there is no
 * such line.  Longer lines are cut at cap - 1. */
static inline bool cu_line(const char *text, size_t i, char *buf, size_t cap) {
  const char *p = text;
  for (size_t k = 0; k < i; k++) {
    p = strchr(p, '\n');
    if (p == NULL) return false;
    p++;
  }
  if (*p == '\0') return false;
  size_t n = 0;
  while (p[n] && p[n] != '\n') n++;
  size_t m = n < cap - 1 ? n : cap - 1;
  memcpy(buf, p, m);
  buf[m] = '\0';
  return true;
}

/* Number of lines of text that start with prefix. */
static inline size_t cu_count_prefix(const char *text, const char *prefix) {
  size_t n = 0, len = strlen(prefix);
  for (const char *p = text; p && *p;) {
    if (strncmp(p, prefix, len) == 0) n++;
    p = strchr(p, '\n');
    if (p) p++;
  }
  return n;
}

/* One line on fd, formatted into a stack buffer and written with one
 * write() (no stdio: safe in a forked child and beside corona's own lines). */
static void cu_put(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3), unused));
static void cu_put(int fd, const char *fmt, ...) {
  char buf[256];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof buf - 1, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if ((size_t)n > sizeof buf - 2) n = (int)sizeof buf - 2;
  buf[n++] = '\n';
  ssize_t w = write(fd, buf, (size_t)n);
  (void)w;
}

#endif /* CORONA_CHILDUTIL_H */
