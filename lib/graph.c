/* graph.c: a dependency graph of n nodes (0 to n-1), shared by orch-plan
 * and orch-sched: adjacency lists both ways, Kahn's order with a heap, and
 * the cycles among what Kahn leaves.
 *
 * Assumptions: linear in nodes + edges: a duplicate need is dropped by a
 * mark per node (mark[d] is node + 1 when d is among node's needs), set
 * anew from node's list when another node's needs came between, so a
 * node's needs given together cost one step each (a merge of 100,000
 * instances is not quadratic); the heap's ties are broken by the caller's
 * before(); cycles are walked without recursion.
 */
#include <stdlib.h>
#include <string.h>
#include "orch.h"

struct adj { size_t *v, n; };

struct orch_graph {
	size_t n;
	struct adj *deps, *rdeps;  /* per node: what it needs, what needs it */
	size_t *mark, marked;      /* mark[d] == marked: d is among the needs of node marked - 1 */
	unsigned char *ordered;    /* by the last orch_graph_order */
	long *seen;                /* cycles: the walk's marks, per node */
	size_t *path, next;        /* cycles: the walk, the next start */
};

orch_graph *orch_graph_new(size_t n)
{
	orch_graph *g = orch_xmalloc(sizeof *g);
	g->n = n;
	g->deps = calloc(n + 1, sizeof *g->deps);
	g->rdeps = calloc(n + 1, sizeof *g->rdeps);
	g->ordered = calloc(n + 1, 1);
	g->mark = calloc(n + 1, sizeof *g->mark);
	g->marked = 0;
	if (!g->deps || !g->rdeps || !g->ordered || !g->mark)
		orch_die(EX_FAIL, "out of memory");
	g->seen = NULL;
	g->path = NULL;
	g->next = 0;
	return g;
}

static void adj_add(struct adj *a, size_t v)
{
	if ((a->n & (a->n - 1)) == 0)  /* grow at powers of two */
		a->v = orch_xrealloc(a->v, (a->n ? 2 * a->n : 1) * sizeof *a->v);
	a->v[a->n++] = v;
}

void orch_graph_need(orch_graph *g, size_t node, size_t dep)
{
	struct adj *a = &g->deps[node];
	if (g->marked != node + 1) {  /* another node's needs came between */
		g->marked = node + 1;
		for (size_t k = 0; k < a->n; k++)
			g->mark[a->v[k]] = node + 1;
	}
	if (g->mark[dep] == node + 1)  /* "needs: [a, a]" counts once */
		return;
	g->mark[dep] = node + 1;
	adj_add(a, dep);
	adj_add(&g->rdeps[dep], node);
}

void orch_graph_need_new(orch_graph *g, size_t node, size_t dep)
{
	adj_add(&g->deps[node], dep);
	adj_add(&g->rdeps[dep], node);
}

/* Walks are marked per node: a grown graph is walked anew. */
static void walk_reset(orch_graph *g);

void orch_graph_grow(orch_graph *g, size_t n2)
{
	g->deps = orch_xrealloc(g->deps, (n2 + 1) * sizeof *g->deps);
	g->rdeps = orch_xrealloc(g->rdeps, (n2 + 1) * sizeof *g->rdeps);
	g->ordered = orch_xrealloc(g->ordered, n2 + 1);
	memset(g->deps + g->n, 0, (n2 + 1 - g->n) * sizeof *g->deps);
	memset(g->rdeps + g->n, 0, (n2 + 1 - g->n) * sizeof *g->rdeps);
	memset(g->ordered + g->n, 0, n2 + 1 - g->n);
	g->mark = orch_xrealloc(g->mark, (n2 + 1) * sizeof *g->mark);  /* orch_graph_need's */
	memset(g->mark + g->n + 1, 0, (n2 - g->n) * sizeof *g->mark);
	g->n = n2;
	walk_reset(g);
}

size_t orch_graph_ndeps(const orch_graph *g, size_t node) { return g->deps[node].n; }
const size_t *orch_graph_deps(const orch_graph *g, size_t node) { return g->deps[node].v; }
size_t orch_graph_nrdeps(const orch_graph *g, size_t node) { return g->rdeps[node].n; }
const size_t *orch_graph_rdeps(const orch_graph *g, size_t node) { return g->rdeps[node].v; }

/* the ready nodes: a heap, before() first */
struct heap {
	size_t *a, n;
	int (*before)(size_t, size_t, void *);
	void *ctx;
};

