/* test_options.c — run-time options and verbose mode, seen from outside:
 * this program re-executes itself ("child work" / "child events") with a
 * controlled environment (this one minus every CORONA_* / MALLOC_* variable
 * and LD_PRELOAD, plus the case's variables) and checks the child's stderr
 * line by line: every line must be expected, every expected line must be
 * there exactly once.
 *
 *   options (default): no variables -> empty stderr; an unknown CORONA_FOO
 *     -> exactly "corona: unknown variable CORONA_FOO (ignored)", the
 *     program works; a near miss (CORONA_DECAY_MSX) is unknown too; unknown
 *     MALLOC_FOO -> nothing; values that do not parse (abc, 12Q, 2, empty,
 *     an overflowing 99999999999G, "maybe") or are out of range -> one
 *     "corona: NAME=VALUE: ...; using the default" line each, and verbose
 *     mode shows the default in effect; CORONA_ wins over MALLOC_ (also to
 *     turn verbose off); K/M/G suffixes (either case) give bytes; boolean
 *     words yes/on/true/no/off/false in any case.
 *   verbose: at start-up exactly one line per option, "corona: option NAME
 *     = VALUE (default|environment)" (an explanation may follow), before any
 *     event; then the events of a child that maps a slab region and a large
 *     region (each line's range holds the object), maps and unmaps a 64 MB
 *     mapping of its own (same address and size), gives the large region
 *     back at corona_collect, turns huge pages on and off with
 *     corona_allocation_mode, and crosses a 1 MB soft heap limit (one line
 *     with the mapped bytes and the limit).  Markers the child writes on
 *     stderr between steps pin each event to its step.
 *   preload LIB: LD_PRELOAD=LIB into programs that know nothing of corona
 *     (/bin/true; python3 allocating large buffers): no variables -> empty
 *     stderr; CORONA_FOO -> the one warning; MALLOC_VERBOSE=1 -> the option
 *     lines and events; a bad value -> its warning; without the preload,
 *     CORONA_FOO gives nothing (the words come from corona). */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>

#include "childutil.h"
#include "corona.h"
#include "testutil.h"

#define KB ((size_t)1024)
#define MB ((size_t)1 << 20)

#ifndef TEST_DEBUG_DEFAULT
#define TEST_DEBUG_DEFAULT 0 /* the CMake option CORONA_DEBUG */
#endif

/* ---- child side ------------------------------------------------------------ */

#define put cu_put /* childutil.h */

/* A marker between steps, on stderr with corona's lines. */
static void mark(const char *step, const void *p) { put(2, "child: %s 0x%016" PRIxPTR, step, (uintptr_t)p); }

/* Ordinary work with content checks; "ok" on stdout when all is well. */
static int child_work(void) {
  static const size_t sizes[] = {1, 24, 100, 1000, 8064, 8065, 50000, 300 * KB, 3 * MB};
  void *p[sizeof sizes / sizeof sizes[0]];
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    p[i] = corona_malloc(sizes[i]);
    if (p[i] == NULL || corona_usable_size(p[i]) < sizes[i]) return 4;
    tu_fill(p[i], sizes[i], tu_seed(p[i], sizes[i]));
  }
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    if (tu_verify(p[i], sizes[i], tu_seed(p[i], sizes[i])) != (size_t)-1) return 5;
    corona_free(p[i]);
  }
  char *z = corona_calloc(1000, 10);
  if (z == NULL || tu_first_nonzero(z, 10000) != (size_t)-1) return 6;
  z = corona_realloc(z, 100000);
  if (z == NULL || tu_first_nonzero(z, 10000) != (size_t)-1) return 7;
  corona_free(z);
  put(1, "ok");
  return 0;
}

