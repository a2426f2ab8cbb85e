/* orch-plan: job spec (YAML 1.1 or JSON) -> validated, ordered plan.
 *
 * Reads a spec (orch-plan(1), CONTRACT §4), lists every problem in it as
 * "file:line:col: message" and exits 2, or prints the plan: one JSON line
 * per step in a topological order (ties keep spec order), each carrying
 * its wave (longest path from a source) and priority (longest path to a
 * sink), so a scheduler starts long chains first.
 *
 * Assumptions and limits, by design:
 *  - YAML is read with libyaml's event API into a node tree of our own with
 *    positions; JSON goes through the same reader (it is YAML, once tabs
 *    between tokens are spaces), so every message has a position.
 *  - Anchors are registered when their node ends: an alias can never point
 *    into its own node, so the tree is acyclic. Aliases share nodes; their
 *    expanded size is counted (memoised) before any expansion and capped,
 *    so an alias bomb is refused in bounded time and memory. Nesting is
 *    capped at MAX_DEPTH, so no input can exhaust the stack.
 *  - All {{ }} templates and when: conditions are compiled by libjq, 500
 *    to a program (libjq 1.6 spends ~20 ms per compile).
 *  - Linear in the size of the spec: steps by name through a hash table,
 *    Kahn's algorithm with a heap keyed on spec order.
 *  - Plan lines are written from the tree by lib's JSON writer, not built
 *    as jv first: jv would cost twice what reading and checking the spec
 *    does. They hold what the jv would have, in the same order (tests and
 *    the fuzzer check it).
 */
#include <ctype.h>
#include <getopt.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>
#include "orch.h"

#define MAX_DEPTH 128        /* nesting as written */
#define MAX_EXPANDED_DEPTH 256  /* nesting once aliases are expanded */
#define EXPANSION_SLACK 100000  /* expanded nodes allowed: 2 per input byte + this */

static const char usage[] =
	"usage: orch-plan [--check | --dot | --waves | --id] [SPEC | -]\n"
	"  Validate a job spec and print its plan, one JSON line per step.\n"
	"  --check   validate only, print nothing\n"
	"  --dot     print a Graphviz digraph, one rank per wave\n"
	"  --waves   print a readable table of waves\n"
	"  --id      print the job id alone (job=$(orch-plan --id SPEC))\n"
	"  --help, --version, --run DIR (accepted, unused)\n";

/* ---- the node tree ---------------------------------------------------- */

enum { N_SCALAR, N_SEQ, N_MAP };

typedef struct node node;
struct node {
	uint8_t kind, quoted;  /* quoted: a scalar that is always a string */
	uint32_t line, col;    /* 1-based */
	uint32_t n, cap;       /* kids (maps: key, value, key, value ...) */
	union { node **kids; char *str; } u;
	uint64_t size;         /* nodes once aliases are expanded */
	uint32_t depth;        /* nesting once aliases are expanded */
};

/* nodes and strings live in arenas, freed at once (aliases share nodes) */
struct arena { char *buf; size_t used, cap; struct arena *next; };
static struct arena *arena;

static void *alloc(size_t n)
{
	n = (n + 7) & ~(size_t)7;
	if (!arena || arena->used + n > arena->cap) {
		size_t cap = n > (1 << 20) ? n : (1 << 20);
		struct arena *a = orch_xmalloc(sizeof *a);
		a->buf = orch_xmalloc(cap);
		a->used = 0;
		a->cap = cap;
		a->next = arena;
		arena = a;
	}
	void *p = arena->buf + arena->used;
	arena->used += n;
	return p;
}

static void arena_free(void)
{
	while (arena) {
		struct arena *a = arena->next;
		free(arena->buf);
		free(arena);
		arena = a;
	}
}

static node *new_node(int kind, yaml_mark_t m)
{
	node *x = alloc(sizeof *x);
	memset(x, 0, sizeof *x);
	x->kind = kind;
	x->line = m.line + 1;
	x->col = m.column + 1;
	return x;
}

static void add_kid(node *p, node *k)
{
	if (p->n == p->cap) {
		uint32_t cap = p->cap ? p->cap * 2 : 4;
		node **kids = orch_xmalloc(cap * sizeof *kids);
		if (p->n)
			memcpy(kids, p->u.kids, p->n * sizeof *kids);
		free(p->u.kids);
		p->u.kids = kids;
		p->cap = cap;
	}
	p->u.kids[p->n++] = k;
}

/* kids arrays are malloc'd (they grow); remember them to free at the end */
static node **owned;
static size_t nowned, capowned;

static void own(node *x)
{
	if (nowned == capowned)
		owned = orch_xrealloc(owned, (capowned = capowned ? 2 * capowned : 64) * sizeof *owned);
	owned[nowned++] = x;
}

static void tree_free(void)
{
	for (size_t i = 0; i < nowned; i++)
		free(owned[i]->u.kids);
	free(owned);
	owned = NULL;
	nowned = capowned = 0;
	arena_free();
}

static const char *sval(const node *x)
{
	return x && x->kind == N_SCALAR ? x->u.str : NULL;
}

/* The value of key in map x, or NULL. */
static node *get(const node *x, const char *key)
{
	if (!x || x->kind != N_MAP)
		return NULL;
	for (uint32_t i = 0; i + 1 < x->n; i += 2)
		if (strcmp(x->u.kids[i]->u.str, key) == 0)
			return x->u.kids[i + 1];
	return NULL;
}

/* ---- problems --------------------------------------------------------- */

struct problem { uint32_t line, col; size_t seq; char *msg; };
static struct problem *probs;
static size_t nprobs, capprobs;
static const char *fname;

__attribute__((format(printf, 2, 3)))
static void problem(const node *at, const char *fmt, ...)
{
	if (nprobs == capprobs)
		probs = orch_xrealloc(probs, (capprobs = capprobs ? 2 * capprobs : 16) * sizeof *probs);
	va_list ap;
	va_start(ap, fmt);
	char *m;
	if (vasprintf(&m, fmt, ap) < 0)
		orch_die(EX_FAIL, "out of memory");
	va_end(ap);
	probs[nprobs] = (struct problem){at ? at->line : 0, at ? at->col : 0, nprobs, m};
	nprobs++;
}

