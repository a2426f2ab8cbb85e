/* yaml.c: orch-plan's reader: a spec's text (YAML 1.1 or JSON) into a
 * node tree that keeps every node's position, so every problem has one.
 *
 * Assumptions and limits, by design:
 *  - libyaml's event API feeds a tree of our own; JSON goes through the
 *    same reader (it is YAML, once tabs between tokens are spaces).
 *  - Anchors are registered when their node ends: an alias can never point
 *    into its own node, so the tree is acyclic. Aliases share nodes; their
 *    expanded size is counted (memoised) before any expansion and capped,
 *    so an alias bomb is refused in bounded time and memory. Nesting is
 *    capped at MAX_DEPTH, so no input can exhaust the stack.
 *  - Merge keys (<<) and duplicate keys are dealt with as each mapping ends.
 *  - Nodes and strings live in arenas, freed at once by tree_free: one
 *    tree at a time per process.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>
#include "plan.h"

#define MAX_DEPTH 128        /* nesting as written */
#define MAX_EXPANDED_DEPTH 256  /* nesting once aliases are expanded */
#define EXPANSION_SLACK 100000  /* expanded nodes allowed: 2 per input byte + this */

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

void tree_free(void)
{
	for (size_t i = 0; i < nowned; i++)
		free(owned[i]->u.kids);
	free(owned);
	owned = NULL;
	nowned = capowned = 0;
	arena_free();
}

const char *sval(const node *x)
{
	return x && x->kind == N_SCALAR ? x->u.str : NULL;
}

node *get(const node *x, const char *key)
{
	if (!x || x->kind != N_MAP)
		return NULL;
	for (uint32_t i = 0; i + 1 < x->n; i += 2)
		if (strcmp(x->u.kids[i]->u.str, key) == 0)
			return x->u.kids[i + 1];
	return NULL;
}

/* ---- reading YAML into the tree ---- */

struct anchor { char *name; node *x; };
struct frame { node *x; char *anchor; };

/* One reading: the open containers, the anchors so far, the limits. */
struct reader {
	struct frame st[MAX_DEPTH + 1];
	int depth, docs;
	node *root;
	struct anchor *anchors;
	size_t nanchors, capanchors;
	uint64_t max_size;  /* expanded nodes allowed */
};

static void set_anchor(struct reader *r, const char *name, node *x)
{
	if (!name)
		return;
	for (size_t i = 0; i < r->nanchors; i++)
		if (strcmp(r->anchors[i].name, name) == 0) {
			r->anchors[i].x = x;  /* a later anchor of that name wins */
			return;
		}
	if (r->nanchors == r->capanchors) {
		r->capanchors = r->capanchors ? 2 * r->capanchors : 16;
		r->anchors = orch_xrealloc(r->anchors, r->capanchors * sizeof *r->anchors);
	}
	r->anchors[r->nanchors++] = (struct anchor){orch_xstrdup(name), x};
}