/* Steps whose OS events verbose mode reports, with markers between them. */
static int child_events(void) {
  mark("start", NULL);
  char *p = corona_malloc(100);
  mark("small", p);
  char *q = corona_malloc(100 * KB);
  mark("large", q);
  char *r = corona_malloc(64 * MB);
  mark("own", r);
  if (p == NULL || q == NULL || r == NULL) return 4;
  corona_free(r);
  mark("own-freed", r);
  corona_collect();
  mark("collected", r);
  corona_free(q);
  corona_collect();
  mark("large-freed", q);
  if (corona_allocation_mode(CORONA_USE_HUGE_PAGES, 1) != 0) return 5;
  mark("huge-on", NULL);
  if (corona_allocation_mode(CORONA_USE_HUGE_PAGES, 0) != 0) return 5;
  mark("huge-off", NULL);
  if (corona_allocation_mode(CORONA_SET_SOFT_HEAP_LIMIT, (intptr_t)MB) != 0) return 6;
  mark("limit-set", NULL);
  void *v[8];
  for (int i = 0; i < 8; i++) {
    v[i] = corona_malloc(MB);
    if (v[i] == NULL) return 7;
    memset(v[i], i, MB);
  }
  mark("over-limit", NULL);
  for (int i = 0; i < 8; i++) corona_free(v[i]);
  corona_free(p);
  if (corona_allocation_mode(CORONA_SET_SOFT_HEAP_LIMIT, 0) != 0) return 6;
  mark("end", NULL);
  put(1, "ok");
  return 0;
}

/* ---- parent side: running and reading a child -------------------------------- */

static char child_out[64 * 1024];
static char child_err[256 * 1024];
static cu_child_t child;

#define MAX_LINES 4096
static char lines[MAX_LINES][320];
static size_t n_lines;

static void split_lines(const char *text) {
  n_lines = 0;
  while (n_lines < MAX_LINES && cu_line(text, n_lines, lines[n_lines], sizeof lines[0])) n_lines++;
}

/* Runs argv (argv[0] the path) with the clean environment plus vars
 * (NULL-terminated "NAME=value" strings that outlive the call). */
static int run_env(char *const argv[], const char *const vars[]) {
  static cu_env_t env;
  cu_env_clean(&env);
  for (size_t i = 0; vars != NULL && vars[i] != NULL; i++) cu_env_set(&env, vars[i]);
  cu_child_init(&child, child_out, sizeof child_out, child_err, sizeof child_err);
  int st = cu_run(&child, argv[0], argv, &env);
  split_lines(child_err);
  return st;
}

static int run_self(const char *mode, const char *const vars[]) {
  char *argv[] = {(char *)cu_self_exe(), "child", (char *)mode, NULL};
  return run_env(argv, vars);
}

/* Glob match with '*' (any run of characters, none included). */
static bool glob(const char *pat, const char *s) {
  if (*pat == '\0') return *s == '\0';
  if (*pat == '*') {
    for (const char *t = s;; t++) {
      if (glob(pat + 1, t)) return true;
      if (*t == '\0') return false;
    }
  }
  return *s == *pat && glob(pat + 1, s + 1);
}

/* ---- the option lines ------------------------------------------------------------ */
/* DEBUG last (check_lines reads it).  A text option (STATS_FILE) shows its
 * value in quotes; here it counts as 1 when set, 0 when empty. */
#define N_OPTIONS 16
static const char *const option_names[N_OPTIONS] = {
    "USE_HUGE_PAGES", "HUGE_PAGE_THRESHOLD", "DECAY_MS",   "BACKGROUND_PURGE", "SOFT_HEAP_LIMIT", "TRIM_THRESHOLD",
    "TOP_PAD",        "MMAP_THRESHOLD",      "VERBOSE",    "STATS",           "STATS_FILE",
    "PROFILE",        "PROFILE_RATE",        "PROFILE_INTERVAL", "PROFILE_LEAKS", "DEBUG"};
static const uint64_t option_defaults[N_OPTIONS] = {0, 2 * MB, 1000, 1, 0, 32 * MB, 0, 4 * MB, 0, 0, 0,
                                                    0, MB / 2, 0,    0, TEST_DEBUG_DEFAULT};

/* Parses "corona: option NAME = VALUE (SOURCE)" with an optional ": ..."
 * after it; the option's index, or -1. */
static int parse_option_line(const char *line, uint64_t *value, char *source, size_t cap) {
  if (!cu_starts(line, "corona: option ")) return -1;
  const char *s = line + strlen("corona: option ");
  for (int i = 0; i < N_OPTIONS; i++) {
    size_t n = strlen(option_names[i]);
    if (strncmp(s, option_names[i], n) != 0 || strncmp(s + n, " = ", 3) != 0) continue;
    const char *v = s + n + 3;
    char *end;
    if (*v == '"') { /* text */
      end = strchr(v + 1, '"');
      if (end == NULL) return -1;
      *value = end > v + 1;
      end++;
    } else {
      if (*v < '0' || *v > '9') return -1;
      *value = strtoull(v, &end, 10);
    }
    if (strncmp(end, " (", 2) != 0) return -1;
    const char *src = end + 2, *close = strchr(src, ')');
    if (close == NULL || (close[1] != '\0' && close[1] != ':') || (size_t)(close - src) >= cap) return -1;
    memcpy(source, src, (size_t)(close - src));
    source[close - src] = '\0';
    return i;
  }
  return -1;
}

