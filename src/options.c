/* options.c (layer: support) — the run-time options, all in one table (name, default,
 * parser, range, description).  Each is read once at initialisation from the
 * environment, CORONA_<NAME> winning over MALLOC_<NAME>, without allocating.
 * A value that does not parse or is out of range, and a CORONA_ variable
 * that names no option, get a one-line warning and change nothing.
 * corona_allocation_mode can change some options later, so values are
 * atomics (read relaxed: an option change needs no ordering with data). */
#include "internal/options.h"
#include "internal/os.h"
#include "internal/report.h"
#include "internal/sync.h"

typedef bool (*cr_parser_t)(const char *s, int64_t *out);

typedef struct cr_option_s {
  const char *name;   /* after the CORONA_ / MALLOC_ prefix */
  int64_t fallback;   /* the default */
  cr_parser_t parse;  /* NULL: a text option (option_text) */
  int64_t min, max;
  const char *description;
} cr_option_t;

/* Digits with an optional K, M or G (binary) suffix. */
static bool parse_bytes(const char *s, int64_t *out) {
  int64_t v = 0;
  if (*s < '0' || *s > '9') return false;
  for (; *s >= '0' && *s <= '9'; s++) {
    if (v > (INT64_MAX - 9) / 10) return false;
    v = v * 10 + (*s - '0');
  }
  int shift = 0;
  if (*s == 'K' || *s == 'k') shift = 10;
  else if (*s == 'M' || *s == 'm') shift = 20;
  else if (*s == 'G' || *s == 'g') shift = 30;
  if (shift) {
    if (v > (INT64_MAX >> shift)) return false;
    v <<= shift;
    s++;
  }
  if (*s != 0) return false;
  *out = v;
  return true;
}

/* Digits only. */
static bool parse_count(const char *s, int64_t *out) {
  for (const char *c = s; *c; c++)
    if (*c < '0' || *c > '9') return false;
  return parse_bytes(s, out);
}

static bool same(const char *a, const char *b) {
  while (*a && (*a | 0x20) == (*b | 0x20)) a++, b++;
  return *a == 0 && *b == 0;
}

/* 0/1, and the usual words for them. */
static bool parse_flag(const char *s, int64_t *out) {
  if (same(s, "1") || same(s, "yes") || same(s, "true") || same(s, "on")) *out = 1;
  else if (same(s, "0") || same(s, "no") || same(s, "false") || same(s, "off")) *out = 0;
  else return false;
  return true;
}

/* The values of the text options, copied from the environment. */
static char stats_file[CORONA_OPTION_TEXT_MAX], profile_prefix[CORONA_OPTION_TEXT_MAX];
static char *const option_text[CR_OPT_COUNT] = {[CR_OPT_STATS_FILE] = stats_file, [CR_OPT_PROFILE] = profile_prefix};

/* A text option: any value that is not empty and fits its buffer. */
static bool take_text(int id, const char *s) {
  size_t n = 0;
  while (s[n] != 0 && n < CORONA_OPTION_TEXT_MAX) n++;
  if (n == 0 || n == CORONA_OPTION_TEXT_MAX) return false;
  for (size_t i = 0; i <= n; i++) option_text[id][i] = s[i];
  return true;
}

#ifndef CORONA_DEBUG_DEFAULT
#define CORONA_DEBUG_DEFAULT 0
#endif