static int probcmp(const void *a, const void *b)
{
	const struct problem *p = a, *q = b;
	if (p->line != q->line)
		return p->line < q->line ? -1 : 1;
	if (p->col != q->col)
		return p->col < q->col ? -1 : 1;
	return p->seq < q->seq ? -1 : p->seq > q->seq;
}

static int report_problems(void)
{
	if (nprobs)
		qsort(probs, nprobs, sizeof *probs, probcmp);
	for (size_t i = 0; i < nprobs; i++) {
		orch_err_at(fname, probs[i].line, probs[i].col, "%s", probs[i].msg);
		free(probs[i].msg);
	}
	free(probs);
	int rc = nprobs ? EX_USAGE : EX_OK;
	probs = NULL;
	nprobs = capprobs = 0;
	return rc;
}

/* ---- reading YAML into the tree ---------------------------------------- */

struct anchor { char *name; node *x; };
static struct anchor *anchors;
static size_t nanchors, capanchors;

static void set_anchor(const char *name, node *x)
{
	if (!name)
		return;
	for (size_t i = 0; i < nanchors; i++)
		if (strcmp(anchors[i].name, name) == 0) {
			anchors[i].x = x;  /* a later anchor of that name wins */
			return;
		}
	if (nanchors == capanchors)
		anchors = orch_xrealloc(anchors, (capanchors = capanchors ? 2 * capanchors : 16) * sizeof *anchors);
	anchors[nanchors++] = (struct anchor){orch_xstrdup(name), x};
}

static node *find_anchor(const char *name)
{
	for (size_t i = nanchors; i-- > 0; )
		if (strcmp(anchors[i].name, name) == 0)
			return anchors[i].x;
	return NULL;
}

static void anchors_free(void)
{
	for (size_t i = 0; i < nanchors; i++)
		free(anchors[i].name);
	free(anchors);
	anchors = NULL;
	nanchors = capanchors = 0;
}

/* YAML 1.1 merge key: "<<: *base" or "<<: [*a, *b]"; keys given in the
 * mapping itself win, then earlier merged maps over later ones. */
static int merge_keys(node *m)
{
	node *src = NULL;
	uint32_t at = 0;
	for (uint32_t i = 0; i + 1 < m->n; i += 2)
		if (!m->u.kids[i]->quoted && strcmp(m->u.kids[i]->u.str, "<<") == 0) {
			src = m->u.kids[i + 1];
			at = i;
		}
	if (!src)
		return 0;
	memmove(m->u.kids + at, m->u.kids + at + 2, (m->n - at - 2) * sizeof *m->u.kids);
	m->n -= 2;
	node **list = src->kind == N_SEQ ? src->u.kids : &src;
	uint32_t nlist = src->kind == N_SEQ ? src->n : 1;
	for (uint32_t k = 0; k < nlist; k++) {
		node *from = list[k];
		if (from->kind != N_MAP) {
			problem(from, "a merge key (<<) takes a mapping or a list of mappings");
			return -1;
		}
		for (uint32_t i = 0; i + 1 < from->n; i += 2)
			if (!get(m, from->u.kids[i]->u.str)) {
				add_kid(m, from->u.kids[i]);
				add_kid(m, from->u.kids[i + 1]);
			}
	}
	return 0;
}

static int dup_keys(node *m)
{
	int bad = 0;
	if (m->n <= 32) {
		for (uint32_t i = 0; i + 1 < m->n; i += 2)
			for (uint32_t j = 0; j < i; j += 2)
				if (strcmp(m->u.kids[i]->u.str, m->u.kids[j]->u.str) == 0) {
					problem(m->u.kids[i], "duplicate key '%s'", m->u.kids[i]->u.str);
					bad = 1;
					break;
				}
		return bad;
	}
	orch_map *seen = orch_map_new(m->n / 2);
	for (uint32_t i = 0; i + 1 < m->n; i += 2)
		if (orch_map_put(seen, m->u.kids[i]->u.str, i)) {
			problem(m->u.kids[i], "duplicate key '%s'", m->u.kids[i]->u.str);
			bad = 1;
		}
	orch_map_free(seen);
	return bad;
}

struct frame { node *x; char *anchor; };
static uint64_t max_size;

/* x is complete (so are its kids, aliased or not): its expanded size and
 * depth follow without recursion. Refuse it if it expands too far. */
static int finish(node *x)
{
	uint64_t s = 1;
	uint32_t d = 0;
	if (x->kind != N_SCALAR)
		for (uint32_t i = 0; i < x->n; i++) {
			s += x->u.kids[i]->size;
			if (x->u.kids[i]->depth > d)
				d = x->u.kids[i]->depth;
		}
	x->size = s > max_size ? max_size + 1 : s;
	x->depth = d + 1;
	if (x->size > max_size) {
		problem(x, "aliases here expand to more than %llu nodes (an alias bomb?)",
		        (unsigned long long)max_size);
		return -1;
	}
	if (x->depth > MAX_EXPANDED_DEPTH) {
		problem(x, "aliases here nest deeper than %d levels", MAX_EXPANDED_DEPTH);
		return -1;
	}
	return 0;
}

static node *scalar_node(yaml_event_t *ev)
{
	node *x = new_node(N_SCALAR, ev->start_mark);
	size_t len = ev->data.scalar.length;
	x->u.str = alloc(len + 1);
	memcpy(x->u.str, ev->data.scalar.value, len);
	x->u.str[len] = 0;
	const char *tag = (const char *)ev->data.scalar.tag;
	x->quoted = ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE ||
	            (tag && strcmp(tag, YAML_STR_TAG) == 0);
	if (strlen(x->u.str) != len)
		problem(x, "a NUL character in a string");
	return x;
}

/* Put x into the open container on top of the stack (or make it the root). */
static int place(struct frame *st, int depth, node **root, node *x)
{
	if (depth == 0) {
		*root = x;
		return 0;
	}
	node *p = st[depth - 1].x;
	if (p->kind == N_MAP && p->n % 2 == 0 && x->kind != N_SCALAR) {
		problem(x, "a mapping key must be a plain value");
		return -1;
	}
	add_kid(p, x);
	return 0;
}

