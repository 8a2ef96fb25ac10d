#!/usr/bin/env python3
"""pywork.py — the python3 workload of the benchmark suite (a real program
under LD_PRELOAD).

Pattern: what an interpreter does all day — strings made, split, joined and
formatted; dicts and lists grown and dropped; objects created and collected;
a JSON round trip; sorting.  scripts/bench runs it with PYTHONMALLOC=malloc,
so that every object, small ones included, goes to the allocator under test
(with CPython's own pymalloc, most objects up to 512 B never reach malloc),
and with PYTHONHASHSEED=0.  The text and numbers come from a fixed seed, so
the checksum is the same under every allocator.

Usage: pywork.py [-s SCALE] [--which]
Output: workload=python threads=1 checksum=HEX alloc=FILE work_ms=F
"""
import ctypes
import json
import os
import random
import sys
import time
import zlib


def alloc_file():
    """The file whose malloc this process uses: the first object in the
    dynamic linker's search order (the load order that dl_iterate_phdr
    reports: the program, the LD_PRELOAD libraries, then the dependencies)
    that defines malloc itself.  (dladdr on the address of malloc would name
    the program: python3 is not position-independent, so the address of an
    imported function is its PLT entry there.)"""

    class DlInfo(ctypes.Structure):
        _fields_ = [("dli_fname", ctypes.c_char_p), ("dli_fbase", ctypes.c_void_p),
                    ("dli_sname", ctypes.c_char_p), ("dli_saddr", ctypes.c_void_p)]

    class PhdrInfo(ctypes.Structure):
        _fields_ = [("dlpi_addr", ctypes.c_void_p), ("dlpi_name", ctypes.c_char_p)]

    libc = ctypes.CDLL(None)
    libc.dlopen.restype = ctypes.c_void_p
    libc.dlopen.argtypes = [ctypes.c_char_p, ctypes.c_int]
    libc.dlsym.restype = ctypes.c_void_p
    libc.dlsym.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    libc.dladdr.argtypes = [ctypes.c_void_p, ctypes.POINTER(DlInfo)]
    names = []
    callback_type = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(PhdrInfo), ctypes.c_size_t,
                                     ctypes.c_void_p)

    def collect(info, size, data):
        names.append(info.contents.dlpi_name or b"")
        return 0

    libc.dl_iterate_phdr(callback_type(collect), None)
    RTLD_LAZY, RTLD_NOLOAD = 0x1, 0x4
    for name in names[1:]:  # the program itself only imports malloc
        if not name:
            continue
        handle = libc.dlopen(name, RTLD_LAZY | RTLD_NOLOAD)
        sym = libc.dlsym(handle, b"malloc") if handle else None
        info = DlInfo()
        if sym and libc.dladdr(sym, ctypes.byref(info)) and info.dli_fname == name:
            return name.decode()
    return "?"


class Record:
    __slots__ = ("word", "count", "where")

    def __init__(self, word):
        self.word = word
        self.count = 0
        self.where = []


def work(scale):
    rnd = random.Random(20241125)
    letters = "abcdefghijklmnopqrstuvwxyz"
    vocab = ["".join(rnd.choice(letters) for _ in range(rnd.randint(2, 12)))
             for _ in range(20000)]
    n = max(1000, int(150000 * scale))
    crc = 0

    # 1. text: generate, split into lines, index the words
    words = [vocab[min(int(rnd.expovariate(1 / 2000)), len(vocab) - 1)] for _ in range(n)]
    text = " ".join(words)
    lines = [text[i:i + 80] for i in range(0, len(text), 80)]
    index = {}
    for lineno, line in enumerate(lines):
        for w in line.split():
            rec = index.get(w)
            if rec is None:
                rec = index[w] = Record(w)
            rec.count += 1
            rec.where.append(lineno)
    top = sorted(index.values(), key=lambda r: (-r.count, r.word))[:200]
    crc = zlib.crc32(" ".join(f"{r.word}:{r.count}:{len(r.where)}" for r in top).encode(), crc)
    del index, top, lines

    # 2. records: dicts of mixed values, formatted, JSON round trip, sorted
    recs = []
    for i in range(n // 4):
        recs.append({"id": i, "name": words[i].title(), "tags": words[i:i + rnd.randint(0, 5)],
                     "score": rnd.random() * 100, "label": f"{words[i]}-{i:06d}"})
    blob = json.dumps(recs)
    back = json.loads(blob)
    back.sort(key=lambda d: (d["name"], -d["id"]))
    crc = zlib.crc32(("|".join(f"{d['label']}={d['score']:.3f}" for d in back[:2000])).encode(), crc)
    crc = zlib.crc32(str(len(blob)).encode(), crc)
    del recs, back, blob

    # 3. churn: short-lived lists, tuples, strings and sets
    acc = 0
    for i in range(n // 2):
        t = tuple(words[i:i + 8])
        s = "/".join(t).upper()
        acc += len(s) + len(set(t)) + len([c for c in s[:16] if c != "/"])
    crc = zlib.crc32(str(acc).encode(), crc)

    # 4. a growing string and a growing list (realloc)
    parts = []
    buf = ""
    for i in range(n // 4):
        buf += words[i]
        if len(buf) > 4096:
            parts.append(buf)
            buf = ""
    crc = zlib.crc32(str(sum(len(p) for p in parts) + len(buf)).encode(), crc)
    return crc


def main():
    scale = 1.0
    args = sys.argv[1:]
    if "--which" in args:
        print(f"malloc={alloc_file()}")
        return
    if len(args) == 2 and args[0] == "-s":
        scale = float(args[1])
    elif args:
        sys.exit("usage: pywork.py [-s SCALE] [--which]")
    t0 = time.monotonic()
    crc = work(scale)
    ms = (time.monotonic() - t0) * 1e3
    print(f"workload=python threads=1 checksum={crc:016x} "
          f"alloc={os.path.basename(alloc_file())} work_ms={ms:.3f}")


if __name__ == "__main__":
    main()
