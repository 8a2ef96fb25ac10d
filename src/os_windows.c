/* os_windows.c (layer: os) — the Windows side of the platform contract (internal/os.h):
 * VirtualAlloc/VirtualFree for memory (reserve+commit, decommit, release),
 * large pages where the process may lock memory, fiber-local storage
 * callbacks for thread exit, the process environment block, WriteFile to
 * the standard error handle.  All of the contract in one file; with the
 * Linux files (os_linux.c, os_linux_map.c, and os_fake.c for tests), the
 * only ones of the core that include OS headers.
 *
 * Nothing here calls corona: the C runtime's malloc stays the C runtime's
 * on Windows (corona does not replace it), so whatever the CRT or the
 * system allocates internally never comes back into the allocator. */
#define WIN32_LEAN_AND_MEAN
#include <windows.h>

#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "internal/os.h"

static void os_find_wait(void);
static void os_thread_exit_ready(void);

/* ---- facts -------------------------------------------------------------------
 * Written once, by os_read_facts under os_facts_once: InitOnceExecuteOnce
 * orders the writes before every return of os_ready.  The address width is
 * that of the highest address a mapping can have (47 on x64). */
static cr_os_info_t os_facts = {.page_size = 4096, .address_bits = 47};
/* Every reservation starts at a multiple of this (64 KiB in practice). */
static size_t os_granularity = 65536;
static INIT_ONCE os_facts_once = INIT_ONCE_STATIC_INIT;

static BOOL CALLBACK os_read_facts(PINIT_ONCE once, PVOID param, PVOID *context) {
  (void)once, (void)param, (void)context;
  SYSTEM_INFO si;
  GetSystemInfo(&si);
  uintptr_t top = (uintptr_t)si.lpMaximumApplicationAddress;
  if (top != 0) os_facts.address_bits = (unsigned)(64 - __builtin_clzll((unsigned long long)top));
  if (si.dwPageSize != 0) os_facts.page_size = si.dwPageSize;
  if (si.dwAllocationGranularity != 0) os_granularity = si.dwAllocationGranularity;
  os_facts.huge_page_size = GetLargePageMinimum();
  os_find_wait();
  os_thread_exit_ready();
  return TRUE;
}

/* The facts (and the wait functions) are read: every entry that uses them
 * calls this first. */
static void os_ready(void) { InitOnceExecuteOnce(&os_facts_once, os_read_facts, NULL, NULL); }

const cr_os_info_t *cr_os_info(void) {
  os_ready();
  return &os_facts;
}

/* ---- memory ------------------------------------------------------------------
 * A mapping is one reservation, committed whole at once: Windows charges
 * the commit up front but backs pages only when touched, which is what an
 * untouched Linux mapping costs too.  A reservation can only be released
 * whole, from its base, so cr_os_unmap gets whole mappings (see os.h), a
 * shrink decommits the tail in place, and the release takes the rest.  An
 * aligned mapping whose start is not a multiple of the allocation
 * granularity (an offset, see os.h) begins inside its reservation: the pages
 * in front stay reserved, never committed, and go with the release. */

static void *os_alloc(void *at, size_t size) {
  return VirtualAlloc(at, size, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE);
}

/* Where a mapping of size bytes whose start + offset is a multiple of
 * alignment would fit now: reserves (not commits) size + alignment to find
 * an aligned hole and releases it at once.  Another thread may take the hole
 * before the caller does: callers try again.  0 when no hole was found. */
static uintptr_t os_aligned_hole(size_t size, size_t alignment, size_t offset) {
  size_t over = size + alignment + os_granularity;
  if (over < size) return 0;
  void *hole = VirtualAlloc(NULL, over, MEM_RESERVE, PAGE_NOACCESS);
  if (hole == NULL) return 0;
  uintptr_t start = (((uintptr_t)hole + offset + alignment - 1) & ~(uintptr_t)(alignment - 1)) - offset;
  VirtualFree(hole, 0, MEM_RELEASE);
  return start;
}

