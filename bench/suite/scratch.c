/* scratch.c — false sharing (after Hoard's cache-scratch).
 *
 * Pattern: the main thread allocates one small object per worker, one
 * after the other (so they sit side by side, several to a cache line) and
 * hands them out.  Each worker writes its object in a tight loop, frees it,
 * then over and over allocates a small object of the same size, writes it
 * in a tight loop and frees it.  An allocator that hands a worker memory on
 * a cache line another worker also writes (the object freed by the worker,
 * recycled from the main thread's line, or neighbours carved for different
 * threads from one line) makes the cores fight over that line: the loop
 * then runs many times slower than the same loop on private memory.  This
 * is "passive" false sharing, caused by the allocator, not the program.
 * Objects of 8 B; each is written 1000 times (8000 byte stores); the
 * objects are split among the workers.  With one thread there is nothing
 * to share, and the run shows the plain cost of the loop. */
#include "suite.h"

#define OBJ 8
#define WRITES 1000

typedef struct job {
  _Alignas(64) unsigned char *first; /* from the main thread */
  size_t objects;
  uint64_t sum;
} job;

/* Writes every byte of p WRITES times; returns the bytes' sum. */
NOINLINE static uint64_t scribble(volatile unsigned char *p) {
  for (int k = 0; k < OBJ; k++)
    p[k] = (unsigned char)k;
  for (int w = 0; w < WRITES; w++)
    for (int k = 0; k < OBJ; k++)
      p[k] = (unsigned char)(p[k] + 1);
  uint64_t s = 0;
  for (int k = 0; k < OBJ; k++)
    s += p[k];
  return s;
}

static void *run(void *arg) {
  job *j = arg;
  uint64_t sum = scribble(j->first);
  free(j->first);
  for (size_t i = 1; i < j->objects; i++) {
    unsigned char *p = malloc(OBJ);
    if (!p)
      suite_oom(OBJ);
    sum += scribble(p);
    free(p);
  }
  j->sum = sum;
  return NULL;
}

int main(int argc, char **argv) {
  suite_args a = suite_init(argc, argv, "suite-scratch",
                            "false sharing: small objects from one thread written by others (cache-scratch)\n",
                            NULL);
  size_t total = (size_t)(40000 * a.scale);
  if (total < (size_t)a.threads)
    total = (size_t)a.threads;
  job *jobs = aligned_alloc(64, (size_t)a.threads * sizeof *jobs);
  if (!jobs)
    suite_oom((size_t)a.threads * sizeof *jobs);
  for (int i = 0; i < a.threads; i++) {
    jobs[i].first = xmalloc(OBJ);
    jobs[i].objects = share_begin(total, a.threads, i + 1) - share_begin(total, a.threads, i);
    jobs[i].sum = 0;
  }
  suite_run_threads(a.threads, run, jobs, sizeof *jobs);
  uint64_t sum = 0;
  for (int i = 0; i < a.threads; i++)
    sum += jobs[i].sum;
  free(jobs);
  suite_report("scratch", &a, sum, "");
  return 0;
}
