/* tmpl.c: "{{ EXPR }}" templates whose EXPR is jq (libjq).
 *
 * A template is literal text with {{ EXPR }} holes. EXPR ends at the first
 * "}}" outside a jq string and outside brackets, so {{ {a: 1} }} and
 * {{ "}}" }} work; write {{ "{{" }} for a literal "{{". A hole renders as
 * `jq -r` prints its outputs: strings raw, other values as compact JSON,
 * several outputs one per line, none as nothing. A null output (a field
 * that is absent or null) is an error, never the text "null" sent to a
 * model: {{ .x // "" }} is how a template makes a field optional.
 *
 * A hole that is a plain path (.steps.architect.output) is evaluated here,
 * as jq would. libjq 1.6 spends ~20 ms in each jq_compile (it compiles its
 * builtins every time), so it is started only for other holes, and all of
 * them in a set of templates are compiled as one program that picks hole
 * hole .[0] of input .[1] by a binary tree of ifs, binding no variable a
 * hole could read:
 *   if .[0] < 2 then (if .[0] < 1 then (.[1] | [(E0)]) ...
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <jq.h>
#include "orch.h"

struct seg { int hole, path; const char *p; size_t n; size_t id; };
struct orch_tmpl {
	size_t n;          /* templates */
	char **texts;      /* our copies: segs point into them */
	struct seg **segs; /* per template */
	size_t *nsegs;
	size_t nholes;
	jq_state *jq;
};

static const char *skip_code(const char *p, char close);

static const char *skip_string(const char *p)
{
	for (p++; *p; ) {
		if (*p == '"')
			return p + 1;
		if (*p == '\\' && p[1] == '(') {
			if (!(p = skip_code(p + 2, ')')))
				return NULL;
			p++;
		} else if (*p == '\\') {
			if (!p[1])
				return NULL;
			p += 2;
		} else
			p++;
	}
	return NULL;
}

/* Code up to its closing ')' (interpolation) or "}}" (a hole). */
static const char *skip_code(const char *p, char close)
{
	int depth = 0;
	while (*p) {
		if (*p == '"') {
			if (!(p = skip_string(p)))
				return NULL;
			continue;
		}
		if (*p == '#') {
			while (*p && *p != '\n')
				p++;
			continue;
		}
		if (depth == 0 && close == '}' && p[0] == '}' && p[1] == '}')
			return p;
		if (depth == 0 && close == ')' && *p == ')')
			return p;
		if (*p == '(' || *p == '[' || *p == '{')
			depth++;
		else if ((*p == ')' || *p == ']' || *p == '}') && depth > 0)
			depth--;
		p++;
	}
	return NULL;
}

int orch_tmpl_has(const char *text)
{
	return text && strstr(text, "{{") != NULL;
}

/* A plain path, .a.b.c (identifiers only), is rendered without libjq. */
static int is_path(const char *p, size_t n)
{
	const char *e = p + n;
	if (p == e)
		return 0;
	while (p < e) {
		if (*p++ != '.' || p == e || !(isalpha((unsigned char)*p) || *p == '_'))
			return 0;
		while (p < e && (isalnum((unsigned char)*p) || *p == '_'))
			p++;
	}
	return 1;
}

static const char *kind_word(jv_kind k)
{
	switch (k) {
	case JV_KIND_NULL: return "null";
	case JV_KIND_FALSE: case JV_KIND_TRUE: return "boolean";
	case JV_KIND_NUMBER: return "number";
	case JV_KIND_STRING: return "string";
	case JV_KIND_ARRAY: return "array";
	default: return "object";
	}
}

/* .a.b.c on ctx, as jq does it: null passes through, an object gives the
 * key's value or null, anything else is jq's error. */
