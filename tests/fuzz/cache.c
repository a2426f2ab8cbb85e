/* libFuzzer harness for orch-cache's entry reader (entry_check in
 * tools/orch-cache.c, included so its statics are reachable; its main is
 * renamed). A corrupt or truncated entry must be a miss, never a wrong
 * answer (CONTRACT §6):
 *  - the input as an entry's text: checked without a crash;
 *  - the input as a response (if it is JSON): its entry (entry_text) is
 *    read back as that response, and the entry with one byte changed, or
 *    cut short, is either refused or still read as that same response.
 * Byte 0 picks the line (response or hit form) and the damage. */
#define main orch_cache_main
#include "../../tools/orch-cache.c"
#undef main

static const char key[] = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/* The line the entry text (n bytes) gives, or NULL: in its own block, so
 * ASan sees any read past its end. */
static jv line_of(const char *text, size_t n, int which)
{
	char *buf = orch_xmalloc(n + 1), *line;
	size_t len;
	memcpy(buf, text, n);
	jv r = entry_check(buf, n, key, which, &line, &len) ? jv_null() : jv_string_sized(line, (int)len);
	free(buf);
	return r;
}

static void round_trip(jv v, int which, unsigned damage)
{
	jv want = which ? jv_dump_string(mark(jv_copy(v), "hit"), 0) : jv_dump_string(jv_copy(v), 0);
	jv text = entry_text(key, v);
	const char *t = jv_string_value(text);
	size_t n = (size_t)jv_string_length_bytes(jv_copy(text));
	jv got = line_of(t, n, which);
	if (!jv_equal(jv_copy(got), jv_copy(want)))
		abort();  /* a whole entry is read as stored */
	jv_free(got);
	char *bad = orch_xmalloc(n);
	memcpy(bad, t, n);
	bad[damage % n] ^= (char)(1 + damage / n % 255);
	got = line_of(bad, damage & 1 ? n : damage % n, which);  /* changed, or cut */
	if (jv_get_kind(got) != JV_KIND_NULL && !jv_equal(jv_copy(got), jv_copy(want)))
		abort();  /* a damaged entry gave another answer */
	jv_free(got);
	free(bad);
	jv_free(want);
	jv_free(text);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	if (size < 2)
		return 0;
	int which = data[0] & 1;
	jv_free(line_of((const char *)data + 1, size - 1, which));
	jv v = jv_parse_sized((const char *)data + 1, (int)(size - 1));
	if (jv_get_kind(v) == JV_KIND_OBJECT)  /* entry_text drops it too */
		v = jv_object_delete(v, jv_string("cache"));
	if (jv_is_valid(v))
		round_trip(v, which, data[0] >> 1 | (unsigned)size << 7);
	else
		jv_free(v);
	return 0;
}