static void *os_map_large_pages(size_t size, size_t alignment, size_t offset);

void *cr_os_map(size_t size, size_t alignment, size_t offset, unsigned flags) {
  if (size == 0) return NULL;
  os_ready(); /* the page size and the granularity */
  if (flags & CR_OS_HUGE_ONLY) return os_map_large_pages(size, alignment, offset);
  /* CR_OS_META is charged all the same (Windows commits or refuses), and
   * CR_OS_HUGE has no transparent huge pages to ask for. */
  void *p = os_alloc(NULL, size);
  if (p == NULL || alignment <= os_facts.page_size || (((uintptr_t)p + offset) & (alignment - 1)) == 0) return p;
  /* Misaligned.  A part of a reservation cannot be given back, so the
   * Linux trick of over-mapping and trimming does not work: find an aligned
   * hole and reserve from the granule holding the aligned address,
   * committing only size bytes from there. */
  VirtualFree(p, 0, MEM_RELEASE);
  for (int attempt = 0; attempt < 16; attempt++) {
    uintptr_t start = os_aligned_hole(size, alignment, offset);
    if (start == 0) return NULL;
    uintptr_t base = start & ~(uintptr_t)(os_granularity - 1); /* >= the hole, which is granule-aligned */
    if (base == start) {
      p = os_alloc((void *)start, size);
      if (p != NULL) return p;
      continue;
    }
    void *r = VirtualAlloc((void *)base, start - base + size, MEM_RESERVE, PAGE_NOACCESS);
    if (r == NULL) continue;
    if (VirtualAlloc((void *)start, size, MEM_COMMIT, PAGE_READWRITE) != NULL) return (void *)start;
    VirtualFree(r, 0, MEM_RELEASE); /* the commit charge is refused: no retry helps */
    return NULL;
  }
  return NULL;
}

void cr_os_unmap(void *addr, size_t size) {
  if (VirtualFree(addr, 0, MEM_RELEASE)) return;
  /* An aligned mapping that begins inside its reservation: release that. */
  MEMORY_BASIC_INFORMATION mbi;
  if (VirtualQuery(addr, &mbi, sizeof mbi) != 0 && mbi.AllocationBase != NULL &&
      VirtualFree(mbi.AllocationBase, 0, MEM_RELEASE))
    return;
  /* Not a mapping of ours (the contract says it always is): at least give
   * the memory back, keeping the addresses reserved. */
  VirtualFree(addr, size, MEM_DECOMMIT);
}

/* Committed pages come in on their first touch; Windows has no call that
 * brings in demand-zero pages ahead of it, so the hint does nothing. */
void cr_os_populate(void *addr, size_t size) {
  (void)addr;
  (void)size;
}

void cr_os_purge(void *addr, size_t size) {
  /* MEM_RESET would be cheaper but leaves the old contents readable until
   * the system reuses the pages; the contract promises zeros, which only
   * decommitting gives.  Committing again at once keeps the range usable
   * (the pages come back zeroed on first touch). */
  if (!VirtualFree(addr, size, MEM_DECOMMIT)) {
    /* Large-page memory cannot be decommitted: keep the promise by hand. */
    memset(addr, 0, size);
    return;
  }
  /* The commit charge just released is normally there to be taken back;
   * only another process racing for the last of it can refuse us. */
  for (int attempt = 0; attempt < 100; attempt++) {
    if (VirtualAlloc(addr, size, MEM_COMMIT, PAGE_READWRITE) != NULL) return;
    Sleep(1);
  }
  /* Leaving the range inaccessible would fault later, somewhere unrelated. */
  static const char msg[] = "corona: the system refused to commit purged pages again (out of commit charge)\n";
  cr_os_fatal(msg, sizeof msg - 1);
}

