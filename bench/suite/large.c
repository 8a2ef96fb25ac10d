/* large.c — large objects: churn, and very large buffers.
 *
 * Modes:
 *   churn  16 live slots per thread, each step replaces a random slot with
 *          a new object of 8 KB .. 4 MB (log-uniform by octave): I/O
 *          buffers, images, decoded messages.  Above the small classes an
 *          allocator must choose between keeping freed memory (fast, more
 *          RSS) and giving it back to the OS (every page faults again on
 *          reuse).
 *   big    buffers of 8 .. 48 MB, at most 2 live per thread, allocated,
 *          written in every page, read back and freed, over and over: a
 *          program that builds a big temporary result per request.  Giving
 *          such a buffer back to the OS on every free costs a page fault
 *          per 4 KB page on the next request; keeping all of them costs
 *          RSS.
 * Every page of every object is written; the first and last bytes (churn)
 * or every page (big) are checked before the free.
 * Threads: the steps are split among the threads, each with its own slots;
 * the checksum depends on the thread count (each thread its own stream). */
#include "suite.h"

#define KB ((size_t)1024)
#define MB (KB * 1024)
#define PAGE 4096
#define SLOTS 16

static const char *const modes[] = {"churn", "big", NULL};

typedef struct job {
  int index;
  size_t steps;
  uint64_t sum;
} job;

static inline void fill_pages(unsigned char *p, size_t n, uint64_t id) {
  for (size_t off = 0; off < n; off += PAGE)
    p[off] = tag_byte(id, off);
  p[n - 1] = tag_byte(id, n - 1);
}

static void *run_churn(void *arg) {
  job *j = arg;
  rng_t g = rng_make(0x1a29e0000 + (uint64_t)j->index);
  unsigned char *slot[SLOTS] = {0};
  size_t size[SLOTS] = {0};
  uint64_t id[SLOTS] = {0}, sum = 0;
  for (size_t op = 0; op < j->steps + SLOTS; op++) {
    size_t k = op < SLOTS ? op : (size_t)(rng_u64(&g) % SLOTS);
    unsigned char *p = slot[k];
    if (p) {
      size_t n = size[k];
      if (p[0] != tag_byte(id[k], 0))
        suite_corrupt("large churn", id[k], 0, p[0], tag_byte(id[k], 0));
      if (p[n - 1] != tag_byte(id[k], n - 1))
        suite_corrupt("large churn", id[k], n - 1, p[n - 1], tag_byte(id[k], n - 1));
      sum += (uint64_t)p[0] * 31 + p[n - 1] + n;
      free(p);
    }
    size_t n = rng_octaves(&g, 8 * KB, 9); /* 8 KB .. 4 MB */
    p = malloc(n);
    if (!p)
      suite_oom(n);
    fill_pages(p, n, op);
    TOUCHED(p);
    slot[k] = p;
    size[k] = n;
    id[k] = op;
  }
  for (size_t k = 0; k < SLOTS; k++) {
    sum += slot[k][0] + slot[k][size[k] - 1];
    free(slot[k]);
  }
  j->sum = sum;
  return NULL;
}

static void *run_big(void *arg) {
  job *j = arg;
  rng_t g = rng_make(0xb16b0000 + (uint64_t)j->index);
  unsigned char *slot[2] = {0};
  size_t size[2] = {0};
  uint64_t sum = 0;
  for (size_t r = 0; r < j->steps + 2; r++) {
    size_t k = r & 1;
    unsigned char *p = slot[k];
    if (p) { /* read every page back */
      size_t n = size[k];
      uint64_t rid = r - 2;
      for (size_t off = 0; off < n; off += PAGE) {
        if (p[off] != tag_byte(rid, off))
          suite_corrupt("big buffers", rid, off, p[off], tag_byte(rid, off));
        sum += p[off];
      }
      sum += p[n - 1] + n;
      free(p);
      slot[k] = NULL;
    }
    if (r >= j->steps)
      continue; /* the last two steps only free */
    size_t n = rng_between(&g, 8 * MB, 48 * MB);
    p = malloc(n);
    if (!p)
      suite_oom(n);
    fill_pages(p, n, r);
    TOUCHED(p);
    slot[k] = p;
    size[k] = n;
  }
  j->sum = sum;
  return NULL;
}

int main(int argc, char **argv) {
  suite_args a = suite_init(argc, argv, "suite-large",
                            "large objects: churn of 8 KB..4 MB with 16 live, or 8..48 MB buffers with 2 live\n",
                            modes);
  int big = strcmp(a.mode, "big") == 0;
  size_t total = (size_t)((big ? 100 : 10000) * a.scale);
  if (total < (size_t)a.threads)
    total = (size_t)a.threads;
  job *jobs = xmalloc((size_t)a.threads * sizeof *jobs);
  for (int i = 0; i < a.threads; i++)
    jobs[i] = (job){i, share_begin(total, a.threads, i + 1) - share_begin(total, a.threads, i), 0};
  suite_run_threads(a.threads, big ? run_big : run_churn, jobs, sizeof *jobs);
  uint64_t sum = 0;
  for (int i = 0; i < a.threads; i++)
    sum += jobs[i].sum;
  free(jobs);
  suite_report(big ? "big-buffers" : "large-churn", &a, sum, "");
  return 0;
}