static jv eval_path(const char *p, size_t n, jv ctx)
{
	const char *e = p + n;
	jv v = jv_copy(ctx);
	while (p < e) {
		const char *k = ++p;
		while (p < e && *p != '.')
			p++;
		jv_kind kind = jv_get_kind(v);
		if (kind == JV_KIND_NULL)
			continue;
		if (kind != JV_KIND_OBJECT) {
			jv_free(v);
			return jv_invalid_with_msg(jv_string_fmt("Cannot index %s with \"%.*s\"",
			                                         kind_word(kind), (int)(p - k), k));
		}
		jv key = jv_string_sized(k, (int)(p - k));
		jv got = jv_object_get(v, key);
		v = jv_is_valid(got) ? got : (jv_free(got), jv_null());
	}
	return v;
}

/* Split text into segments; NULL and *err on a malformed hole. */
static struct seg *split(const char *text, size_t *nsegs, size_t *nholes, char **err)
{
	size_t cap = 4, n = 0, holes0 = *nholes;
	struct seg *s = orch_xmalloc(cap * sizeof *s);
	const char *p = text;
	while (*p) {
		if (n + 2 > cap)
			s = orch_xrealloc(s, (cap *= 2) * sizeof *s);
		const char *o = strstr(p, "{{");
		if (!o) {
			s[n++] = (struct seg){0, 0, p, strlen(p), 0};
			break;
		}
		if (o > p)
			s[n++] = (struct seg){0, 0, p, (size_t)(o - p), 0};
		const char *c = skip_code(o + 2, '}');
		if (!c) {
			*err = orch_fmt("unterminated {{ at offset %zu", (size_t)(o - text));
			free(s);
			*nholes = holes0;  /* this template's holes are gone */
			return NULL;
		}
		const char *b = o + 2, *e = c;
		while (b < e && strchr(" \t\r\n", *b))
			b++;
		while (e > b && strchr(" \t\r\n", e[-1]))
			e--;
		if (b == e) {
			*err = orch_fmt("empty {{ }} at offset %zu", (size_t)(o - text));
			free(s);
			*nholes = holes0;
			return NULL;
		}
		int path = is_path(b, (size_t)(e - b));
		s[n++] = (struct seg){1, path, b, (size_t)(e - b), path ? 0 : (*nholes)++};
		p = c + 2;
	}
	*nsegs = n;
	return s;
}

struct errbuf { char *msg; };

static void on_jq_error(void *data, jv msg)
{
	struct errbuf *eb = data;
	if (!eb->msg && jv_get_kind(msg) == JV_KIND_STRING) {
		const char *m = jv_string_value(msg);
		if (strncmp(m, "jq: error: ", 11) == 0)
			m += 11;
		const char *at = strstr(m, " (Unix shell quoting issues?)");  /* not ours */
		at = at ? at : strstr(m, " at <top-level>");
		eb->msg = at ? orch_fmt("%.*s", (int)(at - m), m) : orch_xstrdup(m);
		size_t l = strlen(eb->msg);
		while (l && (eb->msg[l - 1] == '\n' || eb->msg[l - 1] == ':'))
			eb->msg[--l] = 0;
	}
	jv_free(msg);
}

/* libjq (load_program in 1.6's src/linker.c, and later ones alike)
 * imports $HOME/.jq into every program it compiles, reading HOME with
 * getenv and offering no attribute to turn it off. Functions defined there see the real $ENV (a
 * key could reach a prompt) and a broken one fails every spec. So HOME is
 * /dev/null for the compile only: /dev/null/.jq cannot exist, whatever
 * the libjq version does when HOME is unset. The value is replaced in
 * place and put back at once (an unset HOME is left unset: 1.6 then loads
 * nothing), so the environment of what runs later is as it was. */
static int compile_without_home(jq_state *jq, const char *prog)
{
	const char *home = getenv("HOME");
	char *saved = home ? orch_xstrdup(home) : NULL;
	if (saved)
		setenv("HOME", "/dev/null", 1);
	int ok = jq_compile(jq, prog);
	if (saved)
		setenv("HOME", saved, 1);
	free(saved);
	return ok;
}