static void yaml_problem(yaml_parser_t *y)
{
	node at = {0};
	yaml_mark_t m = y->problem_mark;
	at.line = m.line + 1;
	at.col = m.column + 1;
	if (y->context)
		problem(&at, "%s %s", y->problem, y->context);
	else
		problem(&at, "%s", y->problem ? y->problem : "invalid YAML");
}

/* Parse text into a tree; NULL with problems recorded on failure. */
static node *read_yaml(const unsigned char *text, size_t len)
{
	yaml_parser_t y;
	yaml_event_t ev;
	struct frame st[MAX_DEPTH + 1];
	int depth = 0, docs = 0, done = 0, bad = 0;
	node *root = NULL;
	max_size = 2 * (uint64_t)len + EXPANSION_SLACK;
	yaml_parser_initialize(&y);
	yaml_parser_set_input_string(&y, text, len);
	while (!done && !bad) {
		if (!yaml_parser_parse(&y, &ev)) {
			yaml_problem(&y);
			bad = 1;
			break;
		}
		node *x = NULL;
		const char *anchor = NULL;
		switch (ev.type) {
		case YAML_STREAM_END_EVENT:
			done = 1;
			break;
		case YAML_DOCUMENT_START_EVENT:
			if (++docs > 1) {
				node at = {0};
				at.line = ev.start_mark.line + 1;
				at.col = ev.start_mark.column + 1;
				problem(&at, "more than one YAML document");
				bad = 1;
			}
			break;
		case YAML_SCALAR_EVENT:
			x = scalar_node(&ev);
			anchor = (const char *)ev.data.scalar.anchor;
			set_anchor(anchor, x);
			bad = finish(x) < 0 || place(st, depth, &root, x) < 0;
			break;
		case YAML_ALIAS_EVENT:
			x = find_anchor((const char *)ev.data.alias.anchor);
			if (!x) {
				node at = {0};
				at.line = ev.start_mark.line + 1;
				at.col = ev.start_mark.column + 1;
				problem(&at, "unknown alias *%s", (char *)ev.data.alias.anchor);
				bad = 1;
			} else
				bad = place(st, depth, &root, x) < 0;
			break;
		case YAML_SEQUENCE_START_EVENT:
		case YAML_MAPPING_START_EVENT:
			x = new_node(ev.type == YAML_MAPPING_START_EVENT ? N_MAP : N_SEQ, ev.start_mark);
			own(x);
			if (depth == MAX_DEPTH) {
				problem(x, "nested deeper than %d levels", MAX_DEPTH);
				bad = 1;
				break;
			}
			anchor = (const char *)(ev.type == YAML_MAPPING_START_EVENT ?
			                        ev.data.mapping_start.anchor : ev.data.sequence_start.anchor);
			if (place(st, depth, &root, x) < 0) {
				bad = 1;
				break;
			}
			st[depth].x = x;
			st[depth].anchor = anchor ? orch_xstrdup(anchor) : NULL;
			depth++;
			break;
		case YAML_SEQUENCE_END_EVENT:
		case YAML_MAPPING_END_EVENT:
			depth--;
			x = st[depth].x;
			if (x->kind == N_MAP && (dup_keys(x) || merge_keys(x) < 0))
				bad = 1;
			if (!bad && finish(x) < 0)
				bad = 1;
			set_anchor(st[depth].anchor, x);  /* only now: no alias cycles */
			free(st[depth].anchor);
			break;
		default:
			break;
		}
		yaml_event_delete(&ev);
	}
	while (depth > 0)
		free(st[--depth].anchor);
	yaml_parser_delete(&y);
	anchors_free();
	return bad ? NULL : root;
}

/* ---- values ------------------------------------------------------------ */

static int is_number(const char *s)
{
	const char *p = s;
	if (*p == '+' || *p == '-')
		p++;
	if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X') && p[2]) {
		for (p += 2; isxdigit((unsigned char)*p); p++)
			;
		return !*p;
	}
	int digits = 0;
	while (isdigit((unsigned char)*p))
		p++, digits++;
	if (*p == '.')
		for (p++; isdigit((unsigned char)*p); p++)
			digits++;
	if (!digits)
		return 0;
	if (*p == 'e' || *p == 'E') {
		p++;
		if (*p == '+' || *p == '-')
			p++;
		if (!isdigit((unsigned char)*p))
			return 0;
		while (isdigit((unsigned char)*p))
			p++;
	}
	return !*p;
}

static int one_of(const char *s, const char *const *list)
{
	for (; *list; list++)
		if (strcmp(s, *list) == 0)
			return 1;
	return 0;
}

/* YAML 1.1 resolution of a plain scalar; quoted scalars are strings. */
static jv_kind scalar_kind(const node *x)
{
	static const char *const nulls[] = {"", "~", "null", "Null", "NULL", 0};
	static const char *const trues[] = {"true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON", 0};
	static const char *const falses[] = {"false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF", 0};
	const char *s = x->u.str;
	return x->quoted ? JV_KIND_STRING : one_of(s, nulls) ? JV_KIND_NULL :
	       one_of(s, trues) ? JV_KIND_TRUE : one_of(s, falses) ? JV_KIND_FALSE :
	       is_number(s) ? JV_KIND_NUMBER : JV_KIND_STRING;
}

static jv scalar_as(const node *x, jv_kind k)
{
	switch (k) {
	case JV_KIND_NULL: return jv_null();
	case JV_KIND_TRUE: return jv_true();
	case JV_KIND_FALSE: return jv_false();
	case JV_KIND_NUMBER: return jv_number(strtod(x->u.str, NULL));
	default: return jv_string(x->u.str);
	}
}

static jv scalar_jv(const node *x)
{
	return scalar_as(x, scalar_kind(x));
}

/* Recursion is bounded: depth <= MAX_EXPANDED_DEPTH (finish()). */
static jv to_jv(const node *x)
{
	if (x->kind == N_SCALAR)
		return scalar_jv(x);
	jv v = x->kind == N_MAP ? jv_object() : jv_array();
	for (uint32_t i = 0; i < x->n; i++)
		if (x->kind == N_SEQ)
			v = jv_array_append(v, to_jv(x->u.kids[i]));
		else if (i % 2 == 0)
			v = jv_object_set(v, jv_string(x->u.kids[i]->u.str), to_jv(x->u.kids[i + 1]));
	return v;
}

