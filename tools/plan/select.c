/* select.c: what orch run's command line chooses in a plan.
 *
 *   --input KEY=VALUE   inputs.KEY is VALUE, a string; KEY:=JSON a value
 *   --target STEP       only STEP and what it needs, transitively (make's
 *                       targets); repeatable, and with --until a union
 *   --until STEP        every step up to and including STEP's wave
 *   --runnable          every prompt step can be called: its provider
 *                       known, with a model where it needs one, from the
 *                       spec, --provider and --model, or $ORCH_PROVIDER and
 *                       $ORCH_MODEL, or the user's config (orch-call
 *                       resolves them so)
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

/* Providers from a --provider or $ORCH_PROVIDER text: names joined by
 * ',', each "name" or "name:model" (a model may hold ':' too). */
static jv entries_of_text(const char *text)
{
	jv list = jv_array(), parts = jv_string_split(jv_string(text), jv_string(","));
	jv_array_foreach(parts, i, part) {
		const char *t = jv_string_value(part), *colon = strchr(t, ':');
		if (*t) {
			jv e = jv_object_set(jv_object(), jv_string("name"),
			                     colon ? jv_string_sized(t, (int)(colon - t)) : jv_string(t));
			if (colon)
				e = jv_object_set(e, jv_string("model"), jv_string(colon + 1));
			list = jv_array_append(list, e);
		}
		jv_free(part);
	}
	jv_free(parts);
	return list;
}

/* e with model, if e gives none. */
static jv with_model(jv e, const char *model)
{
	if (model && !orch_jstr(e, "model"))
		e = jv_object_set(e, jv_string("model"), jv_string(model));
	return e;
}

/* The providers orch-call will call for a step whose provider is prov
 * (the job's merged with its own), in order, as orch-call chooses them:
 * --provider's, each with the model of the spec's of the same name; else
 * the spec's; else $ORCH_PROVIDER's, else echo, the first of them with the
 * model of a spec's provider that gives no name. Consumes prov. */
static jv providers_called(jv prov, const struct choice *c)
{
	jv spec = jv_get_kind(prov) == JV_KIND_ARRAY ? prov : jv_array();
	if (jv_get_kind(prov) == JV_KIND_OBJECT)
		spec = jv_array_append(spec, prov);
	else if (jv_get_kind(prov) != JV_KIND_ARRAY)
		jv_free(prov);
	jv first = jv_array_get(jv_copy(spec), 0);
	int nameless = jv_is_valid(first) && !orch_jstr(first, "name");
	if (!c->provider && jv_is_valid(first) && !nameless)
		return (jv_free(first), spec);
	const char *cfg = orch_config()->provider;
	jv list = entries_of_text(c->provider ? c->provider : env_or("ORCH_PROVIDER", cfg ? cfg : "echo"));
	jv_array_foreach(list, i, e) {
		jv_array_foreach(spec, k, m) {
			const char *a = orch_jstr(e, "name"), *b = orch_jstr(m, "name");
			if (b && strcmp(a, b) == 0)
				e = with_model(e, orch_jstr(m, "model"));
			jv_free(m);
		}
		if (i == 0 && nameless && !c->provider)
			e = with_model(e, orch_jstr(first, "model"));
		list = jv_array_set(list, i, e);
	}
	jv_free(first);
	jv_free(spec);
	return list;
}

/* A problem if prompt step s, with its provider prov (the job's merged
 * with its own: consumed), calls a provider unknown, or one that needs
 * a model with none: --model and $ORCH_MODEL are the first provider's. */
static void check_callable(const struct step *s, jv prov, const struct choice *c)
{
	jv list = providers_called(prov, c);
	const node *at = get(s->x, "provider") ? get(s->x, "provider") : s->x;
	jv_array_foreach(list, i, e) {
		const char *name = orch_jstr(e, "name");
		const char *model = i == 0 && c->model ? c->model : orch_jstr(e, "model");
		if (!model && i == 0)
			model = env_or("ORCH_MODEL", orch_config_model(name));
		int k = provider_at(name);
		if (k < 0)  /* from $ORCH_PROVIDER: the others are checked before */
			problem(at, "step '%s': unknown provider '%s' (from ORCH_PROVIDER or the config)", s->id, name);
		else if (providers[k].needs_model && !model)
			problem(at, "step '%s': provider %s needs a model (provider.model, --model or ORCH_MODEL)",
			        s->id, name);
		jv_free(e);
	}
	jv_free(list);
}

/* Every provider of --provider is known: EX_OK, or EX_USAGE (reported). */
static int check_provider_option(const char *text)
{
	jv list = entries_of_text(text);
	int rc = jv_array_length(jv_copy(list)) > 0 ? EX_OK : EX_USAGE;
	jv_array_foreach(list, i, e) {
		if (provider_at(orch_jstr(e, "name")) < 0)
			rc = EX_USAGE;
		jv_free(e);
	}
	jv_free(list);
	if (rc != EX_OK)
		orch_err("--provider %s: unknown provider (ollama, openai, anthropic, exec, echo)", text);
	return rc;
}

int check_runnable(const struct plan *p, const struct choice *c)
{
	if (c->provider && check_provider_option(c->provider) != EX_OK)
		return EX_USAGE;
	jv job = provider_jv(get(p->root, "provider"));
	for (size_t k = 0; k < p->nsteps; k++) {
		const struct step *s = &p->steps[p->order[k]];
		if (get(s->x, "run"))
			continue;
		jv prov = merge_provider(jv_copy(job), provider_jv(get(s->x, "provider")));
		check_callable(s, prov, c);
	}
	jv_free(job);
	return report_problems();
}
