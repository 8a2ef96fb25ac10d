/* demo_workloads.c — the workloads of the demo (demo.c, demo_corona.c): pairs,
 * bursts, producer/consumer and word count, each written once against an
 * alloc_api table so that every allocator runs the very same code, and
 * prepare(), which makes all their random inputs up front with a fixed seed
 * (so the timed runs do no bookkeeping and every allocator sees the same
 * sizes and orders).  Each workload returns a checksum that depends only on
 * its inputs, never on the allocator. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "demo.h"

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __asm__ volatile("pause");
#elif defined(__aarch64__)
    __asm__ volatile("yield");
#endif
}

NORETURN COLD static void out_of_memory(const alloc_api *a, size_t size)
{
    fprintf(stderr, "corona-demo: %s returned NULL for %zu bytes\n", a->name, size);
    exit(1);
}

/* ---- workload parameters (set by prepare(), used read-only) ------------- */

#define PAIR_SIZES 65536 /* power of two: cycled with a mask */
#define PC_SIZES 65536
#define BURST_PATTERNS 4
#define RING_CAP 1024 /* power of two */

static struct {
    /* pairs */
    size_t pairs_n;
    uint16_t *pair_sizes;
    /* bursts */
    size_t burst_n, burst_rounds;
    uint16_t *burst_sizes;  /* BURST_PATTERNS * burst_n */
    uint32_t *burst_order;  /* BURST_PATTERNS * burst_n, each a permutation */
    unsigned char **burst_live;
    /* producer/consumer */
    size_t pc_n;
    uint16_t *pc_sizes;
    /* word count */
    char *text;
    size_t text_len, text_tokens, vocab_n;
} g;

/* ---- a. pairs: allocate and free at once ------------------------------- */

NOINLINE static uint64_t run_pairs_random(const alloc_api *a)
{
    const uint16_t *sizes = g.pair_sizes;
    uint64_t sum = 0;
    for (size_t i = 0; i < g.pairs_n; i++) {
        size_t sz = sizes[i & (PAIR_SIZES - 1)];
        unsigned char *p = a->malloc_fn(sz);
        if (!p)
            out_of_memory(a, sz);
        p[0] = (unsigned char)i;
        p[sz - 1] = (unsigned char)(i >> 8);
        TOUCHED(p);
        sum += (uint64_t)p[0] + p[sz - 1];
        a->free_fn(p);
    }
    return sum;
}

NOINLINE static uint64_t run_pairs_64(const alloc_api *a)
{
    uint64_t sum = 0;
    for (size_t i = 0; i < g.pairs_n; i++) {
        uint64_t *p = a->malloc_fn(64);
        if (!p)
            out_of_memory(a, 64);
        p[0] = i;
        p[7] = i ^ 0xff;
        TOUCHED(p);
        sum += p[0] + p[7];
        a->free_fn(p);
    }
    return sum;
}

/* ---- b. bursts: many live objects, freed in shuffled order -------------- */

NOINLINE static uint64_t run_bursts(const alloc_api *a)
{
    const size_t n = g.burst_n;
    unsigned char **live = g.burst_live;
    uint64_t sum = 0;
    for (size_t r = 0; r < g.burst_rounds; r++) {
        const uint16_t *sizes = g.burst_sizes + (r % BURST_PATTERNS) * n;
        const uint32_t *order = g.burst_order + (r % BURST_PATTERNS) * n;
        for (size_t i = 0; i < n; i++) {
            size_t sz = sizes[i];
            unsigned char *p = a->malloc_fn(sz);
            if (!p)
                out_of_memory(a, sz);
            for (size_t off = 0; off < sz; off += 4096) /* every page */
                p[off] = (unsigned char)(i + off);
            p[sz - 1] = (unsigned char)r;
            live[i] = p;
        }
        TOUCHED(live);
        for (size_t i = 0; i < n; i++) {
            uint32_t j = order[i];
            unsigned char *p = live[j];
            sum += (uint64_t)p[0] + p[sizes[j] - 1];
            a->free_fn(p);
        }
    }
    return sum;
}

/* ---- c. producer/consumer through a lock-free SPSC ring ---------------- */

typedef struct spsc_ring {
    _Alignas(64) atomic_size_t head; /* next slot to read; written by the consumer */
    _Alignas(64) atomic_size_t tail; /* next slot to write; written by the producer */
    _Alignas(64) void *slot[RING_CAP];
} spsc_ring;

typedef struct pc_arg {
    const alloc_api *a;
    spsc_ring *ring;
    uint64_t sum; /* consumer's checksum */
} pc_arg;

static spsc_ring ring;

/* Spin a little, then give the core away (the machine may be shared). */
static inline void backoff(unsigned *spins)
{
    if (++*spins < 1024) {
        cpu_relax();
    } else {
        sched_yield();
        *spins = 0;
    }
}

