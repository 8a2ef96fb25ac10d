/* demo.c — corona's main demo: corona and the system malloc side by side in
 * ONE process, running the very same workload code (demo_workloads.c) through
 * two tables of function pointers (corona_malloc/corona_free/corona_realloc
 * against malloc/free/realloc).  This file is the driver: the command line,
 * the machine description, the timing loop and the table it prints.  Runs
 * alternate between the two allocators, each workload is repeated --reps
 * times (default 7) after one warm-up run per allocator, and the median wall
 * time of each is reported together with the ratio system/corona.  Every
 * workload returns a checksum that must be the same under both allocators;
 * a mismatch is an error (exit status 1).
 *
 * Usage: corona-demo [--reps N] [--quick] [--only TEXT] [--help] */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <math.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef __GLIBC__
#include <gnu/libc-version.h>
#endif

#include "corona.h"
#include "demo.h"

/* ---- the two allocators ------------------------------------------------ */

/* alloc_api: benchutil.h */

static alloc_api apis[2]; /* [0] corona, [1] system; filled in main() */

/* ---- the machine -------------------------------------------------------- */

static int cpu_count(void)
{
#ifdef CPU_COUNT
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0)
        return CPU_COUNT(&set);
#endif
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

static void cpu_model(char *out, size_t outsz)
{
    snprintf(out, outsz, "unknown CPU");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f)
        return;
    char line[512];
    const char *keys[] = {"model name", "Model", "Hardware", "cpu model", "Processor"};
    int best = (int)(sizeof keys / sizeof keys[0]);
    while (fgets(line, sizeof line, f)) {
        for (int k = 0; k < best; k++) {
            size_t kl = strlen(keys[k]);
            if (strncmp(line, keys[k], kl) != 0)
                continue;
            const char *colon = strchr(line + kl, ':');
            if (!colon)
                continue;
            const char *v = colon + 1;
            while (*v == ' ' || *v == '\t')
                v++;
            snprintf(out, outsz, "%s", v);
            out[strcspn(out, "\n")] = '\0';
            best = k; /* keep looking only for a better key */
            break;
        }
        if (best == 0)
            break;
    }
    fclose(f);
}

/* ---- the command line and the runs -------------------------------------- */

static void usage(FILE *to)
{
    fprintf(to,
            "usage: corona-demo [--reps N] [--quick] [--only TEXT] [--help]\n"
            "  Runs the same workloads under corona and under the system malloc in one\n"
            "  process, alternating between them, and prints the median times.\n"
            "  --reps N   timed runs per allocator and workload (default 7; 3 with --quick)\n"
            "  --quick    smaller workloads and fewer runs (a smoke test)\n"
            "  --only T   run only the workloads whose name contains T\n");
}

int main(int argc, char **argv)
{
    int quick = 0;
    long reps = -1;
    const char *only = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) {
            quick = 1;
        } else if (strcmp(argv[i], "--reps") == 0 || strncmp(argv[i], "--reps=", 7) == 0) {
            const char *v = argv[i][6] == '=' ? argv[i] + 7 : (i + 1 < argc ? argv[++i] : NULL);
            char *endp = NULL;
            errno = 0;
            reps = v ? strtol(v, &endp, 10) : 0;
            if (!v || *v == '\0' || *endp != '\0' || errno || reps < 1 || reps > 1000) {
                fprintf(stderr, "corona-demo: --reps needs a number from 1 to 1000\n");
                return 2;
            }
        } else if (strcmp(argv[i], "--only") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "corona-demo: --only needs a text\n");
                return 2;
            }
            only = argv[++i];
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "corona-demo: unknown argument '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    if (reps < 0)
        reps = quick ? 3 : 7;

    const char *sysname = "glibc";
    char sysversion[64] = "";
#ifdef __GLIBC__
    snprintf(sysversion, sizeof sysversion, " %s", gnu_get_libc_version());
#else
    sysname = "libc";
