/* options.h (layer: support) — run-time options, one table (options.c). */
#ifndef CORONA_OPTIONS_H
#define CORONA_OPTIONS_H

#include <stdbool.h>
#include <stdint.h>
#include "config.h"

typedef enum cr_option_id_e {
  CR_OPT_USE_HUGE_PAGES,
  CR_OPT_HUGE_THRESHOLD,
  CR_OPT_DECAY_MS,
  CR_OPT_BACKGROUND_PURGE,
  CR_OPT_SOFT_LIMIT,
  CR_OPT_TRIM_THRESHOLD,
  CR_OPT_TOP_PAD,
  CR_OPT_MMAP_THRESHOLD,
  CR_OPT_VERBOSE,
  CR_OPT_STATS,
  CR_OPT_STATS_FILE,
  CR_OPT_PROFILE,
  CR_OPT_PROFILE_RATE,
  CR_OPT_PROFILE_INTERVAL,
  CR_OPT_PROFILE_LEAKS,
  CR_OPT_DEBUG, /* last: verbose mode lists the options in this order (test_options) */
  CR_OPT_COUNT
} cr_option_id_t;
/* Reads the environment; called once by cr_init. */
void cr_options_init(void);
int64_t cr_option(cr_option_id_t id);
/* false when value is out of the option's range (or the option is text). */
bool cr_option_set(cr_option_id_t id, int64_t value);
/* A text option's value (a copy taken at initialisation), NULL when unset;
 * its cr_option is 1 when set, else 0. */
const char *cr_option_text(cr_option_id_t id);
CR_INLINE bool cr_verbose(void) { return cr_unlikely(cr_option(CR_OPT_VERBOSE) != 0); }

#endif /* CORONA_OPTIONS_H */
