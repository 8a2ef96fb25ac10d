/* large.c — corona-large, the large-object benchmark: ONE workload under ONE
 * allocator per process, so the peak RSS that getrusage reports belongs to
 * that allocator alone.  scripts/bench-large runs it for every workload and
 * allocator, interleaved, and builds the tables in bench/results/.
 *
 * Allocators (the second argument):
 *   corona     corona_malloc/corona_free/corona_realloc (linked statically)
 *   glibc      the C library's malloc/free/realloc
 *   mimalloc   libmimalloc.so.2          mi_malloc/mi_free/mi_realloc
 *   jemalloc   libjemalloc.so.2          malloc/free/realloc (je_* if that is
 *                                        all the library exports)
 *   tcmalloc   libtcmalloc_minimal.so.4  tc_malloc/tc_free/tc_realloc
 *   tbbmalloc  libtbbmalloc.so.2         scalable_malloc/_free/_realloc
 * A peer is loaded with dlopen(RTLD_NOW | RTLD_LOCAL), so it does not replace
 * the process's malloc; each symbol must be defined by that very library
 * (checked with dladdr), not by a dependency such as libc.
 *
 * Workloads (the first argument), all single-threaded, fixed seeds:
 *   large-churn   16 live slots, random replace; sizes 8 KB .. 4 MB,
 *                 log-uniform by octave; each new object gets a write in
 *                 every 4 KB page, its first and last bytes are checked
 *                 before it is freed.
 *   big-buffers   buffers of 8 .. 48 MB, at most 2 live: allocate, write
 *                 every page, check, free.  Punishes giving memory back to
 *                 the OS too eagerly (every page faults again).
 *   realloc-grow  a buffer grown from 16 KB to 64 MB by appends of 64 KB ..
 *                 4 MB, each through realloc to the exact new length, then
 *                 freed; repeated.
 * Every workload sums bytes it reads back (and aborts if one is not what it
 * wrote), so the checksum is the same under every allocator.
 *
 * Output: one line on stdout,
 *   workload=W alloc=A wall_ms=F cpu_ms=F maxrss_kb=N checksum=HEX minflt=N
 * wall and user+sys time and minor page faults cover the workload only;
 * maxrss_kb is the whole process's peak (ru_maxrss).  Errors go to stderr.
 *
 * Static TLS: Debian's libjemalloc.so.2 is linked with initial-exec TLS
 * (DF_STATIC_TLS, about 2.6 KB), more than glibc keeps spare for dlopen, so
 * dlopen fails with "cannot allocate memory in static TLS block".  The
 * program therefore re-executes itself once at start with
 * GLIBC_TUNABLES=glibc.rtld.optional_static_tls=16384 added, for EVERY
 * allocator alike, so all of them run under the same conditions.
 *
 * Usage: corona-large WORKLOAD ALLOCATOR [--quick]
 *        corona-large --list      (the allocators that load here, one a line)
 *        corona-large --help */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <link.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#ifdef __GLIBC__
#include <gnu/libc-version.h>
#endif

#include "benchutil.h"
#include "corona.h"

/* ---- small helpers ----------------------------------------------------- */


#define PAGE 4096u
#define KB ((size_t)1024)
#define MB (KB * 1024)

/* Log-uniform by octave in [lo, lo << octaves): an octave is picked
 * uniformly, then a size uniformly inside it.  Integer-only, so the sizes are
 * the same everywhere. */
