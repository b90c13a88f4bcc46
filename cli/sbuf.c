/* Growing strings, and text fitted for a terminal: acuctl builds each screen
 * or reply in one of these and writes it at once. Text from the daemon is
 * cleaned on the way in (no control characters reach the terminal). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acuctl.h"

void sb_add(struct sbuf *b, const char *s, size_t n)
{
	if (acu_grow(&b->s, &b->cap, b->len + n + 1, 256) < 0)
		acuctl_die(RC_UNREACHABLE, "out of memory");
	memcpy(b->s + b->len, s, n);
	b->len += n;
	b->s[b->len] = '\0';
}

void sb_puts(struct sbuf *b, const char *s)
{
	sb_add(b, s, strlen(s));
}

void sb_printf(struct sbuf *b, const char *fmt, ...)
{
	char small[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(small, sizeof small, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n < sizeof small) {
		sb_add(b, small, (size_t)n);
		return;
	}
	sb_add(b, "", 0);
	{
		char *big = malloc((size_t)n + 1);

		if (!big)
			acuctl_die(RC_UNREACHABLE, "out of memory");
		va_start(ap, fmt);
		vsnprintf(big, (size_t)n + 1, fmt, ap);
		va_end(ap);
		sb_add(b, big, (size_t)n);
		free(big);
	}
}

/* Writes and empties the buffer. */
void sb_flush(struct sbuf *b, FILE *f)
{
	if (b->len)
		fwrite(b->s, 1, b->len, f);
	b->len = 0;
	fflush(f);
}

void sb_free(struct sbuf *b)
{
	free(b->s);
	b->s = NULL;
	b->len = b->cap = 0;
}

/* Display columns of UTF-8 text: one per code point (names are short and
 * mostly Latin; wide characters would only misalign their own row). */
int sb_cols(const char *s)
{
	int n = 0;

	for (; *s; s++)
		if (((unsigned char)*s & 0xC0) != 0x80)
			n++;
	return n;
}

/* Copies at most `cols` columns of s. Text from the daemon reaches a terminal:
 * control characters (C0, DEL, C1) become '?' so none can drive it. */
void sb_clean(struct sbuf *b, const char *s, int cols)
{
	const unsigned char *p = (const unsigned char *)s;

	while (*p) {
		if ((*p & 0xC0) != 0x80) {
			if (cols-- <= 0)
				break;
		}
		if (*p < 0x20 || *p == 0x7f) {
			sb_add(b, "?", 1);
		} else if (*p == 0xC2 && p[1] >= 0x80 && p[1] <= 0x9F) {
			sb_add(b, "?", 1);
			p++;
		} else {
			sb_add(b, (const char *)p, 1);
		}
		p++;
	}
}

void sb_clean_all(struct sbuf *b, const char *s)
{
	sb_clean(b, s, 1 << 30);
}

/* Puts s in at most max columns, marking a cut with '~'. Returns columns used. */
int sb_text(struct sbuf *b, const char *s, int max, const char *col)
{
	int n = sb_cols(s), cut = n > max;

	if (max <= 0)
		return 0;
	if (col)
		sb_puts(b, col);
	sb_clean(b, s, cut ? max - 1 : n);
	if (cut)
		sb_add(b, "~", 1);
	if (col)
		sb_puts(b, C_OFF);
	return cut ? max : n;
}

void sb_pad(struct sbuf *b, int n)
{
	for (; n > 0; n--)
		sb_add(b, " ", 1);
}

/* A table cell: text cut to width, padded to width. */
void sb_cell(struct sbuf *b, const char *s, int width, const char *col)
{
	sb_pad(b, width - sb_text(b, s, width, col));
}

/* Cuts every line to cols visible columns, so that nothing wraps on a narrow
 * terminal; escape sequences pass whole (colours still get reset). */
void sb_clip(struct sbuf *b, int cols)
{
	size_t r = 0, w = 0;
	int col = 0, skipping = 0;

	while (r < b->len) {
		unsigned char c = (unsigned char)b->s[r];

		if (c == '\n') {
			col = skipping = 0;
			b->s[w++] = b->s[r++];
		} else if (c == 0x1b) {
			size_t e = r + 1;

			if (e < b->len && b->s[e] == '[')
				for (e++; e < b->len && !(b->s[e] >= 0x40 && b->s[e] <= 0x7e); e++)
					;
			e = e < b->len ? e + 1 : e;
			while (r < e)
				b->s[w++] = b->s[r++];
		} else {
			if ((c & 0xC0) != 0x80)
				skipping = ++col > cols;
			if (!skipping)
				b->s[w++] = b->s[r];
			r++;
		}
	}
	b->len = w;
	if (b->s)
		b->s[w] = '\0';
}
