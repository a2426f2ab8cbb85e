/* check.c: orch-plan's schema (orch-plan(1), CONTRACT §4): known keys
 * (a near miss is named), kinds, ranges, names, pools, providers, and every
 * {{ }} template and when: condition compiled by libjq.
 *
 * Assumptions: keys starting "x-" are the user's own; templates are
 * compiled 500 to a program (libjq 1.6 spends ~20 ms per compile, and one
 * program holds about 10,000 holes at most).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "plan.h"

static const char *const top_keys[] = {"job", "project", "task", "inputs", "provider",
	"concurrency", "pools", "defaults", "steps", "launcher", "workdir", "budget", "prices", 0};
static const char *const step_keys[] = {"id", "prompt", "run", "needs", "system",
	"provider", "retries", "timeout_s", "pool", "priority", "when", "files", "schema",
	"repair", "launcher", "resources",
	"foreach", "key", "gather", "max_items", "prompt_file", "system_file", 0};  /* foreach.c */
static const char *const provider_keys[] = {"name", "model", "opts", "command", "base_url",
	"limits", 0};
static const char *const limit_keys[] = {"rpm", "tpm", 0};
static const char *const provider_names[] = {"ollama", "openai", "anthropic", "exec", "echo", 0};
static const char *const default_keys[] = {"retries", "timeout_s", "pool", "launcher",
	"resources", 0};
static const char *const resource_keys[] = {"cpus", "mem", "gpus", "time", 0};
static const char *const pool_keys[] = {"limit", "launcher", 0};
static const char *const budget_keys[] = {"usd", "tokens", 0};

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

const char *nearest(const char *s, const char *const *cands, size_t ncands)
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

/* Options a provider takes (in its opts:), for keys written one level
 * too high: "temperature:" on a step. Not a list of what is allowed. */
static const char *const provider_opts[] = {"temperature", "top_p", "top_k", "min_p",
	"max_tokens", "max_completion_tokens", "num_predict", "num_ctx", "seed", "stop",
	"presence_penalty", "frequency_penalty", "repeat_penalty", "response_format",
	"reasoning_effort", "format", "keep_alive", "think", "tools", 0};

/* Where an unknown key k belongs when it is a provider's: provider at
 * "provider." from a job or a step, "" inside a provider. NULL if not. */
static char *provider_home(const char *k, const char *provider)
{
	if (!provider)
		return NULL;
	if (*provider && one_of(k, provider_keys) && strcmp(k, "name") != 0)
		return orch_fmt("%s%s", provider, k);
	if (one_of(k, provider_opts))
		return orch_fmt("%sopts.%s", provider, k);
	return NULL;
}

/* Keys starting "x-" are the user's own (a home for YAML anchors), as in
 * docker-compose; every other key must be known. An unknown one is named
 * with the known key it is near, or where it belongs if a provider's. */
