/* write.c: orch-plan's output: the plan (one JSON line per step, in
 * order, with its wave, priority, job and spec), --dot, --waves, --id.
 *
 * Plan lines are written from the tree by lib's JSON writer: building
 * each line as jv and freeing it cost twice the whole check (10,000 steps:
 * 90 ms against 30 ms). A line holds what the jv would, in the same order;
 * tests/10-plan checks lines against jq's own + on the same spec, and the
 * fuzzer (tests/fuzz/spec.c) against the same lines built as jv, from
 * job_jv, provider_jv and merge_provider here.
 */
#include <stdlib.h>
#include <string.h>
#include "plan.h"

jv provider_jv(const node *p)
{
	if (!p)
		return jv_invalid();
	if (p->kind == N_SCALAR)
		return jv_object_set(jv_object(), jv_string("name"), jv_string(sval(p)));
	if (p->kind == N_SEQ) {  /* a list: each entry as a provider alone */
		jv list = jv_array();
		for (uint32_t i = 0; i < p->n; i++)
			list = jv_array_append(list, provider_jv(p->u.kids[i]));
		return list;
	}
	return to_jv(p);
}

/* Whether step names another provider than job's (objects, kept). */
static int names_another(jv job, jv step)
{
	jv jn = jv_object_get(jv_copy(job), jv_string("name"));
	jv sn = jv_object_get(jv_copy(step), jv_string("name"));
	if (jv_get_kind(sn) != JV_KIND_STRING) {
		jv_free(jn);
		jv_free(sn);
		return 0;
	}
	return !jv_equal(jn, sn);  /* consumes both */
}

/* One provider with the step's keys over it, opts merged key by key. */
static jv merge_one(jv job, jv step)
{
	jv jo = jv_object_get(jv_copy(job), jv_string("opts"));
	jv so = jv_object_get(jv_copy(step), jv_string("opts"));
	jv merged = jv_object_merge(job, step);
	if (jv_get_kind(jo) == JV_KIND_OBJECT && jv_get_kind(so) == JV_KIND_OBJECT)
		merged = jv_object_set(merged, jv_string("opts"), jv_object_merge(jo, so));
	else
		jv_free(jo), jv_free(so);
	return merged;
}

/* The job's provider with the step's over it. A step naming another
 * provider, or giving a list, takes nothing from the job's. Otherwise
 * its keys go over the job's provider, or over the first of the job's
 * list (the others stay after it, to fall back on). */
jv merge_provider(jv job, jv step)
{
	if (!jv_is_valid(step))
		return (jv_free(step), job);
	if (!jv_is_valid(job) || jv_get_kind(step) == JV_KIND_ARRAY)
		return (jv_free(job), step);
	int list = jv_get_kind(job) == JV_KIND_ARRAY;
	jv first = list ? jv_array_get(jv_copy(job), 0) : jv_copy(job);
	if (names_another(first, step)) {
		jv_free(first);
		jv_free(job);
		return step;
	}
	if (!list)
		return (jv_free(first), merge_one(job, step));
	return jv_array_set(job, 0, merge_one(first, step));
}

jv job_jv(const node *root, const char *spec_file)
{
	const char *id = sval(get(root, "job"));
	jv j = jv_object_set(jv_object(), jv_string("job_id"), jv_string(id));
	const node *x;
	j = jv_object_set(j, jv_string("project"),
	                  (x = get(root, "project")) ? to_jv(x) : jv_string(id));
	j = jv_object_set(j, jv_string("task"), (x = get(root, "task")) ? to_jv(x) : jv_string(""));
	j = jv_object_set(j, jv_string("inputs"), (x = get(root, "inputs")) ? to_jv(x) : jv_object());
	static const char *const opt[] = {"concurrency", "pools", "defaults", "launcher", "workdir",
		"budget", "prices"};
	if ((x = get(root, "provider")))
		j = jv_object_set(j, jv_string("provider"), provider_jv(x));
	for (size_t i = 0; i < sizeof opt / sizeof *opt; i++)
		if ((x = get(root, opt[i])))
			j = jv_object_set(j, jv_string(opt[i]), to_jv(x));
	return jv_object_set(j, jv_string("spec_file"), jv_string(spec_file));
}

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

/* The plan's lines as they are written: the line so far, the job's
 * defaults, each key's place in them, and room for a step's values over
 * them: a step's keys are looked up once each, so a line costs the size of
 * the step plus that of the defaults, never their product. */
struct writer {
	orch_jw w;
	const struct plan *p;
	const node *defaults;  /* the mapping; NULL if the job has none */
	uint32_t n;            /* its keys */
	orch_map *at;          /* key -> its place, 0 to n - 1 */
	const node **over;     /* per place: the step's value, while it is written */
	jv prov;               /* the step's provider, merged with the job's */
	long inst;             /* the fan-out instance written, else -1 */
};