static const char *kind_name(const node *x)
{
	if (x->kind == N_MAP)
		return "a mapping";
	if (x->kind == N_SEQ)
		return "a list";
	jv v = scalar_jv(x);
	jv_kind k = jv_get_kind(v);
	jv_free(v);
	return k == JV_KIND_NULL ? "null" : k == JV_KIND_NUMBER ? "a number" :
	       k == JV_KIND_STRING ? "a string" : "a boolean";
}

/* ---- the schema --------------------------------------------------------- */

static const char *const top_keys[] = {"job", "project", "task", "inputs", "provider",
	"concurrency", "pools", "defaults", "steps", 0};
static const char *const step_keys[] = {"id", "prompt", "run", "needs", "system",
	"provider", "retries", "timeout_s", "pool", "priority", "when", "files", 0};
static const char *const provider_keys[] = {"name", "model", "opts", "command", "base_url", 0};
static const char *const provider_names[] = {"ollama", "openai", "anthropic", "exec", "echo", 0};
static const char *const default_keys[] = {"retries", "timeout_s", "pool", 0};

static size_t distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), row[65];
	if (la > 64 || lb > 64)
		return 99;
	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		size_t diag = row[0];
		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t up = row[j], best = diag + (a[i - 1] != b[j - 1]);
			if (row[j] + 1 < best)
				best = row[j] + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
		}
	}
	return row[lb];
}

/* The nearest of the candidates, if near enough to be a typo. */
static const char *nearest(const char *s, const char *const *cands, size_t ncands)
{
	const char *best = NULL;
	size_t bd = 3;
	for (size_t i = 0; i < ncands && cands[i]; i++) {
		size_t d = distance(s, cands[i]);
		if (d < bd && d < strlen(cands[i]))
			bd = d, best = cands[i];
	}
	return best;
}

/* Keys starting "x-" are the user's own (a home for YAML anchors), as in
 * docker-compose; every other key must be known. */
static void check_keys(const node *m, const char *const *allowed, const char *where)
{
	for (uint32_t i = 0; i + 1 < m->n; i += 2) {
		const char *k = m->u.kids[i]->u.str;
		if (one_of(k, allowed) || strncmp(k, "x-", 2) == 0)
			continue;
		const char *near = nearest(k, allowed, SIZE_MAX);
		if (near)
			problem(m->u.kids[i], "unknown key '%s' in %s (did you mean '%s'?)", k, where, near);
		else
			problem(m->u.kids[i], "unknown key '%s' in %s", k, where);
	}
}

static int want(const node *x, int kind, const char *what, const char *name)
{
	if (!x)
		return 0;
	if (x->kind == kind && (kind != N_SCALAR || strcmp(kind_name(x), "a string") == 0))
		return 1;
	if (kind == N_SCALAR && x->kind == N_SCALAR)  /* run: true, model: 3.5 */
		problem(x, "'%s' must be %s, not %s (quote it: \"%s\")", name, what,
		        kind_name(x), sval(x));
	else
		problem(x, "'%s' must be %s, not %s", name, what, kind_name(x));
	return 0;
}

#define want_string(x, name) want(x, N_SCALAR, "a string", name)
#define want_map(x, name) want(x, N_MAP, "a mapping", name)
#define want_list(x, name) want(x, N_SEQ, "a list", name)

/* A number within [lo, hi]; integer if asked. */
static int want_number(const node *x, const char *name, double lo, double hi, int integer)
{
	if (!x)
		return 0;
	jv v = x->kind == N_SCALAR ? scalar_jv(x) : jv_null();
	int ok = jv_get_kind(v) == JV_KIND_NUMBER;
	double d = ok ? jv_number_value(v) : 0;
	jv_free(v);
	if (!ok || d < lo || d > hi || (integer && d != (double)(long long)d)) {
		if (integer)
			problem(x, "'%s' must be a whole number from %g to %g", name, lo, hi);
		else
			problem(x, "'%s' must be a number from %g to %g", name, lo, hi);
		return 0;
	}
	return 1;
}

/* Ids are names: any scalar text of 1 to 64 of [A-Za-z0-9._-] (so "id: 1"
 * is the step "1"); they name files in the run folder. */
static int want_name(const node *x, const char *what)
{
	if (x->kind != N_SCALAR) {
		problem(x, "%s must be a name, not %s", what, kind_name(x));
		return 0;
	}
	if (!orch_job_id_valid(sval(x))) {
		problem(x, "%s '%s' must be 1 to 64 of A-Z a-z 0-9 . _ -", what, sval(x));
		return 0;
	}
	return 1;
}

static void want_bool(const node *x, const char *name)
{
	if (!x)
		return;
	jv v = x->kind == N_SCALAR ? scalar_jv(x) : jv_null();
	jv_kind k = jv_get_kind(v);
	jv_free(v);
	if (k != JV_KIND_TRUE && k != JV_KIND_FALSE)
		problem(x, "'%s' must be true or false, not %s", name, kind_name(x));
}

static void check_provider_name(const node *name)
{
	if (one_of(sval(name), provider_names))
		return;
	const char *near = nearest(sval(name), provider_names, SIZE_MAX);
	if (near)
		problem(name, "unknown provider '%s' (did you mean '%s'?)", sval(name), near);
	else
		problem(name, "unknown provider '%s' (one of ollama, openai, anthropic, exec, echo)",
		        sval(name));
}

/* A provider is a mapping, or a name alone: "provider: ollama". A step's
 * provider may give only some keys: the job's provider gives the rest. */
static void check_provider(const node *p, const char *where)
{
	if (!p)
		return;
	if (p->kind == N_SCALAR) {
		if (want_string(p, where))
			check_provider_name(p);
		return;
	}
	if (!want_map(p, where))
		return;
	check_keys(p, provider_keys, where);
	want_string(get(p, "model"), "model");
	want_map(get(p, "opts"), "opts");
	want_string(get(p, "command"), "command");
	want_string(get(p, "base_url"), "base_url");
	const node *name = get(p, "name");
	if (name && want_string(name, "name"))
		check_provider_name(name);
	if (name && sval(name) && strcmp(sval(name), "exec") == 0 && !get(p, "command"))
		problem(name, "provider exec needs a 'command'");
}