/* ---- expectations ---------------------------------------------------------------- */
typedef struct expect_s {
  const char *label;
  const char *const *warnings; /* NULL-terminated glob patterns: each exactly one line */
  bool verbose;                /* the option lines, then events */
  const char *env_values;      /* "NAME=VALUE,..." options in effect from the environment (verbose only) */
  bool markers;                /* "child: " lines allowed */
} expect_t;

static const char *const event_prefixes[] = {"corona: mapped ", "corona: returned ", "corona: unmapped ",
                                             "corona: soft heap limit reached", "corona: huge pages o"};

static bool is_event(const char *line) {
  for (size_t k = 0; k < sizeof event_prefixes / sizeof event_prefixes[0]; k++)
    if (cu_starts(line, event_prefixes[k])) return true;
  return false;
}

/* The expected value and source of option i under e. */
static void expected_option(const expect_t *e, int i, uint64_t *value, const char **source) {
  *value = option_defaults[i];
  *source = "default";
  size_t n = strlen(option_names[i]);
  for (const char *s = e->env_values; s != NULL && *s;) {
    if (strncmp(s, option_names[i], n) == 0 && s[n] == '=') {
      *value = strtoull(s + n + 1, NULL, 10);
      *source = "environment";
    }
    s = strchr(s, ',');
    if (s) s++;
  }
}

/* Checks the split stderr against e; false on any mismatch. */
static bool check_lines(const expect_t *e) {
  int fails = tu_failure_count();
  size_t n_warn = 0;
  while (e->warnings != NULL && e->warnings[n_warn] != NULL) n_warn++;
  size_t warn_seen[16] = {0};
  size_t option_seen[N_OPTIONS] = {0};
  size_t first_option = SIZE_MAX, last_option = 0, first_event = SIZE_MAX, debug_lines = 0;
  /* With DEBUG in effect, verbose mode says so once at start-up. */
  uint64_t debug_value;
  const char *debug_source;
  expected_option(e, N_OPTIONS - 1, &debug_value, &debug_source);
  bool want_debug = e->verbose && debug_value == 1;
  for (size_t i = 0; i < n_lines; i++) {
    const char *l = lines[i];
    bool matched = false;
    for (size_t w = 0; w < n_warn && !matched; w++)
      if (glob(e->warnings[w], l)) {
        warn_seen[w]++;
        matched = true;
      }
    if (matched) continue;
    if (e->verbose) {
      uint64_t v;
      char src[32];
      int o = parse_option_line(l, &v, src, sizeof src);
      if (o >= 0) {
        option_seen[o]++;
        if (first_option == SIZE_MAX) first_option = i;
        last_option = i;
        uint64_t want;
        const char *want_src;
        expected_option(e, o, &want, &want_src);
        CHECKF(v == want && strcmp(src, want_src) == 0, "%s: \"%s\": want %s = %" PRIu64 " (%s)", e->label, l,
               option_names[o], want, want_src);
        continue;
      }
      if (is_event(l)) {
        if (first_event == SIZE_MAX) first_event = i;
        continue;
      }
      if (want_debug && cu_starts(l, "corona: debug mode on")) {
        debug_lines++;
        continue;
      }
    }
    if (e->markers && cu_starts(l, "child: ")) continue;
    tu_fail(__FILE__, __LINE__, "every stderr line expected", "%s: unexpected line %zu: \"%s\"", e->label, i, l);
  }
  for (size_t w = 0; w < n_warn; w++)
    CHECKF(warn_seen[w] == 1, "%s: %zu lines match \"%s\", want exactly 1", e->label, warn_seen[w], e->warnings[w]);
  if (e->verbose) {
    for (int o = 0; o < N_OPTIONS; o++)
      CHECKF(option_seen[o] == 1, "%s: %zu option lines for %s, want exactly 1", e->label, option_seen[o],
             option_names[o]);
    CHECKF(first_option != SIZE_MAX && last_option - first_option == N_OPTIONS - 1,
           "%s: the option lines are not together", e->label);
    CHECKF(first_event == SIZE_MAX || first_event > last_option, "%s: an event (line %zu) before the option lines",
           e->label, first_event);
    if (want_debug) CHECKF(debug_lines == 1, "%s: %zu \"debug mode on\" lines, want 1", e->label, debug_lines);
  }
  return tu_failure_count() == fails;
}

