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

void cr_line_u64(cr_line_t *l, uint64_t v) {
  char digits[20];
  int n = 0;
  do {
    digits[n++] = (char)('0' + v % 10);
    v /= 10;
  } while (v != 0);
  while (n > 0 && l->n < sizeof l->buf - 1) l->buf[l->n++] = digits[--n];
}

void cr_line_addr(cr_line_t *l, const void *addr) {
  uintptr_t a = (uintptr_t)addr;
  cr_line_str(l, "0x");
  for (int shift = (int)sizeof a * 8 - 4; shift >= 0 && l->n < sizeof l->buf - 1; shift -= 4)
    l->buf[l->n++] = "0123456789abcdef"[(a >> shift) & 15];
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