static void put_needs(struct writer *wr, size_t i)
{
	const struct plan *p = wr->p;
	const size_t *needs = orch_graph_deps(p->graph, i);
	orch_jw_open(&wr->w, '[');
	for (size_t q = 0; q < orch_graph_ndeps(p->graph, i); q++)
		put_need_names(&wr->w, &p->steps[i], wr->inst, &p->steps[needs[q]], needs[q]);
	orch_jw_close(&wr->w);
}

/* One key of step i's spec: id and needs as the graph has them, provider
 * merged with the job's, the rest as written. */
static void put_field(struct writer *wr, size_t i, const char *key, const node *v)
{
	const struct step *s = &wr->p->steps[i];
	int f = strcmp(key, "prompt_file") == 0 ? 0 : strcmp(key, "system_file") == 0 ? 1 : -1;
	if (f >= 0 && s->text[f]) {  /* the file's text, as if written in the spec */
		orch_jw_key(&wr->w, f ? "system" : "prompt");
		orch_jw_str(&wr->w, s->text[f]);
		return;
	}
	orch_jw_key(&wr->w, key);
	if (strcmp(key, "id") == 0)
		orch_jw_str(&wr->w, wr->p->steps[i].id);
	else if (strcmp(key, "needs") == 0)
		put_needs(wr, i);
	else if (strcmp(key, "provider") == 0)
		orch_jw_jv(&wr->w, jv_copy(wr->prov));
	else if (strcmp(key, "schema") == 0)
		orch_jw_jv(&wr->w, schema_inline(v));
	else
		put_node(&wr->w, v);
}

/* Step i's keys over the job's defaults: the keys of defaults first,
 * then the step's own, then needs and provider if it had none (the order
 * jq's defaults + step gives). */
static void put_spec(struct writer *wr, size_t i)
{
	const node *x = wr->p->steps[i].x, *d = wr->defaults;
	for (uint32_t k = 0; wr->n && k + 1 < x->n; k += 2) {
		long at = orch_map_get(wr->at, x->u.kids[k]->u.str);
		if (at >= 0)
			wr->over[at] = x->u.kids[k + 1];
	}
	orch_jw_open(&wr->w, '{');
	for (uint32_t k = 0; k < wr->n; k++) {
		const node *v = wr->over[k] ? wr->over[k] : d->u.kids[2 * k + 1];
		put_field(wr, i, d->u.kids[2 * k]->u.str, v);
		wr->over[k] = NULL;
	}
	for (uint32_t k = 0; k + 1 < x->n; k += 2) {
		const char *key = x->u.kids[k]->u.str;
		if (!wr->n || orch_map_get(wr->at, key) < 0)
			put_field(wr, i, key, x->u.kids[k + 1]);
	}
	if (!get(x, "needs"))
		put_field(wr, i, "needs", NULL);
	if (!get(x, "provider") && jv_is_valid(wr->prov))
		put_field(wr, i, "provider", NULL);
	orch_jw_close(&wr->w);
}

/* The line of the k-th step in order; job is the job's JSON text. */
static int put_line(struct writer *wr, size_t k, const char *job, size_t njob)
{
	size_t i = wr->p->order[k];
	const struct step *s = &wr->p->steps[i];
	orch_jw *w = &wr->w;
	orch_jw_open(w, '{');
	orch_jw_key(w, "step");
	put_step_name(w, s, wr->inst);
	orch_jw_key(w, "needs");
	put_needs(wr, i);
	orch_jw_key(w, "wave");
	orch_jw_jv(w, jv_number(s->wave));
	orch_jw_key(w, "priority");
	orch_jw_jv(w, jv_number(priority(s)));
	orch_jw_key(w, "index");
	orch_jw_jv(w, jv_number(i));
	if (wr->inst >= 0)
		put_instance_head(w, s, wr->inst);
	else if (s->dynamic)  /* foreach.c: orch-sched expands it */
		put_dynamic_head(w, wr->p, s);
	/* job before spec: all before it are names and numbers, so the
	 * first "job":{"job_id":" of a line is the job's (orch(1) reads it
	 * so, with no JSON parser; a spec's strings could forge one) */
	orch_jw_key(w, "job");
	orch_jw_text(w, job, njob);
	orch_jw_key(w, "spec");
	put_spec(wr, i);
	if (wr->inst >= 0)
		put_instance_item(w, wr->p, s, wr->inst);
	orch_jw_close(w);
	return orch_jw_put(w);  /* a plan is read whole: flush at exit */
}