static void *producer_main(void *arg)
{
    pc_arg *pa = arg;
    const alloc_api *a = pa->a;
    spsc_ring *r = pa->ring;
    const uint16_t *sizes = g.pc_sizes;
    size_t tail = 0, head_seen = 0;
    for (size_t i = 0; i < g.pc_n; i++) {
        size_t sz = sizes[i & (PC_SIZES - 1)];
        uint64_t *p = a->malloc_fn(sz);
        if (!p)
            out_of_memory(a, sz);
        p[0] = (uint64_t)i * 0x9e3779b97f4a7c15ull;
        p[1] = sz;
        unsigned spins = 0;
        while (tail - head_seen == RING_CAP) {
            head_seen = atomic_load_explicit(&r->head, memory_order_acquire);
            if (tail - head_seen == RING_CAP)
                backoff(&spins);
        }
        r->slot[tail & (RING_CAP - 1)] = p;
        atomic_store_explicit(&r->tail, ++tail, memory_order_release);
    }
    return NULL;
}

static void *consumer_main(void *arg)
{
    pc_arg *pa = arg;
    const alloc_api *a = pa->a;
    spsc_ring *r = pa->ring;
    size_t head = 0, tail_seen = 0;
    uint64_t sum = 0;
    for (size_t i = 0; i < g.pc_n; i++) {
        unsigned spins = 0;
        while (head == tail_seen) {
            tail_seen = atomic_load_explicit(&r->tail, memory_order_acquire);
            if (head == tail_seen)
                backoff(&spins);
        }
        uint64_t *p = r->slot[head & (RING_CAP - 1)];
        atomic_store_explicit(&r->head, ++head, memory_order_release);
        sum += p[0] ^ p[1];
        a->free_fn(p);
    }
    pa->sum = sum;
    return NULL;
}

NOINLINE static uint64_t run_prodcons(const alloc_api *a)
{
    pc_arg arg = {a, &ring, 0};
    atomic_store(&ring.head, 0);
    atomic_store(&ring.tail, 0);
    pthread_t prod, cons;
    int err = pthread_create(&cons, NULL, consumer_main, &arg);
    if (err == 0) {
        err = pthread_create(&prod, NULL, producer_main, &arg);
        if (err != 0) {
            fprintf(stderr, "corona-demo: pthread_create: %s\n", strerror(err));
            exit(1);
        }
        pthread_join(prod, NULL);
        pthread_join(cons, NULL);
    } else {
        fprintf(stderr, "corona-demo: pthread_create: %s\n", strerror(err));
        exit(1);
    }
    return arg.sum;
}

/* ---- d. real workload: word count / inverted index --------------------- */
/* Tokenises a generated text; every token is copied into a fresh string
 * (strdup-like); a chained hash table keyed by the string keeps a count and
 * a growing (realloc) array of token positions per distinct word; the bucket
 * array itself grows with realloc.  Then the table is summarised and torn
 * down. */

typedef struct wc_node {
    struct wc_node *next;
    char *key;
    uint64_t hash;
    uint32_t len, count, npos, cap;
    uint32_t *pos;
} wc_node;

