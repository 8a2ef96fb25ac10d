/* consumer.c — a program built against an installed corona (through
 * pkg-config or find_package) by test_install.sh.  It uses the corona_* API
 * and plain malloc/calloc/realloc/free, checks the contents, and reports
 * which loaded object serves malloc.  With --expect-corona it fails unless
 * that object is libcorona.so (the drop-in override), with --expect-self
 * unless it is the program itself (corona linked in statically); --maps
 * prints the lines of /proc/self/maps that name libcorona. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <corona.h>

static int failures;

static void check(int ok, const char *what) {
    if (!ok) {
        fprintf(stderr, "consumer: FAILED: %s\n", what);
        failures++;
    }
}

static void fill(unsigned char *p, size_t n, unsigned seed) {
    for (size_t i = 0; i < n; i++) p[i] = (unsigned char)(i * 31u + seed);
}

static int filled(const unsigned char *p, size_t n, unsigned seed) {
    for (size_t i = 0; i < n; i++)
        if (p[i] != (unsigned char)(i * 31u + seed)) return 0;
    return 1;
}

static void use_corona_api(void) {
    unsigned char *p = corona_malloc(100);
    check(p != NULL && ((uintptr_t)p & 15) == 0, "corona_malloc(100)");
    if (p == NULL) return;
    check(corona_usable_size(p) >= 100, "corona_usable_size");
    fill(p, 100, 1);
    p = corona_realloc(p, 100000);
    check(p != NULL && filled(p, 100, 1), "corona_realloc keeps contents");
    corona_free(p);

    void *a = corona_aligned_malloc(1000, 4096);
    check(a != NULL && ((uintptr_t)a & 4095) == 0, "corona_aligned_malloc");
    corona_free(a);

    int *z = corona_calloc(1000, sizeof *z);
    int zero = z != NULL;
    for (int i = 0; zero && i < 1000; i++) zero = z[i] == 0;
    check(zero, "corona_calloc zeroes");
    corona_free(z);

    void *m = NULL;
    check(corona_posix_memalign(&m, 64, 200) == 0 && ((uintptr_t)m & 63) == 0,
          "corona_posix_memalign");
    corona_free(m);
    corona_collect();
    check(corona_allocation_command(CORONA_CLEAN_ALL_BUFFERS, NULL) == 0,
          "corona_allocation_command");
}

static void use_plain_malloc(void) {
    enum { N = 1000 };
    unsigned char *v[N];
    for (int i = 0; i < N; i++) {
        size_t n = (size_t)(i % 50) * 37 + 1;
        v[i] = malloc(n);
        check(v[i] != NULL, "malloc");
        if (v[i] != NULL) fill(v[i], n, (unsigned)i);
    }
    for (int i = 0; i < N; i++) {
        size_t n = (size_t)(i % 50) * 37 + 1;
        if (v[i] == NULL) continue;
        check(filled(v[i], n, (unsigned)i), "malloc contents");
        unsigned char *q = realloc(v[i], n * 3);
        check(q != NULL && filled(q, n, (unsigned)i), "realloc keeps contents");
        free(q != NULL ? q : v[i]);
    }
    char *s = calloc(64, 1);
    check(s != NULL && s[63] == 0, "calloc");
    if (s != NULL) {
        strcpy(s, "corona");
        char *t = strdup(s); /* allocated inside libc */
        check(t != NULL && strcmp(t, "corona") == 0, "strdup");
        free(t);
    }
    free(s);
}

/* The object that a global lookup of malloc finds: the one every malloc
 * call in the process binds to.  *self: whether that is the program. */
static const char *malloc_provider(int *self) {
    void *sym = dlsym(RTLD_DEFAULT, "malloc");
    Dl_info info, main_info;
    *self = 0;
    if (sym == NULL || dladdr(sym, &info) == 0 || info.dli_fname == NULL) return "?";
    /* failures lives in the program, so its object is the program's */
    if (dladdr(&failures, &main_info) != 0 && main_info.dli_fbase == info.dli_fbase) {
        *self = 1;
        return "the program itself";
    }
    return info.dli_fname;
}

static void print_maps(void) {
    FILE *f = fopen("/proc/self/maps", "r");
    char line[4096];
    if (f == NULL) return;
    while (fgets(line, sizeof line, f) != NULL)
        if (strstr(line, "libcorona") != NULL) fputs(line, stdout);
    fclose(f);
}

int main(int argc, char **argv) {
    int expect_corona = 0, expect_self = 0, maps = 0, self;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--expect-corona") == 0) expect_corona = 1;
        else if (strcmp(argv[i], "--expect-self") == 0) expect_self = 1;
        else if (strcmp(argv[i], "--maps") == 0) maps = 1;
        else {
            fprintf(stderr, "usage: consumer [--expect-corona | --expect-self] [--maps]\n");
            return 2;
        }
    }
    use_corona_api();
    use_plain_malloc();
    const char *provider = malloc_provider(&self);
    printf("consumer: malloc is served by %s\n", provider);
    if (expect_corona) check(strstr(provider, "libcorona") != NULL, "malloc served by libcorona");
    if (expect_self) check(self, "malloc served by the program (static corona)");
    if (maps) print_maps();
    if (failures != 0) return 1;
    printf("consumer: ok\n");
    return 0;
}
