/* reads.c: which steps' results a template or when: condition reads,
 * found in its jq text without running it, so orch-plan can refuse a read
 * of a step that is not a step, or not in this step's needs (a step's
 * input record holds the results of its direct needs only, under .steps).
 *
 * A small jq lexer, not a parser: it follows what the input "." is at each
 * point (the step input record, its .steps, or something else) through
 * brackets, pipes, "as $x |", if/then/elif/else/end, def, "\( )" in
 * strings and the arguments of a few builtins, and counts as reads
 *   .steps.X  .steps."X"  .steps["X"]  .steps?.X  ."steps".X  .["steps"].X
 * where "." is the record, and .X ."X" .["X"] where it is .steps
 * (.steps | .X). What it cannot follow is no read, so a valid template is
 * never refused: dynamic keys (.steps[$k], .steps[], .steps | keys), the
 * record through a variable ($in.steps.X), a read after another pipe or
 * inside map() and the like (there "." is something else). Malformed text
 * ends the search (libjq's compile reports it).
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include "plan.h"

enum { IN_OTHER, IN_RECORD, IN_STEPS };  /* what "." is */
enum { G_HOLE, G_PAREN, G_CALL, G_BRACKET, G_BRACE, G_INTERP, G_IF, G_DEF };
enum { ARGS_OTHER, ARGS_SAME, ARGS_FIRST2 };  /* a call's arguments' input */
enum { SEG_EMPTY, SEG_STEPS, SEG_MORE };      /* a pipe's left side so far */
#define MAX_GROUPS 64

struct group {
	unsigned char kind, entry, in;  /* "." on entry, and now */
	unsigned char args, semis;      /* G_CALL: its kind of arguments, ';' seen */
	unsigned char seg, binds, loop; /* the segment: SEG_*, "as"/"label", reduce/foreach */
	size_t mark;                    /* reads found before it opened */
};

struct scan {
	const char *p;
	struct group g[MAX_GROUPS];
	int depth, whole, stop;  /* whole: a when: condition, not a template */
	int after_term;          /* the last token ends a term: ".x" next is its field */
	const char *ident;       /* the identifier just before, else NULL */
	size_t identn;
	struct step_read *reads;
	size_t n, cap;
};

/* Builtins whose arguments see the caller's input: all of them, or (any
 * and all) the first of two. Other calls' arguments see something else. */
static const char *const args_same[] = {"select", "has", "contains", "inside", "test",
	"match", "capture", "split", "sub", "gsub", "join", "startswith", "endswith",
	"ltrimstr", "rtrimstr", "index", "rindex", "limit", "first", "last", "isempty",
	"error", 0};

static int call_args(const char *s, size_t n)
{
	char name[16];
	if (n >= sizeof name)
		return ARGS_OTHER;
	memcpy(name, s, n);
	name[n] = 0;
	if (one_of(name, args_same))
		return ARGS_SAME;
	return strcmp(name, "any") == 0 || strcmp(name, "all") == 0 ? ARGS_FIRST2 : ARGS_OTHER;
}

static int ident_start(char c)
{
	return isalpha((unsigned char)c) || c == '_';
}

static const char *skip_ident(const char *p)
{
	while (isalnum((unsigned char)*p) || *p == '_')
		p++;
	return p;
}

static const char *skip_space(const char *p)
{
	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
		p++;
	return p;
}

/* A string without escapes at p ("..."): its text; 0 if it has any. */
static int plain_string(const char **p, const char **key, size_t *n)
{
	const char *q = *p + 1, *e = q + strcspn(q, "\"\\");
	if (**p != '"' || *e != '"')
		return 0;
	*key = q;
	*n = (size_t)(e - q);
	*p = e + 1;
	return 1;
}

/* One key at *p: .name ."name" .["name"], and ["name"] if bare. */
static int field(const char **p, const char **key, size_t *n, int bare)
{
	const char *q = *p;
	if (*q == '.' && ident_start(q[1])) {
		*key = q + 1;
		*p = skip_ident(q + 1);
		*n = (size_t)(*p - *key);
		return 1;
	}
	if (*q == '.' && q[1] == '"') {
		q++;
		if (!plain_string(&q, key, n))
			return 0;
		*p = q;
		return 1;
	}
	if (*q == '.' && q[1] == '[')
		q++;
	else if (!bare || *q != '[')
		return 0;
	q = skip_space(q + 1);
	if (!plain_string(&q, key, n))
		return 0;
	q = skip_space(q);
	if (*q != ']')
		return 0;
	*p = q + 1;
	return 1;
}