static void check_pools(const node *pools)
{
	if (!want_map(pools, "pools"))
		return;
	for (uint32_t i = 0; i + 1 < pools->n; i += 2)
		want_number(pools->u.kids[i + 1], pools->u.kids[i]->u.str, 1, 1e6, 1);
}

static int valid_pool(const node *root, const node *pool)
{
	if (!pool || !want_string(pool, "pool"))
		return 0;
	const node *pools = get(root, "pools");
	if (get(pools, sval(pool)))
		return 1;
	const char **names = orch_xmalloc((pools ? pools->n / 2 : 0) * sizeof *names + 1);
	size_t n = 0;
	for (uint32_t i = 0; pools && pools->kind == N_MAP && i + 1 < pools->n; i += 2)
		names[n++] = pools->u.kids[i]->u.str;
	const char *near = nearest(sval(pool), names, n);
	if (near)
		problem(pool, "unknown pool '%s' (did you mean '%s'?)", sval(pool), near);
	else
		problem(pool, "unknown pool '%s': declare it under pools:", sval(pool));
	free(names);
	return 0;
}

/* ---- steps and their graph --------------------------------------------- */

struct step {
	const node *x;
	const char *id;
	long wave, prio;
};
static struct step *steps;
static size_t nsteps;
static orch_map *byid;
static orch_graph *graph;  /* steps by index: what each needs, what needs it */

static void check_step(const node *root, const node *x)
{
	if (!want_map(x, "each step"))
		return;
	check_keys(x, step_keys, "a step");
	const node *id = get(x, "id"), *prompt = get(x, "prompt"), *run = get(x, "run");
	if (!id)
		problem(x, "a step has no 'id'");
	else
		want_name(id, "step id");
	if (!prompt && !run)
		problem(x, "step '%s' has neither 'prompt' nor 'run'", sval(id) ? sval(id) : "?");
	else if (prompt && run)
		problem(run, "step '%s' has both 'prompt' and 'run': choose one",
		        sval(id) ? sval(id) : "?");
	want_string(prompt, "prompt");
	want_string(run, "run");
	want_string(get(x, "system"), "system");
	want_string(get(x, "when"), "when");
	check_provider(get(x, "provider"), "provider");
	want_number(get(x, "retries"), "retries", 0, 100, 1);
	want_number(get(x, "timeout_s"), "timeout_s", 0.001, 1e9, 0);
	want_number(get(x, "priority"), "priority", -1e9, 1e9, 1);
	want_bool(get(x, "files"), "files");
	if (get(x, "pool"))
		valid_pool(root, get(x, "pool"));
	const node *needs = get(x, "needs");
	if (needs && needs->kind == N_SEQ)
		for (uint32_t k = 0; k < needs->n; k++)
			want_name(needs->u.kids[k], "needs");
	else if (needs)
		want_name(needs, "needs");  /* one name alone is fine too */
}

static void check_spec(const node *root)
{
	if (!root || root->kind != N_MAP) {
		problem(root, "a job spec is a mapping (job:, task:, steps: ...)");
		return;
	}
	check_keys(root, top_keys, "the job");
	const node *job = get(root, "job");
	if (!job)
		problem(root, "missing 'job' (the job id)");
	else
		want_name(job, "job id");
	want_string(get(root, "project"), "project");
	want_string(get(root, "task"), "task");
	want_map(get(root, "inputs"), "inputs");
	check_provider(get(root, "provider"), "provider");
	want_number(get(root, "concurrency"), "concurrency", 1, 1e6, 1);
	check_pools(get(root, "pools"));
	const node *d = get(root, "defaults");
	if (want_map(d, "defaults")) {
		check_keys(d, default_keys, "defaults");
		want_number(get(d, "retries"), "retries", 0, 100, 1);
		want_number(get(d, "timeout_s"), "timeout_s", 0.001, 1e9, 0);
		if (get(d, "pool"))
			valid_pool(root, get(d, "pool"));
	}
	const node *st = get(root, "steps");
	if (!st)
		problem(root, "missing 'steps'");
	else if (want_list(st, "steps") && st->n == 0)
		problem(st, "'steps' is empty: a job needs at least one step");
}

/* Collect the steps with usable ids; link needs both ways. */
static void build_graph(const node *st)
{
	steps = calloc(st->n ? st->n : 1, sizeof *steps);
	byid = orch_map_new(st->n);
	if (!steps)
		orch_die(EX_FAIL, "out of memory");
	for (uint32_t i = 0; i < st->n; i++) {
		const node *x = st->u.kids[i], *id = get(x, "id");
		if (x->kind != N_MAP || !sval(id) || !orch_job_id_valid(sval(id)))
			continue;
		long prev = orch_map_get(byid, sval(id));
		if (prev >= 0) {
			problem(id, "duplicate step id '%s' (first at line %u)", sval(id),
			        steps[prev].x->line);
			continue;
		}
		orch_map_put(byid, sval(id), nsteps);
		steps[nsteps].x = x;
		steps[nsteps].id = sval(id);
		nsteps++;
	}
	graph = orch_graph_new(nsteps);
	const char **ids = orch_xmalloc(nsteps * sizeof *ids + 1);
	for (size_t i = 0; i < nsteps; i++)
		ids[i] = steps[i].id;
	for (size_t i = 0; i < nsteps; i++) {
		const node *needs = get(steps[i].x, "needs");
		const node *const *list = needs && needs->kind == N_SEQ ?
		                          (const node *const *)needs->u.kids : &needs;
		size_t n = !needs ? 0 : needs->kind == N_SEQ ? needs->n : 1;
		for (size_t k = 0; k < n; k++) {
			const char *name = sval(list[k]);
			if (!name)
				continue;
			long j = orch_map_get(byid, name);
			if (j < 0) {
				const char *near = nsteps < 5000 ? nearest(name, ids, nsteps) : NULL;
				if (near)
					problem(list[k], "step '%s' needs '%s', which is not a step (did you mean '%s'?)",
					        steps[i].id, name, near);
				else
					problem(list[k], "step '%s' needs '%s', which is not a step",
					        steps[i].id, name);
				continue;
			}
			if ((size_t)j == i) {
				problem(list[k], "step '%s' needs itself", name);
				continue;
			}
			orch_graph_need(graph, i, j);  /* "needs: [a, a]" counts once */
		}
	}
	free(ids);
}

