/* libFuzzer harness for orch-plan's spec reader, checks and plan writer:
 * the whole of orch-plan.c, with main renamed, fed each input as a spec.
 * Plans are written from the tree, not as jv, so each line printed must
 * read back (libjq) as a value that prints as the very same line. */
#define main orch_plan_main
#include "../../tools/orch-plan.c"
#undef main

static void check_lines(const char *text, size_t len)
{
	for (const char *p = text, *e = text + len; p < e; ) {
		const char *nl = memchr(p, '\n', e - p);
		if (!nl) {
			fprintf(stderr, "plan: a line without its newline\n");
			abort();
		}
		jv v = orch_parse_line(p, nl - p);
		size_t n = 0;
		char *again = jv_is_valid(v) ? orch_json_text(v, &n) : (jv_free(v), NULL);
		if (!again || n != (size_t)(nl - p) || memcmp(again, p, n) != 0) {
			fprintf(stderr, "plan line: %.*s\nreads back as: %s\n", (int)(nl - p), p,
			        again ? again : "(invalid)");
			abort();
		}
		free(again);
		p = nl + 1;
	}
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	char *text = orch_xmalloc(size + 1);
	memcpy(text, data, size);
	text[size] = 0;
	check_jq = size < 512;  /* jq's compiler is slow: fuzz it on small inputs */
	char *out = NULL;
	size_t len = 0;
	FILE *mem = open_memstream(&out, &len), *real = stdout;
	if (!mem)
		abort();
	stdout = mem;
	plan(text, size, "<fuzz>", 'p');
	fclose(mem);
	stdout = real;
	check_lines(out, len);
	free(out);
	free(text);
	return 0;
}
