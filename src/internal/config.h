/* config.h (layer: os) — every compile-time constant of corona, in one place.
 * Derived values are computed here too, so no other file hard-codes a size. */
#ifndef CORONA_CONFIG_H
#define CORONA_CONFIG_H

/* Compiler helpers, used everywhere. */
#define cr_likely(x) __builtin_expect(!!(x), 1)
#define cr_unlikely(x) __builtin_expect(!!(x), 0)
#define CR_NOINLINE __attribute__((noinline))
#define CR_INLINE static inline __attribute__((always_inline))

/* A slab block: the unit small objects are carved from.  A power of two, and
 * every block is aligned to it, so masking an object's address finds its
 * block header. */
#define CORONA_SLAB_SHIFT 14
#define CORONA_SLAB_SIZE ((size_t)1 << CORONA_SLAB_SHIFT)  /* 16 KB */

/* Cache line used for layout (padding between what different threads
 * write): 64 B, x86's line and that of most arm64 cores.  A build for a
 * machine with 128-byte lines (Apple's arm64 cores) may set it to 128
 * (CMake: -DCORONA_CACHE_LINE=128); the per-thread structs and locks then
 * pad to it. */
#ifndef CORONA_CACHE_LINE
#define CORONA_CACHE_LINE 64
#endif
/* Block header: three lines of 64 B, whatever CORONA_CACHE_LINE is (the
 * design's 128 would double the header and shift every "fitting" class,
 * brief, note b): line 0 written by other threads, lines 1 and 2
 * owner-only, laid out so that the owner's hot fields are 128 bytes from
 * what other threads write (block.h, above cr_block_s); every other word
 * is a guard. */
#define CORONA_BLOCK_LINE 64
#define CORONA_BLOCK_HEADER (3 * CORONA_BLOCK_LINE)
#if CORONA_CACHE_LINE != 64 && CORONA_CACHE_LINE != 128
#error "CORONA_CACHE_LINE must be 64 or 128"
#endif

/* Small objects: 45 bins.  Bins 0..28, up to CORONA_SLAB_MAX_CLASS (four
 * per slab), cut 16 KB slab blocks; the medium bins from
 * CORONA_MEDIUM_FIRST_BIN on cut bigger blocks aligned to their size, which
 * the backend cuts from its large regions: CORONA_MEDIUM_BLOCK for the
 * classes up to CORONA_MEDIUM_MAX_CLASS (15 down to 4 objects a block),
 * CORONA_MEDIUM_BLOCK_MAX for those up to CORONA_MAX_SMALL (7 down to 4).  Objects of 8 KB to 32 KB used to
 * be large objects: a header, a page-rounded block and a trip through the
 * large caches each (about 400 instructions a malloc+free pair against
 * 111; a server mixing 8..16000 B objects took 2.5x tcmalloc's time); those
 * of 4 KB to 8 KB had three classes, two or three a slab, where a 4104-byte
 * request (sqlite's page cache) took 5376 B.  A 16 KB slab holds too few
 * of them: in the bigger block the slack stays under 64 B an object (at
 * most 1.3 % of the block). */
#define CORONA_NUM_BINS 45
#define CORONA_MAX_SMALL 32704
#define CORONA_SLAB_MAX_CLASS 4032
#define CORONA_MEDIUM_FIRST_BIN 29
#define CORONA_MEDIUM_MAX_CLASS 16320
#define CORONA_MEDIUM_BLOCK ((size_t)64 << 10)
#define CORONA_MEDIUM_BLOCK_MAX ((size_t)128 << 10)
/* Every pointer corona returns is aligned to at least this. */
#define CORONA_MIN_ALIGN 16

/* Per-thread cache of empty slab blocks: when a push would exceed the high
 * mark, all but the low mark's most recent blocks go to the pool's list.
 * The mark also bounds the empty blocks resting on the thread's partial
 * lists (bin.c, keep_empty: in slabs, a medium block counting its span).
 * 128 slabs (2 MB a thread): at 32, a burst of a few thousand objects
 * freed at once turned most of its blocks over through the pool's list on
 * every round. */
#define CORONA_EMPTY_CACHE_HIGH 128
#define CORONA_EMPTY_CACHE_LOW 8
/* Empty blocks a pool's list keeps before it hands further
 * ones back to the backend, which returns their pages to the OS.  Too small
 * a bound makes a program that frees and reallocates a burst of objects pay
 * a purge and page faults every round. */