/* A step's needs, as the graph has them. */
static size_t nneeds(const struct step *s)
{
	return orch_graph_ndeps(graph, (size_t)(s - steps));
}

static const size_t *needs(const struct step *s)
{
	return orch_graph_deps(graph, (size_t)(s - steps));
}

static int spec_order(size_t a, size_t b, void *ctx)
{
	(void)ctx;
	return a < b;
}

static const char *step_id(size_t i, void *ctx)
{
	(void)ctx;
	return steps[i].id;
}

/* Every step left after Kahn is on or behind a cycle: print each cycle
 * once, at the step it starts and ends with. */
static void report_cycles(void)
{
	char *text;
	size_t at;
	while ((text = orch_graph_next_cycle(graph, step_id, NULL, &at))) {
		problem(steps[at].x, "cycle: %s", text);
		free(text);
	}
}

static void levels(const size_t *order)
{
	for (size_t k = 0; k < nsteps; k++) {
		struct step *s = &steps[order[k]];
		const size_t *needs = orch_graph_deps(graph, order[k]);
		s->wave = 0;
		for (size_t q = 0; q < orch_graph_ndeps(graph, order[k]); q++)
			if (steps[needs[q]].wave + 1 > s->wave)
				s->wave = steps[needs[q]].wave + 1;
	}
	for (size_t k = nsteps; k-- > 0; ) {
		struct step *s = &steps[order[k]];
		const size_t *deps = orch_graph_rdeps(graph, order[k]);
		s->prio = 0;
		for (size_t q = 0; q < orch_graph_nrdeps(graph, order[k]); q++)
			if (steps[deps[q]].prio + 1 > s->prio)
				s->prio = steps[deps[q]].prio + 1;
	}
}

/* Compile every prompt/system template and when: condition at once. */
static void check_templates(void)
{
	static const char *const fields[] = {"prompt", "system", "when"};
	size_t cap = 3 * nsteps, n = 0;
	const char **texts = orch_xmalloc(cap * sizeof *texts + 1);
	const node **at = orch_xmalloc(cap * sizeof *at + 1);
	char **owned_text = orch_xmalloc(cap * sizeof *owned_text + 1);
	const char **field = orch_xmalloc(cap * sizeof *field + 1);
	size_t nown = 0;
	for (size_t i = 0; i < nsteps; i++)
		for (int f = 0; f < 3; f++) {
			const node *x = get(steps[i].x, fields[f]);
			if (!sval(x) || (f < 2 && !orch_tmpl_has(sval(x))))
				continue;
			at[n] = x;
			field[n] = fields[f];
			if (f == 2)
				texts[n++] = owned_text[nown++] = orch_fmt("{{ %s }}", sval(x));
			else
				texts[n++] = sval(x);
		}
	/* in chunks: one libjq program has a size limit (about 10,000 holes) */
	char **errs = orch_xmalloc(n * sizeof *errs + 1);
	for (size_t from = 0; from < n; from += 500) {
		size_t m = n - from < 500 ? n - from : 500;
		orch_tmpl_check(texts + from, m, errs + from);
		for (size_t k = from; k < from + m; k++)
			if (errs[k]) {
				problem(at[k], "%s: %s", field[k], errs[k]);
				free(errs[k]);
			}
	}
	free(errs);
	for (size_t k = 0; k < nown; k++)
		free(owned_text[k]);
	free(owned_text);
	free(texts);
	free(at);
	free(field);
}

/* ---- the plan ------------------------------------------------------------ */

static jv provider_jv(const node *p)
{
	if (!p)
		return jv_invalid();
	if (p->kind == N_SCALAR)
		return jv_object_set(jv_object(), jv_string("name"), jv_string(sval(p)));
	return to_jv(p);
}

/* The job's provider, with the step's keys over it (opts merged key by key).
 * A step naming another provider takes nothing else from the job's. */
static jv merge_provider(jv job, jv step)
{
	if (!jv_is_valid(step))
		return (jv_free(step), job);
	if (!jv_is_valid(job))
		return (jv_free(job), step);
	jv jn = jv_object_get(jv_copy(job), jv_string("name"));
	jv sn = jv_object_get(jv_copy(step), jv_string("name"));
	int named = jv_get_kind(sn) == JV_KIND_STRING;
	int other = named && !jv_equal(jn, sn);  /* jv_equal consumes both... */
	if (!named) {                             /* ...when it is called */
		jv_free(jn);
		jv_free(sn);
	}
	if (other)
		return (jv_free(job), step);
	jv jo = jv_object_get(jv_copy(job), jv_string("opts"));
	jv so = jv_object_get(jv_copy(step), jv_string("opts"));
	jv merged = jv_object_merge(job, step);
	if (jv_get_kind(jo) == JV_KIND_OBJECT && jv_get_kind(so) == JV_KIND_OBJECT)
		merged = jv_object_set(merged, jv_string("opts"), jv_object_merge(jo, so));
	else
		jv_free(jo), jv_free(so);
	return merged;
}

static jv job_jv(const node *root, const char *spec_file)
{
	const char *id = sval(get(root, "job"));
	jv j = jv_object_set(jv_object(), jv_string("job_id"), jv_string(id));
	const node *x;
	j = jv_object_set(j, jv_string("project"),
	                  (x = get(root, "project")) ? to_jv(x) : jv_string(id));
	j = jv_object_set(j, jv_string("task"), (x = get(root, "task")) ? to_jv(x) : jv_string(""));
	j = jv_object_set(j, jv_string("inputs"), (x = get(root, "inputs")) ? to_jv(x) : jv_object());
	static const char *const opt[] = {"concurrency", "pools", "defaults"};
	if ((x = get(root, "provider")))
		j = jv_object_set(j, jv_string("provider"), provider_jv(x));
	for (size_t i = 0; i < 3; i++)
		if ((x = get(root, opt[i])))
			j = jv_object_set(j, jv_string(opt[i]), to_jv(x));
	return jv_object_set(j, jv_string("spec_file"), jv_string(spec_file));
}