struct jq_state *orch_jq_compile(const char *prog, char **err)
{
	struct errbuf eb = {0};
	jq_state *jq = jq_init();
	if (!jq) {
		*err = orch_xstrdup("cannot initialise jq");
		return NULL;
	}
	jq_set_error_cb(jq, on_jq_error, &eb);
	/* no environment: a template must not put an API key into a prompt,
	 * a log or the cache ($ENV and env are empty objects) */
	char *sealed = orch_fmt("def env: {}; {} as $ENV | %s", prog);
	int ok = compile_without_home(jq, sealed);
	free(sealed);
	if (!ok) {
		jq_teardown(&jq);
		*err = eb.msg ? eb.msg : orch_xstrdup("jq compile error");
		return NULL;
	}
	free(eb.msg);
	jq_set_error_cb(jq, NULL, NULL);
	return jq;
}

jv orch_jq_first(struct jq_state *jq, jv input)
{
	jq_start(jq, input, 0);
	jv r = jq_next(jq);
	if (jv_is_valid(r)) {
		jv more;  /* drain, so the state is clean for the next start */
		while (jv_is_valid(more = jq_next(jq)))
			jv_free(more);
		jv_free(more);
	}
	return r;
}

/* Append "if .[0] < mid then L else R end" for holes [lo, hi). */
static void gen(jv *prog, const char **hole, const size_t *hlen, size_t lo, size_t hi)
{
	if (hi - lo == 1) {
		*prog = jv_string_append_str(*prog, "(.[1] | [(");
		*prog = jv_string_append_buf(*prog, hole[lo], (int)hlen[lo]);
		*prog = jv_string_append_str(*prog, "\n)])");
		return;
	}
	size_t mid = lo + (hi - lo) / 2;
	jv cond = jv_string_fmt("(if .[0] < %zu then ", mid);
	*prog = jv_string_concat(*prog, cond);
	gen(prog, hole, hlen, lo, mid);
	*prog = jv_string_append_str(*prog, " else ");
	gen(prog, hole, hlen, mid, hi);
	*prog = jv_string_append_str(*prog, " end)");
}

static char *compile_one_hole(const char *p, size_t n)
{
	char *err = NULL;
	char *prog = orch_fmt("%.*s", (int)n, p);
	jq_state *jq = orch_jq_compile(prog, &err);
	free(prog);
	if (jq)
		jq_teardown(&jq);
	return err;
}

void orch_tmpl_free(orch_tmpl *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->n; i++) {
		free(t->segs[i]);
		free(t->texts[i]);
	}
	free(t->texts);
	free(t->segs);
	free(t->nsegs);
	if (t->jq)
		jq_teardown(&t->jq);
	free(t);
}

/* Does the flat program (h[lo]), (h[lo+1]), ... compile? */
static int compiles(const char **hole, const size_t *hlen, size_t lo, size_t hi)
{
	jv prog = jv_string("");
	for (size_t i = lo; i < hi; i++) {
		prog = jv_string_append_str(prog, i > lo ? ", (" : "(");
		prog = jv_string_append_buf(prog, hole[i], (int)hlen[i]);
		prog = jv_string_append_str(prog, "\n)");
	}
	char *err = NULL;
	jq_state *jq = orch_jq_compile(jv_string_value(prog), &err);
	jv_free(prog);
	free(err);
	int ok = jq != NULL;
	if (jq)
		jq_teardown(&jq);  /* sets jq to NULL */
	return ok;
}

/* Mark the holes in [lo, hi) that do not compile: halve the range until
 * each bad hole stands alone, O(k log n) compiles for k bad holes. */
static void find_bad(const char **hole, const size_t *hlen, size_t lo, size_t hi, char *bad,
                     int known_bad)
{
	if (!known_bad && compiles(hole, hlen, lo, hi))
		return;
	if (hi - lo == 1) {
		bad[lo] = 1;
		return;
	}
	size_t mid = lo + (hi - lo) / 2;
	find_bad(hole, hlen, lo, mid, bad, 0);
	find_bad(hole, hlen, mid, hi, bad, 0);
}

/* Compile all jq holes at once (as the tree of ifs that renders them, if
 * render; else only to check them); on failure find which are wrong. */