#define CORONA_POOL_EMPTY_MAX 1024 /* 16 MB */

/* The slow path carves this many bytes' worth of objects (at least one) from
 * a block's bump area into the thread's bin list at a time: one page, so
 * carving never touches memory far ahead of its use. */
#define CORONA_CARVE_BYTES 4096

/* A thread's free of an object of a block other than the bin's active one
 * -- its own, or another thread's of the same pool -- puts it on the bin's
 * free list, up to this many per turn of the list, instead of back to its
 * block: it is the next object handed out in its class, while its lines are
 * still cached (larson: random lifetimes), and a cross-thread free costs no
 * atomic operation (xmalloc: the owner used to walk every object a
 * consumer had sent back, one cache miss each).  Its block keeps counting
 * it as allocated until it is freed again in a later turn, or the thread
 * exits or calls corona_collect and sends it home.  128 rather than 32:
 * larson at 8 threads 184 -> 161 ms and 47 -> 36 MB peak RSS, xmalloc at 8
 * threads 118 -> 104 ms (medians of 9, interleaved). */
#define CORONA_HOT_OBJECTS 128

/* A thread holds back at most this many remote frees per class before it
 * pushes them onto their block's public list as one chain (cr_remote_t,
 * thread.h): the atomic operation and the mailbox notice are paid once a
 * chain, while the owner waits for no more than a chain's worth of its
 * objects.  Without a limit a chain could hold a whole block per class and
 * thread away from its owner, for 2-5 % fewer instructions (callgrind,
 * pipeline and xmalloc workloads). */
#define CORONA_REMOTE_CHAIN 16

/* Slab regions: the backend maps this much address space at a time, aligned
 * to its size (2 MB alignment keeps the door open for transparent huge
 * pages). */
#define CORONA_REGION_SIZE ((size_t)4 << 20)

/* A growing heap: once this many bytes of slabs are in use, the backend
 * asks the OS for the pages of CORONA_POPULATE_SLABS fresh slabs in one call
 * (cr_os_populate) as it carves the first of them, instead of a page fault
 * per page as they are first written.  frag (288 MB of slabs, 72 000 page
 * faults): 13-15 % less CPU time at 1 and 2 threads, the same RSS.  Below
 * the bound nothing is brought in ahead of use, so a small program's RSS
 * stays as it was; above it, the rest of the group being carved, at most
 * CORONA_POPULATE_SLABS - 1 slabs. */
#define CORONA_POPULATE_MIN ((size_t)8 << 20)
#define CORONA_POPULATE_SLABS 8

/* Huge-page span: the alignment of huge-page mappings, and the smallest
 * unit purged inside a huge-page region (purging less splits a huge page). */
#define CORONA_HUGE_SPAN ((size_t)2 << 20)

/* Large objects: header size in front of the user pointer. */
#define CORONA_LARGE_HEADER 64
/* Large blocks are whole pages of this size (the backend's granule). */
#define CORONA_PAGE_SIZE ((size_t)4096)
/* Blocks up to CORONA_LARGE_REGION_MAX are cut from shared large regions of
 * CORONA_LARGE_REGION_SIZE, where their freed pages serve any later size
 * without page faults; bigger ones get a mapping of their own (which realloc
 * can grow with mremap). */
#define CORONA_LARGE_REGION_SIZE ((size_t)16 << 20)
/* (The default of the option MMAP_THRESHOLD, glibc's M_MMAP_THRESHOLD,
 * which moves the bound up to CORONA_LARGE_REGION_SIZE or down to 0.) */
#define CORONA_LARGE_REGION_MAX ((size_t)4 << 20)
/* Large objects aligned to more than 16 KB: up to this alignment the slack
 * in front of the object stays inside its own mapping, untouched (fewer
 * system calls); above it the OS layer maps the object where the granule
 * after its header is aligned and gives the slack back at once (cr_os_map),
 * so the mapping, and the page map's marks, cover the object alone. */
