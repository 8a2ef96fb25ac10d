#!/usr/bin/env python3
"""make-corpus.py — writes the seed corpus of fuzz_api into fuzz/corpus/.

Each seed is assembled from the operations of fuzz_api.c's input format (see
the comment at the top of fuzz_api.c; the encoders below mirror its decoders),
so every seed says what it exercises.  libFuzzer mutates from these.
Run: python3 fuzz/make-corpus.py [OUTDIR]   (default: the corpus/ beside this file)
"""
import os
import random
import sys

MIB = 1 << 20


# ---- operands ----------------------------------------------------------------
def size(n):
    """A size operand decoding to exactly n (n < 8 MiB)."""
    if n < 256:
        return bytes([0, n])
    if n <= 8128:
        return bytes([128, n & 255, n >> 8])
    if n <= 65536:
        v = n - 8129
        return bytes([224, v & 255, v >> 8])
    if n <= MIB:
        v = n - 8129
        return bytes([240, v & 255, (v >> 8) & 255, v >> 16])
    assert n < 8 * MIB
    v = n - MIB
    return bytes([252, v & 255, (v >> 8) & 255, v >> 16])


def boundary(index):
    """A size operand picking entry `index` of fuzz_api.c's boundary_sizes."""
    return bytes([192, index])


def align(a):
    k = a.bit_length() - 1
    assert a == 1 << k and k <= 23
    return bytes([k]) if k <= 12 else bytes([240 + k - 12])


# ---- operations ----------------------------------------------------------------
# The first code of each operation in ops.c's op_of_code table (code % 32).
MALLOC, CALLOC, REALLOC, ALIGNED_MALLOC, ALIGNED_REALLOC, POSIX_MEMALIGN = 0, 6, 8, 13, 15, 17
FREE, USABLE, VERIFY, IMPOSSIBLE, SHRINK0, BURST = 19, 26, 27, 28, 29, 30


def malloc(slot, sz):
    return bytes([MALLOC, slot]) + (sz if isinstance(sz, bytes) else size(sz))


def calloc(slot, count, n):
    return bytes([CALLOC, slot, count]) + size(n)


def realloc(slot, n):
    return bytes([REALLOC, slot]) + size(n)


def aligned_malloc(slot, n, a):
    return bytes([ALIGNED_MALLOC, slot]) + size(n) + align(a)


def aligned_realloc(slot, n, a):
    return bytes([ALIGNED_REALLOC, slot]) + size(n) + align(a)


def posix_memalign(slot, a, n):
    return bytes([POSIX_MEMALIGN, slot]) + align(a) + size(n)


def free(slot):
    return bytes([FREE, slot])


def usable(slot):
    return bytes([USABLE, slot])


def verify(slot):
    return bytes([VERIFY, slot])


def impossible(kind, slot, arg):
    return bytes([IMPOSSIBLE, kind, slot, arg])


def shrink0(slot, sel=0):
    return bytes([SHRINK0, slot, sel])


def burst(count, n, order=1):
    """count (1..32) objects of n bytes; order (1..7) picks the freeing order."""
    assert 1 <= count <= 32 and 1 <= order <= 7
    return bytes([BURST, 32 * order + count - 1]) + size(n)


def collect():
    return bytes([BURST, 0, 0, 0])


# ---- segments ------------------------------------------------------------------
MAIN, WORKER, SHARED, RESTART = 0, 2, 4, 7


def _pack(mode, ops):
    """Alone-segments of at most 256 bytes, never splitting an operation."""
    out, body = b"", b""
    for op in ops:
        if len(body) + len(op) > 256:
            out += bytes([mode, len(body) - 1]) + body
            body = b""
        body += op
    if body:
        out += bytes([mode, len(body) - 1]) + body
    return out


def main(*ops):
    return _pack(MAIN, ops)


def worker(*ops):
    return _pack(WORKER, ops)


def shared(main_ops, worker_ops, parity=0, restart=False):
    """One segment run by both threads at once: main on the slots of its
    parity, the worker on the others (slot operands are % 32 there)."""
    m, w = b"".join(main_ops), b"".join(worker_ops)
    # fuzz_api gives main the first len // 2 bytes: pad the shorter half with
    # verify ops (harmless) so that the split falls between m and w.
    while len(m) < len(w):
        m += verify(0) if len(w) - len(m) >= 2 else bytes([VERIFY])
    while len(w) < len(m):
        w += verify(0) if len(m) - len(w) >= 2 else bytes([VERIFY])
    body = m + w
    assert 1 <= len(body) <= 256 and len(body) // 2 == len(m)
    hdr = (0xF0 | RESTART if restart else SHARED) | (parity << 3)
    return bytes([hdr, len(body) - 1]) + body


# ---- the seeds -----------------------------------------------------------------
SMALL_CLASSES = [16, 32, 48, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384, 448, 512,
                 640, 768, 896, 1024, 1344, 1472, 1600, 1792, 1984, 2304, 2688, 3200, 4032,
                 5376, 8128]