static struct group *top(struct scan *s)
{
	return &s->g[s->depth - 1];
}

static void add_read(struct scan *s, const char *name, size_t n)
{
	if (s->n == s->cap)
		s->reads = orch_xrealloc(s->reads, (s->cap = s->cap ? 2 * s->cap : 8) * sizeof *s->reads);
	s->reads[s->n++] = (struct step_read){name, n};
}

static void push(struct scan *s, int kind, int in)
{
	if (s->depth == MAX_GROUPS) {
		s->stop = 1;
		return;
	}
	s->g[s->depth++] = (struct group){.kind = kind, .entry = in, .in = in, .mark = s->n};
}

static void new_segment(struct group *g, int in)
{
	g->in = in;
	g->seg = SEG_EMPTY;
	g->binds = g->loop = 0;
}

/* A "." at a term's start where "." is the record or its .steps. */
static int read_at_dot(struct scan *s)
{
	struct group *g = top(s);
	const char *q = s->p, *key;
	size_t n;
	if (s->after_term || g->in == IN_OTHER || !field(&q, &key, &n, 0))
		return 0;
	s->p = q;
	s->after_term = 1;
	if (g->in == IN_STEPS || n != 5 || memcmp(key, "steps", 5) != 0) {
		if (g->in == IN_STEPS)
			add_read(s, key, n);
		g->seg = SEG_MORE;
		return 1;
	}
	q = skip_space(q);  /* .steps, then maybe ?, then maybe a key */
	if (*q == '?')
		q = skip_space(q + 1);
	if (field(&q, &key, &n, 1)) {
		add_read(s, key, n);
		s->p = q;
		g->seg = SEG_MORE;
	} else
		g->seg = g->seg == SEG_EMPTY ? SEG_STEPS : SEG_MORE;
	return 1;
}

/* Any other ".": identity, "..", a field, or before "[" or a string. */
static void dot(struct scan *s)
{
	if (read_at_dot(s))
		return;
	top(s)->seg = SEG_MORE;
	s->p++;
	if (*s->p == '.')
		s->p++;
	else if (ident_start(*s->p))
		s->p = skip_ident(s->p);
	else if (*s->p == '"' || *s->p == '[')
		return;  /* the string or the index comes next, after a term */
	s->after_term = 1;
}

/* A string's text from s->p up to its end, or into a "\(" (a group). */
static void string_rest(struct scan *s)
{
	for (const char *p = s->p; *p; p++) {
		if (*p == '"') {
			s->p = p + 1;
			s->after_term = 1;
			return;
		}
		if (*p == '\\' && p[1] == '(') {
			s->p = p + 2;
			s->after_term = 0;
			push(s, G_INTERP, top(s)->in);
			return;
		}
		if (*p == '\\' && p[1])
			p++;
	}
	s->stop = 1;
}

static void keyword(struct scan *s, const char *w, size_t n)
{
	static const char *const ops[] = {"and", "or", "try", "import", "include", 0};
	struct group *g = top(s);
	char k[8] = "";
	if (n < sizeof k)
		memcpy(k, w, n);
	s->after_term = 0;
	g->seg = SEG_MORE;
	if (strcmp(k, "if") == 0)
		push(s, G_IF, g->in);
	else if (one_of(k, (const char *const[]){"then", "elif", "else", 0}))
		g->kind == G_IF ? new_segment(g, g->entry) : (void)(s->stop = 1);
	else if (strcmp(k, "end") == 0)
		g->kind == G_IF ? (void)(s->depth--, s->after_term = 1) : (void)(s->stop = 1);
	else if (strcmp(k, "def") == 0)
		push(s, G_DEF, IN_OTHER);
	else if (strcmp(k, "as") == 0 || strcmp(k, "label") == 0)
		g->binds = 1;
	else if (strcmp(k, "reduce") == 0 || strcmp(k, "foreach") == 0)
		g->loop = 1;
	else if (strcmp(k, "catch") == 0)
		g->in = IN_OTHER;
	else if (!one_of(k, ops)) {  /* a name: a call, an object key */
		s->after_term = 1;
		s->ident = w;
		s->identn = n;
	}
}

