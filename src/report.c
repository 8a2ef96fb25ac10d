/* report.c (layer: support) — lines on stderr, formatted without allocating (a report may be
 * due inside malloc, or while its locks are held): fatal errors, warnings
 * and verbose-mode events.  Each line is built in a stack buffer and written
 * with one call, so lines from different threads do not interleave. */
#include "internal/report.h"
#include "internal/os.h"
#include "internal/options.h"

void cr_line_str(cr_line_t *l, const char *s) {
  while (*s && l->n < sizeof l->buf - 1) l->buf[l->n++] = *s++;
}

size_t cr_fmt_u64(char *out, uint64_t v) {
  size_t n = 1; /* the digit count first, then the digits from the last */
  for (uint64_t t = v; t >= 10; t /= 10) n++;
  for (size_t i = n; i-- > 0; v /= 10) out[i] = (char)('0' + v % 10);
  return n;
}

size_t cr_fmt_hex(char *out, uint64_t v, int min_digits) {
  /* The digit count from the highest set bit, then the digits from the
   * last: no search for the first (a profile writes thousands). */
  int digits = v == 0 ? 1 : (64 - __builtin_clzll(v) + 3) / 4;
  if (digits < min_digits) digits = min_digits > 16 ? 16 : min_digits;
  for (int i = digits - 1; i >= 0; i--, v >>= 4) out[i] = "0123456789abcdef"[v & 15];
  return (size_t)digits;
}

/* Appends n bytes of s, cut at the buffer's end (room kept for the newline). */
static void line_put(cr_line_t *l, const char *s, size_t n) {
  for (size_t i = 0; i < n && l->n < sizeof l->buf - 1; i++) l->buf[l->n++] = s[i];
}

void cr_line_u64(cr_line_t *l, uint64_t v) {
  char d[20];
  line_put(l, d, cr_fmt_u64(d, v));
}

void cr_line_addr(cr_line_t *l, const void *addr) {
  char d[16];
  cr_line_str(l, "0x");
  line_put(l, d, cr_fmt_hex(d, (uintptr_t)addr, 16));
}

void cr_line_emit(cr_line_t *l) {
  l->buf[l->n++] = '\n'; /* the appenders leave room for it */
  cr_os_write(NULL, l->buf, l->n);
  l->n = 0;
}

_Noreturn void cr_fatal_line(cr_line_t *l) {
  l->buf[l->n++] = '\n'; /* as cr_line_emit, in the same one write */
  cr_os_fatal(l->buf, l->n);
}

_Noreturn void cr_fatal(const char *what, const void *addr) {
  cr_line_t l = CR_LINE_INIT;
  cr_line_str(&l, what);
  cr_line_str(&l, " ");
  cr_line_addr(&l, addr);
  cr_fatal_line(&l);
}

void cr_verbose_event(const char *what, const void *addr, size_t bytes) {
  cr_line_t l = CR_LINE_INIT;
  cr_line_str(&l, what);
  cr_line_str(&l, " ");
  cr_line_addr(&l, addr);
  cr_line_str(&l, " (");
  cr_line_u64(&l, bytes);
  cr_line_str(&l, " bytes)");
  cr_line_emit(&l);
}