static void report(const char *label, bool ok) {
  printf("  %-52s %s\n", label, ok ? "ok" : "FAILED");
  if (!ok) printf("    stderr was:\n%s    stdout was:\n%s\n", child_err, child_out);
}

/* Runs the "work" child under vars, wants exit 0 and "ok", and checks its
 * stderr against e. */
static void work_case(const expect_t *e, const char *const vars[]) {
  int st = run_self("work", vars);
  bool ok = CHECKF(cu_exited(st, 0), "%s: child ended by %s", e->label, cu_describe(st));
  ok &= CHECKF(strstr(child_out, "ok\n") != NULL, "%s: the child's work failed", e->label);
  ok &= check_lines(e);
  report(e->label, ok);
}

#define VARS(...) ((const char *const[]){__VA_ARGS__, NULL})
#define WARN(...) ((const char *const[]){__VA_ARGS__, NULL})

/* A bad value: one warning line; the program works; with verbose mode on,
 * the same warning and the option at its default. */
static void bad_value(const char *var, const char *option) {
  static char pat[256], label[128];
  snprintf(pat, sizeof pat, "corona: %s: *; using the default", var);
  const char *const warn[] = {pat, NULL};
  snprintf(label, sizeof label, "bad value %s", var);
  work_case(&(expect_t){label, warn, false, NULL, false}, VARS(var));
  snprintf(label, sizeof label, "bad value %s, verbose: %s default", var, option);
  /* Not when VERBOSE is the bad one: CORONA_VERBOSE=1 would hide it. */
  if (strstr(var, "VERBOSE=") == NULL)
    work_case(&(expect_t){label, warn, true, "VERBOSE=1", false}, VARS(var, "CORONA_VERBOSE=1"));
}