static void check_keys(const node *m, const char *const *allowed, const char *where,
                       const char *provider)
{
	for (uint32_t i = 0; i + 1 < m->n; i += 2) {
		const char *k = m->u.kids[i]->u.str;
		if (one_of(k, allowed) || strncmp(k, "x-", 2) == 0)
			continue;
		char *home = provider_home(k, provider);
		const char *near = home ? NULL : nearest(k, allowed, SIZE_MAX);
		const char *opt = home || near || !provider ? NULL : nearest(k, provider_opts, SIZE_MAX);
		if (opt)
			home = orch_fmt("%sopts.%s", provider, opt);
		if (home)
			problem(m->u.kids[i], "unknown key '%s' in %s (did you mean %s?)", k, where, home);
		else if (near)
			problem(m->u.kids[i], "unknown key '%s' in %s (did you mean '%s'?)", k, where, near);
		else
			problem(m->u.kids[i], "unknown key '%s' in %s", k, where);
		free(home);
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

/* files: true, false, or "required" (an answer naming no file fails). */
static void want_files(const node *x)
{
	if (x && x->kind == N_SCALAR && sval(x) && strcmp(sval(x), "required") == 0)
		return;
	if (x && x->kind == N_SCALAR) {
		jv v = scalar_jv(x);
		jv_kind k = jv_get_kind(v);
		jv_free(v);
		if (k == JV_KIND_TRUE || k == JV_KIND_FALSE)
			return;
	}
	if (x)
		problem(x, "'files' must be true, false or required, not %s", kind_name(x));
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
static void check_one_provider(const node *p, const char *where)
{
	if (p->kind == N_SCALAR) {
		if (want_string(p, where))
			check_provider_name(p);
		return;
	}
	if (!want_map(p, where))
		return;
	check_keys(p, provider_keys, where, "");
	want_string(get(p, "model"), "model");
	want_map(get(p, "opts"), "opts");
	want_string(get(p, "command"), "command");
	want_string(get(p, "base_url"), "base_url");
	const node *lim = get(p, "limits");
	if (want_map(lim, "limits")) {  /* requests and tokens per minute */
		check_keys(lim, limit_keys, "limits", "");
		want_number(get(lim, "rpm"), "rpm", 0, 1e9, 0);
		want_number(get(lim, "tpm"), "tpm", 0, 1e12, 0);
	}
	const node *name = get(p, "name");
	if (name && want_string(name, "name"))
		check_provider_name(name);
	if (name && sval(name) && strcmp(sval(name), "exec") == 0 && !get(p, "command"))
		problem(name, "provider exec needs a 'command'");
}

/* A provider, or a list of them tried in turn (orch-call(1), FALLBACK):
 * each one as a single provider is, and each named (nothing fills in a
 * name in a list). */
static void check_provider(const node *p, const char *where)
{
	if (!p)
		return;
	if (p->kind != N_SEQ) {
		check_one_provider(p, where);
		return;
	}
	if (p->n == 0)
		problem(p, "'%s' is an empty list: name one provider at least", where);
	for (uint32_t i = 0; i < p->n; i++) {
		const node *e = p->u.kids[i];
		if (e->kind == N_SEQ)
			problem(e, "'%s' must be a name or a mapping, not a list", where);
		else
			check_one_provider(e, where);
		if (e->kind == N_MAP && !get(e, "name"))
			problem(e, "a provider in a list needs a 'name'");
	}
}

/* A pool is a limit, or {limit, launcher}. */
static void check_pools(const node *pools)
{
	if (!want_map(pools, "pools"))
		return;
	for (uint32_t i = 0; i + 1 < pools->n; i += 2) {
		const node *p = pools->u.kids[i + 1];
		if (p->kind != N_MAP) {
			want_number(p, pools->u.kids[i]->u.str, 1, 1e6, 1);
			continue;
		}
		check_keys(p, pool_keys, "a pool", "");
		if (!get(p, "limit"))
			problem(p, "pool '%s' has no 'limit'", pools->u.kids[i]->u.str);
		want_number(get(p, "limit"), "limit", 1, 1e6, 1);
		want_string(get(p, "launcher"), "launcher");
	}
}

/* budget: {usd, tokens}, numbers above 0 (orch-call(1), BUDGETS AND PRICES). */
static void check_budget(const node *b)
{
	if (!want_map(b, "budget"))
		return;
	check_keys(b, budget_keys, "budget", NULL);
	for (int i = 0; budget_keys[i]; i++) {
		const node *x = get(b, budget_keys[i]);
		jv v = x && x->kind == N_SCALAR ? scalar_jv(x) : jv_null();
		if (x && !(jv_get_kind(v) == JV_KIND_NUMBER && jv_number_value(v) > 0))
			problem(x, "'%s' must be a number above 0", budget_keys[i]);
		jv_free(v);
	}
}

/* prices: a list of {provider, model, input, cached_input, output}, as
 * lib/price.c checks them. */
static void check_prices(const node *p)
{
	if (!want_list(p, "prices"))
		return;
	for (uint32_t i = 0; i < p->n; i++) {
		const node *row = p->u.kids[i];
		if (!want_map(row, "a price"))
			continue;
		jv r = jv_object();
		for (uint32_t k = 0; k + 1 < row->n; k += 2) {
			const node *key = row->u.kids[k], *x = row->u.kids[k + 1];
			jv v = x->kind == N_SCALAR ? scalar_jv(x) : jv_null();
			const char *why = orch_price_field_problem(key->u.str, v);
			if (why)
				problem(strncmp(why, "is no key", 9) == 0 ? key : x, "prices: '%s' %s",
				        key->u.str, why);
			r = jv_object_set(r, jv_string(key->u.str), why ? (jv_free(v), jv_false()) : v);
		}
		const char *missing = orch_price_row_missing(r);
		if (missing)
			problem(row, "prices: a price needs '%s' (provider, model, input, output)", missing);
		jv_free(r);
	}
}

/* A number, or a string: mem "4G", time "90m" (orch-sched reads them). */
static void want_amount(const node *x, const char *name, int integer)
{
	if (x && (x->kind != N_SCALAR || scalar_kind(x) != JV_KIND_STRING))
		want_number(x, name, integer, 1e12, integer);
}

/* launcher: and resources: {cpus, mem, gpus, time} of a step or defaults. */
static void check_launch(const node *x)
{
	want_string(get(x, "launcher"), "launcher");
	const node *r = get(x, "resources");
	if (!want_map(r, "resources"))
		return;
	check_keys(r, resource_keys, "resources", "");
	want_number(get(r, "cpus"), "cpus", 1, 1e6, 1);
	want_number(get(r, "gpus"), "gpus", 0, 1e6, 1);
	want_amount(get(r, "mem"), "mem", 1);
	want_amount(get(r, "time"), "time", 0);
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

/* ---- steps and the job ---- */

void check_step(const node *root, const node *x)
{
	if (!want_map(x, "each step"))
		return;
	check_keys(x, step_keys, "a step", "provider.");
	const node *id = get(x, "id"), *run = get(x, "run");
	const node *prompt = get(x, "prompt") ? get(x, "prompt") : get(x, "prompt_file");
	if (!id)
		problem(x, "a step has no 'id'");
	else
		want_name(id, "step id");
	if (!prompt && !run)
		problem(x, "step '%s' has neither 'prompt' nor 'run'", sval(id) ? sval(id) : "?");
	else if (prompt && run)
		problem(run, "step '%s' has both 'prompt' and 'run': choose one",
		        sval(id) ? sval(id) : "?");
	want_string(get(x, "prompt"), "prompt");
	want_string(run, "run");
	check_foreach(x);  /* foreach.c: foreach, key, gather, max_items, *_file */
	want_bool(get(x, "gather"), "gather");
	want_string(get(x, "system"), "system");
	want_string(get(x, "when"), "when");
	check_provider(get(x, "provider"), "provider");
	want_number(get(x, "retries"), "retries", 0, 100, 1);
	want_number(get(x, "timeout_s"), "timeout_s", 0.001, 1e9, 0);
	want_number(get(x, "priority"), "priority", -1e9, 1e9, 1);
	want_files(get(x, "files"));
	want_number(get(x, "repair"), "repair", 0, 10, 1);
	check_schema(x);
	check_launch(x);
	if (get(x, "pool"))
		valid_pool(root, get(x, "pool"));
	const node *needs = get(x, "needs");
	if (needs && needs->kind == N_SEQ)
		for (uint32_t k = 0; k < needs->n; k++)
			want_name(needs->u.kids[k], "needs");
	else if (needs)
		want_name(needs, "needs");  /* one name alone is fine too */
}

void check_spec(const node *root)
{
	if (!root || root->kind != N_MAP) {
		problem(root, "a job spec is a mapping (job:, task:, steps: ...)");
		return;
	}
	check_keys(root, top_keys, "the job", "provider.");
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
	want_string(get(root, "launcher"), "launcher");
	want_string(get(root, "workdir"), "workdir");
	check_budget(get(root, "budget"));
	check_prices(get(root, "prices"));
	const node *d = get(root, "defaults");
	if (want_map(d, "defaults")) {
		check_keys(d, default_keys, "defaults", "provider.");
		want_number(get(d, "retries"), "retries", 0, 100, 1);
		want_number(get(d, "timeout_s"), "timeout_s", 0.001, 1e9, 0);
		check_launch(d);
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

/* Compile every prompt/system template and when: condition at once. */
void check_templates(const struct plan *p)
{
	static const char *const fields[] = {"prompt", "system", "when"};
	size_t cap = 3 * p->nsteps, n = 0;
	const char **texts = orch_xmalloc(cap * sizeof *texts + 1);
	const node **at = orch_xmalloc(cap * sizeof *at + 1);
	char **owned_text = orch_xmalloc(cap * sizeof *owned_text + 1);
	const char **field = orch_xmalloc(cap * sizeof *field + 1);
	size_t nown = 0;
	for (size_t i = 0; i < p->nsteps; i++)
		for (int f = 0; f < 3; f++) {
			const node *x = get(p->steps[i].x, fields[f]);
			const char *t = f < 2 ? step_text(&p->steps[i], f, &x) : sval(x);
			if (!t || (f < 2 && !orch_tmpl_has(t)))
				continue;
			at[n] = x;
			field[n] = fields[f];
			if (f == 2)
				texts[n++] = owned_text[nown++] = orch_fmt("{{ %s }}", t);
			else
				texts[n++] = t;
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