#define CORONA_ALIGN_SLACK_MAX ((size_t)4 << 20)
/* The largest alignment corona tries to serve; above it, ENOMEM at once.
 * Finding an aligned address maps size + alignment bytes for a moment
 * (Linux), as glibc's memalign does, and the kernel's overcommit policy
 * judges that: what glibc serves, corona serves (1 GiB alignment, say), at
 * the cost of a few system calls whatever the alignment, and what the
 * system could not back fails at once.  But where nothing judges the
 * moment's mapping -- Linux with vm.overcommit_memory=1, or Windows, which
 * only reserves it -- its cost grows with the alignment (Wine keeps a byte
 * per reserved page: 8 GiB of bookkeeping for a 32 TiB alignment).  At
 * 1 TiB, corona refuses only what glibc, in the default mode, refuses too
 * on any machine with less than 1 TiB of RAM + swap, and a real system
 * reserves that much address space at no cost. */
#define CORONA_MAX_ALIGNMENT ((size_t)1 << 40)
/* calloc of a large object whose block may hold old contents (a cache
 * hit): from this size up, its pages are purged instead of written with
 * zeros (see zero_object in large.c). */
#define CORONA_CALLOC_PURGE_MIN ((size_t)1 << 20)
/* A default heap that has mapped this much wants the background purger
 * before its first cached byte: a program whose one thread frees only small
 * objects and then sleeps reaches no safe point to start it (purger.c).  A
 * smaller heap starts it only once something is cached. */
#define CORONA_PURGER_EAGER_BYTES ((size_t)256 << 20)
/* Per-thread large-object cache bounds (the design's LOCAL_LOC_*); when
 * exceeded, all but the TRIM most recent entries go to the global cache.
 * The threads of a heap share CORONA_LOCAL_LOC_TOTAL_BYTES: each may keep
 * that divided by their number, between the MIN and MAX bytes (4 MiB up to
 * 4 threads, 2 MiB at 8, 1 MiB from 16): without a total, 8 threads kept
 * up to 32 MiB that only their owners could reuse (suite-large churn -t 8:
 * peak RSS 207 MB at 4 MiB a thread, 190 at 2, 180 at 1, page faults
 * within 7 %; suite-buffers mid -t 8: 50.3, 47.6, 44.2 MB).  At 1 and 2
 * threads 2 MiB cost CPU time (suite-buffers mid -t 1: user 104 -> 133 ms:
 * more trips to the shared cache), hence the share, not a smaller bound. */
#define CORONA_LOCAL_LOC_TOTAL_BYTES ((size_t)16 << 20)
#define CORONA_LOCAL_LOC_MIN_BYTES ((size_t)1 << 20)
#define CORONA_LOCAL_LOC_MAX_BYTES ((size_t)4 << 20)
#define CORONA_LOCAL_LOC_MAX_COUNT 32
#define CORONA_LOCAL_LOC_TRIM 8
/* Blocks of large regions a cache eviction frees per take of the locks. */
#define CORONA_RELEASE_BATCH 16
/* A cached large block serves a request up to 1/2^shift smaller than
 * itself (the local cache, and the global one's exact bins up to 1 MB). */
#define CORONA_LOC_FIT_SHIFT 3
/* How many dirty runs a large request that no run fits looks at for the
 * one to cover (backend_map.c, cr_dirty_mixed_fit). */
#define CORONA_MIXED_FIT_RUNS 16
/* What the large-object layer keeps resident beyond live objects, as a
 * base plus a fraction (1/2^shift) of the bytes of live large objects:
 *  - the global large-object cache (blocks kept whole for reuse);
 *  - free pages of large regions left unpurged (reusable for any size).
 * Resident memory is what users measure, so the bounds follow the live heap
 * instead of being large constants; the rest goes back after the decay time
 * or at once when over the bound.  The free-page base is 32 MB: at 12 MB a
 * churn of 8 KB..4 MB objects with 16 live purged and re-faulted nearly every
 * block (230k page faults, 11x mimalloc's time) without lowering peak RSS. */
