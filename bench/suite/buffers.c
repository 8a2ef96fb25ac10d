/* buffers.c — many live buffers, each replaced at random by one of another
 * size: the pattern where an allocator must keep freed memory resident to
 * be fast, and must not keep too much of it to stay lean.
 *
 * Modes:
 *   big  24 live buffers of 4 .. 28 MiB (uniform), each step replaces a
 *        random one with a new buffer of a random size, which the program
 *        zero-fills itself with memset (as C++ `new char[n]()` or
 *        std::make_unique<char[]>(n) do; not calloc), then tags at both
 *        ends.  The new buffer is allocated before the old one is freed
 *        (a smart pointer's assignment).  An allocator that gives a freed
 *        buffer's pages back to the OS makes every memset land on fresh
 *        pages: a page fault per 4 KiB, most of the run's time.
 *   mid  48 live objects of 8 KiB .. 2 MiB (log-uniform by octave), each
 *        step frees a random one and allocates its replacement, which is
 *        written at both ends (a header and a trailer: 64 bytes each), as
 *        buffers of messages, images or decoded records are.  Only the
 *        touched pages cost: a fault for each one on memory the allocator
 *        purged.
 * The contents are checked before each free (both ends; for big, a word
 * in every 64 KiB must still read as zero).
 * Threads: the slots and the steps are split among the threads (big: at
 * least 2 slots a thread), each with its own random stream; the checksum
 * depends on the thread count. */
#include "suite.h"

#define KB ((size_t)1024)
#define MB (KB * 1024)
#define BIG_SLOTS 24
#define MID_SLOTS 48
#define END_BYTES 64
#define ZERO_STRIDE (64 * KB)

static const char *const modes[] = {"big", "mid", NULL};

typedef struct job {
  int index;
  int big;
  size_t slots, steps;
  uint64_t sum;
} job;

/* Writes END_BYTES tag bytes at each end of p[0, n). */
static void tag_ends(unsigned char *p, size_t n, uint64_t id) {
  for (size_t i = 0; i < END_BYTES; i++) {
    p[i] = tag_byte(id, i);
    p[n - 1 - i] = tag_byte(id, n - 1 - i);
  }
}

/* Checks the tags at both ends, and (zeroed) that the middle still reads as
 * zero every ZERO_STRIDE bytes; returns a checksum of what it read. */
static uint64_t check_ends(const unsigned char *p, size_t n, uint64_t id, int zeroed) {
  uint64_t s = n;
  for (size_t i = 0; i < END_BYTES; i++) {
    if (p[i] != tag_byte(id, i)) suite_corrupt("buffers", id, i, p[i], tag_byte(id, i));
    size_t j = n - 1 - i;
    if (p[j] != tag_byte(id, j)) suite_corrupt("buffers", id, j, p[j], tag_byte(id, j));
    s += p[i] + p[j];
  }
  if (zeroed)
    for (size_t off = ZERO_STRIDE; off + END_BYTES < n; off += ZERO_STRIDE)
      if (p[off] != 0) suite_corrupt("buffers (zero-filled)", id, off, p[off], 0);
  return s;
}

static void *run(void *arg) {
  job *j = arg;
  rng_t g = rng_make((j->big ? 0xb1fb0000ull : 0x31dc0000ull) + (uint64_t)j->index);
  unsigned char **slot = xmalloc(j->slots * sizeof *slot);
  size_t *size = xmalloc(j->slots * sizeof *size);
  uint64_t *id = xmalloc(j->slots * sizeof *id);
  uint64_t sum = 0;
  for (size_t op = 0; op < j->steps + j->slots; op++) {
    size_t k = op < j->slots ? op : (size_t)(rng_u64(&g) % j->slots);
    size_t n = j->big ? rng_between(&g, 4 * MB, 28 * MB) : rng_octaves(&g, 8 * KB, 8); /* 8 KiB .. 2 MiB */
    unsigned char *old = op < j->slots ? NULL : slot[k];
    if (old != NULL && !j->big) { /* mid: free first, then allocate */
      sum += check_ends(old, size[k], id[k], 0);
      free(old);
      old = NULL;
    }
    unsigned char *p = xmalloc(n);
    if (j->big) memset(p, 0, n);
    tag_ends(p, n, op);
    TOUCHED(p);
    if (old != NULL) { /* big: the old buffer goes once the new one exists */
      sum += check_ends(old, size[k], id[k], 1);
      free(old);
    }
    slot[k] = p;
    size[k] = n;
    id[k] = op;
  }
  for (size_t k = 0; k < j->slots; k++) {
    sum += check_ends(slot[k], size[k], id[k], j->big);
    free(slot[k]);
  }
  free(slot);
  free(size);
  free(id);
  j->sum = sum;
  return NULL;
}

int main(int argc, char **argv) {
  suite_args a = suite_init(argc, argv, "suite-buffers",
                            "buffers replaced at random: big (24 live, 4..28 MiB, zero-filled by memset) or mid "
                            "(48 live, 8 KiB..2 MiB, touched at both ends)\n",
                            modes);
  int big = strcmp(a.mode, "big") == 0;
  size_t slots = big ? BIG_SLOTS : MID_SLOTS;
  size_t total = (size_t)((big ? 1000 : 200000) * a.scale);
  if (total < (size_t)a.threads) total = (size_t)a.threads;
  job *jobs = xmalloc((size_t)a.threads * sizeof *jobs);
  for (int i = 0; i < a.threads; i++) {
    size_t s = share_begin(slots, a.threads, i + 1) - share_begin(slots, a.threads, i);
    if (s < 2) s = 2;
    jobs[i] = (job){i, big, s, share_begin(total, a.threads, i + 1) - share_begin(total, a.threads, i), 0};
  }
  suite_run_threads(a.threads, run, jobs, sizeof *jobs);
  uint64_t sum = 0;
  for (int i = 0; i < a.threads; i++) sum += jobs[i].sum;
  free(jobs);
  suite_report(big ? "buffers-big" : "buffers-mid", &a, sum, "");
  return 0;
}
