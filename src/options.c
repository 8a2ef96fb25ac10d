/* options.c — the run-time options, all in one table.  Each option is read
 * once at initialisation from the environment, CORONA_<NAME> winning over
 * MALLOC_<NAME>; values are integers with an optional K, M or G suffix.
 * corona_allocation_mode can change some of them later, so values are
 * atomics (read relaxed: an option change needs no ordering with data). */
#include <errno.h>

#include "corona.h"
#include "internal/internal.h"
#include "internal/os.h"

typedef struct cr_option_s {
  const char *name; /* after the CORONA_ / MALLOC_ prefix */
  int64_t value;    /* the default until init */
  int64_t min, max;
  const char *description;
} cr_option_t;

static cr_option_t options[CR_OPT_COUNT] = {
    [CR_OPT_USE_HUGE_PAGES] = {"USE_HUGE_PAGES", 0, 0, 1, "back regions with huge pages (1)"},
    [CR_OPT_HUGE_THRESHOLD] = {"HUGE_PAGE_THRESHOLD", (int64_t)2 << 20, 0, INT64_MAX,
                               "bytes from which a large object gets huge pages (with USE_HUGE_PAGES)"},
    [CR_OPT_DECAY_MS] = {"DECAY_MS", 1000, 0, (int64_t)1 << 40,
                         "idle milliseconds before cached free memory goes back to the OS"},
    [CR_OPT_SOFT_LIMIT] = {"SOFT_HEAP_LIMIT", 0, 0, INT64_MAX,
                           "bytes mapped above which caches are trimmed (0: none)"},
};
static _Atomic(int64_t) option_values[CR_OPT_COUNT];

/* Parses "123", "64K", "2M", "1G"; false on anything else. */
static bool parse_value(const char *s, int64_t *out) {
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

static void warn(const char *prefix, const char *name, const char *what) {
  char buf[160];
  size_t n = 0;
  const char *parts[] = {"corona: ", prefix, name, what, "; using the default\n"};
  for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++)
    for (const char *c = parts[i]; *c && n < sizeof buf - 1; c++) buf[n++] = *c;
  cr_os_write_err(buf, n);
}

/* Looks up PREFIX+NAME in the environment. */
static const char *option_env(const char *prefix, const char *name) {
  char var[64];
  size_t n = 0;
  for (const char *c = prefix; *c && n < sizeof var - 1; c++) var[n++] = *c;
  for (const char *c = name; *c && n < sizeof var - 1; c++) var[n++] = *c;
  var[n] = 0;
  return cr_os_getenv(var);
}

void cr_options_init(void) {
  for (int i = 0; i < CR_OPT_COUNT; i++) {
    const cr_option_t *o = &options[i];
    int64_t v = o->value;
    const char *prefix = "CORONA_";
    const char *s = option_env(prefix, o->name);
    if (s == NULL) s = option_env(prefix = "MALLOC_", o->name);
    if (s != NULL) {
      int64_t parsed;
      if (!parse_value(s, &parsed)) warn(prefix, o->name, ": not a number");
      else if (parsed < o->min || parsed > o->max) warn(prefix, o->name, ": out of range");
      else v = parsed;
    }
    cr_store_relaxed(&option_values[i], v);
  }
}

int64_t cr_option(cr_option_id_t id) { return cr_load_relaxed(&option_values[id]); }

bool cr_option_set(cr_option_id_t id, int64_t value) {
  if (value < options[id].min || value > options[id].max) return false;
  cr_store_relaxed(&option_values[id], value);
  return true;
}