/* ( [ {, where name (n bytes) is the name just before it, else NULL */
static void open_group(struct scan *s, char c, const char *name, size_t n)
{
	struct group *g = top(s);
	int in = g->in;
	g->seg = SEG_MORE;
	if (c == '(' && name) {
		int args = call_args(name, n);
		push(s, G_CALL, args == ARGS_OTHER ? IN_OTHER : in);
		if (!s->stop)
			top(s)->args = args;
	} else
		push(s, c == '(' ? G_PAREN : c == '[' ? G_BRACKET : G_BRACE, in);
	s->p++;
	s->after_term = 0;
}

/* The innermost bracket (not if or def) is the hole itself: "}}" ends it. */
static int hole_ends(const struct scan *s)
{
	if (s->whole || s->p[0] != '}' || s->p[1] != '}')
		return 0;
	int d = s->depth - 1;
	while (d > 0 && (s->g[d].kind == G_IF || s->g[d].kind == G_DEF))
		d--;
	return d == 0;
}

static void close_group(struct scan *s, char c)
{
	struct group *g = top(s);
	int want = c == ')' ? (g->kind == G_PAREN || g->kind == G_CALL || g->kind == G_INTERP) :
	           c == ']' ? g->kind == G_BRACKET : g->kind == G_BRACE;
	s->p++;
	if (!want) {
		s->stop = 1;
		return;
	}
	if (g->kind == G_CALL && g->args == ARGS_FIRST2 && g->semis == 0)
		s->n = g->mark;  /* any(f) and all(f): f sees the elements */
	s->depth--;
	s->after_term = 1;
	if (g->kind == G_INTERP)
		string_rest(s);
}

static void pipe_or_semicolon(struct scan *s, char c)
{
	struct group *g = top(s);
	s->after_term = 0;
	s->p++;
	if (c == '|' && *s->p == '=')  /* .a |= f: f sees .a */
		s->p++, new_segment(g, IN_OTHER);
	else if (c == '|')
		new_segment(g, g->binds && !g->loop ? g->in :
		               g->seg == SEG_STEPS && g->in == IN_RECORD ? IN_STEPS : IN_OTHER);
	else if (g->kind == G_DEF)
		s->depth--;
	else if (g->kind == G_CALL && g->args == ARGS_SAME)
		g->semis++, new_segment(g, g->entry);
	else
		g->semis++, new_segment(g, IN_OTHER);
}

/* One token of jq at s->p (spaces skipped before). */
static void token(struct scan *s)
{
	const char *p = s->p, *name = s->ident;
	size_t namen = s->identn;
	char c = *p;
	s->ident = NULL;  /* set again by a name */
	if (c == '#')
		s->p += strcspn(p, "\n");
	else if (c == '.' && !isdigit((unsigned char)p[1]))
		dot(s);
	else if (c == '"')
		s->p++, top(s)->seg = SEG_MORE, string_rest(s);
	else if (ident_start(c)) {
		s->p = skip_ident(p);
		keyword(s, p, (size_t)(s->p - p));
	} else if (c == '(' || c == '[' || c == '{')
		open_group(s, c, name, namen);
	else if (c == ')' || c == ']' || c == '}')
		close_group(s, c);
	else if (c == '|' || c == ';')
		pipe_or_semicolon(s, c);
	else if (c == ',' && top(s)->kind == G_BRACE)
		s->p++, s->after_term = 0, new_segment(top(s), top(s)->entry);
	else if (c == '$' || c == '@' || isdigit((unsigned char)c) || c == '.') {
		s->p = skip_ident(p + 1 + (c == '.'));  /* $x @fmt 12 .5 (1e3: near enough) */
		s->after_term = 1;
		top(s)->seg = SEG_MORE;
	} else if (c == '?')
		s->p++;
	else
		s->p++, s->after_term = 0, top(s)->seg = SEG_MORE;
}