static node *find_anchor(const struct reader *r, const char *name)
{
	for (size_t i = r->nanchors; i-- > 0; )
		if (strcmp(r->anchors[i].name, name) == 0)
			return r->anchors[i].x;
	return NULL;
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

static void anchors_free(struct reader *r)
{
	for (size_t i = 0; i < r->nanchors; i++)
		free(r->anchors[i].name);
	free(r->anchors);
	while (r->depth > 0)
		free(r->st[--r->depth].anchor);
}

/* x is complete (so are its kids, aliased or not): its expanded size and
 * depth follow without recursion. Refuse it if it expands too far. */
static int finish(const struct reader *r, node *x)
{
	uint64_t s = 1;
	uint32_t d = 0;
	if (x->kind != N_SCALAR)
		for (uint32_t i = 0; i < x->n; i++) {
			s += x->u.kids[i]->size;
			if (x->u.kids[i]->depth > d)
				d = x->u.kids[i]->depth;
		}
	x->size = s > r->max_size ? r->max_size + 1 : s;
	x->depth = d + 1;
	if (x->size > r->max_size) {
		problem(x, "aliases here expand to more than %llu nodes (an alias bomb?)",
		        (unsigned long long)r->max_size);
		return -1;
	}
	if (x->depth > MAX_EXPANDED_DEPTH) {
		problem(x, "aliases here nest deeper than %d levels", MAX_EXPANDED_DEPTH);
		return -1;
	}
	return 0;
}

/* Put x into the open container on top of the stack (or make it the root). */
static int place(struct reader *r, node *x)
{
	if (r->depth == 0) {
		r->root = x;
		return 0;
	}
	node *p = r->st[r->depth - 1].x;
	if (p->kind == N_MAP && p->n % 2 == 0 && x->kind != N_SCALAR) {
		problem(x, "a mapping key must be a plain value");
		return -1;
	}
	add_kid(p, x);
	return 0;
}

/* A node for a problem at m alone. */
static node at_mark(yaml_mark_t m)
{
	node at = {0};
	at.line = m.line + 1;
	at.col = m.column + 1;
	return at;
}

/* libyaml's reader (a NUL, a control character, invalid UTF-8) gives a
 * byte offset, not a mark: its line and column, counted as libyaml counts
 * marks (lines end at \n, \r\n or \r; columns are characters). */
static node at_offset(const char *text, size_t len, size_t off)
{
	node at = {0};
	at.line = at.col = 1;
	for (size_t i = 0; i < off && i < len; i++)
		if (text[i] == '\n' || (text[i] == '\r' && (i + 1 == len || text[i + 1] != '\n')))
			at.line++, at.col = 1;
		else if (((unsigned char)text[i] & 0xC0) != 0x80 && text[i] != '\r')
			at.col++;
	return at;
}

static void yaml_problem(yaml_parser_t *y, const char *text, size_t len)
{
	node at = at_mark(y->problem_mark);
	if (y->error == YAML_READER_ERROR) {
		at = at_offset(text, len, y->problem_offset);
		if (y->problem_value >= 0)
			problem(&at, "%s (byte 0x%02x)", y->problem, (unsigned)y->problem_value & 0xFF);
		else
			problem(&at, "%s", y->problem);
	} else if (y->context)
		problem(&at, "%s %s", y->problem, y->context);
	else
		problem(&at, "%s", y->problem ? y->problem : "invalid YAML");
}

static int read_scalar(struct reader *r, yaml_event_t *ev)
{
	node *x = scalar_node(ev);
	set_anchor(r, (const char *)ev->data.scalar.anchor, x);
	return finish(r, x) < 0 || place(r, x) < 0 ? -1 : 0;
}

static int read_alias(struct reader *r, yaml_event_t *ev)
{
	node *x = find_anchor(r, (const char *)ev->data.alias.anchor);
	if (!x) {
		node at = at_mark(ev->start_mark);
		problem(&at, "unknown alias *%s", (char *)ev->data.alias.anchor);
		return -1;
	}
	return place(r, x);
}

static int open_node(struct reader *r, yaml_event_t *ev)
{
	int map = ev->type == YAML_MAPPING_START_EVENT;
	node *x = new_node(map ? N_MAP : N_SEQ, ev->start_mark);
	own(x);
	if (r->depth == MAX_DEPTH) {
		problem(x, "nested deeper than %d levels", MAX_DEPTH);
		return -1;
	}
	const char *anchor = (const char *)(map ? ev->data.mapping_start.anchor :
	                                          ev->data.sequence_start.anchor);
	if (place(r, x) < 0)
		return -1;
	r->st[r->depth].x = x;
	r->st[r->depth].anchor = anchor ? orch_xstrdup(anchor) : NULL;
	r->depth++;
	return 0;
}

static int close_node(struct reader *r)
{
	int bad = 0;
	r->depth--;
	node *x = r->st[r->depth].x;
	if (x->kind == N_MAP && (dup_keys(x) || merge_keys(x) < 0))
		bad = 1;
	if (!bad && finish(r, x) < 0)
		bad = 1;
	set_anchor(r, r->st[r->depth].anchor, x);  /* only now: no alias cycles */
	free(r->st[r->depth].anchor);
	return bad ? -1 : 0;
}

/* One event into the tree; -1 (a problem recorded) ends the reading. */
static int read_event(struct reader *r, yaml_event_t *ev)
{
	switch (ev->type) {
	case YAML_DOCUMENT_START_EVENT:
		if (++r->docs > 1) {
			node at = at_mark(ev->start_mark);
			problem(&at, "more than one YAML document");
			return -1;
		}
		return 0;
	case YAML_SCALAR_EVENT:
		return read_scalar(r, ev);
	case YAML_ALIAS_EVENT:
		return read_alias(r, ev);
	case YAML_SEQUENCE_START_EVENT:
	case YAML_MAPPING_START_EVENT:
		return open_node(r, ev);
	case YAML_SEQUENCE_END_EVENT:
	case YAML_MAPPING_END_EVENT:
		return close_node(r);
	default:
		return 0;
	}
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

node *read_yaml(char *text, size_t len)
{
	struct reader r = {.max_size = 2 * (uint64_t)len + EXPANSION_SLACK};
	yaml_parser_t y;
	yaml_event_t ev;
	int done = 0, bad = 0;
	json_tabs(text);
	yaml_parser_initialize(&y);
	yaml_parser_set_input_string(&y, (const unsigned char *)text, len);
	while (!done && !bad) {
		if (!yaml_parser_parse(&y, &ev)) {
			yaml_problem(&y, text, len);
			bad = 1;
			break;
		}
		done = ev.type == YAML_STREAM_END_EVENT;
		bad = read_event(&r, &ev) < 0;
		yaml_event_delete(&ev);
	}
	yaml_parser_delete(&y);
	anchors_free(&r);
	return bad ? NULL : r.root;
}

/* ---- values: YAML 1.1 scalars as JSON ---- */

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

int one_of(const char *s, const char *const *list)
{
	for (; *list; list++)
		if (strcmp(s, *list) == 0)
			return 1;
	return 0;
}

/* YAML 1.1 resolution of a plain scalar; quoted scalars are strings. */
jv_kind scalar_kind(const node *x)
{
	static const char *const nulls[] = {"", "~", "null", "Null", "NULL", 0};
	static const char *const trues[] = {"true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON", 0};
	static const char *const falses[] = {"false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF", 0};
	const char *s = x->u.str;
	return x->quoted ? JV_KIND_STRING : one_of(s, nulls) ? JV_KIND_NULL :
	       one_of(s, trues) ? JV_KIND_TRUE : one_of(s, falses) ? JV_KIND_FALSE :
	       is_number(s) ? JV_KIND_NUMBER : JV_KIND_STRING;
}

jv scalar_as(const node *x, jv_kind k)
{
	switch (k) {
	case JV_KIND_NULL: return jv_null();
	case JV_KIND_TRUE: return jv_true();
	case JV_KIND_FALSE: return jv_false();
	case JV_KIND_NUMBER: return jv_number(strtod(x->u.str, NULL));
	default: return jv_string(x->u.str);
	}
}

jv scalar_jv(const node *x)
{
	return scalar_as(x, scalar_kind(x));
}

/* Recursion is bounded: depth <= MAX_EXPANDED_DEPTH (finish()). */
jv to_jv(const node *x)
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

const char *kind_name(const node *x)
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

