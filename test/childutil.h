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
 * ThreadSanitizer (a child that only calls execve is fine anyway).
 *
 * Windows (mingw-w64, under Wine too): the same interface over
 * CreateProcess, with the child's output caught in temporary files; a
 * child's "status" is its exit code, and abort() (SIGABRT) shows as exit
 * code 3, the C runtime's.  There is no fork: CU_HAVE_FORK is 0 and
 * cu_run_fn answers -1. */
#ifndef CORONA_CHILDUTIL_H
#define CORONA_CHILDUTIL_H

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef _WIN32
#define WIN32_LEAN_AND_MEAN
#include <io.h>
#include <windows.h>
#define cu_environ _environ
#define CU_HAVE_FORK 0
#else
#include <fcntl.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
extern char **environ;
#define cu_environ environ
#define CU_HAVE_FORK 1
#endif

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
  for (char **p = cu_environ; p != NULL && *p != NULL && e->n < CU_ENV_MAX; p++) {
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

#ifdef _WIN32
/* This program's own path (to run itself as a child). */
static inline const char *cu_self_exe(void) {
  static char path[MAX_PATH + 1];
  DWORD n = GetModuleFileNameA(NULL, path, MAX_PATH);
  path[n <= MAX_PATH ? n : 0] = '\0';
  return path;
}

/* An inheritable temporary file that goes away when closed. */
static inline HANDLE cu_temp_file(SECURITY_ATTRIBUTES *sa) {
  char dir[MAX_PATH + 1], name[MAX_PATH + 1];
  if (GetTempPathA(sizeof dir, dir) == 0 || GetTempFileNameA(dir, "cu", 0, name) == 0) return INVALID_HANDLE_VALUE;
  return CreateFileA(name, GENERIC_READ | GENERIC_WRITE, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, sa,
                     CREATE_ALWAYS, FILE_ATTRIBUTE_TEMPORARY | FILE_FLAG_DELETE_ON_CLOSE, NULL);
}

/* Reads file h from its start into a capture.  The C runtime writes "\r\n"
 * for "\n" on text-mode streams; the '\r's are dropped, so that lines read
 * the same as on Linux. */
static inline void cu_slurp(HANDLE h, char *buf, size_t cap, size_t *len, bool *truncated) {
  SetFilePointer(h, 0, NULL, FILE_BEGIN);
  char tmp[4096];
  DWORD n;
  while (ReadFile(h, tmp, sizeof tmp, &n, NULL) && n > 0) {
    for (DWORD i = 0; i < n; i++)
      if (tmp[i] != '\r') cu_keep(buf, cap, len, &tmp[i], 1, truncated);
  }
}

/* Appends s to the command line, quoted as the C runtime splits it. */
static inline bool cu_quote(char *cmd, size_t cap, size_t *n, const char *s) {
  char q[2048];
  size_t k = 0;
  q[k++] = '"';
  for (const char *c = s;; c++) {
    size_t slashes = 0;
    while (*c == '\\') c++, slashes++;
    /* Backslashes double before a quote (also the closing one). */
    size_t copies = (*c == '"' || *c == '\0') ? 2 * slashes : slashes;
    if (k + copies + 4 > sizeof q) return false;
    for (size_t i = 0; i < copies; i++) q[k++] = '\\';
    if (*c == '\0') break;
    if (*c == '"') q[k++] = '\\';
    q[k++] = *c;
  }
  q[k++] = '"';
  if (*n + k + 2 > cap) return false;
  if (*n > 0) cmd[(*n)++] = ' ';
  memcpy(cmd + *n, q, k);
  *n += k;
  cmd[*n] = '\0';
  return true;
}

/* Runs path with argv and env (NULL: this environment, unchanged) and
 * waits for it.  Returns its exit code (also in c->status), -1 if it could
 * not be started. */
static inline int cu_run(cu_child_t *c, const char *path, char *const argv[], const cu_env_t *env) {
  static char cmd[16384], block[256 * 1024];
  c->status = -1;
  c->out_len = c->err_len = 0;
  c->truncated = false;
  c->out[0] = c->err[0] = '\0';
  size_t n = 0;
  cmd[0] = '\0';
  for (size_t i = 0; argv[i] != NULL; i++)
    if (!cu_quote(cmd, sizeof cmd, &n, argv[i])) return -1;
  if (env != NULL) { /* "A=1\0B=2\0\0" */
    size_t b = 0;
    for (size_t i = 0; i < env->n; i++) {
      size_t len = strlen(env->v[i]) + 1;
      if (b + len + 1 > sizeof block) return -1;
      memcpy(block + b, env->v[i], len);
      b += len;
    }
    block[b++] = '\0';
    if (b == 1) block[b++] = '\0';
  }
  SECURITY_ATTRIBUTES sa = {sizeof sa, NULL, TRUE};
  HANDLE out = cu_temp_file(&sa), err = cu_temp_file(&sa);
  HANDLE nul = CreateFileA("NUL", GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_WRITE, &sa, OPEN_EXISTING, 0, NULL);
  STARTUPINFOA si;
  memset(&si, 0, sizeof si);
  si.cb = sizeof si;
  si.dwFlags = STARTF_USESTDHANDLES;
  si.hStdInput = nul;
  si.hStdOutput = out;
  si.hStdError = err;
  PROCESS_INFORMATION pi;
  fflush(stdout);
  fflush(stderr);
  if (out != INVALID_HANDLE_VALUE && err != INVALID_HANDLE_VALUE &&
      CreateProcessA(path, cmd, NULL, NULL, TRUE, 0, env != NULL ? block : NULL, NULL, &si, &pi)) {
    DWORD code = (DWORD)-1;
    WaitForSingleObject(pi.hProcess, INFINITE);
    GetExitCodeProcess(pi.hProcess, &code);
    CloseHandle(pi.hThread);
    CloseHandle(pi.hProcess);
    c->status = (int)code;
    cu_slurp(out, c->out, c->out_cap, &c->out_len, &c->truncated);
    cu_slurp(err, c->err, c->err_cap, &c->err_len, &c->truncated);
  }
  if (out != INVALID_HANDLE_VALUE) CloseHandle(out);
  if (err != INVALID_HANDLE_VALUE) CloseHandle(err);
  if (nul != INVALID_HANDLE_VALUE) CloseHandle(nul);
  return c->status;
}

/* No fork: a function cannot run in a child of its own. */
static inline int cu_run_fn(void (*fn)(void *), void *arg, char *out, size_t cap) {
  (void)fn;
  (void)arg;
  if (cap) out[0] = '\0';
  return -1;
}

static inline bool cu_exited(int status, int code) { return status != -1 && status == code; }
/* Only SIGABRT has an exit code of its own: 3, from abort() or raise(). */
static inline bool cu_signalled(int status, int sig) { return sig == SIGABRT && status == 3; }

/* "exit 3", "not started": for messages. */
static inline const char *cu_describe(int status) {
  static char buf[64];
  if (status == -1) snprintf(buf, sizeof buf, "not started");
  else snprintf(buf, sizeof buf, "exit %d%s", status, status == 3 ? " (abort)" : "");
  return buf;
}

/* One write of n bytes to fd (cu_put). */
static inline void cu_write(int fd, const char *buf, size_t n) {
  int w = _write(fd, buf, (unsigned)n);
  (void)w;
}
#define CU_PRINTF_FORMAT gnu_printf

#else /* POSIX */
/* This program's own path (to run itself as a child): the file itself, not
 * /proc/self/exe, which names the emulator under qemu-user (see cu_execve). */
static inline const char *cu_self_exe(void) {
  static char path[4096];
  if (path[0] == '\0') {
    ssize_t n = readlink("/proc/self/exe", path, sizeof path - 1);
    if (n <= 0 || (size_t)n >= sizeof path - 1) snprintf(path, sizeof path, "/proc/self/exe");
    else path[n] = '\0';
  }
  return path;
}

/* The emulator that runs this build's programs, from CRTEST_EMULATOR
 * ("/usr/bin/qemu-aarch64-static -L /usr/aarch64-linux-gnu": words split at
 * spaces), or NULL for a native build.  The cross toolchains set it for
 * every test (cmake/aarch64-linux-gnu.cmake); without binfmt_misc the host
 * kernel cannot start a program of this build itself. */
static inline const char *cu_emulator(void) {
  const char *e = getenv("CRTEST_EMULATOR");
  return e != NULL && e[0] != '\0' ? e : NULL;
}

/* qemu-user adds a line of its own to the stderr of a program that a
 * signal ends ("qemu: uncaught target signal 6 (Aborted) - core dumped"):
 * not the program's, so it goes before the lines are checked. */
static inline void cu_drop_emulator_lines(char *text, size_t *len) {
  static const char mark[] = "qemu: uncaught target signal ";
  char *w = text;
  for (const char *r = text; *r != '\0';) {
    const char *eol = strchr(r, '\n');
    size_t n = eol != NULL ? (size_t)(eol - r) + 1 : strlen(r);
    if (strncmp(r, mark, sizeof mark - 1) != 0) {
      memmove(w, r, n);
      w += n;
    }
    r += n;
  }
  *w = '\0';
  *len = (size_t)(w - text);
}

/* execve(path, argv, envp), through the emulator where there is one (the
 * emulator reads the environment envp too, and hands it on unchanged).
 * Returns only on failure. */
static inline void cu_execve(const char *path, char *const argv[], char *const envp[]) {
  const char *emu = cu_emulator();
  if (emu == NULL) {
    execve(path, argv, envp);
    return;
  }
  static char words[4096];
  static char *eargv[256];
  size_t n = 0, len = strlen(emu);
  if (len >= sizeof words) return;
  memcpy(words, emu, len + 1);
  for (char *w = strtok(words, " "); w != NULL && n < 64; w = strtok(NULL, " ")) eargv[n++] = w;
  eargv[n++] = (char *)path;
  for (size_t i = 1; argv[0] != NULL && argv[i] != NULL && n < 255; i++) eargv[n++] = argv[i];
  eargv[n] = NULL;
  execve(eargv[0], eargv, envp);
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
    cu_execve(path, argv, env != NULL ? (char *const *)env->v : environ);
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
  if (cu_emulator() != NULL) cu_drop_emulator_lines(c->err, &c->err_len);
  return status;
}

/* Runs fn(arg) in a forked child whose stderr goes to a pipe; returns the
 * wait status and copies up to cap - 1 bytes of what it wrote to out. */
static inline int cu_run_fn(void (*fn)(void *), void *arg, char *out, size_t cap) {
  int fds[2];
  out[0] = '\0';
  if (pipe(fds) != 0) return -1;
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    struct rlimit no_core = {0, 0};
    setrlimit(RLIMIT_CORE, &no_core);
    close(fds[0]);
    dup2(fds[1], 2);
    fn(arg);
    _exit(0);
  }
  close(fds[1]);
  size_t n = 0;
  for (;;) {
    char tmp[512];
    ssize_t r = read(fds[0], tmp, sizeof tmp);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    for (ssize_t i = 0; i < r && n + 1 < cap; i++) out[n++] = tmp[i];
  }
  out[n] = '\0';
  close(fds[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
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

/* One write of n bytes to fd (cu_put). */
static inline void cu_write(int fd, const char *buf, size_t n) {
  ssize_t w = write(fd, buf, n);
  (void)w;
}
#define CU_PRINTF_FORMAT printf

#endif /* _WIN32 */

/* One line on fd, formatted into a stack buffer and written with one
 * write() (no stdio: safe in a forked child and beside corona's own lines). */
static void cu_put(int fd, const char *fmt, ...) __attribute__((format(CU_PRINTF_FORMAT, 2, 3), unused));
static void cu_put(int fd, const char *fmt, ...) {
  char buf[256];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof buf - 1, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if ((size_t)n > sizeof buf - 2) n = (int)sizeof buf - 2;
  buf[n++] = '\n';
  cu_write(fd, buf, (size_t)n);
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

#endif /* CORONA_CHILDUTIL_H */