static void test_options(void) {
  printf("options:\n");
  work_case(&(expect_t){"no variables: empty stderr", NULL, false, NULL, false}, NULL);
  work_case(&(expect_t){"CORONA_FOO=1: one warning", WARN("corona: unknown variable CORONA_FOO (ignored)"), false, NULL,
                        false},
            VARS("CORONA_FOO=1"));
  work_case(&(expect_t){"MALLOC_FOO=1: no warning", NULL, false, NULL, false}, VARS("MALLOC_FOO=1"));
  work_case(&(expect_t){"CORONA_FOO, CORONA_DECAY_MSX, verbose",
                        WARN("corona: unknown variable CORONA_FOO (ignored)",
                             "corona: unknown variable CORONA_DECAY_MSX (ignored)"),
                        true, "VERBOSE=1", false},
            VARS("CORONA_FOO=1", "CORONA_DECAY_MSX=5", "MALLOC_VERBOSE=1"));

  bad_value("MALLOC_DECAY_MS=abc", "DECAY_MS");
  bad_value("CORONA_HUGE_PAGE_THRESHOLD=12Q", "HUGE_PAGE_THRESHOLD");
  bad_value("MALLOC_USE_HUGE_PAGES=2", "USE_HUGE_PAGES");
  bad_value("CORONA_DECAY_MS=", "DECAY_MS");
  bad_value("CORONA_SOFT_HEAP_LIMIT=99999999999G", "SOFT_HEAP_LIMIT");
  bad_value("MALLOC_STATS=maybe", "STATS");
  bad_value("MALLOC_VERBOSE=maybe", "VERBOSE");
  bad_value("MALLOC_STATS_FILE=", "STATS_FILE");
  /* A text option: the report at exit goes to the file (here /dev/null). */
  work_case(&(expect_t){"CORONA_STATS_FILE=/dev/null", NULL, true, "STATS_FILE=1,VERBOSE=1", false},
            VARS("CORONA_STATS_FILE=/dev/null", "MALLOC_VERBOSE=1"));
  work_case(&(expect_t){"out of range MALLOC_DECAY_MS=99999999999999",
                        WARN("corona: MALLOC_DECAY_MS=99999999999999: out of range; using the default"), true,
                        "VERBOSE=1", false},
            VARS("MALLOC_DECAY_MS=99999999999999", "MALLOC_VERBOSE=1"));

  work_case(&(expect_t){"CORONA_DECAY_MS=7 wins over MALLOC_DECAY_MS=5", NULL, true, "DECAY_MS=7,VERBOSE=1", false},
            VARS("MALLOC_DECAY_MS=5", "CORONA_DECAY_MS=7", "MALLOC_VERBOSE=1"));
  work_case(&(expect_t){"MALLOC_DECAY_MS=5 alone", NULL, true, "DECAY_MS=5,VERBOSE=1", false},
            VARS("MALLOC_DECAY_MS=5", "MALLOC_VERBOSE=1"));
  work_case(&(expect_t){"CORONA_VERBOSE=0 wins over MALLOC_VERBOSE=1", NULL, false, NULL, false},
            VARS("MALLOC_VERBOSE=1", "CORONA_VERBOSE=0"));
  work_case(
      &(expect_t){"CORONA_USE_HUGE_PAGES=0 wins over MALLOC_ =1", NULL, true, "USE_HUGE_PAGES=0,VERBOSE=1", false},
      VARS("MALLOC_USE_HUGE_PAGES=1", "CORONA_USE_HUGE_PAGES=0", "CORONA_VERBOSE=1"));

  work_case(&(expect_t){"suffixes 4M, 3G", NULL, true,
                        "HUGE_PAGE_THRESHOLD=4194304,SOFT_HEAP_LIMIT=3221225472,VERBOSE=1", false},
            VARS("CORONA_HUGE_PAGE_THRESHOLD=4M", "MALLOC_SOFT_HEAP_LIMIT=3G", "MALLOC_VERBOSE=1"));
  work_case(
      &(expect_t){"suffixes 64k, 2g; plain 250", NULL, true,
                  "HUGE_PAGE_THRESHOLD=65536,SOFT_HEAP_LIMIT=2147483648,DECAY_MS=250,VERBOSE=1", false},
      VARS("MALLOC_HUGE_PAGE_THRESHOLD=64k", "CORONA_SOFT_HEAP_LIMIT=2g", "MALLOC_DECAY_MS=250", "MALLOC_VERBOSE=1"));
  work_case(&(expect_t){"glibc's tunables: TRIM_THRESHOLD, TOP_PAD, MMAP_THRESHOLD", NULL, true,
                        "TRIM_THRESHOLD=131072,TOP_PAD=0,MMAP_THRESHOLD=1048576,VERBOSE=1", false},
            VARS("MALLOC_TRIM_THRESHOLD=128K", "CORONA_TOP_PAD=0", "MALLOC_MMAP_THRESHOLD=1M", "MALLOC_VERBOSE=1"));
  work_case(&(expect_t){"suffix 1K, bytes 123456", NULL, true,
                        "HUGE_PAGE_THRESHOLD=123456,SOFT_HEAP_LIMIT=1024,VERBOSE=1", false},
            VARS("CORONA_HUGE_PAGE_THRESHOLD=123456", "CORONA_SOFT_HEAP_LIMIT=1K", "MALLOC_VERBOSE=1"));

  work_case(&(expect_t){"words yes, on, false, TRUE", NULL, true, "VERBOSE=1,USE_HUGE_PAGES=1,STATS=0,DEBUG=1", false},
            VARS("MALLOC_VERBOSE=yes", "CORONA_USE_HUGE_PAGES=on", "MALLOC_STATS=false", "MALLOC_DEBUG=TRUE"));
  work_case(&(expect_t){"words true, no, Off", NULL, true, "VERBOSE=1,DEBUG=0,USE_HUGE_PAGES=0", false},
            VARS("CORONA_VERBOSE=true", "CORONA_DEBUG=no", "MALLOC_USE_HUGE_PAGES=Off"));
  work_case(&(expect_t){"word On", NULL, true, "VERBOSE=1", false}, VARS("MALLOC_VERBOSE=On"));
  work_case(&(expect_t){"word off: verbose off", NULL, false, NULL, false}, VARS("MALLOC_VERBOSE=off"));
  work_case(&(expect_t){"word NO: verbose off", NULL, false, NULL, false}, VARS("CORONA_VERBOSE=NO"));
}