/* Whether [addr, addr+size) lies in the one reservation based at base. */
static bool os_in_reservation(const void *base, const char *addr, size_t size) {
  MEMORY_BASIC_INFORMATION mbi;
  if (VirtualQuery(addr + size - 1, &mbi, sizeof mbi) == 0) return false;
  return mbi.State != MEM_FREE && mbi.AllocationBase == base;
}

void *cr_os_remap(void *addr, size_t old_size, size_t new_size, void *target) {
  /* Pages cannot be moved between reservations. */
  if (target != NULL) return NULL;
  char *p = addr;
  if (new_size < old_size) { /* the tail stays reserved until the release */
    return VirtualFree(p + new_size, old_size - new_size, MEM_DECOMMIT) ? addr : NULL;
  }
  if (new_size > old_size) {
    /* Growing in place works only into a tail an earlier shrink left
     * reserved; Windows cannot extend a reservation. */
    if (new_size > UINTPTR_MAX - (uintptr_t)p || !os_in_reservation(addr, p + old_size, new_size - old_size))
      return NULL;
    return VirtualAlloc(p + old_size, new_size - old_size, MEM_COMMIT, PAGE_READWRITE) != NULL ? addr : NULL;
  }
  return addr;
}

/* A reservation is released whole, so neither cuts nor joins are possible. */
bool cr_os_cut(void *addr, size_t size, size_t at, bool join) {
  (void)addr, (void)size, (void)at, (void)join;
  return false;
}

/* Large pages need SeLockMemoryPrivilege held and enabled in the token.
 * Enabling it is tried once; the answer is kept. */
enum { LP_UNKNOWN, LP_YES, LP_NO };
static atomic_int os_large_pages = LP_UNKNOWN;

static bool os_enable_lock_memory(void) {
  HANDLE token;
  if (!OpenProcessToken(GetCurrentProcess(), TOKEN_ADJUST_PRIVILEGES | TOKEN_QUERY, &token)) return false;
  TOKEN_PRIVILEGES tp;
  tp.PrivilegeCount = 1;
  tp.Privileges[0].Attributes = SE_PRIVILEGE_ENABLED;
  bool ok = LookupPrivilegeValueA(NULL, "SeLockMemoryPrivilege", &tp.Privileges[0].Luid) &&
            AdjustTokenPrivileges(token, FALSE, &tp, 0, NULL, NULL) &&
            GetLastError() == ERROR_SUCCESS; /* not ERROR_NOT_ALL_ASSIGNED: the token holds it */
  CloseHandle(token);
  return ok;
}

/* Large pages are committed and locked at once, in a reservation of
 * their own: an aligned one takes an aligned hole (the contract makes size,
 * alignment and offset large-page multiples, so the hole starts on a
 * granule). */
static void *os_map_large_pages(size_t size, size_t alignment, size_t offset) {
  if (os_facts.huge_page_size == 0 || size % os_facts.huge_page_size != 0) return NULL;
  int state = atomic_load_explicit(&os_large_pages, memory_order_relaxed);
  if (state == LP_UNKNOWN) {
    state = os_enable_lock_memory() ? LP_YES : LP_NO;
    atomic_store_explicit(&os_large_pages, state, memory_order_relaxed);
  }
  if (state != LP_YES) return NULL;
  const DWORD type = MEM_RESERVE | MEM_COMMIT | MEM_LARGE_PAGES;
  void *p = VirtualAlloc(NULL, size, type, PAGE_READWRITE);
  if (p == NULL || alignment <= os_facts.huge_page_size || (((uintptr_t)p + offset) & (alignment - 1)) == 0) return p;
  VirtualFree(p, 0, MEM_RELEASE);
  for (int attempt = 0; attempt < 16; attempt++) {
    uintptr_t start = os_aligned_hole(size, alignment, offset);
    if (start == 0) return NULL;
    if ((p = VirtualAlloc((void *)start, size, type, PAGE_READWRITE)) != NULL) return p;
  }
  return NULL;
}

uint64_t cr_os_now_ms(void) { return GetTickCount64(); }