static int compile_all(orch_tmpl *t, char **errs, int render)
{
	if (t->nholes == 0)
		return 0;
	const char **hole = orch_xmalloc(t->nholes * sizeof *hole);
	size_t *hlen = orch_xmalloc(t->nholes * sizeof *hlen);
	for (size_t i = 0; i < t->n; i++)
		for (size_t k = 0; k < t->nsegs[i]; k++)
			if (t->segs[i][k].hole && !t->segs[i][k].path) {
				hole[t->segs[i][k].id] = t->segs[i][k].p;
				hlen[t->segs[i][k].id] = t->segs[i][k].n;
			}
	/* errors are looked for in a flat list (h0), (h1), ...: it compiles
	 * ~4x faster a hole than the tree of ifs, and halves to find them */
	char *err = NULL;
	int ok;
	if (render) {
		jv prog = jv_string("");
		gen(&prog, hole, hlen, 0, t->nholes);
		t->jq = orch_jq_compile(jv_string_value(prog), &err);
		jv_free(prog);
		ok = t->jq != NULL;
	} else
		ok = compiles(hole, hlen, 0, t->nholes);
	int bad = !ok;
	if (bad) {
		char *isbad = calloc(t->nholes, 1);
		if (!isbad)
			orch_die(EX_FAIL, "out of memory");
		find_bad(hole, hlen, 0, t->nholes, isbad, !render);
		int any = 0;
		for (size_t i = 0; i < t->n; i++)
			for (size_t k = 0; k < t->nsegs[i] && !errs[i]; k++) {
				struct seg *s = &t->segs[i][k];
				if (s->hole && !s->path && isbad[s->id])
					any = 1, errs[i] = compile_one_hole(s->p, s->n);
			}
		if (!any)  /* only the combination failed: say so rather than hide it */
			errs[0] = err ? err : orch_xstrdup("the templates do not compile together"), err = NULL;
		free(isbad);
	}
	free(err);
	free(hole);
	free(hlen);
	return bad ? -1 : 0;
}

static orch_tmpl *tmpl_new(const char **texts, size_t n, char **errs, int render)
{
	orch_tmpl *t = orch_xmalloc(sizeof *t);
	memset(t, 0, sizeof *t);
	t->n = n;
	t->texts = orch_xmalloc(n * sizeof *t->texts + 1);
	for (size_t i = 0; i < n; i++)
		t->texts[i] = orch_xstrdup(texts[i] ? texts[i] : "");
	t->segs = orch_xmalloc(n * sizeof *t->segs);
	t->nsegs = orch_xmalloc(n * sizeof *t->nsegs);
	int bad = 0;
	for (size_t i = 0; i < n; i++) {
		errs[i] = NULL;
		t->nsegs[i] = 0;
		t->segs[i] = split(t->texts[i], &t->nsegs[i], &t->nholes, &errs[i]);
		if (!t->segs[i]) {  /* keep going: every template's problem is reported */
			bad = 1;
			t->segs[i] = orch_xmalloc(sizeof **t->segs);
			t->nsegs[i] = 0;
		}
	}
	if (compile_all(t, errs, render) < 0 || bad) {
		orch_tmpl_free(t);
		return NULL;
	}
	return t;
}

static void append_value(jv *out, jv v, int *first)
{
	if (!*first)
		*out = jv_string_append_str(*out, "\n");
	*first = 0;
	if (jv_get_kind(v) == JV_KIND_STRING)
		*out = jv_string_concat(*out, v);
	else
		*out = jv_string_concat(*out, jv_dump_string(v, 0));
}

/* One value as a hole shows it (jq -r); an error passes through, and
 * null is jv_invalid() without a message. */
static jv render_outputs(jv v)
{
	if (!jv_is_valid(v))
		return v;
	if (jv_get_kind(v) == JV_KIND_NULL)
		return jv_invalid();
	jv out = jv_string("");
	int first = 1;
	append_value(&out, v, &first);
	return out;
}