/* ---- verbose: events ---------------------------------------------------------- */

/* Index of the marker line "child: STEP 0x...", and its address. */
static size_t marker(const char *step, uintptr_t *addr) {
  char prefix[64];
  snprintf(prefix, sizeof prefix, "child: %s 0x", step);
  for (size_t i = 0; i < n_lines; i++)
    if (cu_starts(lines[i], prefix)) {
      if (addr) *addr = (uintptr_t)strtoull(lines[i] + strlen(prefix), NULL, 16);
      return i;
    }
  tu_fail(__FILE__, __LINE__, "marker present", "events: no marker \"%s\" in the child's stderr", step);
  return SIZE_MAX;
}

/* An event line "corona: WHAT 0x<16 hex> (N bytes)" -> base and N. */
static bool parse_event(const char *line, const char *what, uintptr_t *base, size_t *bytes) {
  char prefix[96];
  snprintf(prefix, sizeof prefix, "corona: %s 0x", what);
  if (!cu_starts(line, prefix)) return false;
  const char *h = line + strlen(prefix);
  for (int k = 0; k < 16; k++)
    if (!((h[k] >= '0' && h[k] <= '9') || (h[k] >= 'a' && h[k] <= 'f'))) return false;
  char *end;
  *base = (uintptr_t)strtoull(h, &end, 16);
  if (end != h + 16 || strncmp(end, " (", 2) != 0) return false;
  *bytes = (size_t)strtoull(end + 2, &end, 10);
  return strcmp(end, " bytes)") == 0;
}

/* Lines in [from, to) that are the event what; the last one's base and
 * size go to *base, *bytes.  With want_addr, only events whose range holds it. */
static size_t find_events(size_t from, size_t to, const char *what, uintptr_t want_addr, uintptr_t *base,
                          size_t *bytes) {
  size_t n = 0;
  for (size_t i = from; i < to && i < n_lines; i++) {
    uintptr_t b;
    size_t s;
    if (!parse_event(lines[i], what, &b, &s)) continue;
    if (want_addr != 0 && !(want_addr >= b && want_addr < b + s)) continue;
    n++;
    *base = b;
    *bytes = s;
  }
  return n;
}

/* The number of non-marker lines strictly between lines a and b; how many
 * of them match pattern goes to *matching. */
static size_t lines_between(size_t a, size_t b, const char *pattern, size_t *matching) {
  size_t n = 0;
  *matching = 0;
  for (size_t i = a + 1; i < b && i < n_lines; i++) {
    if (cu_starts(lines[i], "child: ")) continue;
    n++;
    if (glob(pattern, lines[i])) (*matching)++;
  }
  return n;
}

