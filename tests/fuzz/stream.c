/* libFuzzer harness for orch-call's stream parsers: http.c's body
 * callback, which cuts a 200 stream into lines (and SSE events), and the
 * rows' parsers (ollama's NDJSON, openai's and anthropic's SSE data) in
 * tools/call/, linked as orch-call links them. http.c is included, so its
 * static callback is reachable; libcurl is never loaded (the one call the
 * callback makes, for the status, is answered here: 200).
 *
 * Input: byte 0 picks the row and seeds the chunk sizes, the rest is the
 * body. It is fed twice, whole and in random chunks (1 to 64 bytes), then
 * ended as finish_attempt ends a stream: both must give the same answer
 * (text, finish reason, tokens, end, error). */
#include <stdarg.h>
#include "../../tools/call/http.c"

struct call_opts opt = {.stream = 1};

/* orch-call.c's, as far as the parsers use them. */
void job_fail(struct job *j, int transient, const char *fmt, ...)
{
	if (j->err)
		return;
	va_list ap;
	va_start(ap, fmt);
	if (vasprintf(&j->err, fmt, ap) < 0)
		abort();
	va_end(ap);
	j->transient = transient;
}

void job_text(struct job *j, const char *s, size_t n)
{
	j->content = jv_string_append_buf(j->content, s, (int)n);
}

void job_begin_attempt(struct job *j) { (void)j; }
void job_settle(struct job *j) { (void)j; }
char *redact(const char *s) { return orch_xstrdup(s); }

static CURLcode status_200(CURL *h, CURLINFO what, ...)
{
	(void)h, (void)what;
	va_list ap;
	va_start(ap, what);
	*va_arg(ap, long *) = 200;
	va_end(ap);
	return CURLE_OK;
}

static const struct provider rows[] = {
	{.name = "ollama", .stream = ollama_line},
	{.name = "openai", .stream = openai_data, .sse = 1},
	{.name = "anthropic", .stream = anthropic_data, .sse = 1},
};

/* The answer to body through row, cut into chunks by seed (0: whole). */
static jv answer(const struct provider *row, const unsigned char *body, size_t n, unsigned seed)
{
	struct job j = {.p = row, .content = jv_string(""), .finish = jv_null(), .logfd = -1};
	struct http x = {0};
	j.http = &x;
	for (size_t at = 0, k; at < n && !j.err; at += k) {
		k = seed ? 1 + (seed = seed * 1103515245 + 12345) / 65536 % 64 : n;
		k = k < n - at ? k : n - at;
		char *chunk = orch_xmalloc(k + 1);  /* its own block: ASan sees overreads */
		memcpy(chunk, body + at, k);
		on_body(chunk, 1, k, &j);
		free(chunk);
	}
	if (x.line.n > 0)  /* as finish_attempt ends a 200 stream */
		stream_line(&j, x.line.p, x.line.n);
	stream_line(&j, (char[]){0}, 0);
	jv a = jv_array_append(jv_array(), j.content);
	a = jv_array_append(a, j.finish);
	a = jv_array_append(a, jv_number(j.has_ptok ? j.ptok : -1));
	a = jv_array_append(a, jv_number(j.has_ctok ? j.ctok : -1));
	a = jv_array_append(a, jv_number(j.ended));
	a = jv_array_append(a, j.err ? jv_string(j.err) : jv_null());
	free(j.err);
	orch_buf_free(&x.line);
	orch_buf_free(&x.sse);
	orch_buf_free(&x.raw);
	return a;
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	if (size < 1)
		return 0;
	lc.easy_getinfo = status_200;
	const struct provider *row = &rows[data[0] % 3];
	jv whole = answer(row, data + 1, size - 1, 0);
	jv cut = answer(row, data + 1, size - 1, data[0] | 1);
	if (!jv_equal(jv_copy(whole), jv_copy(cut))) {
		jv w = jv_dump_string(whole, 0), c = jv_dump_string(cut, 0);
		fprintf(stderr, "%s: whole %s\n%s: in chunks %s\n", row->name, jv_string_value(w),
		        row->name, jv_string_value(c));
		abort();
	}
	jv_free(whole);
	jv_free(cut);
	return 0;
}