static void heap_push(struct heap *h, size_t v)
{
	size_t i = h->n++;
	while (i > 0 && h->before(v, h->a[(i - 1) / 2], h->ctx)) {
		h->a[i] = h->a[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	h->a[i] = v;
}

static size_t heap_pop(struct heap *h)
{
	size_t top = h->a[0], v = h->a[--h->n], i = 0;
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= h->n)
			break;
		if (c + 1 < h->n && h->before(h->a[c + 1], h->a[c], h->ctx))
			c++;
		if (!h->before(h->a[c], v, h->ctx))
			break;
		h->a[i] = h->a[c];
		i = c;
	}
	if (h->n)
		h->a[i] = v;
	return top;
}

/* Cycles are walked anew from the first node. */
static void walk_reset(orch_graph *g)
{
	free(g->seen);
	free(g->path);
	g->seen = NULL;
	g->path = NULL;
	g->next = 0;
}

size_t orch_graph_order(orch_graph *g, int (*before)(size_t, size_t, void *), void *ctx,
                        size_t *order)
{
	size_t *indeg = orch_xmalloc(g->n * sizeof *indeg + 1), n = 0;
	struct heap h = {orch_xmalloc(g->n * sizeof *h.a + 1), 0, before, ctx};
	for (size_t i = 0; i < g->n; i++) {
		g->ordered[i] = 0;
		if ((indeg[i] = g->deps[i].n) == 0)
			heap_push(&h, i);
	}
	while (h.n) {
		size_t u = heap_pop(&h);
		order[n++] = u;
		g->ordered[u] = 1;
		for (size_t k = 0; k < g->rdeps[u].n; k++)
			if (--indeg[g->rdeps[u].v[k]] == 0)
				heap_push(&h, g->rdeps[u].v[k]);
	}
	free(h.a);
	free(indeg);
	walk_reset(g);
	return n;
}

/* The text "a -> b -> a" of the cycle path[from..len), in flow order
 * (the walk goes back along needs). */
static char *cycle_text(const size_t *path, size_t from, size_t len,
                        const char *(*name)(size_t, void *), void *ctx)
{
	jv s = jv_string("");
	for (size_t k = len; k-- > from; )
		s = jv_string_append_str(jv_string_append_str(s, name(path[k], ctx)), " -> ");
	s = jv_string_append_str(s, name(path[len - 1], ctx));
	char *text = orch_xstrdup(jv_string_value(s));
	jv_free(s);
	return text;
}

/* Every node left unordered is on or behind a cycle: walk back along needs
 * left unordered until a node repeats. A walk that meets an older walk
 * finds no new cycle; each node is walked once over all calls. */
char *orch_graph_next_cycle(orch_graph *g, const char *(*name)(size_t, void *), void *ctx,
                            size_t *first)
{
	if (!g->seen) {
		g->seen = orch_xmalloc(g->n * sizeof *g->seen + 1);
		g->path = orch_xmalloc(g->n * sizeof *g->path + 1);
		for (size_t i = 0; i < g->n; i++)
			g->seen[i] = -1;
	}
	for (; g->next < g->n; g->next++) {
		size_t start = g->next, len = 0, v = start;
		if (g->ordered[start] || g->seen[start] != -1)
			continue;
		while (g->seen[v] == -1) {
			g->seen[v] = (long)len;  /* its place on this walk */
			g->path[len++] = v;
			size_t next = v;
			for (size_t k = 0; k < g->deps[v].n; k++)
				if (!g->ordered[g->deps[v].v[k]]) {
					next = g->deps[v].v[k];
					break;
				}
			v = next;
		}
		size_t from = (size_t)g->seen[v];  /* on this walk, or an older one? */
		int found = from < len && g->path[from] == v;
		for (size_t k = 0; k < len; k++)
			g->seen[g->path[k]] = (long)g->n;  /* done with: never a new cycle */
		if (found) {
			if (first)
				*first = g->path[len - 1];
			g->next++;
			return cycle_text(g->path, from, len, name, ctx);
		}
	}
	return NULL;
}

char *orch_graph_cycle(orch_graph *g, const char *(*name)(size_t, void *), void *ctx)
{
	walk_reset(g);
	return orch_graph_next_cycle(g, name, ctx, NULL);
}

void orch_graph_free(orch_graph *g)
{
	if (!g)
		return;
	for (size_t i = 0; i < g->n; i++) {
		free(g->deps[i].v);
		free(g->rdeps[i].v);
	}
	free(g->deps);
	free(g->rdeps);
	free(g->ordered);
	free(g->mark);
	walk_reset(g);
	free(g);
}