static uint64_t fnv1a(const char *s, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

NOINLINE static uint64_t run_wordcount(const alloc_api *a)
{
    size_t nb = 64, used = 0;
    wc_node **b = a->malloc_fn(nb * sizeof *b);
    if (!b)
        out_of_memory(a, nb * sizeof *b);
    memset(b, 0, nb * sizeof *b);

    const char *s = g.text, *end = g.text + g.text_len;
    uint32_t tokno = 0;
    while (s < end) {
        const char *w = s;
        while (s < end && *s != ' ')
            s++;
        size_t len = (size_t)(s - w);
        s++; /* the separator */
        if (len == 0)
            continue;

        char *key = a->malloc_fn(len + 1);
        if (!key)
            out_of_memory(a, len + 1);
        memcpy(key, w, len);
        key[len] = '\0';

        uint64_t h = fnv1a(key, len);
        wc_node *node = b[h & (nb - 1)];
        while (node && !(node->hash == h && node->len == len && memcmp(node->key, key, len) == 0))
            node = node->next;
        if (node) {
            a->free_fn(key);
        } else {
            node = a->malloc_fn(sizeof *node);
            if (!node)
                out_of_memory(a, sizeof *node);
            node->key = key;
            node->hash = h;
            node->len = (uint32_t)len;
            node->count = node->npos = node->cap = 0;
            node->pos = NULL;
            node->next = b[h & (nb - 1)];
            b[h & (nb - 1)] = node;
            if (++used > nb - nb / 4) { /* load factor 3/4: double */
                wc_node **nbk = a->realloc_fn(b, 2 * nb * sizeof *b);
                if (!nbk)
                    out_of_memory(a, 2 * nb * sizeof *b);
                b = nbk;
                memset(b + nb, 0, nb * sizeof *b);
                for (size_t i = 0; i < nb; i++) { /* split bucket i into i and i+nb */
                    wc_node *x = b[i], *lo = NULL, *hi = NULL;
                    while (x) {
                        wc_node *next = x->next;
                        if (x->hash & nb) {
                            x->next = hi;
                            hi = x;
                        } else {
                            x->next = lo;
                            lo = x;
                        }
                        x = next;
                    }
                    b[i] = lo;
                    b[i + nb] = hi;
                }
                nb *= 2;
            }
        }
        if (node->npos == node->cap) {
            uint32_t cap = node->cap ? node->cap * 2 : 2;
            uint32_t *np = a->realloc_fn(node->pos, cap * sizeof *np);
            if (!np)
                out_of_memory(a, cap * sizeof *np);
            node->pos = np;
            node->cap = cap;
        }
        node->pos[node->npos++] = tokno++;
        node->count++;
    }

    /* Summarise (order-independent, so it is the same for both allocators)
     * and tear the table down. */
    uint64_t sum = used;
    for (size_t i = 0; i < nb; i++) {
        wc_node *x = b[i];
        while (x) {
            wc_node *next = x->next;
            sum += x->hash * x->count + (unsigned char)x->key[x->len - 1];
            for (uint32_t k = 0; k < x->npos; k++)
                sum += (uint64_t)x->pos[k] * (k + 1);
            a->free_fn(x->pos);
            a->free_fn(x->key);
            a->free_fn(x);
            x = next;
        }
    }
    a->free_fn(b);
    return sum;
}

/* ---- preparation: everything random is made here, with a fixed seed ----- */

void prepare(int quick)
{
    size_t scale_div = quick ? 5 : 1;

    g.pairs_n = 20000000 / scale_div;
    g.pair_sizes = xmalloc(PAIR_SIZES * sizeof *g.pair_sizes);
    for (size_t i = 0; i < PAIR_SIZES; i++)
        g.pair_sizes[i] = (uint16_t)rng_range(8, 512);

    g.burst_n = 10000;
    g.burst_rounds = 200 / scale_div;
    g.burst_sizes = xmalloc(BURST_PATTERNS * g.burst_n * sizeof *g.burst_sizes);
    g.burst_order = xmalloc(BURST_PATTERNS * g.burst_n * sizeof *g.burst_order);
    g.burst_live = xmalloc(g.burst_n * sizeof *g.burst_live);
    for (size_t k = 0; k < BURST_PATTERNS; k++) {
        uint16_t *sizes = g.burst_sizes + k * g.burst_n;
        uint32_t *order = g.burst_order + k * g.burst_n;
        for (size_t i = 0; i < g.burst_n; i++) {
            /* one in 16 is a bigger object, up to the largest small class */
            sizes[i] = (uint16_t)(rng_next() % 16 == 0 ? rng_range(1025, 8128)
                                                         : rng_range(16, 1024));
            order[i] = (uint32_t)i;
        }
        for (size_t i = g.burst_n - 1; i > 0; i--) { /* Fisher-Yates */
            size_t j = (size_t)(rng_next() % (i + 1));
            uint32_t t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
    }

    g.pc_n = 800000 / scale_div;
    g.pc_sizes = xmalloc(PC_SIZES * sizeof *g.pc_sizes);
    for (size_t i = 0; i < PC_SIZES; i++)
        g.pc_sizes[i] = (uint16_t)rng_range(16, 256);

    /* The text: a vocabulary of random lowercase words, drawn with a skewed
     * (roughly Zipf-like, log-uniform) frequency so a few words are very
     * common and most are rare. */
    g.vocab_n = 65536;
    g.text_tokens = 2000000 / scale_div;
    char **vocab = xmalloc(g.vocab_n * sizeof *vocab);
    for (size_t v = 0; v < g.vocab_n; v++) {
        size_t len = rng_next() % 32 == 0 ? rng_range(13, 40) : rng_range(1, 12);
        vocab[v] = xmalloc(len + 1);
        for (size_t i = 0; i < len; i++)
            vocab[v][i] = (char)('a' + rng_next() % 26);
        vocab[v][len] = '\0';
    }
    size_t cap = g.text_tokens * 8 + 64, len = 0;
    g.text = xmalloc(cap);
    for (size_t t = 0; t < g.text_tokens; t++) {
        unsigned bits = (unsigned)(rng_next() % 17); /* 0..16 */
        size_t v = (size_t)(rng_next() & ((UINT64_C(1) << bits) - 1)) % g.vocab_n;
        size_t wl = strlen(vocab[v]);
        if (len + wl + 2 > cap) {
            cap *= 2;
            char *nt = realloc(g.text, cap);
            if (!nt) {
                fprintf(stderr, "corona-demo: out of memory while preparing\n");
                exit(1);
            }
            g.text = nt;
        }
        memcpy(g.text + len, vocab[v], wl);
        len += wl;
        g.text[len++] = ' ';
    }
    g.text[len] = '\0';
    g.text_len = len;
    for (size_t v = 0; v < g.vocab_n; v++)
        free(vocab[v]);
    free(vocab);
}

/* ---- the table the drivers run ------------------------------------------ */

const workload workloads[] = {
    {"pairs: malloc+free, 8..512 B", run_pairs_random},
    {"pairs: malloc+free, 64 B", run_pairs_64},
    {"bursts: 10k live, 16..8128 B", run_bursts},
    {"producer/consumer, 2 threads", run_prodcons},
    {"word count (hash table)", run_wordcount},
};
_Static_assert(sizeof workloads / sizeof workloads[0] == NUM_WORKLOADS,
               "NUM_WORKLOADS in demo.h must count the workloads");
