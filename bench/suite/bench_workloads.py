"""bench_workloads.py — what the benchmark runner (runner.py) knows of: the
workloads of bench/suite with their programs and descriptions, and the
allocators it can compare (corona, glibc and the peers, with the library and
the Debian package of each peer)."""
import os

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SUITE_SRC = os.path.join(ROOT, "bench", "suite")

# name, soname searched, Debian package that installs it (scripts/bench)
PEERS = [
    ("mimalloc", "libmimalloc.so.2", "libmimalloc2.0"),
    ("jemalloc", "libjemalloc.so.2", "libjemalloc2"),
    ("tcmalloc", "libtcmalloc_minimal.so.4", "libtcmalloc-minimal4"),
    ("tbbmalloc", "libtbbmalloc_proxy.so.2", "libtbbmalloc2"),
]
# Upstream builds that Debian does not package, by file name in the peers
# folder (its README.md says what each is): name, file, project.  Used when
# the folder exists -- BENCH_PEERS_DIR, by default ../shared/peers beside the
# repository -- and left out without error where it does not (CI).  Not
# CORONA_*: corona warns about CORONA_ variables it does not know.
PEERS_DIR = os.environ.get("BENCH_PEERS_DIR") or os.path.join(os.path.dirname(ROOT), "shared", "peers")
UPSTREAM_PEERS = [
    ("mimalloc3", "libmimalloc3.so", "microsoft/mimalloc"),
    ("snmalloc", "libsnmalloc.so", "microsoft/snmalloc"),
    ("rpmalloc", "librpmalloc.so", "mjansson/rpmalloc"),
]
ALL_ALLOCS = ["corona", "glibc"] + [p[0] for p in PEERS] + [p[0] for p in UPSTREAM_PEERS]

# Workloads: name, program and its fixed arguments, threaded?, description.
# Program "python" / "sqlite" are the real programs.
WORKLOADS = [
    ("small-fixed", ["suite-small", "fixed"], True,
     "malloc+free at once, 64 B, 20 M pairs (small.c)"),
    ("small-random", ["suite-small", "random"], True,
     "malloc+free at once, 8..512 B uniform, 20 M pairs (small.c)"),
    ("bursts", ["suite-bursts"], True,
     "400 rounds of 5000 live objects, 16..1024 B (1 in 16 up to 8128 B), freed in shuffled order (bursts.c)"),
    ("realloc", ["suite-realloc"], True,
     "200 rounds of 32 strings grown by exact-length appends to 16 B..16 KB and 8 vectors doubling to 128 B..2 MB (realloc.c)"),
    ("xmalloc", ["suite-xmalloc"], True,
     "producer/consumer ring: 6 M objects of 16..256 B allocated by one thread, freed by the next (xmalloc.c)"),
    ("larson", ["suite-larson"], True,
     "server simulation: 128 sessions of 256 live objects (16..1024 B), 4 M requests, sessions handed between threads (larson.c)"),
    ("pipeline", ["suite-pipeline"], True,
     "chain of threads: 6 M objects of 8..1024 B passed in batches of 64, each freed by the stage after the one that allocated it (pipeline.c)"),
    ("server", ["suite-server", "small"], True,
     "threads own 16 sets of 128 live objects (8..1000 B), replace them at random, hand sets on; the receiver frees them: half the frees remote; 4 M requests (server.c)"),
    ("server-mixed", ["suite-server", "mixed"], True,
     "as server, 8..16000 B, 4 sets a thread, a quarter of the frees remote; 1 M requests (server.c)"),
    ("scratch", ["suite-scratch"], True,
     "false sharing: 40 000 objects of 8 B, each written 8000 times; the first per thread allocated by the main thread (scratch.c)"),
    ("large-churn", ["suite-large", "churn"], True,
     "16 live per thread, 10 000 replacements of 8 KB..4 MB, every page written (large.c)"),
    ("big-buffers", ["suite-large", "big"], True,
     "100 buffers of 8..48 MB, at most 2 live per thread, every page written and read (large.c)"),
    ("thread-churn", ["suite-threads"], True,
     "3000 short-lived threads in waves, 200 objects each, half left to the next wave (threads.c)"),
    ("frag", ["suite-frag"], True,
     "128 MB of 16..256 B objects, 90 % freed at random, then as many bytes of 257..4096 B; peak RSS vs live (frag.c)"),
    ("buffers-big", ["suite-buffers", "big"], True,
     "24 live buffers of 4..28 MB, each replaced at random, zero-filled by memset, checked at free (buffers.c)"),
    ("buffers-mid", ["suite-buffers", "mid"], True,
     "48 live objects of 8 KB..2 MB, each replaced at random, written at both ends (buffers.c)"),
    ("python", ["python"], False,
     "python3 (Debian) with PYTHONMALLOC=malloc: strings, dicts, objects, JSON, sorting (pywork.py)"),
    ("sqlite", ["sqlite"], False,
     "sqlite3 (Debian) CLI, in-memory database: 100 000 rows, indexes, group by, joins, updates, deletes (sqlwork.py)"),
]

# Environment variables that tune an allocator: removed, so every allocator
