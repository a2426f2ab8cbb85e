/* libFuzzer harness for orch-write's fence parser (tools/write/fence.c,
 * linked as orch-write links it) on any bytes: every block's content ends
 * in a newline, its lines rise, only the last may be unclosed, a callback
 * that stops the scan stops it; a name, once split (confine.c), is names
 * joined by '/'. And the text with its line ends made CRLF (when it has no
 * CR of its own) gives the same blocks.
 * Byte 0: the block whose callback stops the scan (0: none). */
#include <stdlib.h>
#include <string.h>
#include "../../tools/write/write.h"

struct seen { jv blocks; long last_line; int stop_at, unclosed; };

static int on_block(const struct fence_block *b, void *ctx)
{
	struct seen *s = ctx;
	if ((b->len && b->content[b->len - 1] != '\n') || b->content[b->len] != 0 ||
	    b->line <= s->last_line || s->unclosed)
		abort();
	s->last_line = b->line;
	s->unclosed = !b->closed;
	if (b->name) {
		struct rec r = {.content = jv_null()};
		if (path_split(b->name, strlen(b->name), &r) == R_NONE)
			for (size_t i = 0; i < r.ncomp; i++)
				if (!*r.comp[i] || strchr(r.comp[i], '/') || strcmp(r.comp[i], "..") == 0)
					abort();
		rec_free(&r);
	}
	jv one = jv_array_append(jv_array(), b->name ? jv_string(b->name) : jv_null());
	one = jv_array_append(one, jv_string_sized(b->content, (int)b->len));
	one = jv_array_append(one, jv_number(b->line));
	one = jv_array_append(one, jv_string_sized(b->info, (int)b->info_len));
	s->blocks = jv_array_append(s->blocks, jv_array_append(one, jv_bool(b->closed)));
	return jv_array_length(jv_copy(s->blocks)) == s->stop_at ? 7 : 0;
}

/* The blocks of text[0..n), in a block of its own (ASan sees overreads). */
static jv blocks(const char *text, size_t n, int stop_at)
{
	char *copy = orch_xmalloc(n + 1);
	memcpy(copy, text, n);
	struct seen s = {jv_array(), 0, stop_at, 0};
	int rc = fence_scan(copy, n, on_block, &s);
	if (rc != (stop_at && jv_array_length(jv_copy(s.blocks)) == stop_at ? 7 : 0))
		abort();
	free(copy);
	return s.blocks;
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	if (size < 1)
		return 0;
	const char *text = (const char *)data + 1;
	size_t n = size - 1;
	jv lf = blocks(text, n, data[0]);
	if (!memchr(text, '\r', n)) {
		char *crlf = orch_xmalloc(2 * n + 1);
		size_t m = 0;
		for (size_t i = 0; i < n; i++) {
			if (text[i] == '\n')
				crlf[m++] = '\r';
			crlf[m++] = text[i];
		}
		jv cr = blocks(crlf, m, data[0]);
		free(crlf);
		if (!jv_equal(jv_copy(lf), cr))
			abort();
	}
	jv_free(lf);
	return 0;
}
