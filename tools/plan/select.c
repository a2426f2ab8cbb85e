/* select.c: what orch run's command line chooses in a plan.
 *
 *   --input KEY=VALUE   inputs.KEY is VALUE, a string; KEY:=JSON a value
 *   --target STEP       only STEP and what it needs, transitively (make's
 *                       targets); repeatable, and with --until a union
 *   --until STEP        every step up to and including STEP's wave
 *   --runnable          every prompt step can be called: its provider
 *                       known, with a model where it needs one, from the
 *                       spec, --provider and --model, or $ORCH_PROVIDER and
 *                       $ORCH_MODEL (orch-call resolves them so)
 *
 * A selection keeps the plan's waves and priorities (the steps chosen
 * carry all they need, so their waves are the same): it shortens
 * p->order to the chosen steps, and p->nsteps to their count; p->steps
 * and the graph keep every step, by its index in the spec.
 */
#include <stdlib.h>
#include <string.h>
#include "plan.h"

/* The providers, as orch-call's table has them (tools/call/provider.c):
 * those with no default model need one. exec's command is check.c's. */
static const struct { const char *name; int needs_model; } providers[] = {
	{"ollama", 1}, {"openai", 1}, {"anthropic", 1}, {"exec", 0}, {"echo", 0},
};
#define NPROVIDERS (sizeof providers / sizeof *providers)

void choose_input(struct choice *c, const char *arg)
{
	const char *eq = strchr(arg, '=');
	if (!eq || eq == arg || (eq == arg + 1 && *arg == ':'))
		orch_die(EX_USAGE, "--input %s: expected KEY=VALUE or KEY:=JSON", arg);
	int json = eq[-1] == ':';
	jv key = jv_string_sized(arg, (int)(eq - arg - json)), v;
	if (json) {
		v = jv_parse(eq + 1);
		if (!jv_is_valid(v)) {
			jv msg = jv_invalid_get_msg(v);
			orch_err("--input %s: not JSON: %s", arg, jv_string_value(msg));
			jv_free(msg);
			jv_free(key);
			orch_exit(EX_USAGE);
		}
	} else
		v = jv_string(eq + 1);
	if (!jv_is_valid(c->inputs))
		c->inputs = jv_object();
	c->inputs = jv_object_set(c->inputs, key, v);
}

jv apply_inputs(jv job, const struct choice *c)
{
	if (!jv_is_valid(c->inputs))
		return job;
	jv in = jv_object_get(jv_copy(job), jv_string("inputs"));
	if (jv_get_kind(in) != JV_KIND_OBJECT) {
		jv_free(in);
		in = jv_object();
	}
	return jv_object_set(job, jv_string("inputs"), jv_object_merge(in, jv_copy(c->inputs)));
}

/* Step id's index, or -1 (reported, as opt names it). */
static long find_step(const struct plan *p, const char *opt, const char *id)
{
	long i = orch_map_get(p->byid, id);
	if (i < 0)
		orch_err("%s %s: not a step of this spec", opt, id);
	return i;
}

/* Mark step i and, transitively, what it needs. */
static void mark_needs(const struct plan *p, size_t i, char *keep)
{
	if (keep[i])
		return;
	keep[i] = 1;
	const size_t *deps = orch_graph_deps(p->graph, i);
	for (size_t q = 0; q < orch_graph_ndeps(p->graph, i); q++)
		mark_needs(p, deps[q], keep);
}

int select_steps(struct plan *p, const struct choice *c)
{
	if (!c->ntargets && !c->until)
		return EX_OK;
	char *keep = calloc(p->nsteps + 1, 1);
	int rc = EX_OK;
	for (size_t t = 0; t < c->ntargets; t++) {
		long i = find_step(p, "--target", c->targets[t]);
		if (i < 0)
			rc = EX_USAGE;
		else
			mark_needs(p, (size_t)i, keep);
	}
	long u = c->until ? find_step(p, "--until", c->until) : -1;
	if (c->until && u < 0)
		rc = EX_USAGE;
	for (size_t i = 0; u >= 0 && i < p->nsteps; i++)
		keep[i] |= p->steps[i].wave <= p->steps[u].wave;
	size_t n = 0;
	for (size_t k = 0; k < p->nsteps; k++)
		if (keep[p->order[k]])
			p->order[n++] = p->order[k];
	if (rc == EX_OK)
		p->nsteps = n;
	free(keep);
	return rc;
}

static int provider_at(const char *name)
{
	for (size_t i = 0; i < NPROVIDERS; i++)
		if (strcmp(name, providers[i].name) == 0)
			return (int)i;
	return -1;
}

static const char *env_or(const char *name, const char *dflt)
{
	const char *v = getenv(name);
	return v && *v ? v : dflt;
}

/* A problem if prompt step s, with its provider prov (the job's merged
 * with its own), has a provider that needs a model and none. */
static void check_callable(const struct step *s, jv prov, const struct choice *c)
{
	const char *spec_name = orch_jstr(prov, "name");
	const char *name = c->provider ? c->provider : spec_name ? spec_name
	                 : env_or("ORCH_PROVIDER", "echo");
	int same = !c->provider || (spec_name && strcmp(spec_name, c->provider) == 0);
	const char *model = c->model ? c->model : same ? orch_jstr(prov, "model") : NULL;
	if (!model)
		model = env_or("ORCH_MODEL", NULL);
	int k = provider_at(name);
	const node *at = get(s->x, "provider") ? get(s->x, "provider") : s->x;
	if (k < 0)  /* from $ORCH_PROVIDER: the spec's names are check.c's */
		problem(at, "step '%s': unknown provider '%s' (from ORCH_PROVIDER)", s->id, name);
	else if (providers[k].needs_model && !model)
		problem(at, "step '%s': provider %s needs a model (provider.model, --model or ORCH_MODEL)",
		        s->id, name);
}

int check_runnable(const struct plan *p, const struct choice *c)
{
	if (c->provider && provider_at(c->provider) < 0) {
		orch_err("--provider %s: unknown provider (ollama, openai, anthropic, exec, echo)",
		         c->provider);
		return EX_USAGE;
	}
	jv job = provider_jv(get(p->root, "provider"));
	for (size_t k = 0; k < p->nsteps; k++) {
		const struct step *s = &p->steps[p->order[k]];
		if (get(s->x, "run"))
			continue;
		jv prov = merge_provider(jv_copy(job), provider_jv(get(s->x, "provider")));
		check_callable(s, prov, c);
		jv_free(prov);
	}
	jv_free(job);
	return report_problems();
}
