/* demo.h — what the demo's workloads (demo_workloads.c) offer its two
 * drivers, demo.c (corona against the system malloc) and demo_corona.c
 * (corona alone, for comparing two builds): the table of workloads, the
 * preparation of their inputs, and the few helpers both drivers time and
 * report with.  Include after defining _GNU_SOURCE (benchutil.h's dlsym). */
#ifndef CORONA_DEMO_H
#define CORONA_DEMO_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "benchutil.h"

typedef struct workload {
    const char *name;
    uint64_t (*run)(const alloc_api *); /* returns a checksum, the same under any allocator */
} workload;

#define NUM_WORKLOADS ((size_t)5)
extern const workload workloads[]; /* NUM_WORKLOADS of them */

/* Makes every workload's random inputs (fixed seed); quick: smaller ones.
 * Call once, before running any workload. */
void prepare(int quick);

static inline double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Memory for the demo's own bookkeeping (outside the timed regions). */
static inline void *xmalloc(size_t n)
{
    void *p = malloc(n);
    if (!p) {
        fprintf(stderr, "corona-demo: out of memory while preparing (%zu bytes)\n", n);
        exit(1);
    }
    return p;
}

static inline int cmp_double(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

/* Sorts v. */
static inline double median(double *v, size_t n)
{
    qsort(v, n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

#endif /* CORONA_DEMO_H */