static size_t rng_octaves(size_t lo, unsigned octaves)
{
    size_t base = lo << (rng_next() % octaves);
    return base + (size_t)(rng_next() % base);
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

static double tv_ms(struct timeval tv)
{
    return (double)tv.tv_sec * 1e3 + (double)tv.tv_usec * 1e-3;
}

/* ---- allocators --------------------------------------------------------- */

/* alloc_api: benchutil.h */

typedef struct peer {
    const char *name, *soname;
    /* Candidate symbol names, tried in order; NULL-terminated prefixes. */
    const char *prefixes[3];
} peer;

static const peer peers[] = {
    {"mimalloc", "libmimalloc.so.2", {"mi_", NULL, NULL}},
    {"jemalloc", "libjemalloc.so.2", {"", "je_", NULL}},
    {"tcmalloc", "libtcmalloc_minimal.so.4", {"tc_", NULL, NULL}},
    {"tbbmalloc", "libtbbmalloc.so.2", {"scalable_", NULL, NULL}},
};
#define NUM_PEERS (sizeof peers / sizeof peers[0])

/* The symbol NAME as defined by the library at HANDLE itself (whose path is
 * LIBPATH), or NULL.  dlsym on a handle also searches the library's
 * dependencies, so a library without its own "malloc" would hand back
 * libc's; dladdr tells which object really defines the address. */
static void *own_symbol(void *handle, const char *libpath, const char *name)
{
    void *sym = dlsym(handle, name);
    if (!sym)
        return NULL;
    Dl_info info;
    if (!dladdr(sym, &info) || !info.dli_fname || strcmp(info.dli_fname, libpath) != 0)
        return NULL;
    return sym;
}

/* Fills *api for a peer; 0 on success, else -1 with a reason in why. */
static int load_peer(const peer *pr, alloc_api *api, char *why, size_t whysz, char *path,
                     size_t pathsz, char *syms, size_t symsz)
{
    void *h = dlopen(pr->soname, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *e = dlerror();
        snprintf(why, whysz, "%s", e ? e : "dlopen failed");
        return -1;
    }
    struct link_map *lm = NULL;
    if (dlinfo(h, RTLD_DI_LINKMAP, &lm) != 0 || !lm || !lm->l_name) {
        snprintf(why, whysz, "dlinfo failed for %s", pr->soname);
        return -1;
    }
    snprintf(path, pathsz, "%s", lm->l_name);
    for (int k = 0; k < 3 && pr->prefixes[k]; k++) {
        char m[64], f[64], r[64];
        snprintf(m, sizeof m, "%smalloc", pr->prefixes[k]);
        snprintf(f, sizeof f, "%sfree", pr->prefixes[k]);
        snprintf(r, sizeof r, "%srealloc", pr->prefixes[k]);
        void *pm = own_symbol(h, path, m), *pf = own_symbol(h, path, f),
             *pr2 = own_symbol(h, path, r);
        if (pm && pf && pr2) {
            api->name = pr->name;
            /* POSIX guarantees object <-> function pointer conversion via
             * dlsym; go through memcpy to stay clean under -Wpedantic. */
            memcpy(&api->malloc_fn, &pm, sizeof pm);
            memcpy(&api->free_fn, &pf, sizeof pf);
            memcpy(&api->realloc_fn, &pr2, sizeof pr2);
            snprintf(syms, symsz, "%s/%s/%s", m, f, r);
            return 0;
        }
    }
    snprintf(why, whysz, "%.400s defines no malloc/free/realloc of its own", path);
    return -1;
}

/* Sets *api for NAME; 0 on success, 1 for an unknown name, 2 when the peer
 * cannot be loaded (reason printed to stderr unless quiet). */
static int select_allocator(const char *name, alloc_api *api, char *desc, size_t descsz,
                            int quiet)
{
    if (strcmp(name, "corona") == 0) {
        *api = (alloc_api){"corona", corona_malloc, corona_free, corona_realloc};
        snprintf(desc, descsz, "corona %d.%d (static, corona_malloc/corona_free/corona_realloc)",
                 CORONA_VERSION_MAJOR, CORONA_VERSION_MINOR);
        return 0;
    }
    if (strcmp(name, "glibc") == 0) {
        *api = libc_api("glibc");
#ifdef __GLIBC__
        snprintf(desc, descsz, "glibc %s (malloc/free/realloc)", gnu_get_libc_version());
#else
        snprintf(desc, descsz, "system libc (malloc/free/realloc)");
#endif
        return 0;
    }
    for (size_t i = 0; i < NUM_PEERS; i++) {
        if (strcmp(name, peers[i].name) != 0)
            continue;
        char why[512], path[512], syms[256];
        if (load_peer(&peers[i], api, why, sizeof why, path, sizeof path, syms, sizeof syms)) {
            if (!quiet)
                fprintf(stderr, "corona-large: %s unavailable: %s\n", name, why);
            return 2;
        }
        snprintf(desc, descsz, "%s (%s)", path, syms);
        return 0;
    }
    return 1;
}

NORETURN COLD static void out_of_memory(const alloc_api *a, size_t size)
{
    fprintf(stderr, "corona-large: %s returned NULL for %zu bytes\n", a->name, size);
    exit(1);
}

NORETURN COLD static void corrupted(const alloc_api *a, const char *what, size_t at,
                                    unsigned got, unsigned want)
{
    fprintf(stderr, "corona-large: %s: %s: byte %zu is %#x, expected %#x\n", a->name, what, at,
            got, want);
    exit(1);
}

/* The byte written at page PG of object ID (and read back later). */
static inline unsigned char tag(uint64_t id, size_t pg)
{
    return (unsigned char)(id * 0x9dull + pg * 0x3bull + 1);
}

/* Writes one byte in every page of p[0..n) and the last byte. */
static inline void fill_pages(unsigned char *p, size_t n, uint64_t id)
{
    for (size_t off = 0; off < n; off += PAGE)
        p[off] = tag(id, off / PAGE);
    p[n - 1] = tag(id, ~(size_t)0);
}

/* ---- parameters ---------------------------------------------------------- */

static struct {
    size_t churn_ops;   /* large-churn: replacements */
    size_t big_rounds;  /* big-buffers: buffers allocated */
    size_t grow_cycles; /* realloc-grow: 16 KB -> 64 MB cycles */
} par;

static void set_params(int quick)
{
    /* Full sizes are tuned so glibc 2.36 takes roughly 0.4 .. 1 s per
     * workload on a 2-core AMD EPYC VM; --quick is about a quarter. */
    par.churn_ops = quick ? 5000 : 20000;
    par.big_rounds = quick ? 50 : 200;
    par.grow_cycles = quick ? 3 : 12;
}

/* ---- 1. large-churn -------------------------------------------------------- */

#define CHURN_SLOTS 16

NOINLINE static uint64_t run_large_churn(const alloc_api *a)
{
    unsigned char *slot[CHURN_SLOTS] = {0};
    size_t size[CHURN_SLOTS] = {0};
    uint64_t id[CHURN_SLOTS] = {0};
    uint64_t sum = 0;
    rng_seed(0x1a29e0c0ffee0001ull);
    for (size_t op = 0; op < par.churn_ops + CHURN_SLOTS; op++) {
        /* The first CHURN_SLOTS operations fill the slots in order. */
        size_t j = op < CHURN_SLOTS ? op : (size_t)(rng_next() % CHURN_SLOTS);
        unsigned char *p = slot[j];
        if (p) {
            size_t n = size[j];
            unsigned want0 = tag(id[j], 0), want1 = tag(id[j], ~(size_t)0);
            if (p[0] != want0)
                corrupted(a, "large-churn", 0, p[0], want0);
            if (p[n - 1] != want1)
                corrupted(a, "large-churn", n - 1, p[n - 1], want1);
            sum += (uint64_t)p[0] * 31 + p[n - 1] + n;
            a->free_fn(p);
        }
        size_t n = rng_octaves(8 * KB, 9); /* 8 KB .. 4 MB */
        p = a->malloc_fn(n);
        if (!p)
            out_of_memory(a, n);
        fill_pages(p, n, op);
        TOUCHED(p);
        slot[j] = p;
        size[j] = n;
        id[j] = op;
    }
    for (size_t j = 0; j < CHURN_SLOTS; j++) {
        sum += slot[j][0] + slot[j][size[j] - 1];
        a->free_fn(slot[j]);
    }
    return sum;
}

/* ---- 2. big-buffers -------------------------------------------------------- */

NOINLINE static uint64_t run_big_buffers(const alloc_api *a)
{
    unsigned char *slot[2] = {0};
    size_t size[2] = {0};
    uint64_t sum = 0;
    rng_seed(0xb16b0ffe20000002ull);
    for (size_t r = 0; r < par.big_rounds + 2; r++) {
        size_t j = r & 1;
        unsigned char *p = slot[j];
        if (p) {
            /* Read every page back: the buffer was really used. */
            size_t n = size[j];
            uint64_t rid = r - 2;
            for (size_t off = 0; off < n; off += PAGE) {
                unsigned want = tag(rid, off / PAGE);
                if (p[off] != want)
                    corrupted(a, "big-buffers", off, p[off], want);
                sum += p[off];
            }
            sum += p[n - 1];
            a->free_fn(p);
            slot[j] = NULL;
        }
        if (r >= par.big_rounds)
            continue; /* the last two rounds only free */
        size_t n = rng_range(8 * MB, 48 * MB);
        p = a->malloc_fn(n);
        if (!p)
            out_of_memory(a, n);
        fill_pages(p, n, r);
        TOUCHED(p);
        slot[j] = p;
        size[j] = n;
    }
    return sum;
}

/* ---- 3. realloc-grow ------------------------------------------------------- */

NOINLINE static uint64_t run_realloc_grow(const alloc_api *a)
{
    const size_t start = 16 * KB, limit = 64 * MB;
    uint64_t sum = 0;
    rng_seed(0x9e0a11c0c0de0003ull);
    for (size_t c = 0; c < par.grow_cycles; c++) {
        unsigned char *p = a->malloc_fn(start);
        if (!p)
            out_of_memory(a, start);
        unsigned char fillbyte = (unsigned char)(c * 7 + 1);
        memset(p, fillbyte, start);
        size_t len = start;
        unsigned nappend = 0;
        while (len < limit) {
            size_t add = rng_octaves(64 * KB, 6); /* 64 KB .. 4 MB */
            if (add > limit - len)
                add = limit - len;
            unsigned char last = p[len - 1];
            unsigned char *q = a->realloc_fn(p, len + add);
            if (!q)
                out_of_memory(a, len + add);
            p = q;
            /* realloc must have kept the contents: check both ends. */
            if (p[0] != (unsigned char)(c * 7 + 1))
                corrupted(a, "realloc-grow", 0, p[0], (unsigned char)(c * 7 + 1));
            if (p[len - 1] != last)
                corrupted(a, "realloc-grow", len - 1, p[len - 1], last);
            sum += p[len - 1];
            fillbyte = (unsigned char)(fillbyte + 13);
            memset(p + len, fillbyte, add); /* the append */
            len += add;
            nappend++;
        }
        TOUCHED(p);
        for (size_t off = 0; off < len; off += PAGE) /* read the result back */
            sum += p[off];
        sum += p[len - 1] + nappend;
        a->free_fn(p);
    }
    return sum;
}

/* ---- driver --------------------------------------------------------------- */

typedef struct workload {
    const char *name;
    uint64_t (*run)(const alloc_api *);
    const char *what;
} workload;

static const workload workloads[] = {
    {"large-churn", run_large_churn, "16 live, 8 KB..4 MB, random replace"},
    {"big-buffers", run_big_buffers, "8..48 MB buffers, at most 2 live"},
    {"realloc-grow", run_realloc_grow, "16 KB -> 64 MB by realloc appends"},
};
#define NUM_WORKLOADS (sizeof workloads / sizeof workloads[0])

static void usage(FILE *to)
{
    fprintf(to, "usage: corona-large WORKLOAD ALLOCATOR [--quick]\n"
                "       corona-large --list\n"
                "  Runs one workload under one allocator and prints one line:\n"
                "  workload= alloc= wall_ms= cpu_ms= maxrss_kb= checksum= minflt=\n"
                "  --quick  fewer operations (a smoke test)\n"
                "  --list   print the allocators that load on this machine\n"
                "workloads:\n");
    for (size_t w = 0; w < NUM_WORKLOADS; w++)
        fprintf(to, "  %-13s %s\n", workloads[w].name, workloads[w].what);
    fprintf(to, "allocators: corona glibc");
    for (size_t i = 0; i < NUM_PEERS; i++)
        fprintf(to, " %s", peers[i].name);
    fprintf(to, "\n");
}

static int list_allocators(void)
{
    static const char *names[2 + NUM_PEERS];
    names[0] = "corona";
    names[1] = "glibc";
    for (size_t i = 0; i < NUM_PEERS; i++)
        names[2 + i] = peers[i].name;
    for (size_t i = 0; i < 2 + NUM_PEERS; i++) {
        alloc_api api;
        char desc[1024];
        if (select_allocator(names[i], &api, desc, sizeof desc, 1) == 0)
            printf("%s %s\n", names[i], desc);
    }
    return 0;
}

/* Re-executes the program with more static TLS spare for dlopen (see the
 * header comment); returns only if that is not needed or not possible. */
#define STATIC_TLS_TUNABLE "glibc.rtld.optional_static_tls=16384"
static void reexec_with_static_tls(char **argv)
{
#ifdef __GLIBC__
    const char *old = getenv("GLIBC_TUNABLES");
    if (getenv("CRBENCH_REEXEC") || (old && strstr(old, "optional_static_tls")))
        return;
    char buf[1024];
    if (old && *old)
        snprintf(buf, sizeof buf, "%s:%s", old, STATIC_TLS_TUNABLE);
    else
        snprintf(buf, sizeof buf, "%s", STATIC_TLS_TUNABLE);
    if (setenv("GLIBC_TUNABLES", buf, 1) != 0 || setenv("CRBENCH_REEXEC", "1", 1) != 0)
        return;
    fflush(NULL);
    execv("/proc/self/exe", argv);
    /* exec failed: go on without; jemalloc may then be unavailable. */
#else
    (void)argv;
#endif
}

int main(int argc, char **argv)
{
    reexec_with_static_tls(argv);
    int quick = 0;
    const char *pos[2] = {NULL, NULL};
    int npos = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) {
            quick = 1;
        } else if (strcmp(argv[i], "--list") == 0) {
            return list_allocators();
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (argv[i][0] != '-' && npos < 2) {
            pos[npos++] = argv[i];
        } else {
            fprintf(stderr, "corona-large: unexpected argument '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    if (npos != 2) {
        usage(stderr);
        return 2;
    }
    const workload *wl = NULL;
    for (size_t w = 0; w < NUM_WORKLOADS; w++)
        if (strcmp(pos[0], workloads[w].name) == 0)
            wl = &workloads[w];
    if (!wl) {
        fprintf(stderr, "corona-large: unknown workload '%s'\n", pos[0]);
        usage(stderr);
        return 2;
    }
    static alloc_api api_store;
    char desc[1024];
    int rc = select_allocator(pos[1], &api_store, desc, sizeof desc, 0);
    if (rc == 1) {
        fprintf(stderr, "corona-large: unknown allocator '%s'\n", pos[1]);
        usage(stderr);
        return 2;
    }
    if (rc != 0)
        return 3; /* peer not available here */
    set_params(quick);

    /* Call through a volatile pointer so nothing about the allocator is
     * known at compile time. */
    alloc_api *volatile table = &api_store;
    const alloc_api *api = table;

    struct rusage r0, r1;
    getrusage(RUSAGE_SELF, &r0);
    double t0 = now_ms();
    uint64_t sum = wl->run(api);
    double t1 = now_ms();
    getrusage(RUSAGE_SELF, &r1);

    double cpu = tv_ms(r1.ru_utime) - tv_ms(r0.ru_utime) + tv_ms(r1.ru_stime) - tv_ms(r0.ru_stime);
    printf("workload=%s alloc=%s wall_ms=%.3f cpu_ms=%.3f maxrss_kb=%ld checksum=%016llx "
           "minflt=%ld\n",
           wl->name, api->name, t1 - t0, cpu, r1.ru_maxrss, (unsigned long long)sum,
           r1.ru_minflt - r0.ru_minflt);
    return 0;
}