/* ---- environment ---------------------------------------------------------------
 * One copy of the environment block, taken at the first look (options are
 * read once, at initialisation) and kept: GetEnvironmentStringsA allocates
 * it from the process heap, not from corona.  Names compare without case,
 * as Windows does. */
static _Atomic(char *) os_env_block;

static const char *os_env(void) {
  char *env = atomic_load_explicit(&os_env_block, memory_order_acquire);
  if (env != NULL) return env;
  char *fresh = GetEnvironmentStringsA();
  if (fresh == NULL) return NULL;
  /* acq_rel: publishes our copy; on failure, reads the winner's. */
  if (atomic_compare_exchange_strong_explicit(&os_env_block, &env, fresh, memory_order_acq_rel,
                                              memory_order_acquire))
    return fresh;
  FreeEnvironmentStringsA(fresh);
  return env;
}

static char os_upper(char c) { return c >= 'a' && c <= 'z' ? (char)(c - 'a' + 'A') : c; }

const char *cr_os_env(const char *prefix, size_t i) {
  const char *e = os_env();
  if (e == NULL) return NULL;
  for (; *e != '\0'; e += strlen(e) + 1) {
    if (*e == '=') continue; /* the hidden "=C:=C:\dir" entries of the shell */
    size_t k = 0;
    while (prefix[k] != '\0' && os_upper(e[k]) == os_upper(prefix[k])) k++;
    if (prefix[k] == '\0' && i-- == 0) return e;
  }
  return NULL;
}

/* ---- threads --------------------------------------------------------------------
 * Fiber-local storage slots with a callback: Windows calls it when a thread
 * (or fiber) that stored a non-NULL value ends, in the DLL and in a program
 * linked with the static library alike, before the C runtime's own
 * per-thread teardown (emulated TLS included) runs.  It is also called for
 * the thread that ends the process, after every other thread was stopped
 * wherever it was, maybe holding an allocator lock: then it does nothing,
 * the memory goes with the process. */
static DWORD os_fls[CR_OS_THREAD_SLOTS] = {FLS_OUT_OF_INDEXES, FLS_OUT_OF_INDEXES};
static _Atomic(void (*)(void *value)) os_on_exit[CR_OS_THREAD_SLOTS];
static BOOLEAN(NTAPI *os_shutdown_in_progress)(void);

static void os_thread_exit(unsigned slot, void *value) {
  if (value == NULL) return;
  if (os_shutdown_in_progress != NULL && os_shutdown_in_progress()) return;
  atomic_load_explicit(&os_on_exit[slot], memory_order_relaxed)(value);
}
static void NTAPI os_fls_exit0(void *value) { os_thread_exit(0, value); }
static void NTAPI os_fls_exit1(void *value) { os_thread_exit(1, value); }
static PFLS_CALLBACK_FUNCTION const os_fls_callback[CR_OS_THREAD_SLOTS] = {os_fls_exit0, os_fls_exit1};
_Static_assert(CR_OS_THREAD_SLOTS == 2, "one FLS callback per slot");

/* Pins corona.dll (a no-op in a program): the callbacks must outlive every
 * thread, so a FreeLibrary must not unload the code they call.  Called
 * once, with the facts. */
static void os_thread_exit_ready(void) {
  HMODULE self;
  GetModuleHandleExA(GET_MODULE_HANDLE_EX_FLAG_FROM_ADDRESS | GET_MODULE_HANDLE_EX_FLAG_PIN,
                     (LPCSTR)(uintptr_t)&cr_os_thread_exit, &self);
  HMODULE ntdll = GetModuleHandleA("ntdll.dll");
  FARPROC f = ntdll != NULL ? GetProcAddress(ntdll, "RtlDllShutdownInProgress") : NULL;
  os_shutdown_in_progress = (BOOLEAN(NTAPI *)(void))(uintptr_t)f;
}

