/* report.h (layer: support) — lines on stderr without allocating, and the
 * fatal errors that name an address.
 * A line starts as CR_LINE_INIT ("corona: "), gets parts appended (cut at
 * the buffer's end) and goes out in one write. */
#ifndef CORONA_REPORT_H
#define CORONA_REPORT_H

#include <stddef.h>
#include <stdint.h>

typedef struct cr_line_s {
  char buf[256];
  size_t n;
} cr_line_t;
#define CR_LINE_INIT {"corona: ", 8}
/* v in decimal into out (room for 20), without allocating; the digits'
 * count. */
size_t cr_fmt_u64(char *out, uint64_t v);
/* v in hexadecimal into out (room for 16), at least min_digits digits
 * (leading zeros), no prefix; the digits' count. */
size_t cr_fmt_hex(char *out, uint64_t v, int min_digits);
void cr_line_str(cr_line_t *l, const char *s);
void cr_line_u64(cr_line_t *l, uint64_t v);
void cr_line_addr(cr_line_t *l, const void *addr); /* 0x + 16 hex digits */
void cr_line_emit(cr_line_t *l);
_Noreturn void cr_fatal_line(cr_line_t *l); /* emits, then aborts */
/* Verbose mode: "corona: <what> 0x<addr> (<bytes> bytes)". */
void cr_verbose_event(const char *what, const void *addr, size_t bytes);
/* Reports a fatal misuse naming the address, then aborts. */
_Noreturn void cr_fatal(const char *what, const void *addr);

#endif /* CORONA_REPORT_H */
