/* steps.c: a spec read and checked, as orch-plan plans it: its steps by
 * id (a hash table), their needs as a graph (lib/graph.c), Kahn's order
 * with ties in spec order, every cycle named, and each step's wave
 * (longest path from a source) and priority (longest path to a sink), so
 * a scheduler starts long chains first. Linear in the size of the spec.
 */
#include <stdlib.h>
#include <string.h>
#include "plan.h"

/* The steps with usable ids, in spec order; a repeated id is a problem. */
static void collect_steps(struct plan *p, const node *st)
{
	p->steps = calloc(st->n ? st->n : 1, sizeof *p->steps);
	if (!p->steps)
		orch_die(EX_FAIL, "out of memory");
	p->byid = orch_map_new(st->n);
	for (uint32_t i = 0; i < st->n; i++) {
		const node *x = st->u.kids[i], *id = get(x, "id");
		if (x->kind != N_MAP || !sval(id) || !orch_job_id_valid(sval(id)))
			continue;
		long prev = orch_map_get(p->byid, sval(id));
		if (prev >= 0) {
			problem(id, "duplicate step id '%s' (first at line %u)", sval(id),
			        p->steps[prev].x->line);
			continue;
		}
		orch_map_put(p->byid, sval(id), p->nsteps);
		p->steps[p->nsteps].x = x;
		p->steps[p->nsteps].id = sval(id);
		p->nsteps++;
	}
}

/* Step i needs the step named by x, if there is one. */
static void link_need(struct plan *p, size_t i, const node *x, const char **ids)
{
	const char *name = sval(x);
	if (!name)
		return;
	long j = orch_map_get(p->byid, name);
	if (j < 0) {
		const char *near = p->nsteps < 5000 ? nearest(name, ids, p->nsteps) : NULL;
		if (near)
			problem(x, "step '%s' needs '%s', which is not a step (did you mean '%s'?)",
			        p->steps[i].id, name, near);
		else
			problem(x, "step '%s' needs '%s', which is not a step", p->steps[i].id, name);
	} else if ((size_t)j == i)
		problem(x, "step '%s' needs itself", name);
	else
		orch_graph_need(p->graph, i, j);  /* "needs: [a, a]" counts once */
}

/* Collect the steps; link needs both ways. */
static void build_graph(struct plan *p, const node *st)
{
	collect_steps(p, st);
	p->graph = orch_graph_new(p->nsteps);
	const char **ids = orch_xmalloc(p->nsteps * sizeof *ids + 1);
	for (size_t i = 0; i < p->nsteps; i++)
		ids[i] = p->steps[i].id;
	for (size_t i = 0; i < p->nsteps; i++) {
		const node *needs = get(p->steps[i].x, "needs");
		const node *const *list = needs && needs->kind == N_SEQ ?
		                          (const node *const *)needs->u.kids : &needs;
		size_t n = !needs ? 0 : needs->kind == N_SEQ ? needs->n : 1;
		for (size_t k = 0; k < n; k++)
			link_need(p, i, list[k], ids);
	}
	free(ids);
}

static int spec_order(size_t a, size_t b, void *ctx)
{
	(void)ctx;
	return a < b;
}

static const char *step_id(size_t i, void *p)
{
	return ((struct plan *)p)->steps[i].id;
}

/* Every step left after Kahn is on or behind a cycle: print each cycle
 * once, at the step it starts and ends with. */
static void report_cycles(struct plan *p)
{
	char *text;
	size_t at;
	while ((text = orch_graph_next_cycle(p->graph, step_id, p, &at))) {
		problem(p->steps[at].x, "cycle: %s", text);
		free(text);
	}
}

/* 1 + the longest of the paths ending at the steps next[0..n), 0 if none:
 * their waves (a step's needs) or their priorities (its dependants). */
static long longest(const struct plan *p, const size_t *next, size_t n, int wave)
{
	long best = 0;
	for (size_t q = 0; q < n; q++) {
		long v = wave ? p->steps[next[q]].wave : p->steps[next[q]].prio;
		if (v + 1 > best)
			best = v + 1;
	}
	return best;
}

/* Waves forward along the order, priorities back along it. */
static void levels(struct plan *p)
{
	const orch_graph *g = p->graph;
	for (size_t k = 0; k < p->nsteps; k++) {
		size_t i = p->order[k];
		p->steps[i].wave = longest(p, orch_graph_deps(g, i), orch_graph_ndeps(g, i), 1);
	}
	for (size_t k = p->nsteps; k-- > 0; ) {
		size_t i = p->order[k];
		p->steps[i].prio = longest(p, orch_graph_rdeps(g, i), orch_graph_nrdeps(g, i), 0);
	}
}

void plan_read(struct plan *p, char *text, size_t len, const char *path)
{
	*p = (struct plan){0};
	problem_file(strcmp(path, "-") == 0 ? "<stdin>" : path);
	const char *slash = strrchr(path, '/');
	p->dir = slash ? orch_fmt("%.*s", (int)(slash - path + (slash == path)), path) : orch_xstrdup(".");
	schema_begin(path);
	p->root = read_yaml(text, len);
	if (p->root)
		check_spec(p->root);
	else if (problem_count() == 0)
		problem(NULL, "empty spec: expected job:, task: and steps:");
	const node *st = get(p->root, "steps");
	if (!st || st->kind != N_SEQ)
		return;
	for (uint32_t i = 0; i < st->n; i++)
		check_step(p->root, st->u.kids[i]);
	build_graph(p, st);
	link_foreach(p);  /* fan-out: pairing edges, prompt_file: texts */
	check_reads(p);
	p->order = orch_xmalloc(p->nsteps * sizeof *p->order + 1);
	if (orch_graph_order(p->graph, spec_order, NULL, p->order) < p->nsteps)
		report_cycles(p);
	else
		levels(p);
}

void plan_free(struct plan *p)
{
	foreach_free(p);
	free(p->dir);
	orch_graph_free(p->graph);
	orch_map_free(p->byid);
	free(p->steps);
	free(p->order);
	schema_end();
	tree_free();
	*p = (struct plan){0};
}
