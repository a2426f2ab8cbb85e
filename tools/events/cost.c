/* cost.c: orch-events cost, and the cost lines of stats.
 *
 * Each llm.response is one call: its tokens, and its cost_usd when the
 * event carries one, else the price table's (lib/price.c). A call no one
 * can price counts as unpriced and adds nothing: a total with unpriced
 * calls is a lower bound, and says so; one with only those is null. */
#include <stdlib.h>
#include <string.h>
#include "events.h"

static const char *const llm_types[] = {"llm.response", NULL};

struct cost_run {
	const char *by;   /* NULL: the total only */
	struct groups g;
	double total[T_N];
};

static const char *cost_key(const struct cost_run *cr, const struct ev *ev,
                            const struct llm_cost *c, char day[11])
{
	const char *by = cr->by;
	if (strcmp(by, "day") == 0) {
		snprintf(day, 11, "%.10s", ev->ts);
		return day;
	}
	const char *k = strcmp(by, "step") == 0 ? ev->step
		: strcmp(by, "model") == 0 ? c->model
		: strcmp(by, "provider") == 0 ? c->provider : ev->job;
	return k ? k : "-";
}

static int cost_event(const struct ev *ev, void *ctx)
{
	struct cost_run *cr = ctx;
	struct llm_cost c;
	ev_llm_cost(ev, &c);
	tally_add(cr->total, &c);
	if (cr->by) {
		char day[11];
		tally_add(groups_at(&cr->g, T_N, cost_key(cr, ev, &c, day)), &c);
	}
	return 0;
}

static int unknown(const double *t)  /* calls, none priced */
{
	return t[T_CALLS] > 0 && t[T_UNPRICED] == t[T_CALLS];
}

static jv usd_or_null(const double *t)
{
	return unknown(t) ? jv_null() : jv_number(t[T_USD]);
}

/* o (consumed) with the tally's fields added. */
jv tally_json(jv o, const double *t)
{
	o = jv_object_set(o, jv_string("calls"), jv_number(t[T_CALLS]));
	o = jv_object_set(o, jv_string("prompt_tokens"), jv_number(t[T_PROMPT]));
	o = jv_object_set(o, jv_string("cached_tokens"), jv_number(t[T_CACHED]));
	o = jv_object_set(o, jv_string("completion_tokens"), jv_number(t[T_COMPLETION]));
	o = jv_object_set(o, jv_string("cost_usd"), usd_or_null(t));
	return jv_object_set(o, jv_string("unpriced_calls"), jv_number(t[T_UNPRICED]));
}

static void cost_put_json(const struct cost_run *cr)
{
	jv out = jv_object();
	if (cr->by) {
		jv rows = jv_array();
		for (size_t i = 0; i < cr->g.n; i++) {
			jv r = jv_object_set(jv_object(), jv_string(cr->by), jv_string(cr->g.keys[i]));
			rows = jv_array_append(rows, tally_json(r, &cr->g.v[i * T_N]));
		}
		out = jv_object_set(out, jv_string("by"), jv_string(cr->by));
		out = jv_object_set(out, jv_string("rows"), rows);
	}
	orch_put(jv_object_set(out, jv_string("total"), tally_json(jv_object(), cr->total)));
}

static void cost_row(int w, const char *key, const double *t)
{
	char usd[32] = "-";
	if (!unknown(t))
		snprintf(usd, sizeof usd, "%.6f", t[T_USD]);
	printf("%-*s %7.0f %10.0f %9.0f %11.0f %12s %8.0f\n", w, key, t[T_CALLS], t[T_PROMPT],
	       t[T_CACHED], t[T_COMPLETION], usd, t[T_UNPRICED]);
}

static void cost_put_text(const struct cost_run *cr)
{
	int w = 8;
	for (size_t i = 0; i < cr->g.n; i++)
		if ((int)strlen(cr->g.keys[i]) > w)
			w = (int)strlen(cr->g.keys[i]);
	printf("%-*s %7s %10s %9s %11s %12s %8s\n", w, cr->by ? cr->by : "", "calls", "prompt",
	       "cached", "completion", "cost_usd", "unpriced");
	for (size_t i = 0; i < cr->g.n; i++)
		cost_row(w, cr->g.keys[i], &cr->g.v[i * T_N]);
	cost_row(w, "total", cr->total);
}

int cmd_cost(const struct report_opts *o, char **runs, int n)
{
	static const char *const bys[] = {"step", "model", "provider", "day", "job"};
	int known = !o->by;
	for (size_t i = 0; i < sizeof bys / sizeof *bys && !known; i++)
		known = strcmp(o->by, bys[i]) == 0;
	if (!known)
		orch_die(EX_USAGE, "--by %s: not one of step, model, provider, day, job", o->by);
	if (orch_price_load() < 0)
		orch_die(EX_USAGE, "the price table has errors (above)");
	struct cost_run cr = {.by = o->by};
	int rc = ev_read_all(runs, n, llm_types, cost_event, &cr);
	if (o->json)
		cost_put_json(&cr);
	else
		cost_put_text(&cr);
	groups_free(&cr.g);
	return rc;
}