def seeds():
    s = {}
    s["01-small-basic"] = main(
        malloc(0, 1), malloc(1, 24), malloc(2, 100), malloc(3, 200), verify(1), usable(2),
        free(1), malloc(1, 40), realloc(0, 60), realloc(2, 90), free(0), free(3), malloc(4, 0),
        usable(4))
    s["02-every-class"] = main(*[malloc(i, c) for i, c in enumerate(SMALL_CLASSES)]) + \
        main(*[malloc(32 + i, c + 1) for i, c in enumerate(SMALL_CLASSES[:30])]) + \
        main(*[free(i) for i in range(0, 64, 2)]) + \
        main(*[malloc(i, boundary(i)) for i in range(0, 64, 2)])
    s["03-calloc"] = main(
        calloc(0, 1, 100), calloc(1, 4, 4000), calloc(2, 0, 50), calloc(3, 8, 8128),
        free(1), free(3), calloc(1, 3, 6000), calloc(3, 1, 100000), free(3),
        calloc(3, 2, 100000), calloc(4, 5, 3 * MIB), free(4), calloc(4, 1, 3 * MIB))
    s["04-realloc-chain"] = main(
        malloc(0, 1), *[realloc(0, n) for n in
                        [16, 17, 100, 1000, 8128, 8129, 20000, 65536, MIB, 5 * MIB, 2 * MIB,
                         300000, 8200, 8000, 500, 20, 1]],
        malloc(1, 50000), malloc(2, 50000), free(1), realloc(2, 100000), realloc(2, 40000))
    s["05-aligned"] = main(
        *[aligned_malloc(i, 10 + 37 * i, 1 << i) for i in range(13)],
        aligned_malloc(13, 100, 65536), aligned_malloc(14, 100000, 1 << 21),
        aligned_malloc(15, 3000, 4096), aligned_realloc(15, 5000, 256),
        aligned_realloc(0, 20000, 8192), aligned_realloc(1, 64, 1024), realloc(14, 200),
        aligned_realloc(16, 100, 512), *[free(i) for i in range(17)])
    s["06-posix-memalign"] = main(
        *[posix_memalign(i, 8 << (i % 10), [0, 1, 100, 1024, 5000, 9000][i % 6]) for i in range(12)],
        posix_memalign(12, 1 << 20, 2 * MIB), *[verify(i) for i in range(13)])
    s["07-impossible"] = main(
        malloc(5, 300), *[impossible(k, 5, a) for k in range(12) for a in (0, 1, 5, 10)])
    s["08-impossible-empty-slot"] = main(*[impossible(k, 9, a) for k in range(12) for a in (2, 3, 7, 11)])
    s["09-zero-sizes"] = main(
        malloc(0, 0), malloc(1, 0), realloc(2, 0), calloc(3, 0, 0), calloc(4, 5, 0),
        posix_memalign(5, 64, 0), aligned_malloc(6, 0, 4096), aligned_realloc(7, 0, 32),
        malloc(8, 100), shrink0(8, 0), malloc(9, 50000), shrink0(9, 1), malloc(10, 2 * MIB),
        shrink0(10, 2), aligned_malloc(11, 100, 128), shrink0(11, 5), usable(0))
    s["10-cross-thread"] = \
        worker(*[malloc(i, 16 + 97 * i) for i in range(24)], malloc(30, 20000)) + \
        main(*[free(i) for i in range(0, 24, 2)], realloc(1, 5000), realloc(30, 100)) + \
        main(*[malloc(32 + i, 48) for i in range(16)]) + \
        worker(*[free(32 + i) for i in range(16)], *[free(i) for i in range(1, 24, 2)])
    s["11-shared"] = \
        shared([malloc(i, 64) for i in range(12)], [malloc(i, 64) for i in range(12)], parity=0) + \
        shared([free(i) for i in range(12)] + [malloc(i, 200) for i in range(12, 18)],
               [free(i) for i in range(12)] + [malloc(i, 200) for i in range(12, 18)], parity=1) + \
        shared([realloc(i, 3000) for i in range(12, 18)], [realloc(i, 30000) for i in range(12, 18)],
               parity=0)
    s["12-thread-restart"] = \
        worker(*[malloc(i, c) for i, c in enumerate(SMALL_CLASSES[:20])], malloc(20, 100000)) + \
        shared([free(i) for i in range(0, 20, 4)], [malloc(40 + i, 64) for i in range(8)],
               parity=0, restart=True) + \
        worker(*[malloc(20 + i, SMALL_CLASSES[i]) for i in range(20, 31)], free(1), free(3)) + \
        main(collect())
    s["13-large-churn"] = main(
        *[malloc(i, n) for i, n in enumerate([9000, 12288, 16384, 40000, 65536, 131072, 262144, 800000])],
        free(1), free(3), free(5), malloc(1, 16000), malloc(3, 60000), realloc(0, 16384),
        realloc(2, 30000), realloc(4, 4096), burst(8, 50000), collect(), malloc(5, 200000),
        realloc(7, 1000000), realloc(6, 500000))
    s["14-big"] = main(
        malloc(0, 8 * MIB - 1), usable(0), realloc(0, 5 * MIB), realloc(0, 7 * MIB),
        malloc(1, 4 * MIB), malloc(2, 4 * MIB + 1), malloc(3, 4 * MIB - 4096), free(1),
        realloc(3, 6 * MIB), aligned_malloc(4, 3 * MIB, 1 << 22), free(0))
    s["15-bursts"] = \
        shared([burst(32, 16, 1), burst(20, 100, 2), burst(7, 4000, 3)],
               [burst(32, 16, 4), burst(20, 100, 5), burst(7, 8128, 6)], parity=1) + \
        main(burst(31, 48, 7), burst(5, 20000, 2))
    rnd = random.Random(20240601)
    s["16-random"] = bytes(rnd.randrange(256) for _ in range(2048))
    return s


def write(outdir):
    os.makedirs(outdir, exist_ok=True)
    for name, data in seeds().items():
        with open(os.path.join(outdir, name), "wb") as f:
            f.write(data)
        print(f"{name}: {len(data)} bytes")


if __name__ == "__main__":
    here = os.path.dirname(os.path.abspath(__file__))
    write(sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "corpus"))