/* Plan lines are written from the tree by lib's JSON writer: building
 * each line as jv and freeing it cost twice the whole check (10,000 steps:
 * 90 ms against 30 ms). A line holds what the jv would, in the same order;
 * tests/10-plan checks lines against jq's own + on the same spec, and the
 * fuzzer (tests/fuzz/spec.c) against the same lines built as jv. */

/* The step's own priority: if it gives one, else the computed one. */
static long priority(const struct step *s)
{
	const node *p = get(s->x, "priority");
	return p && scalar_kind(p) == JV_KIND_NUMBER ? (long)strtod(p->u.str, NULL) : s->prio;
}

/* x as to_jv(x) would have it; libyaml's scalars are valid UTF-8. */
static void put_node(orch_jw *w, const node *x)
{
	if (x->kind == N_SCALAR) {
		jv_kind k = scalar_kind(x);
		if (k == JV_KIND_STRING)
			orch_jw_str(w, x->u.str);
		else
			orch_jw_jv(w, scalar_as(x, k));
		return;
	}
	orch_jw_open(w, x->kind == N_MAP ? '{' : '[');
	for (uint32_t i = 0; i < x->n; i++)
		if (x->kind == N_SEQ)
			put_node(w, x->u.kids[i]);
		else if (i % 2 == 0)
			orch_jw_key(w, x->u.kids[i]->u.str);
		else
			put_node(w, x->u.kids[i]);
	orch_jw_close(w);
}

static void put_needs(orch_jw *w, const struct step *s)
{
	orch_jw_open(w, '[');
	for (size_t q = 0; q < nneeds(s); q++)
		orch_jw_str(w, steps[needs(s)[q]].id);
	orch_jw_close(w);
}

/* One key of a step's spec: id and needs as the graph has them, provider
 * merged with the job's, the rest as written. */
static void put_field(orch_jw *w, const struct step *s, const char *key, const node *v, jv prov)
{
	orch_jw_key(w, key);
	if (strcmp(key, "id") == 0)
		orch_jw_str(w, s->id);
	else if (strcmp(key, "needs") == 0)
		put_needs(w, s);
	else if (strcmp(key, "provider") == 0)
		orch_jw_jv(w, jv_copy(prov));
	else
		put_node(w, v);
}

/* The job's defaults, each key's place in them, and room for a step's
 * values over them: a step's keys are looked up once each, so a line costs
 * the size of the step plus that of the defaults, never their product. */
struct defaults {
	const node *m;      /* the mapping; NULL if the job has none */
	uint32_t n;         /* its keys */
	orch_map *at;       /* key -> its place, 0 to n - 1 */
	const node **over;  /* per place: the step's value, while it is written */
};

/* The step's keys over the job's defaults: the keys of defaults first,
 * then the step's own, then needs and provider if it had none (the order
 * jq's defaults + step gives). */
static void put_spec(orch_jw *w, const struct step *s, struct defaults *d, jv prov)
{
	const node *x = s->x;
	for (uint32_t i = 0; d->n && i + 1 < x->n; i += 2) {
		long at = orch_map_get(d->at, x->u.kids[i]->u.str);
		if (at >= 0)
			d->over[at] = x->u.kids[i + 1];
	}
	orch_jw_open(w, '{');
	for (uint32_t k = 0; k < d->n; k++) {
		const node *v = d->over[k] ? d->over[k] : d->m->u.kids[2 * k + 1];
		put_field(w, s, d->m->u.kids[2 * k]->u.str, v, prov);
		d->over[k] = NULL;
	}
	for (uint32_t i = 0; i + 1 < x->n; i += 2) {
		const char *key = x->u.kids[i]->u.str;
		if (!d->n || orch_map_get(d->at, key) < 0)
			put_field(w, s, key, x->u.kids[i + 1], prov);
	}
	if (!get(x, "needs"))
		put_field(w, s, "needs", NULL, prov);
	if (!get(x, "provider") && jv_is_valid(prov))
		put_field(w, s, "provider", NULL, prov);
	orch_jw_close(w);
}

static int print_plan(const node *root, const size_t *order, jv job)
{
	const node *p;
	struct defaults d = {get(root, "defaults"), 0, NULL, NULL};
	if (d.m) {  /* a mapping: checked */
		d.n = d.m->n / 2;
		d.at = orch_map_new(d.n);
		d.over = orch_xmalloc(d.n * sizeof *d.over + 1);
		for (uint32_t k = 0; k < d.n; k++) {
			orch_map_put(d.at, d.m->u.kids[2 * k]->u.str, k);
			d.over[k] = NULL;
		}
	}
	jv jobprov = provider_jv(get(root, "provider"));
	size_t njob;
	char *jobtext = orch_json_text(jv_copy(job), &njob);  /* the same in every line */
	orch_jw w = {0};
	int rc = EX_OK;
	for (size_t k = 0; k < nsteps && rc == EX_OK; k++) {
		const struct step *s = &steps[order[k]];
		jv prov = (p = get(s->x, "provider")) ?
		          merge_provider(jv_copy(jobprov), provider_jv(p)) : jv_copy(jobprov);
		orch_jw_open(&w, '{');
		orch_jw_key(&w, "step");
		orch_jw_str(&w, s->id);
		orch_jw_key(&w, "needs");
		put_needs(&w, s);
		orch_jw_key(&w, "wave");
		orch_jw_jv(&w, jv_number(s->wave));
		orch_jw_key(&w, "priority");
		orch_jw_jv(&w, jv_number(priority(s)));
		orch_jw_key(&w, "index");
		orch_jw_jv(&w, jv_number(order[k]));
		/* job before spec: all before it are names and numbers, so the
		 * first "job":{"job_id":" of a line is the job's (orch(1) reads it
		 * so, with no JSON parser; a spec's strings could forge one) */
		orch_jw_key(&w, "job");
		orch_jw_text(&w, jobtext, njob);
		orch_jw_key(&w, "spec");
		put_spec(&w, s, &d, prov);
		orch_jw_close(&w);
		jv_free(prov);
		if (orch_jw_put(&w) < 0)  /* a plan is read whole: flush at exit */
			rc = EX_FAIL;
	}
	orch_jw_free(&w);
	orch_map_free(d.at);
	free(d.over);
	free(jobtext);
	jv_free(jobprov);
	return rc;
}