#define CORONA_GLOBAL_LOC_BASE ((size_t)1 << 20)
#define CORONA_GLOBAL_LOC_SHIFT 4
#define CORONA_GLOBAL_LOC_MAX_BYTES ((size_t)256 << 20)
/* The global cache's mappings of their own (blocks above MMAP_THRESHOLD)
 * have a budget of their own, a base plus 1/2^shift of the live large
 * bytes, beside the region blocks' (CORONA_GLOBAL_LOC_*), and are cut to
 * size, joined when neighbours and gathered into a bigger request without
 * a copy (large.c): a program that replaces big buffers by others of
 * random sizes reuses their resident pages instead of faulting in fresh
 * ones.  suite-buffers big (24 live of 4..28 MiB, zero-filled by memset):
 * 476k minor faults and 645 MB peak RSS before, 129k and 517 MB with a
 * 64 MiB base and a quarter; a 32 MiB base raised suite-large big (2 live
 * of 8..48 MiB) from 74k faults to 128k, 64 MiB brings it to 70k.  A
 * bigger share (a half) broke the soak's bound on peak RSS (1.5 x live
 * + 32 MiB); an eighth faulted more than before.  Time-based release
 * (DECAY_MS) empties it like the rest of the cache, and a request that
 * maps fresh memory cuts it, with the other caches, to the free pages'
 * budget (growth_trim in policy.c). */
#define CORONA_OWN_LOC_BASE ((size_t)64 << 20)
#define CORONA_OWN_LOC_SHIFT 2
/* CORONA_DIRTY_BASE is the default of the option TRIM_THRESHOLD (glibc's
 * M_TRIM_THRESHOLD), to which TOP_PAD adds. */
#define CORONA_DIRTY_BASE ((size_t)32 << 20)
#define CORONA_DIRTY_SHIFT 2
/* A free may keep, beyond that budget, what the heap's live bytes fell by
 * since their recent high, up to the base >> this (policy.c, dirty_limit):
 * suite-large churn, 5 interleaved runs, page faults / ms: at 2 threads
 * 33.5k / 55 -> 17.6k / 36, at 8 threads 71.6k / 107 -> 44.6k / 75, peak RSS
 * 69.6 -> 67.8 and 192 -> 159 MB.  The whole base (shift 0) saved no more
 * (17.0k, 44.8k) and kept 126 MiB resident right after test_rss's small
 * frees, where its bound is 116; capped also at a quarter of the live
 * bytes, it saved a third as much (29.3k at 2 threads). */
#define CORONA_DIRTY_SWING_SHIFT 1
/* While the mapped bytes are above the soft heap limit, the base of that
 * budget is at most the limit less 1/2^shift of it (room for the other
 * caches); the share of the live bytes stays.  A program that lives above
 * its limit churns through free pages in proportion to its live heap, as
 * it does without a limit, and purging does not lower the mapped bytes the
 * limit is about, only the resident ones.  Cutting the whole budget to
 * three quarters of the limit made such a program purge and fault back in
 * the pages it kept reusing: corona-soft-limit 2 20000 7 (2 threads
 * churning 64 KiB..2 MiB objects at twice a 24 MiB limit) took a median
 * 1.88x the time of no limit with 38 000 page faults a phase against
 * 13 000; keeping the share of the live bytes, 1.37x with 17 600 (RSS at
 * the end of a phase 40 MiB instead of 10; without a limit 70).  With
 * nothing live the budget is the share of the limit alone, which keeps
 * what stays resident after a program frees everything within the limit
 * (test_rss soft_limit: 29.6 MiB at a 32 MiB limit). */
#define CORONA_DIRTY_OVER_LIMIT_SHIFT 2
/* A slab freed over the dirty budget purges free slabs down to the budget
 * less 1/2^shift of it, not just to the budget: a program freeing its heap
 * lowers the budget (a share of the live bytes) with every slab, so purging
 * only the freed slab's region made every further free a purge, one system
 * call per 16 KB under the backend's lock (frag at 2 threads: 1900 madvise
 * calls against 190 at 1 thread, and the other thread waiting on the lock). */
#define CORONA_DIRTY_SLACK_SHIFT 2
/* Blocks this big or bigger are never cached (they go straight back). */
#define CORONA_LOC_MAX_OBJECT ((size_t)1 << 30)

/* The largest request corona will try to serve is half the address space
 * that both the machine (cr_os_address_bits) and the page map
 * (CORONA_MAP_BITS) cover: no more could ever be mapped.  It depends on the
 * machine, so it is a variable, cr_max_request (pagemap.c), set when corona
 * initialises: 2^46 on x86-64, 2^47 on arm64 with 48-bit addresses.  Beyond
 * it, ENOMEM at once, without asking the OS or giving back every cache first
 * (a request that can never succeed must not cost a collect), and with room
 * for headers and alignment to overflow. */