/* Makes the slot's FLS index, once per slot (param: the slot). */
static BOOL CALLBACK os_fls_make(PINIT_ONCE once, PVOID param, PVOID *context) {
  (void)once, (void)context;
  unsigned slot = (unsigned)(uintptr_t)param;
  os_fls[slot] = FlsAlloc(os_fls_callback[slot]);
  return TRUE;
}

/* os_on_exit[slot]: stored by every caller (always the same function)
 * before the slot's once, whose completion orders os_fls[slot] before
 * every return of InitOnceExecuteOnce. */
static INIT_ONCE os_fls_once[CR_OS_THREAD_SLOTS] = {INIT_ONCE_STATIC_INIT, INIT_ONCE_STATIC_INIT};

bool cr_os_thread_exit(unsigned slot, void (*on_exit)(void *value), void *value) {
  os_ready(); /* the pinning, and the shutdown test of os_thread_exit */
  atomic_store_explicit(&os_on_exit[slot], on_exit, memory_order_relaxed);
  InitOnceExecuteOnce(&os_fls_once[slot], os_fls_make, (PVOID)(uintptr_t)slot, NULL);
  return os_fls[slot] != FLS_OUT_OF_INDEXES && FlsSetValue(os_fls[slot], value);
}

/* No symbol interposition on Windows: corona never stands in for the CRT. */
void *cr_os_next_symbol(const char *name) {
  (void)name;
  return NULL;
}

static void os_keep_stderr(void);

/* No fork on Windows: only the exit hook. */
void cr_os_process_hooks(void (*prepare)(void), void (*parent)(void), void (*child)(void), void (*at_exit)(void)) {
  (void)prepare;
  (void)parent;
  (void)child;
  if (at_exit == NULL) return;
  os_keep_stderr();
  atexit(at_exit);
}

void cr_os_yield(void) { SwitchToThread(); }

/* WaitOnAddress and WakeByAddressSingle (Windows 8 and later), looked up
 * in KernelBase.dll at start-up rather than linked from Synchronization.lib,
 * so that programs on the static library need no extra library.  Without
 * them a waiter yields and looks again. */
static BOOL(WINAPI *os_wait_on_address)(volatile VOID *, PVOID, SIZE_T, DWORD);
static VOID(WINAPI *os_wake_by_address)(PVOID);

static void os_find_wait(void) {
  HMODULE kb = GetModuleHandleA("kernelbase.dll");
  if (kb == NULL) return;
  FARPROC w = GetProcAddress(kb, "WaitOnAddress"), k = GetProcAddress(kb, "WakeByAddressSingle");
  if (w == NULL || k == NULL) return;
  os_wait_on_address = (BOOL(WINAPI *)(volatile VOID *, PVOID, SIZE_T, DWORD))(uintptr_t)w;
  os_wake_by_address = (VOID(WINAPI *)(PVOID))(uintptr_t)k;
}

void cr_os_wait(atomic_int *addr, int expected, uint64_t ms) {
  os_ready();
  DWORD limit = ms == CR_OS_FOREVER ? INFINITE : ms < (uint64_t)(INFINITE - 1) ? (DWORD)ms : INFINITE - 1;
  if (os_wait_on_address != NULL) os_wait_on_address((volatile VOID *)addr, &expected, sizeof expected, limit);
  else if (limit == INFINITE) SwitchToThread();
  else Sleep(limit < 10 ? limit : 10); /* no WaitOnAddress: the caller looks again */
}

void cr_os_wake_one(atomic_int *addr) {
  os_ready();
  if (os_wake_by_address != NULL) os_wake_by_address((PVOID)addr);
}

/* ---- background work ------------------------------------------------------------
 * No purger thread on Windows: ExitProcess stops every other thread wherever
 * it is, maybe inside a corona lock, before the DLL's exit-time frees run,
 * which would then wait for that lock for ever.  So idle memory goes back on
 * the program's own calls there, as before (README, BACKGROUND_PURGE). */
