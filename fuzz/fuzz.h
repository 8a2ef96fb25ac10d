/* fuzz.h — what the parts of the libFuzzer harness share:
 *   fuzz_api.c  what is checked, the input format and its decoding, failure,
 *               the libFuzzer entry points
 *   pattern.c   the fill patterns every object carries, and their checks
 *   shadow.c    the shadow table of live objects and its checks
 *   ops.c       the operations an input's body is made of
 *   worker.c    the second thread, and the handoffs between the two */
#ifndef CORONA_FUZZ_H
#define CORONA_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NSLOTS 64
#define MIB ((size_t)1 << 20)

/* ---- failure (fuzz_api.c) -------------------------------------------------- */

/* Prints "fuzz_api: FAIL: " and the message, and aborts. */
#if defined(__GNUC__) || defined(__clang__)
__attribute__((format(printf, 1, 2)))
#endif
_Noreturn void fail(const char *fmt, ...);

/* ---- input streams (fuzz_api.c) -------------------------------------------- */

typedef struct {
  const uint8_t *p, *end;
} reader_t;

static inline uint8_t rd8(reader_t *r) { return r->p < r->end ? *r->p++ : 0; }
static inline size_t rd16(reader_t *r) {
  size_t lo = rd8(r);
  return lo | (size_t)rd8(r) << 8;
}
static inline size_t rd24(reader_t *r) {
  size_t lo = rd16(r);
  return lo | (size_t)rd8(r) << 16;
}

size_t rd_size(reader_t *r);
size_t rd_align(reader_t *r);

/* ---- fill patterns (pattern.c) ---------------------------------------------- */

/* Byte i of the pattern of seed. */
uint8_t pat(uint32_t seed, size_t i);
/* The byte put in the last usable byte past the requested size. */
uint8_t tail_mark(uint32_t seed);

/* Calls visit(p, off, len, arg) for the patterned ranges of an object of n
 * bytes that start below limit (clipped to limit); stops at the first nonzero
 * return and passes it on. */
typedef size_t (*visit_fn)(uint8_t *p, size_t off, size_t len, uint32_t seed);
size_t each_range(uint8_t *p, size_t n, size_t limit, uint32_t seed, visit_fn visit);

/* The visitors: fill_range fills with the pattern (and returns 0);
 * check_range and zero_range return 1 + the offset of the first byte that is
 * not the pattern, or not 0, and 0 when there is none. */
size_t fill_range(uint8_t *p, size_t off, size_t len, uint32_t seed);
size_t check_range(uint8_t *p, size_t off, size_t len, uint32_t seed);
size_t zero_range(uint8_t *p, size_t off, size_t len, uint32_t seed);

/* ---- the shadow table (shadow.c) -------------------------------------------- */

typedef struct {
  uint8_t *p; /* NULL: empty */
  size_t req, usable, align;
  uint32_t seed;
  const char *how; /* the call that made it, for messages */
} slot_t;

/* p and usable of a slot change only through adopt, release and unpublish
 * (under shadow.c's lock); a slot's other fields belong to whichever thread
 * owns the slot in the running segment. */
extern slot_t g_slots[NSLOTS];

typedef struct {
  int id;       /* 0 main, 1 worker */
  int shared;   /* this segment is run by both threads */
  int parity;   /* in a shared segment: the slots this thread owns */
  uint32_t ops; /* ops run in this input, for seeds */
} ctx_t;

unsigned rd_slot(reader_t *r, const ctx_t *c); /* fuzz_api.c */
uint32_t new_seed(ctx_t *c, unsigned slot);
void unpublish(unsigned i);
void verify(ctx_t *c, unsigned i, const char *when);
void check_alignment(ctx_t *c, const char *how, const void *p, size_t size, size_t align);
void adopt(ctx_t *c, unsigned i, uint8_t *p, size_t req, size_t align, const char *how, bool zeroed,
           uint32_t seed);
void release(ctx_t *c, unsigned i, const char *why);

/* ---- the operations (ops.c) -------------------------------------------------- */

/* Runs the ops of one body (or half of one) on thread c. */
void run_ops(ctx_t *c, const uint8_t *data, size_t len);

/* ---- the worker thread (worker.c) -------------------------------------------- */

enum { JOB_RUN, JOB_CLEANUP, JOB_EXIT };

/* The worker's context: set by the main thread before it posts a job. */
extern ctx_t worker_ctx;

bool worker_exists(void);
void worker_start(void);
void worker_post(int job, const uint8_t *data, size_t len);
void worker_wait(void);    /* until the job posted last is done */
void worker_started(void); /* until the worker has picked up the job posted last */
void worker_replace(void);

#endif /* CORONA_FUZZ_H */