/* Yields an exiting thread waits for the mailbox notices still owed to it
 * (they normally arrive within a few) before it gives the blocks concerned
 * up instead of waiting forever (see cr_bins_release_all). */
#define CORONA_EXIT_NOTICE_WAIT 10000

/* A full block becomes worth allocating from again once its live objects
 * drop to this fraction of its capacity (numerator / 4). */
#define CORONA_REUSE_QUARTERS 3

/* Address space covered by the page map: addresses below 2^48.  Corona
 * never passes the OS an address hint, and without one Linux returns
 * addresses below 2^47 on x86-64 (with 4- and 5-level paging alike: higher
 * ones only to a caller whose hint is higher) and below 2^48 on arm64 (48-bit
 * addresses, or 52-bit ones, again only above a hint), and Windows below
 * 2^47.  So 48 bits cover every default, at the price of a 512 KB root of
 * zero BSS (with 256 KB leaves, see pagemap.c) touched only where corona
 * maps memory.  Where the machine's width is smaller (arm64 with 39 bits),
 * the largest request follows it; where the OS ever returns a mapping
 * beyond the map, corona gives it back and the request fails with ENOMEM. */
#define CORONA_MAP_BITS 48

/* User pools alive at once (ids are recycled), and the default amount a
 * growing pool asks its raw_alloc for at a time. */
#define CORONA_MAX_POOLS 256
#define CORONA_POOL_GRANULARITY ((size_t)4 << 20)

/* Bytes a text option (STATS_FILE) may hold, its final NUL included; the
 * value is copied at initialisation, since the environment may change. */
#define CORONA_OPTION_TEXT_MAX 1024

/* Heap profiling (profile.c): the default mean bytes between two samples
 * (the option PROFILE_RATE; jemalloc's and tcmalloc's default too), the
 * frames kept of each sampled stack, the distinct (stack, size) records
 * kept (beyond it, new ones are counted in one record without a stack), and
 * the prefix of the files when no PROFILE prefix is set. */
#define CORONA_PROFILE_RATE ((size_t)512 << 10)
#define CORONA_PROFILE_FRAMES 64
/* The most frames cr_os_backtrace gives (a profile keeps CORONA_PROFILE_FRAMES). */
#define CORONA_BACKTRACE_MAX 128
#define CORONA_PROFILE_MAX_RECORDS 65536
#define CORONA_PROFILE_PREFIX "corona"

/* Statistics counters (the design's COLLECT_STATS).  The CMake option
 * CORONA_STATS (default ON) sets it; at 0 every counter compiles away and
 * corona_stats_get answers ENOTSUP. */
/* Lock ranks checked at run time (sync.h); the build turns it on for Debug
 * and sanitizer builds. */
#ifndef CORONA_LOCK_CHECK
#define CORONA_LOCK_CHECK 0
#endif
/* Internal consistency checks (the backend's index of dirty runs, checked
 * against its bitmap after every change): in the same builds. */
#define CR_SELF_CHECK CORONA_LOCK_CHECK

#ifndef CORONA_STATS
#define CORONA_STATS 1
#endif

/* Debug mode (MALLOC_DEBUG=1; the CMake option CORONA_DEBUG makes it the
 * default): bytes of the header in front of each object, of guaranteed
 * canary bytes after it, and how many freed objects (and bytes) wait in the
 * quarantine before their memory is checked and reused.  Objects above the
 * size bound skip the quarantine (their canaries are still checked). */
#define CORONA_DEBUG_HEADER 32
#define CORONA_DEBUG_CANARY 16
#define CORONA_DEBUG_QUARANTINE 1024
#define CORONA_DEBUG_QUARANTINE_BYTES ((size_t)32 << 20)
#define CORONA_DEBUG_QUARANTINE_MAX_OBJECT ((size_t)4 << 20)
#define CORONA_DEBUG_FILL_NEW 0xA5  /* new objects (not calloc's) */
#define CORONA_DEBUG_FILL_FREED 0xDF /* freed objects in the quarantine */
#define CORONA_DEBUG_FILL_CANARY 0xCB /* from the requested size to the end */

#endif /* CORONA_CONFIG_H */
