/* demo_corona.c — the workloads of demo.c on corona alone, for comparing
 * two builds of corona (scripts/bench-stats-overhead: with and without the
 * statistics counters).  It runs demo_workloads.c, like demo.c, so the
 * workload code is the very same; only the driver differs: no system
 * malloc runs, and each run is timed by wall clock and by the process's CPU
 * time, which leaves out the time the process spends descheduled on a
 * shared machine.  After one warm-up run of every workload, --runs N rounds
 * each run every workload once; for each workload it prints one line
 *   name|best wall ms|median wall ms|best cpu ms|median cpu ms|checksum
 * A checksum that changes between runs is an error (exit status 1).
 *
 * Usage: corona-demo-corona [--runs N] [--quick]
 * Built by scripts/bench-stats-overhead against each build's libcorona.a
 * (cc -I include -I bench bench/demo_corona.c bench/demo_workloads.c libcorona.a
 *  -lpthread -lm -ldl). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "corona.h"
#include "demo.h"

static double cpu_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    long runs = 5;
    int quick = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) {
            quick = 1;
        } else if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc) {
            runs = strtol(argv[++i], NULL, 10);
            if (runs < 1 || runs > 1000) {
                fprintf(stderr, "corona-demo-corona: --runs needs a number from 1 to 1000\n");
                return 2;
            }
        } else {
            fprintf(stderr, "usage: corona-demo-corona [--runs N] [--quick]\n");
            return 2;
        }
    }
    static alloc_api corona_api = {"corona", corona_malloc, corona_free, corona_realloc};
    alloc_api *volatile table = &corona_api; /* nothing known at compile time */
    const alloc_api *api = table;

    prepare(quick);
    double *wall = xmalloc(NUM_WORKLOADS * (size_t)runs * sizeof(double));
    double *cpu = xmalloc(NUM_WORKLOADS * (size_t)runs * sizeof(double));
    uint64_t ref[NUM_WORKLOADS];
    for (size_t w = 0; w < NUM_WORKLOADS; w++)
        ref[w] = workloads[w].run(api); /* warm-up */
    for (long r = 0; r < runs; r++) {
        for (size_t w = 0; w < NUM_WORKLOADS; w++) {
            double c0 = cpu_seconds(), t0 = now_seconds();
            uint64_t sum = workloads[w].run(api);
            double t1 = now_seconds(), c1 = cpu_seconds();
            if (sum != ref[w]) {
                fprintf(stderr, "corona-demo-corona: CHECKSUM MISMATCH in '%s' (run %ld)\n", workloads[w].name,
                        r + 1);
                return 1;
            }
            wall[w * (size_t)runs + (size_t)r] = (t1 - t0) * 1e3;
            cpu[w * (size_t)runs + (size_t)r] = (c1 - c0) * 1e3;
        }
    }
    for (size_t w = 0; w < NUM_WORKLOADS; w++) {
        double *wv = wall + w * (size_t)runs, *cv = cpu + w * (size_t)runs;
        double mw = median(wv, (size_t)runs), mc = median(cv, (size_t)runs); /* sorts */
        printf("%s|%.3f|%.3f|%.3f|%.3f|%#llx\n", workloads[w].name, wv[0], mw, cv[0], mc,
               (unsigned long long)ref[w]);
    }
    free(wall);
    free(cpu);
    return 0;
}