static void test_events(void) {
  const expect_t e = {"verbose events", NULL, true, "VERBOSE=1", true};
  int st = run_self("events", VARS("MALLOC_VERBOSE=1"));
  bool ok = CHECKF(cu_exited(st, 0), "events: child ended by %s", cu_describe(st));
  ok &= CHECKF(strstr(child_out, "ok\n") != NULL, "events: the child did not finish");
  ok &= check_lines(&e);
  uintptr_t p, q, r, base = 0, base2 = 0;
  size_t bytes = 0, bytes2 = 0, n, m;
  size_t m_start = marker("start", NULL), m_small = marker("small", &p), m_large = marker("large", &q),
         m_own = marker("own", &r), m_freed = marker("own-freed", NULL), m_coll = marker("collected", NULL),
         m_lfreed = marker("large-freed", NULL), m_on = marker("huge-on", NULL), m_off = marker("huge-off", NULL),
         m_lim = marker("limit-set", NULL), m_over = marker("over-limit", NULL), m_end = marker("end", NULL);
  const size_t all[] = {m_start, m_small, m_large, m_own, m_freed, m_coll, m_lfreed, m_on, m_off, m_lim, m_over, m_end};
  bool markers_ok = true;
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
    markers_ok &= all[i] != SIZE_MAX && (i == 0 || all[i] > all[i - 1]);
  if (!CHECKF(markers_ok, "events: the child's markers are missing or out of order")) {
    report(e.label, false);
    return;
  }
  /* The regions holding the first small and large objects were mapped
   * before the objects were handed out (maybe before main). */
  n = find_events(0, m_small, "mapped slab region", p, &base, &bytes);
  ok &= CHECKF(n == 1 && bytes == 4 * MB, "events: %zu \"mapped slab region\" lines hold %#lx (size %zu)", n,
               (unsigned long)p, bytes);
  n = find_events(0, m_large, "mapped large region", q, &base, &bytes);
  ok &= CHECKF(n == 1 && bytes == 16 * MB, "events: %zu \"mapped large region\" lines hold %#lx (size %zu)", n,
               (unsigned long)q, bytes);
  uintptr_t large_base = base;
  /* The 64 MB object: its own mapping, mapped for it and unmapped at the
   * latest by corona_collect, same address and size. */
  n = find_events(m_large, m_own, "mapped own mapping", r, &base, &bytes);
  ok &= CHECKF(n == 1 && bytes >= 64 * MB, "events: %zu \"mapped own mapping\" lines hold %#lx (size %zu)", n,
               (unsigned long)r, bytes);
  n = find_events(m_own, m_coll, "unmapped own mapping", 0, &base2, &bytes2);
  ok &= CHECKF(n == 1 && base2 == base && bytes2 == bytes,
               "events: %zu \"unmapped own mapping\" lines; last %#lx (%zu bytes), want %#lx (%zu bytes)", n,
               (unsigned long)base2, bytes2, (unsigned long)base, bytes);
  /* The large region is wholly free after q's free: collect gives it back. */
  n = find_events(m_coll, m_lfreed, "returned large region", large_base, &base2, &bytes2);
  ok &= CHECKF(n == 1 && base2 == large_base && bytes2 == 16 * MB,
               "events: %zu \"returned large region\" lines for %#lx", n, (unsigned long)large_base);
  /* The mode changes: exactly their lines. */
  n = lines_between(m_lfreed, m_on, "corona: huge pages on", &m);
  ok &= CHECKF(n == 1 && m == 1, "events: %zu lines (%zu \"corona: huge pages on\") at the mode change", n, m);
  n = lines_between(m_on, m_off, "corona: huge pages off", &m);
  ok &= CHECKF(n == 1 && m == 1, "events: %zu lines (%zu \"corona: huge pages off\") at the mode change", n, m);
  /* Setting the limit trims (maybe giving memory back) without the
   * message; the allocations above it say so once. */
  lines_between(m_off, m_lim, "corona: soft heap limit*", &m);
  ok &= CHECKF(m == 0, "events: %zu \"soft heap limit\" lines when the limit was set", m);
  lines_between(m_lim, m_over, "corona: soft heap limit reached (mapped * bytes, limit 1048576 bytes)*", &m);
  ok &= CHECKF(m == 1, "events: %zu \"soft heap limit reached\" lines, want 1", m);
  for (size_t i = m_lim + 1; i < m_over; i++) {
    unsigned long long mapped = 0;
    if (sscanf(lines[i], "corona: soft heap limit reached (mapped %llu bytes", &mapped) == 1)
      ok &= CHECKF(mapped > MB, "events: soft limit line says mapped %llu bytes", mapped);
  }
  report(e.label, ok);
}

static void test_verbose(void) {
  printf("verbose:\n");
  work_case(&(expect_t){"MALLOC_VERBOSE=1: option lines, events", NULL, true, "VERBOSE=1", false},
            VARS("MALLOC_VERBOSE=1"));
  CHECKF(cu_count_prefix(child_err, "corona: mapped slab region ") >= 1, "verbose: no \"mapped slab region\" line");
  CHECKF(cu_count_prefix(child_err, "corona: mapped large region ") >= 1, "verbose: no \"mapped large region\" line");
  work_case(&(expect_t){"MALLOC_VERBOSE=1 MALLOC_DEBUG=1: debug line", NULL, true, "VERBOSE=1,DEBUG=1", false},
            VARS("MALLOC_VERBOSE=1", "MALLOC_DEBUG=1"));
  test_events();
}

/* ---- preload --------------------------------------------------------------------- */

static void preload_case(const char *label, char *const argv[], const char *const vars[], const expect_t *e,
                         const char *want_out) {
  int st = run_env(argv, vars);
  bool ok = CHECKF(cu_exited(st, 0), "%s: %s ended by %s", label, argv[0], cu_describe(st));
  if (want_out) ok &= CHECKF(strstr(child_out, want_out) != NULL, "%s: stdout lacks \"%s\"", label, want_out);
  ok &= check_lines(e);
  report(label, ok);
}