static const cr_option_t options[CR_OPT_COUNT] = {
    [CR_OPT_USE_HUGE_PAGES] = {"USE_HUGE_PAGES", 0, parse_flag, 0, 1, "back regions with huge pages"},
    [CR_OPT_HUGE_THRESHOLD] = {"HUGE_PAGE_THRESHOLD", (int64_t)2 << 20, parse_bytes, 0, INT64_MAX,
                               "bytes from which a large object gets huge pages (with USE_HUGE_PAGES)"},
    [CR_OPT_DECAY_MS] = {"DECAY_MS", 1000, parse_count, 0, (int64_t)1 << 40,
                         "idle milliseconds before cached free memory goes back to the OS"},
    [CR_OPT_BACKGROUND_PURGE] = {"BACKGROUND_PURGE", 1, parse_flag, 0, 1,
                                 "a thread returns idle memory after DECAY_MS without waiting for an allocator call"},
    [CR_OPT_SOFT_LIMIT] = {"SOFT_HEAP_LIMIT", 0, parse_bytes, 0, INT64_MAX,
                           "bytes mapped above which caches are trimmed (0: none)"},
    [CR_OPT_TRIM_THRESHOLD] = {"TRIM_THRESHOLD", (int64_t)CORONA_DIRTY_BASE, parse_bytes, 0, INT64_MAX,
                               "free bytes kept resident beyond a quarter of the live heap before freed memory "
                               "goes back at once (glibc's M_TRIM_THRESHOLD)"},
    [CR_OPT_TOP_PAD] = {"TOP_PAD", 0, parse_bytes, 0, INT64_MAX,
                        "free bytes kept resident on top of TRIM_THRESHOLD (glibc's M_TOP_PAD)"},
    [CR_OPT_MMAP_THRESHOLD] = {"MMAP_THRESHOLD", (int64_t)CORONA_LARGE_REGION_MAX, parse_bytes, 0, INT64_MAX,
                               "large blocks above this many bytes (at most 16M) get a mapping of their own "
                               "(glibc's M_MMAP_THRESHOLD)"},
    [CR_OPT_VERBOSE] = {"VERBOSE", 0, parse_flag, 0, 1, "options at start-up and OS events on stderr"},
    [CR_OPT_STATS] = {"STATS", 0, parse_flag, 0, 1, "statistics report on stderr at exit"},
    [CR_OPT_STATS_FILE] = {"STATS_FILE", 0, NULL, 0, 1,
                           "the statistics report at exit goes to this file (%p: the process id), appended"},
    [CR_OPT_DEBUG] = {"DEBUG", CORONA_DEBUG_DEFAULT, parse_flag, 0, 1,
                      "check every free: double frees, bad pointers, overruns, writes to freed memory"},
    [CR_OPT_PROFILE] = {"PROFILE", 0, NULL, 0, 1,
                        "heap profiling on; a profile goes to PREFIX.PID.final.heap at exit (pprof's format)"},
    [CR_OPT_PROFILE_RATE] = {"PROFILE_RATE", (int64_t)CORONA_PROFILE_RATE, parse_bytes, 1, (int64_t)1 << 40,
                             "heap profiling: one sample per this many bytes allocated, on average"},
    [CR_OPT_PROFILE_INTERVAL] = {"PROFILE_INTERVAL", 0, parse_bytes, 0, INT64_MAX,
                                 "heap profiling on; a profile PREFIX.PID.N.heap each time this many more bytes "
                                 "have been allocated (0: none)"},
    [CR_OPT_PROFILE_LEAKS] = {"PROFILE_LEAKS", 0, parse_flag, 0, 1,
                              "heap profiling on; the stacks of the objects still live reported on stderr at exit"},
};
static _Atomic(int64_t) option_values[CR_OPT_COUNT];

static void warn_value(const char *prefix, const char *name, const char *value, const char *what) {
  cr_line_t l = CR_LINE_INIT;
  cr_line_str(&l, prefix);
  cr_line_str(&l, name);
  cr_line_str(&l, "=");
  cr_line_str(&l, value);
  cr_line_str(&l, what);
  cr_line_str(&l, "; using the default");
  cr_line_emit(&l);
}

/* Writes "PREFIX+NAME=" to var (64 bytes): the prefix that finds the
 * variable's entries in the environment. */
static void option_var(char *var, const char *prefix, const char *name) {
  size_t n = 0;
  for (const char *c = prefix; *c && n < 62; c++) var[n++] = *c;
  for (const char *c = name; *c && n < 62; c++) var[n++] = *c;
  var[n++] = '=';
  var[n] = 0;
}

