/* libFuzzer harness for orch-plan's spec reader, checks and plan writer:
 * orch-plan's own parts (the .c files in tools/plan/, linked as orch-plan
 * links them), fed each input as a spec, through the steps orch-plan's
 * plan() takes. Plan lines are written from the tree, not built as jv;
 * here each plan is also built the plain way, as jv lines from to_jv and
 * merge_provider (jq's defaults + step), and printed by libjq's own
 * jv_dump_string: the two must be the same bytes. Templates are compiled
 * on small inputs only (libjq's compiler spends ~20 ms on each). */
#include <stdlib.h>
#include <string.h>
#include "../../tools/plan/plan.h"

static jv jv_spec(const struct plan *p, size_t i, jv job)
{
	const struct step *s = &p->steps[i];
	const size_t *needs = orch_graph_deps(p->graph, i);
	jv spec = to_jv(s->x);
	spec = jv_object_set(spec, jv_string("id"), jv_string(s->id));
	jv list = jv_array();
	for (size_t q = 0; q < orch_graph_ndeps(p->graph, i); q++)
		list = jv_array_append(list, jv_string(p->steps[needs[q]].id));
	spec = jv_object_set(spec, jv_string("needs"), list);
	jv defaults = jv_object_get(jv_copy(job), jv_string("defaults"));
	if (jv_get_kind(defaults) == JV_KIND_OBJECT)
		spec = jv_object_merge(defaults, spec);
	else
		jv_free(defaults);
	jv prov = merge_provider(jv_object_get(jv_copy(job), jv_string("provider")),
	                         provider_jv(get(s->x, "provider")));
	if (jv_is_valid(prov))
		spec = jv_object_set(spec, jv_string("provider"), prov);
	else
		jv_free(prov);
	return spec;
}

static jv jv_line(const struct plan *p, size_t i, jv job)
{
	const struct step *s = &p->steps[i];
	jv spec = jv_spec(p, i, job);
	double given;
	long prio = orch_jnum(spec, "priority", &given) ? (long)given : s->prio;
	jv line = jv_object_set(jv_object(), jv_string("step"), jv_string(s->id));
	line = jv_object_set(line, jv_string("needs"), jv_object_get(jv_copy(spec), jv_string("needs")));
	line = jv_object_set(line, jv_string("wave"), jv_number(s->wave));
	line = jv_object_set(line, jv_string("priority"), jv_number(prio));
	line = jv_object_set(line, jv_string("index"), jv_number(i));
	if (s->dynamic == DYN_AFTER) {  /* foreach.c: orch-sched expands it */
		jv after = jv_array();
		for (size_t q = 0; q < s->nafter; q++)
			after = jv_array_append(after, jv_string(p->steps[s->after[q]].id));
		line = jv_object_set(line, jv_string("expand_after"), after);
	}
	line = jv_object_set(line, jv_string("job"), jv_copy(job));
	return jv_object_set(line, jv_string("spec"), spec);
}

/* print_plan's output, caught in memory, against the jv lines. */
static void print_both(const struct plan *p, jv job)
{
	char *out = NULL;
	size_t len = 0;
	FILE *mem = open_memstream(&out, &len), *real = stdout;
	if (!mem)
		abort();
	stdout = mem;
	print_plan(p, job);
	fclose(mem);
	stdout = real;
	size_t at = 0;
	for (size_t k = 0; k < p->nsteps; k++) {
		jv want = jv_dump_string(jv_line(p, p->order[k], job), 0);
		const char *w = jv_string_value(want), *nl = memchr(out + at, '\n', len - at);
		size_t n = strlen(w), have = nl ? (size_t)(nl - (out + at)) : len - at;
		if (!nl || have != n || memcmp(out + at, w, n) != 0) {
			fprintf(stderr, "plan line: %.*s\njv's line: %s\n", (int)have, out + at, w);
			abort();
		}
		at += n + 1;
		jv_free(want);
	}
	if (at != len) {
		fprintf(stderr, "plan: %zu bytes after the last line\n", len - at);
		abort();
	}
	free(out);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	char *text = orch_xmalloc(size + 1);
	memcpy(text, data, size);
	text[size] = 0;
	struct plan p;
	plan_read(&p, text, size, "<fuzz>");
	if (size < 512)
		check_templates(&p);
	if (report_problems() == EX_OK) {
		jv job = job_jv(p.root, "<fuzz>");
		print_both(&p, job);
		jv_free(job);
	}
	plan_free(&p);
	free(text);
	return 0;
}