int print_plan(const struct plan *p, jv job)
{
	struct writer wr = {.p = p, .defaults = get(p->root, "defaults")};
	if (wr.defaults) {  /* a mapping: checked */
		wr.n = wr.defaults->n / 2;
		wr.at = orch_map_new(wr.n);
		wr.over = orch_xmalloc(wr.n * sizeof *wr.over + 1);
		for (uint32_t k = 0; k < wr.n; k++) {
			orch_map_put(wr.at, wr.defaults->u.kids[2 * k]->u.str, k);
			wr.over[k] = NULL;
		}
	}
	jv jobprov = provider_jv(get(p->root, "provider"));
	size_t njob;
	char *jobtext = orch_json_text(jv_copy(job), &njob);  /* the same in every line */
	int rc = EX_OK;
	for (size_t k = 0; k < p->nsteps && rc == EX_OK; k++) {
		const node *prov = get(p->steps[p->order[k]].x, "provider");
		const struct fan *fan = p->steps[p->order[k]].fan;
		wr.prov = prov ? merge_provider(jv_copy(jobprov), provider_jv(prov)) : jv_copy(jobprov);
		for (wr.inst = fan ? 0 : -1; rc == EX_OK && wr.inst < (fan ? (long)fan->n : 0); wr.inst++)
			if (put_line(&wr, k, jobtext, njob) < 0)
				rc = EX_FAIL;
		jv_free(wr.prov);
	}
	orch_jw_free(&wr.w);
	orch_map_free(wr.at);
	free(wr.over);
	free(jobtext);
	jv_free(jobprov);
	return rc;
}

static int by_wave(const void *a, const void *b, void *steps)
{
	size_t i = *(const size_t *)a, j = *(const size_t *)b;
	const struct step *s = steps;
	if (s[i].wave != s[j].wave)
		return s[i].wave < s[j].wave ? -1 : 1;
	return i < j ? -1 : 1;
}

static size_t *sorted_by_wave(const struct plan *p)
{
	size_t *w = orch_xmalloc(p->nsteps * sizeof *w + 1);
	memcpy(w, p->order, p->nsteps * sizeof *w);
	qsort_r(w, p->nsteps, sizeof *w, by_wave, p->steps);
	return w;
}

int print_dot(const struct plan *p, jv job)
{
	const struct step *steps = p->steps;
	size_t *w = sorted_by_wave(p), n = p->nsteps;
	printf("digraph \"%s\" {\n\trankdir=LR;\n", orch_jstr(job, "job_id"));
	for (size_t k = 0; k < n; ) {
		printf("\t{ rank=same;");
		long wave = steps[w[k]].wave;
		for (; k < n && steps[w[k]].wave == wave; k++)
			if (steps[w[k]].fan)  /* a fan-out: one node, its count */
				printf(" \"%s\" [label=\"%s[%zu]\"];", steps[w[k]].id, steps[w[k]].id,
				       steps[w[k]].fan->n);
			else if (steps[w[k]].dynamic)  /* its count known when it runs */
				printf(" \"%s\" [label=\"%s[*]\"];", steps[w[k]].id, steps[w[k]].id);
			else
				printf(" \"%s\";", steps[w[k]].id);
		printf(" }\n");
	}
	for (size_t k = 0; k < n; k++) {
		size_t i = p->order[k];
		const size_t *needs = orch_graph_deps(p->graph, i);
		for (size_t q = 0; q < orch_graph_ndeps(p->graph, i); q++)
			printf("\t\"%s\" -> \"%s\";\n", steps[needs[q]].id, steps[i].id);
	}
	printf("}\n");
	free(w);
	return EX_OK;
}

int print_waves(const struct plan *p)
{
	size_t *w = sorted_by_wave(p), width = 4;
	for (size_t k = 0; k < p->nsteps; k++) {  /* room for "[100000]", "[*]" */
		size_t n = strlen(p->steps[k].id) + 8 * (p->steps[k].fan || p->steps[k].dynamic);
		width = n > width ? n : width;
	}
	printf("%-4s  %-*s  %-8s  %s\n", "wave", (int)width, "step", "priority", "needs");
	for (size_t k = 0; k < p->nsteps; k++) {
		const struct step *s = &p->steps[w[k]];
		const size_t *needs = orch_graph_deps(p->graph, w[k]);
		size_t n = orch_graph_ndeps(p->graph, w[k]);
		char name[96];
		if (s->dynamic)  /* items from an answer: expanded when its needs are done */
			snprintf(name, sizeof name, "%s[*]", s->id);
		else
			snprintf(name, sizeof name, s->fan ? "%s[%zu]" : "%s", s->id, step_count(s));
		printf("%-4ld  %-*s  %-8ld  ", s->wave, (int)width, name, priority(s));
		for (size_t q = 0; q < n; q++)
			printf("%s%s", q ? ", " : "", p->steps[needs[q]].id);
		printf("%s\n", n ? "" : "-");
	}
	free(w);
	return EX_OK;
}

/* --id: the job id alone, as nq prints its id: job=$(orch-plan --id SPEC). */
int print_id(jv job)
{
	puts(orch_jstr(job, "job_id"));
	return EX_OK;
}