/* ---- for stats: the latest run's cost by step ---- */

static const char *const latest_types[] = {"llm.response", "job.started", NULL};

static int latest_event(const struct ev *ev, void *ctx)
{
	return *ev->type == 'j' ? 0 : cost_event(ev, ctx);
}

jv cost_of_latest(const char *run)
{
	struct cost_run cr = {.by = "step"};
	char *log = orch_path(run, "events.jsonl");
	FILE *f = fopen(log, "r");  /* no log: no cost, and stats says the rest */
	if (f) {
		fclose(f);
		ev_read_latest(run, 1, latest_types, latest_event, &cr);
	}
	free(log);
	jv steps = jv_object();
	for (size_t i = 0; i < cr.g.n; i++)
		steps = jv_object_set(steps, jv_string(cr.g.keys[i]), usd_or_null(&cr.g.v[i * T_N]));
	jv c = jv_object_set(jv_object(), jv_string("usd"), usd_or_null(cr.total));
	c = jv_object_set(c, jv_string("unpriced_calls"), jv_number(cr.total[T_UNPRICED]));
	groups_free(&cr.g);
	return jv_object_set(c, jv_string("steps"), steps);
}

static void usd_text(jv usd, char out[32])
{
	if (jv_get_kind(usd) == JV_KIND_NUMBER)
		snprintf(out, 32, "$%.6f", jv_number_value(usd));
	else
		snprintf(out, 32, "unknown");
}

/* A fan-out's cost (fold_instances): "usd", the sum of its instances'
 * priced calls, null if none had a price. */
static jv add_usd(jv acc, jv usd)
{
	double sum = 0;
	if (jv_get_kind(usd) == JV_KIND_NUMBER) {
		orch_jnum(acc, "usd", &sum);
		acc = jv_object_set(acc, jv_string("usd"), jv_number(sum + jv_number_value(usd)));
	} else if (!orch_jnum(acc, "usd", &sum))
		acc = jv_object_set(acc, jv_string("usd"), jv_null());
	jv_free(usd);
	return acc;
}

void cost_print(jv cost, const char *step)
{
	char usd[32];
	double unpriced = 0;
	jv steps = orch_jget(cost, "steps");
	if (step) {  /* the sum of the steps listed; none (no LLM call): 0 */
		jv sum = jv_object_length(jv_copy(steps)) ? jv_null() : jv_number(0);
		jv_object_foreach(steps, k, v) {
			if (jv_get_kind(v) == JV_KIND_NUMBER)
				sum = jv_number((jv_get_kind(sum) == JV_KIND_NUMBER ? jv_number_value(sum) : 0) +
				                jv_number_value(v));
			jv_free(k);
			jv_free(v);
		}
		usd_text(sum, usd);
		jv_free(sum);
		printf("cost: %s for %s\n", usd, step);
	} else {
		orch_jnum(cost, "unpriced_calls", &unpriced);
		jv total = orch_jget(cost, "usd");
		usd_text(total, usd);
		printf("cost: %s in total", usd);
		if (unpriced > 0)
			printf(", %.0f call%s without a price", unpriced, unpriced == 1 ? "" : "s");
		printf("\n");
		jv_free(total);
	}
	jv groups = step ? jv_object() : fold_instances(jv_copy(steps), add_usd);
	jv_object_foreach(steps, k, v) {
		const char *name = jv_string_value(k), *open = step ? NULL : strchr(name, '[');
		if (!open) {
			usd_text(v, usd);
			printf("  %-20s %s\n", name, usd);
		} else {  /* a fan-out: one line, where its first instance is */
			jv key = jv_string_sized(name, (int)(open - name));
			jv a = jv_object_get(jv_copy(groups), jv_copy(key));
			if (jv_is_valid(a)) {
				char label[96];
				double n = 0;
				orch_jnum(a, "n", &n);
				snprintf(label, sizeof label, "%s[*]", jv_string_value(key));
				jv u = orch_jget(a, "usd");
				usd_text(u, usd);
				printf("  %-20s %s (%.0f instance%s)\n", label, usd, n, n == 1 ? "" : "s");
				jv_free(u);
				groups = jv_object_delete(groups, jv_copy(key));
			}
			jv_free(a);
			jv_free(key);
		}
		jv_free(k);
		jv_free(v);
	}
	jv_free(groups);
	jv_free(steps);
}