/* Scan code from s->p to the end of the hole (or text); p just after. */
static void scan_code(struct scan *s)
{
	s->depth = 0;
	s->after_term = 0;
	s->ident = NULL;
	push(s, G_HOLE, IN_RECORD);
	while (!s->stop && s->depth > 0) {
		s->p = skip_space(s->p);
		if (!*s->p)
			s->stop = 1;
		else if (hole_ends(s)) {
			s->p += 2;
			s->depth = 0;
		} else
			token(s);
	}
}

size_t steps_read(const char *text, int template, struct step_read **reads)
{
	struct scan s = {.p = text, .whole = !template};
	if (!template)
		scan_code(&s);
	while (template && !s.stop && (s.p = strstr(s.p, "{{"))) {
		s.p += 2;
		scan_code(&s);
	}
	*reads = s.reads;
	return s.n;
}

/* ---- the check: every read is of a step this step needs ---- */

static int by_name(const void *a, const void *b)
{
	const struct step_read *x = a, *y = b;
	size_t n = x->n < y->n ? x->n : y->n;
	int c = memcmp(x->name, y->name, n);
	return c ? c : (x->n > y->n) - (x->n < y->n);
}

int needs_step(const struct plan *p, size_t i, size_t j)
{
	const size_t *d = orch_graph_deps(p->graph, i);
	for (size_t k = 0; k < orch_graph_ndeps(p->graph, i); k++)
		if (d[k] == j)
			return 1;
	return 0;
}

/* The read r by step i (its field at x): a step, and one it needs? Names
 * near an unknown one are looked for a few times per spec only. */
static void check_read(const struct plan *p, size_t i, const node *x, const struct step_read *r,
                       const char **ids, int *suggest)
{
	char name[65];
	int n = r->n < sizeof name ? (int)r->n : 64;
	memcpy(name, r->name, (size_t)n);
	name[n] = 0;
	const char *id = p->steps[i].id, *dot = ident_start(*name) && *skip_ident(name) == 0 ? "." : "";
	const char *open = *dot ? "" : "[\"", *close = *dot ? "" : "\"]";
	long j = r->n < sizeof name ? orch_map_get(p->byid, name) : -1;
	const char *near = j < 0 && p->nsteps < 5000 && (*suggest)-- > 0 ?
	                   nearest(name, ids, p->nsteps) : NULL;
	if (j < 0 && near)
		problem(x, "step %s reads .steps%s%s%s%s, which is not a step (did you mean %s?)",
		        id, dot, open, name, close, near);
	else if (j < 0)
		problem(x, "step %s reads .steps%s%s%s%s, which is not a step", id, dot, open, name, close);
	else if ((size_t)j == i)
		problem(x, "step %s reads .steps%s%s%s%s, its own result: a step reads only what it needs",
		        id, dot, open, name, close);
	else if (!needs_step(p, i, (size_t)j) || foreach_only_need(&p->steps[i], (size_t)j))
		problem(x, "step %s reads .steps%s%s%s%s but does not need it%s: add %s to needs",
		        id, dot, open, name, close,
		        needs_step(p, i, (size_t)j) ? " (only its foreach: does)" : "", name);
}

void check_reads(const struct plan *p)
{
	static const char *const fields[] = {"prompt", "system", "when"};
	const char **ids = orch_xmalloc(p->nsteps * sizeof *ids + 1);
	int suggest = 32;
	for (size_t i = 0; i < p->nsteps; i++)
		ids[i] = p->steps[i].id;
	for (size_t i = 0; i < p->nsteps; i++)
		for (int f = 0; f < 3; f++) {
			const node *x = get(p->steps[i].x, fields[f]);
			const char *t = f < 2 ? step_text(&p->steps[i], f, &x) : sval(x);  /* *_file */
			struct step_read *r;
			if (!t)
				continue;
			size_t n = steps_read(t, f < 2, &r);
			if (n > 1)
				qsort(r, n, sizeof *r, by_name);
			for (size_t k = 0; k < n; k++)
				if (k == 0 || by_name(&r[k - 1], &r[k]) != 0)
					check_read(p, i, x, &r[k], ids, &suggest);
			free(r);
		}
	free(ids);
}