/* The fuzzer puts a check of print_plan against the same lines built as
 * jv here. */
static int (*plan_printer)(const node *, const size_t *, jv) = print_plan;

static int by_wave(const void *a, const void *b)
{
	const struct step *p = &steps[*(const size_t *)a], *q = &steps[*(const size_t *)b];
	if (p->wave != q->wave)
		return p->wave < q->wave ? -1 : 1;
	return *(const size_t *)a < *(const size_t *)b ? -1 : 1;
}

static size_t *sorted_by_wave(const size_t *order)
{
	size_t *w = orch_xmalloc(nsteps * sizeof *w + 1);
	memcpy(w, order, nsteps * sizeof *w);
	qsort(w, nsteps, sizeof *w, by_wave);
	return w;
}

static int print_dot(const size_t *order, jv job)
{
	size_t *w = sorted_by_wave(order);
	printf("digraph \"%s\" {\n\trankdir=LR;\n", orch_jstr(job, "job_id"));
	for (size_t k = 0; k < nsteps; ) {
		printf("\t{ rank=same;");
		long wave = steps[w[k]].wave;
		for (; k < nsteps && steps[w[k]].wave == wave; k++)
			printf(" \"%s\";", steps[w[k]].id);
		printf(" }\n");
	}
	for (size_t k = 0; k < nsteps; k++) {
		const struct step *s = &steps[order[k]];
		for (size_t q = 0; q < nneeds(s); q++)
			printf("\t\"%s\" -> \"%s\";\n", steps[needs(s)[q]].id, s->id);
	}
	printf("}\n");
	free(w);
	return EX_OK;
}

static int print_waves(const size_t *order)
{
	size_t *w = sorted_by_wave(order), width = 4;
	for (size_t k = 0; k < nsteps; k++)
		if (strlen(steps[k].id) > width)
			width = strlen(steps[k].id);
	printf("%-4s  %-*s  %-8s  %s\n", "wave", (int)width, "step", "priority", "needs");
	for (size_t k = 0; k < nsteps; k++) {
		const struct step *s = &steps[w[k]];
		printf("%-4ld  %-*s  %-8ld  ", s->wave, (int)width, s->id, priority(s));
		for (size_t q = 0; q < nneeds(s); q++)
			printf("%s%s", q ? ", " : "", steps[needs(s)[q]].id);
		printf("%s\n", nneeds(s) ? "" : "-");
	}
	free(w);
	return EX_OK;
}

static void graph_free(void)
{
	orch_graph_free(graph);
	graph = NULL;
	free(steps);
	orch_map_free(byid);
	steps = NULL;
	byid = NULL;
	nsteps = 0;
}

/* JSON is YAML once tabs between its tokens are spaces (a raw tab inside a
 * JSON string is invalid JSON anyway); columns stay the same. */
static void json_tabs(char *text)
{
	const char *p = text + strspn(text, " \t\r\n");
	if (*p == '{' || *p == '[')
		for (char *q = text; *q; q++)
			if (*q == '\t')
				*q = ' ';
}

/* --id: the job id alone, as nq prints its id: job=$(orch-plan --id SPEC). */
static int print_id(jv job)
{
	puts(orch_jstr(job, "job_id"));
	return EX_OK;
}

static int check_jq = 1;  /* the fuzzer turns it off: ~20 ms a compile */

/* Check text (the spec named path) and print it as mode asks: 'p' the plan,
 * 'd' dot, 'w' waves, 'i' the job id, 'c' nothing. Leaves no state behind. */
static int plan(char *text, size_t len, const char *path, int mode)
{
	fname = strcmp(path, "-") == 0 ? "<stdin>" : path;
	json_tabs(text);
	node *root = read_yaml((unsigned char *)text, len);
	if (root)
		check_spec(root);
	else if (nprobs == 0)
		problem(NULL, "empty spec: expected job:, task: and steps:");
	const node *st = get(root, "steps");
	size_t *order = NULL, norder = 0;
	if (st && st->kind == N_SEQ) {
		for (uint32_t i = 0; i < st->n; i++)
			check_step(root, st->u.kids[i]);
		build_graph(st);
		order = orch_xmalloc(nsteps * sizeof *order + 1);
		norder = orch_graph_order(graph, spec_order, NULL, order);
		if (norder < nsteps)
			report_cycles();
		if (check_jq)
			check_templates();
	}
	int rc = report_problems();
	if (rc == EX_OK) {
		levels(order);
		jv job = job_jv(root, path);
		rc = mode == 'p' ? plan_printer(root, order, job) : mode == 'd' ? print_dot(order, job) :
		     mode == 'w' ? print_waves(order) : mode == 'i' ? print_id(job) : EX_OK;
		jv_free(job);
	}
	free(order);
	graph_free();
	tree_free();
	return rc;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"check", no_argument, 0, 'c'},
		{"dot", no_argument, 0, 'd'},
		{"id", no_argument, 0, 'i'},
		{"waves", no_argument, 0, 'w'},
		ORCH_COMMON_LONGOPTS,
		{0, 0, 0, 0},
	};
	int c, mode = 'p';
	orch_init(argc, argv);
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1)
		if (c == 'c' || c == 'd' || c == 'w' || c == 'i')
			mode = c;
		else
			orch_common(c, optarg, usage);
	if (argc - optind > 1)
		orch_usage(usage);
	const char *path = optind < argc ? argv[optind] : "-";
	size_t len;
	char *text = orch_slurp(path, &len);
	if (!text)
		orch_die_sys(EX_USAGE, "cannot read %s",
		             strcmp(path, "-") == 0 ? "<stdin>" : path);
	int rc = plan(text, len, path, mode);
	free(text);
	orch_exit(rc);
}