bool cr_os_thread_start(void (*fn)(void *arg), void *arg) {
  (void)fn;
  (void)arg;
  return false;
}

/* ---- output ------------------------------------------------------------------ */
/* A duplicate of the standard error handle (cr_os_process_hooks), for reports
 * due after the program has closed or replaced its own. */
static HANDLE kept_err = NULL;

static void os_keep_stderr(void) {
  HANDLE err = GetStdHandle(STD_ERROR_HANDLE), dup;
  if (kept_err != NULL || err == NULL || err == INVALID_HANDLE_VALUE) return;
  if (DuplicateHandle(GetCurrentProcess(), err, GetCurrentProcess(), &dup, 0, FALSE, DUPLICATE_SAME_ACCESS))
    kept_err = dup;
}

static bool os_write_all(HANDLE h, const char *msg, size_t len) {
  if (h == NULL || h == INVALID_HANDLE_VALUE) return false;
  while (len > 0) {
    DWORD n = 0, want = len > 0x40000000u ? 0x40000000u : (DWORD)len;
    if (!WriteFile(h, msg, want, &n, NULL) || n == 0) return false;
    msg += n;
    len -= n;
  }
  return true;
}

static bool os_write_err(const char *msg, size_t len) {
  return os_write_all(GetStdHandle(STD_ERROR_HANDLE), msg, len) || (kept_err != NULL && os_write_all(kept_err, msg, len));
}

bool cr_os_write(const char *path, const char *data, size_t len) {
  if (path == NULL) return os_write_err(data, len);
  HANDLE h = CreateFileA(path, data == NULL ? GENERIC_WRITE : FILE_APPEND_DATA, FILE_SHARE_READ | FILE_SHARE_WRITE,
                         NULL, data == NULL ? CREATE_ALWAYS : OPEN_ALWAYS, FILE_ATTRIBUTE_NORMAL, NULL);
  if (h == INVALID_HANDLE_VALUE) return false;
  bool ok = data == NULL || os_write_all(h, data, len);
  CloseHandle(h);
  return ok;
}

uint64_t cr_os_process_id(char *name, size_t cap) {
  char path[MAX_PATH + 1];
  DWORD len = GetModuleFileNameA(NULL, path, MAX_PATH);
  if (len == 0 || len >= MAX_PATH) len = 0;
  path[len] = '\0';
  const char *from = path;
  for (const char *c = path; *c != '\0'; c++)
    if (*c == '\\' || *c == '/') from = c + 1;
  size_t n = 0;
  for (; cap > 0 && from[n] != '\0' && n < cap - 1; n++) name[n] = from[n];
  if (cap > 0) name[n] = '\0';
  return (uint64_t)GetCurrentProcessId();
}

/* ---- stacks and files (the heap profiler) ------------------------------------ */

/* Windows: stacks keep corona's frames (pprof leaves out malloc and what
 * it calls by name where it can). */
int cr_os_backtrace(void **pcs, int max, cr_os_stack_memo_t *memo) {
  (void)memo; /* RtlCaptureStackBackTrace walks x64's unwind tables quickly enough */
  if (max <= 0) return 0;
  return (int)RtlCaptureStackBackTrace(1, (DWORD)max, pcs, NULL); /* from our caller */
}

/* Symbols need dbghelp, which allocates: none here (a dump still has the
 * addresses). */
bool cr_os_symbol(const void *pc, char *name, size_t cap) {
  (void)pc, (void)name, (void)cap;
  return false;
}

bool cr_os_write_mappings(const char *path) {
  (void)path;
  return false;
}

_Noreturn void cr_os_fatal(const char *msg, size_t len) {
  os_write_err(msg, len);
  /* As abort() does, a SIGABRT handler of the program runs first; the
   * C runtime's default ends the process with status 3 (and, unlike its
   * abort(), prints no message of its own after corona's line). */
  raise(SIGABRT);
  TerminateProcess(GetCurrentProcess(), 3);
  for (;;) Sleep(INFINITE);
}