static jv render_hole(orch_tmpl *t, size_t id, jv ctx)
{
	jv in = jv_array_append(jv_array_append(jv_array(), jv_number(id)), jv_copy(ctx));
	jq_start(t->jq, in, 0);
	jv r = jq_next(t->jq), out = jv_string("");
	if (!jv_is_valid(r)) {
		jv_free(out);
		jv msg = jv_invalid_get_msg(r);
		if (jv_get_kind(msg) == JV_KIND_STRING)
			return jv_invalid_with_msg(msg);
		jv_free(msg);
		return jv_invalid_with_msg(jv_string("no value"));
	}
	jv more;  /* the program yields one array: the hole's outputs */
	while (jv_is_valid(more = jq_next(t->jq)))
		jv_free(more);
	jv_free(more);
	int first = 1;
	jv_array_foreach(r, i, v) {
		if (jv_get_kind(v) == JV_KIND_NULL) {  /* as render_outputs says it */
			jv_free(v);
			jv_free(r);
			jv_free(out);
			return jv_invalid();
		}
		append_value(&out, v, &first);
	}
	jv_free(r);
	return out;
}

/* Why the plain path p (n bytes) is null on ctx: the first of its parts
 * that is absent, or the part that is null. */
static jv why_null(const char *p, size_t n, jv ctx)
{
	const char *e = p + n, *q = p;  /* the path read so far: [p, q) */
	jv v = jv_copy(ctx);
	while (q < e && jv_get_kind(v) == JV_KIND_OBJECT) {
		const char *k = q + 1, *ke = k;
		while (ke < e && *ke != '.')
			ke++;
		jv got = jv_object_get(v, jv_string_sized(k, (int)(ke - k)));
		if (!jv_is_valid(got)) {
			jv_free(got);
			if (q == p)
				return jv_string_fmt("the input has no \"%.*s\"", (int)(ke - k), k);
			return jv_string_fmt("%.*s has no \"%.*s\"", (int)(q - p), p, (int)(ke - k), k);
		}
		v = got;
		q = ke;
	}
	jv_free(v);
	return jv_string_fmt("%.*s is null", (int)(q - p), p);
}

/* The error for a hole that rendered null: what is null, and the escape. */
static char *null_error(const struct seg *s, jv ctx)
{
	jv why = s->path ? why_null(s->p, s->n, ctx) : jv_string("its value is null");
	char *msg = orch_fmt("{{ %.*s }}: %s (null is never rendered: write {{ %s%.*s%s // \"\" }}"
	                     " to make it optional)", (int)s->n, s->p, jv_string_value(why),
	                     s->path ? "" : "(", (int)s->n, s->p, s->path ? "" : ")");
	jv_free(why);
	return msg;
}

char *orch_tmpl_render(orch_tmpl *t, size_t i, jv ctx, char **err)
{
	jv out = jv_string("");
	for (size_t k = 0; k < t->nsegs[i]; k++) {
		struct seg *s = &t->segs[i][k];
		if (!s->hole) {
			out = jv_string_append_buf(out, s->p, (int)s->n);
			continue;
		}
		jv h = s->path ? render_outputs(eval_path(s->p, s->n, ctx)) : render_hole(t, s->id, ctx);
		if (!jv_is_valid(h)) {
			jv msg = jv_invalid_get_msg(h);
			if (jv_get_kind(msg) == JV_KIND_STRING)
				*err = orch_fmt("{{ %.*s }}: %s", (int)s->n, s->p, jv_string_value(msg));
			else
				*err = null_error(s, ctx);
			jv_free(msg);
			jv_free(out);
			return NULL;
		}
		out = jv_string_concat(out, h);
	}
	char *r = orch_xstrdup(jv_string_value(out));
	jv_free(out);
	return r;
}

orch_tmpl *orch_tmpl_compile(const char **texts, size_t n, char **errs)
{
	return tmpl_new(texts, n, errs, 1);
}

int orch_tmpl_check(const char **texts, size_t n, char **errs)
{
	orch_tmpl *t = tmpl_new(texts, n, errs, 0);
	int rc = t ? 0 : -1;
	orch_tmpl_free(t);
	return rc;
}