/* target: NULL, or preload_target of this build, which stands in for
 * /bin/true and python3 in a cross build (no host program can load its
 * library). */
static void test_preload(const char *lib, const char *target) {
  printf("preload %s:\n", lib);
  static char preload[4096];
  snprintf(preload, sizeof preload, "LD_PRELOAD=%s", lib);
  if (!CHECKF(access(lib, R_OK) == 0, "preload: %s not readable", lib)) return;
  const char *true_path = target != NULL                 ? target
                          : access("/bin/true", X_OK) == 0 ? "/bin/true"
                                                         : "/usr/bin/true";
  char *tru[] = {(char *)true_path, NULL};
  const char *const unknown[] = {"corona: unknown variable CORONA_FOO (ignored)", NULL};

  preload_case("true, preloaded, no variables: empty stderr", tru, VARS(preload),
               &(expect_t){"true", NULL, false, NULL, false}, NULL);
  preload_case("true, not preloaded, CORONA_FOO=1: nothing", tru, VARS("CORONA_FOO=1"),
               &(expect_t){"true", NULL, false, NULL, false}, NULL);
  preload_case("true, preloaded, CORONA_FOO=1: one warning", tru, VARS(preload, "CORONA_FOO=1"),
               &(expect_t){"true", unknown, false, NULL, false}, NULL);
  preload_case("true, preloaded, MALLOC_FOO=1: nothing", tru, VARS(preload, "MALLOC_FOO=1"),
               &(expect_t){"true", NULL, false, NULL, false}, NULL);
  preload_case("true, preloaded, MALLOC_VERBOSE=1: option lines", tru, VARS(preload, "MALLOC_VERBOSE=1"),
               &(expect_t){"true verbose", NULL, true, "VERBOSE=1", false}, NULL);
  preload_case("true, preloaded, MALLOC_DECAY_MS=abc: one warning", tru, VARS(preload, "MALLOC_DECAY_MS=abc"),
               &(expect_t){"true", WARN("corona: MALLOC_DECAY_MS=abc: *; using the default"), false, NULL, false},
               NULL);

  const char *py = "/usr/bin/python3";
  if (target == NULL && access(py, X_OK) != 0) {
    tu_skip("%s not found: the python3 cases not checked", py);
    return;
  }
  char *pyargv[] = {(char *)py, "-S", "-c",
                    "x = [bytearray(100000) for i in range(50)]; print('ok', sum(len(b) for b in x))", NULL};
  if (target != NULL) { /* the same 50 buffers of 100 KB */
    pyargv[0] = (char *)target;
    pyargv[1] = "buffers";
    pyargv[2] = NULL;
  }
  preload_case("python3, preloaded, verbose + CORONA_FOO", pyargv,
               VARS(preload, "MALLOC_VERBOSE=1", "CORONA_FOO=1", "CORONA_DECAY_MS=300"),
               &(expect_t){"python3 verbose", unknown, true, "VERBOSE=1,DECAY_MS=300", false}, "ok 5000000");
  CHECKF(cu_count_prefix(child_err, "corona: mapped large region ") >= 1,
         "python3: no \"mapped large region\" line for 5 MB of 100 KB buffers");
  preload_case("python3, preloaded, no variables: empty stderr", pyargv, VARS(preload),
               &(expect_t){"python3", NULL, false, NULL, false}, "ok 5000000");
}

int main(int argc, char **argv) {
  if (argc >= 3 && strcmp(argv[1], "child") == 0) {
    if (strcmp(argv[2], "work") == 0) return child_work();
    if (strcmp(argv[2], "events") == 0) return child_events();
    return 2;
  }
  double t0 = tu_now();
  const char *group = argc >= 2 ? argv[1] : "options";
  if (strcmp(group, "options") == 0) test_options();
  else if (strcmp(group, "verbose") == 0) test_verbose();
  else if (strcmp(group, "preload") == 0 && argc >= 3) test_preload(argv[2], argc >= 4 ? argv[3] : NULL);
  else {
    fprintf(stderr, "usage: test_options [options | verbose | preload LIBCORONA.so [PRELOAD_TARGET]]\n");
    return 2;
  }
  char name[64];
  snprintf(name, sizeof name, "test_options %s", group);
  return tu_finish(name, t0);
}