/* The value of PREFIX+NAME in the environment (its first entry), or NULL. */
static const char *option_env(const char *prefix, const char *name) {
  char var[64];
  option_var(var, prefix, name);
  const char *e = cr_os_env(var, 0);
  if (e == NULL) return NULL;
  while (*e++ != '=') { /* names hold no '=': the value follows the first */
  }
  return e;
}

/* Whether entry e of the environment is one of PREFIX+NAME's (the platform
 * decides, as it did for option_env: Windows ignores case). */
static bool option_entry(const char *e, const char *prefix, const char *name) {
  char var[64];
  option_var(var, prefix, name);
  const char *f;
  for (size_t i = 0; (f = cr_os_env(var, i)) != NULL; i++)
    if (f == e) return true;
  return false;
}

/* Warns about CORONA_ variables that name no option (a typo would
 * otherwise go unnoticed). */
static void check_unknown(void) {
  static const char prefix[] = "CORONA_";
  const char *e;
  for (size_t i = 0; (e = cr_os_env(prefix, i)) != NULL; i++) {
    bool known = false;
    for (int o = 0; o < CR_OPT_COUNT && !known; o++) known = option_entry(e, prefix, options[o].name);
    if (known) continue;
    cr_line_t l = CR_LINE_INIT;
    cr_line_str(&l, "unknown variable ");
    size_t start = l.n;
    for (const char *c = e; *c && *c != '=' && l.n - start < 64; c++) l.buf[l.n++] = *c;
    cr_line_str(&l, " (ignored)");
    cr_line_emit(&l);
  }
}

void cr_options_init(void) {
  bool verbose = false;
  const char *source[CR_OPT_COUNT];
  for (int i = 0; i < CR_OPT_COUNT; i++) {
    const cr_option_t *o = &options[i];
    int64_t v = o->fallback;
    const char *prefix = "CORONA_";
    const char *s = option_env(prefix, o->name);
    if (s == NULL) s = option_env(prefix = "MALLOC_", o->name);
    source[i] = "default";
    if (s != NULL) {
      int64_t parsed;
      if (o->parse == NULL) {
        if (take_text(i, s)) {
          v = 1;
          source[i] = "environment";
        } else {
          warn_value(prefix, o->name, s, ": empty or too long");
        }
      } else if (!o->parse(s, &parsed)) warn_value(prefix, o->name, s, ": not a valid value");
      else if (parsed < o->min || parsed > o->max) warn_value(prefix, o->name, s, ": out of range");
      else {
        v = parsed;
        source[i] = "environment";
      }
    }
    cr_store_relaxed(&option_values[i], v);
    if (i == CR_OPT_VERBOSE) verbose = v != 0;
  }
  check_unknown();
  if (!verbose) return;
  for (int i = 0; i < CR_OPT_COUNT; i++) {
    cr_line_t l = CR_LINE_INIT;
    cr_line_str(&l, "option ");
    cr_line_str(&l, options[i].name);
    cr_line_str(&l, " = ");
    if (options[i].parse == NULL) { /* text, quoted */
      cr_line_str(&l, "\"");
      cr_line_str(&l, cr_option((cr_option_id_t)i) ? option_text[i] : "");
      cr_line_str(&l, "\"");
    } else {
      cr_line_u64(&l, (uint64_t)cr_option((cr_option_id_t)i));
    }
    cr_line_str(&l, " (");
    cr_line_str(&l, source[i]);
    cr_line_str(&l, "): ");
    cr_line_str(&l, options[i].description);
    cr_line_emit(&l);
  }
  if (cr_option(CR_OPT_USE_HUGE_PAGES)) {
    cr_line_t l = CR_LINE_INIT;
    cr_line_str(&l, "huge pages on");
    cr_line_emit(&l);
  }
}

int64_t cr_option(cr_option_id_t id) { return cr_load_relaxed(&option_values[id]); }

bool cr_option_set(cr_option_id_t id, int64_t value) {
  if (options[id].parse == NULL || value < options[id].min || value > options[id].max) return false;
  cr_store_relaxed(&option_values[id], value);
  return true;
}

const char *cr_option_text(cr_option_id_t id) { return cr_option(id) ? option_text[id] : NULL; }
