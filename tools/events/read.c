/* read.c: the one reader of the reports, and what they tally with.
 *
 * Assumes events.jsonl as orch_emit writes it: a line starting {"ts":"
 * has its "type" as the first such key, so the type is read from the raw
 * text and a line of another type is passed over unparsed. Any other line
 * is parsed in full, so the answer is the same, only slower. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "events.h"

/* Is the raw line of a wanted type? 1 yes, 0 no, -1 cannot tell. */
static int wanted_raw(const char *line, const char *const *types)
{
	if (!types)
		return 1;
	if (strncmp(line, "{\"ts\":\"", 7) != 0)
		return -1;
	const char *t = strstr(line, "\"type\":\"");
	if (!t)
		return -1;
	t += 8;
	for (; *types; types++)
		if (strncmp(t, *types, strlen(*types)) == 0)
			return 1;
	return 0;
}

static int wanted(const char *type, const char *const *types)
{
	if (!types)
		return 1;
	for (; type && *types; types++)
		if (strncmp(type, *types, strlen(*types)) == 0)
			return 1;
	return 0;
}

struct reading { const char *run, *path; const char *const *types; ev_fn fn; void *ctx; };

/* One line (no newline): fn on the event if wanted. */
static int ev_line(char *line, size_t n, long lineno, void *rd)
{
	const struct reading *r = rd;
	const char *run = r->run, *path = r->path;
	const char *const *types = r->types;
	if (n == 0 || wanted_raw(line, types) == 0)
		return 0;
	jv e = orch_parse_line(line, n);
	if (jv_get_kind(e) != JV_KIND_OBJECT) {
		orch_err_at(path, lineno, 0, "not an event, skipped");
		jv_free(e);
		return 0;
	}
	struct ev ev = {.e = e, .data = orch_jget(e, "data"), .run = run};
	ev.type = orch_jstr(e, "type");
	ev.step = orch_jstr(e, "step");
	ev.ts = orch_jstr(e, "ts");
	ev.job = orch_jstr(e, "job_id");
	int rc = 0;
	if (ev.type && ev.ts && ev.job && wanted(ev.type, types))
		rc = r->fn(&ev, r->ctx);
	jv_free(ev.data);
	jv_free(e);
	return rc;
}

int ev_read(const char *run, const char *const *types, ev_fn fn, void *ctx)
{
	char *path = orch_path(run, "events.jsonl");
	FILE *f = fopen(path, "r");
	if (!f) {
		orch_err_sys("%s", path);
		free(path);
		return -1;
	}
	struct reading r = {run, path, types, fn, ctx};
	int rc = orch_lines(f, ev_line, &r);
	fclose(f);
	free(path);
	return rc;
}

int ev_read_all(char **runs, int n, const char *const *types, ev_fn fn, void *ctx)
{
	int rc = 0;
	for (int i = 0; i < n; i++) {
		int r = ev_read(runs[i], types, fn, ctx);
		if (r && !rc)
			rc = r < 0 ? EX_FAIL : r;
	}
	return rc;
}

struct latest {
	int fresh;
	long starts, from;   /* job.started seen; the one to start from (1-based) */
	const char *const *types;
	ev_fn fn;
	void *ctx;
};

static int find_latest(const struct ev *ev, void *ctx)
{
	struct latest *l = ctx;
	l->starts++;
	if (!l->fresh || ev_is_fresh_start(ev))
		l->from = l->starts;
	return 0;
}

static int from_latest(const struct ev *ev, void *ctx)
{
	struct latest *l = ctx;
	if (strcmp(ev->type, "job.started") == 0)
		l->starts++;
	return l->starts < l->from ? 0 : l->fn(ev, l->ctx);
}

int ev_read_latest(const char *run, int fresh, const char *const *types, ev_fn fn, void *ctx)
{
	static const char *const starts[] = {"job.started", NULL};
	struct latest l = {fresh, 0, 0, types, fn, ctx};
	if (ev_read(run, starts, find_latest, &l) < 0)
		return -1;
	l.starts = 0;
	return ev_read(run, types, from_latest, &l);
}

double ev_num(const struct ev *ev, const char *key)
{
	double d = 0;
	orch_jnum(ev->data, key, &d);
	return d;
}

const char *ev_str(const struct ev *ev, const char *key)
{
	return orch_jstr(ev->data, key);
}

int ev_is_fresh_start(const struct ev *ev)
{
	return strcmp(ev->type, "job.started") == 0 && !orch_jbool(ev->data, "resume", 0);
}

void ev_llm_cost(const struct ev *ev, struct llm_cost *c)
{
	c->provider = ev_str(ev, "provider");
	c->model = ev_str(ev, "model");
	c->failed = !orch_jbool(ev->data, "success", 1);
	jv tokens = orch_jget(ev->data, "tokens");
	orch_price_tokens(tokens, &c->prompt, &c->cached, &c->completion);
	c->priced = orch_jnum(ev->data, "cost_usd", &c->usd);
	if (!c->priced) {
		jv usd = orch_price_cost(c->provider, c->model, jv_copy(tokens));
		c->priced = jv_get_kind(usd) == JV_KIND_NUMBER;
		c->usd = c->priced ? jv_number_value(usd) : 0;
		jv_free(usd);
	}
	jv_free(tokens);
}

double *groups_at(struct groups *g, size_t w, const char *key)
{
	if (!g->map) {
		g->map = orch_map_new(64);
		g->w = w;
	}
	long i = orch_map_get(g->map, key);
	if (i >= 0)
		return &g->v[i * g->w];
	if (g->n == g->cap) {
		g->cap = g->cap ? 2 * g->cap : 16;
		g->keys = orch_xrealloc(g->keys, g->cap * sizeof *g->keys);
		g->v = orch_xrealloc(g->v, g->cap * g->w * sizeof *g->v);
	}
	g->keys[g->n] = orch_xstrdup(key);
	memset(&g->v[g->n * g->w], 0, g->w * sizeof *g->v);
	orch_map_put(g->map, g->keys[g->n], (long)g->n);
	return &g->v[g->n++ * g->w];
}

void tally_add(double *t, const struct llm_cost *c)
{
	t[T_CALLS]++;
	t[T_PROMPT] += c->prompt;
	t[T_CACHED] += c->cached;
	t[T_COMPLETION] += c->completion;
	t[T_USD] += c->usd;
	t[T_UNPRICED] += !c->priced;
}

void groups_free(struct groups *g)
{
	for (size_t i = 0; i < g->n; i++)
		free(g->keys[i]);
	free(g->keys);
	free(g->v);
	if (g->map)
		orch_map_free(g->map);
	*g = (struct groups){0};
}

jv fold_instances(jv steps, jv (*add)(jv acc, jv v))
{
	jv g = jv_object();
	jv_object_foreach(steps, k, v) {
		const char *name = jv_string_value(k), *open = strchr(name, '[');
		if (open) {
			jv key = jv_string_sized(name, (int)(open - name));
			jv a = jv_object_get(jv_copy(g), jv_copy(key));
			double n = 0;
			if (!jv_is_valid(a))
				a = (jv_free(a), jv_object());
			orch_jnum(a, "n", &n);
			a = jv_object_set(a, jv_string("n"), jv_number(n + 1));
			g = jv_object_set(g, key, add(a, jv_copy(v)));
		}
		jv_free(k);
		jv_free(v);
	}
	jv_free(steps);
	return g;
}
