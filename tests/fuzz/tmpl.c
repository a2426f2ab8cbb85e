/* libFuzzer harness for the template renderer (lib/tmpl.c): each input is
 * compiled and rendered against one fixed step input record.
 *
 * The bytes up to the first NUL are one template, the rest a second, so a
 * set of templates shares one jq program as orch-call's system and prompt
 * do. Checked besides the sanitizers:
 *  - orch_tmpl_check (orch-plan's check) accepts exactly what
 *    orch_tmpl_compile (orch-call's render) compiles;
 *  - rendering gives text or an error, never both or neither, and the same
 *    answer twice (the jq state is clean after an error);
 *  - an input that starts with "." and has no "{{" is also taken as one
 *    expression X: {{ X }} and {{ (X) }} render alike, so a plain path read
 *    without jq agrees with jq on it (value, null or error). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "orch.h"

static const char context[] =
	"{\"job_id\":\"j\",\"step\":\"s\",\"attempt\":1,\"task\":\"a todo app\","
	"\"inputs\":{\"language\":\"python\",\"n\":null,\"x\":1,\"t\":true,\"o\":{\"k\":\"v\"}},"
	"\"spec\":{\"id\":\"s\",\"prompt\":\"p\"},"
	"\"steps\":{\"a\":{\"step\":\"a\",\"output\":\"text\\n\",\"exit_code\":0,"
	"\"files\":[{\"path\":\"a.py\"},{\"path\":\"b.py\"}],\"json\":{\"k\":[1,null,\"s\"]}},"
	"\"b\":null,\"c\":{\"output\":\"\",\"n\":0}},\"s\":\"str\",\"arr\":[1,null,{}]}";

static jv ctx;

static void fail(const char *what, const char *a, const char *b)
{
	fprintf(stderr, "tmpl fuzz: %s\n  %s\n  %s\n", what, a ? a : "(null)", b ? b : "(null)");
	abort();
}

static int same(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* Render template i: its text, or NULL (the error checked and dropped). */
static char *render(orch_tmpl *t, size_t i)
{
	char *err = NULL, *text = orch_tmpl_render(t, i, ctx, &err);
	if (!text == !err)
		fail("render gave text and an error, or neither", text, err);
	free(err);
	return text;
}

/* Compile texts (n of them), compare with check, render each twice.
 * out (if not NULL) gets template 0's text; returns 0 if it compiled. */
static int run(const char **texts, size_t n, char **out)
{
	char *errs[2], *cerrs[2];
	orch_tmpl *t = orch_tmpl_compile(texts, n, errs);
	int checked = orch_tmpl_check(texts, n, cerrs);
	for (size_t i = 0; i < n; i++) {
		free(errs[i]);
		free(cerrs[i]);
	}
	if ((t != NULL) != (checked == 0))
		fail("check and compile disagree on", texts[0], n > 1 ? texts[1] : "");
	if (out)
		*out = NULL;
	for (size_t i = 0; t && i < n; i++) {
		char *a = render(t, i), *b = render(t, i);
		if (!same(a, b))
			fail("two renders differ", a, b);
		free(b);
		if (out && i == 0)
			*out = a;
		else
			free(a);
	}
	orch_tmpl_free(t);
	return t ? 0 : -1;
}

/* {{ X }} and {{ (X) }}: the first may take the plain-path shortcut. */
static void path_against_jq(const char *x)
{
	char *direct = orch_fmt("{{ %s }}", x), *viajq = orch_fmt("{{ (%s) }}", x);
	const char *t1[1] = {direct}, *t2[1] = {viajq};
	char *a = NULL, *b = NULL;
	if (run(t1, 1, &a) == 0 && run(t2, 1, &b) == 0 && !same(a, b))
		fail("a hole renders unlike jq", a, b);
	free(a);
	free(b);
	free(direct);
	free(viajq);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	static int parsed;
	if (!parsed++)
		ctx = jv_parse(context);
	char *buf = malloc(size + 1);
	if (!buf)
		return 0;
	memcpy(buf, data, size);
	buf[size] = 0;
	size_t l0 = strlen(buf);
	const char *texts[2] = {buf, l0 < size ? buf + l0 + 1 : NULL};
	run(texts, texts[1] ? 2 : 1, NULL);
	if (!texts[1] && buf[0] == '.' && !strstr(buf, "{{") && !strstr(buf, "}}"))
		path_against_jq(buf);
	free(buf);
	return 0;
}