#endif
    apis[0] = (alloc_api){"corona", corona_malloc, corona_free, corona_realloc};
    apis[1] = libc_api(sysname);
    /* Read the tables through a volatile pointer, so nothing about them is
     * known at compile time. */
    alloc_api *volatile table = apis;
    const alloc_api *api[2] = {&table[0], &table[1]};

    if (only) {
        size_t w = 0;
        while (w < NUM_WORKLOADS && !strstr(workloads[w].name, only))
            w++;
        if (w == NUM_WORKLOADS) {
            fprintf(stderr, "corona-demo: no workload name contains '%s'\n", only);
            return 2;
        }
    }

    char model[256];
    cpu_model(model, sizeof model);
    printf("corona-demo: corona %d.%d vs system malloc (%s%s), one process, same code\n",
           CORONA_VERSION_MAJOR, CORONA_VERSION_MINOR, sysname, sysversion);
    printf("machine: %d CPUs (nproc), %s\n", cpu_count(), model);
    printf("runs: %ld timed per allocator and workload, alternating, after 1 warm-up each%s\n\n",
           reps, quick ? " (--quick: smaller workloads)" : "");
    fflush(stdout);

    prepare(quick);

    char ratio_head[32];
    snprintf(ratio_head, sizeof ratio_head, "%s/corona", sysname);
    printf("%-30s %12s %12s   %s\n", "workload (median of runs)", "corona", sysname,
           ratio_head);
    printf("%-30s %12s %12s   %s\n", "------------------------------", "------------",
           "------------", "------------------");
    fflush(stdout);

    double *t[2];
    t[0] = xmalloc((size_t)reps * sizeof(double));
    t[1] = xmalloc((size_t)reps * sizeof(double));
    double log_ratio_sum = 0;
    int ran = 0;
    for (size_t w = 0; w < NUM_WORKLOADS; w++) {
        const workload *wl = &workloads[w];
        if (only && !strstr(wl->name, only))
            continue;
        ran++;
        /* Warm-up, once each; also gives the reference checksum. */
        uint64_t ref = wl->run(api[0]);
        uint64_t sys = wl->run(api[1]);
        if (ref != sys) {
            fprintf(stderr,
                    "corona-demo: CHECKSUM MISMATCH in '%s': corona %#llx, %s %#llx\n",
                    wl->name, (unsigned long long)ref, sysname, (unsigned long long)sys);
            return 1;
        }
        for (long r = 0; r < reps; r++) {
            /* Alternate who goes first (c s s c c s ...) so drift and
             * "the other allocator just ran" effects hit both alike. */
            for (int k = 0; k < 2; k++) {
                int which = (int)((r + k) & 1);
                double t0 = now_seconds();
                uint64_t sum = wl->run(api[which]);
                double t1 = now_seconds();
                t[which][r] = t1 - t0;
                if (sum != ref) {
                    fprintf(stderr,
                            "corona-demo: CHECKSUM MISMATCH in '%s' (run %ld, %s): %#llx, expected %#llx\n",
                            wl->name, r + 1, api[which]->name, (unsigned long long)sum,
                            (unsigned long long)ref);
                    return 1;
                }
            }
        }
        double mc = median(t[0], (size_t)reps) * 1e3;
        double ms = median(t[1], (size_t)reps) * 1e3;
        double ratio = ms / mc;
        double shown = floor(ratio * 100.0 + 0.5) / 100.0; /* as printed */
        log_ratio_sum += log(ratio);
        printf("%-30s %9.1f ms %9.1f ms   %5.2fx %s\n", wl->name, mc, ms, ratio,
               shown > 1.02 ? "faster" : shown >= 0.98 ? "(about the same)" : "(corona slower)");
        fflush(stdout);
    }
    double gm = exp(log_ratio_sum / ran);
    printf("\nratio = %s time / corona time; geometric mean over the workloads: %.2fx\n",
           sysname, gm);
    printf("checksums: all workloads gave the same result under both allocators\n");
    free(t[0]);
    free(t[1]);
    return 0;
}
