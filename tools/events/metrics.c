/* metrics.c: orch-events metrics, the latest run of each folder in the
 * Prometheus text exposition format (version 0.0.4), for node_exporter's
 * textfile collector.
 *
 * Every figure is of the latest run in a folder (from its last job.started
 * that was not a resume, as stats counts), so a file rewritten after each
 * run shows that run; a counter falls back to zero when the next run
 * starts, which Prometheus reads as a counter reset. Each family is
 * printed once (HELP, TYPE, then its samples), label values escaped. Runs
 * of the same job add up. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "events.h"

enum {
	M_JOB_OK, M_JOB_SECS, M_JOB_END, M_STEPS, M_STEP_SECS, M_RETRIES, M_CALLS, M_FAILS,
	M_TOKENS, M_COST, M_UNPRICED, M_LLM_SECS, M_HITS, M_MISSES, M_N
};
static const struct family { const char *name, *type, *help; } fam[M_N] = {
	{"orch_job_succeeded", "gauge", "1 if the latest run of the job succeeded, else 0."},
	{"orch_job_duration_seconds", "gauge", "How long the latest run of the job took."},
	{"orch_job_end_time_seconds", "gauge", "When the latest run of the job ended, in seconds since the epoch."},
	{"orch_steps", "gauge", "Steps of the latest run by status."},
	{"orch_step_duration_seconds", "histogram", "How long each attempt of a step took."},
	{"orch_step_retries_total", "counter", "Failed attempts of a step that were retried."},
	{"orch_llm_calls_total", "counter", "Provider calls."},
	{"orch_llm_failures_total", "counter", "Provider calls that failed."},
	{"orch_llm_tokens_total", "counter", "Tokens by kind: prompt (cached ones included), cached, completion."},
	{"orch_llm_cost_usd_total", "counter", "What the calls cost in USD (cost_usd, else the price table); unpriced calls add nothing."},
	{"orch_llm_unpriced_calls_total", "counter", "Provider calls whose model has no price."},
	{"orch_llm_duration_seconds_total", "counter", "Time spent waiting for providers."},
	{"orch_cache_hits_total", "counter", "Responses found in the cache."},
	{"orch_cache_misses_total", "counter", "Responses not in the cache."},
};
static const double bucket[] = {0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600};
#define NB (sizeof bucket / sizeof *bucket)

static const char *const step_status[] = {"pending", "running", "retrying", "succeeded", "failed",
                                          "skipped"};
#define NS (sizeof step_status / sizeof *step_status)

struct metrics {
	struct groups m[M_N];     /* label text -> value (histogram: NB + 2) */
	struct groups steps;      /* this run's steps -> status index */
	char *job;                /* the job of the run being read */
};

/* name="value" appended to b, the value escaped as the format asks. */
static void label(struct orch_buf *b, const char *name, const char *value)
{
	if (b->n)
		orch_buf_add(b, ",", 1);
	orch_buf_add(b, name, strlen(name));
	orch_buf_add(b, "=\"", 2);
	for (const char *s = value ? value : ""; *s; s++) {
		const char *esc = *s == '\\' ? "\\\\" : *s == '"' ? "\\\"" : *s == '\n' ? "\\n" : NULL;
		orch_buf_add(b, esc ? esc : s, esc ? 2 : 1);
	}
	orch_buf_add(b, "\"", 1);
}

/* The sample of family f whose labels are job, then step, provider and
 * one more (k=v), each left out when NULL; w numbers a sample. */
static double *sample(struct metrics *mx, int f, const char *step, const char *provider,
                      const char *k, const char *v)
{
	struct orch_buf b = {0};
	label(&b, "job", mx->job);
	if (step)
		label(&b, "step", step);
	if (provider)
		label(&b, "provider", provider);
	if (k)
		label(&b, k, v);
	orch_buf_add(&b, "", 1);
	double *p = groups_at(&mx->m[f], f == M_STEP_SECS ? NB + 2 : 1, b.p);
	orch_buf_free(&b);
	return p;
}

static void observe(struct metrics *mx, double secs)
{
	double *h = sample(mx, M_STEP_SECS, NULL, NULL, NULL, NULL);
	for (size_t i = 0; i < NB; i++)
		h[i] += secs <= bucket[i];
	h[NB] += secs;
	h[NB + 1]++;
}

static void set_status(struct metrics *mx, const char *step, const char *status)
{
	for (size_t i = 0; i < NS; i++)
		if (strcmp(status, step_status[i]) == 0)
			*groups_at(&mx->steps, 1, step) = (double)i;
}

static void fold_step_event(struct metrics *mx, const struct ev *ev)
{
	const char *what = ev->type + 5;
	double secs;
	if (orch_jnum(ev->data, "duration_s", &secs) && strcmp(what, "skipped"))
		observe(mx, secs);
	if (strcmp(what, "failed") == 0 && orch_jbool(ev->data, "will_retry", 0)) {
		*sample(mx, M_RETRIES, ev->step, NULL, NULL, NULL) += 1;
		what = "retrying";
	}
	set_status(mx, ev->step, what);
}

static void fold_llm(struct metrics *mx, const struct ev *ev)
{
	struct llm_cost c;
	ev_llm_cost(ev, &c);
	const char *s = ev->step, *p = c.provider ? c.provider : "";
	*sample(mx, M_CALLS, s, p, NULL, NULL) += 1;
	*sample(mx, M_FAILS, s, p, NULL, NULL) += c.failed;
	*sample(mx, M_TOKENS, s, p, "kind", "prompt") += c.prompt;
	*sample(mx, M_TOKENS, s, p, "kind", "cached") += c.cached;
	*sample(mx, M_TOKENS, s, p, "kind", "completion") += c.completion;
	*sample(mx, M_COST, s, p, NULL, NULL) += c.usd;
	*sample(mx, M_UNPRICED, s, p, NULL, NULL) += !c.priced;
	*sample(mx, M_LLM_SECS, s, p, NULL, NULL) += ev_num(ev, "duration_s");
}

static void fold_job_end(struct metrics *mx, const struct ev *ev)
{
	double end;
	*sample(mx, M_JOB_OK, NULL, NULL, NULL, NULL) = strcmp(ev->type, "job.succeeded") == 0;
	*sample(mx, M_JOB_SECS, NULL, NULL, NULL, NULL) = ev_num(ev, "duration_s");
	if (orch_parse_iso(ev->ts, &end) == 0)
		*sample(mx, M_JOB_END, NULL, NULL, NULL, NULL) = end;
}

static const char *const metric_types[] = {"job.", "step.", "llm.response", "cache.", NULL};

static int metric_event(const struct ev *ev, void *ctx)
{
	struct metrics *mx = ctx;
	if (!mx->job || strcmp(mx->job, ev->job)) {
		free(mx->job);
		mx->job = orch_xstrdup(ev->job);
	}
	if (strncmp(ev->type, "step.", 5) == 0 && ev->step)
		fold_step_event(mx, ev);
	else if (strcmp(ev->type, "llm.response") == 0)
		fold_llm(mx, ev);
	else if (strcmp(ev->type, "cache.hit") == 0 || strcmp(ev->type, "cache.miss") == 0)
		*sample(mx, ev->type[6] == 'h' ? M_HITS : M_MISSES, ev->step, NULL, NULL, NULL) += 1;
	else if (strcmp(ev->type, "job.succeeded") == 0 || strcmp(ev->type, "job.failed") == 0 ||
	         strcmp(ev->type, "job.cancelled") == 0)
		fold_job_end(mx, ev);
	return 0;
}

/* One run folder: its latest run folded in. */
static int metrics_run(struct metrics *mx, const char *run)
{
	if (ev_read_latest(run, 1, metric_types, metric_event, mx) < 0)
		return EX_FAIL;
	double n[NS] = {0};
	for (size_t i = 0; i < mx->steps.n; i++)
		n[(size_t)mx->steps.v[i]]++;
	for (size_t i = 0; i < NS && mx->steps.n; i++)
		*sample(mx, M_STEPS, NULL, NULL, "status", step_status[i]) += n[i];
	groups_free(&mx->steps);
	free(mx->job);
	mx->job = NULL;
	return 0;
}

static void put_value(const char *name, const char *suffix, const char *labels, double v)
{
	char num[40];
	if (isinf(v))
		snprintf(num, sizeof num, "%s", v > 0 ? "+Inf" : "-Inf");
	else
		snprintf(num, sizeof num, "%.15g", v);
	printf("%s%s{%s} %s\n", name, suffix, labels, num);
}

static void put_histogram(const char *name, const char *labels, const double *h)
{
	for (size_t i = 0; i <= NB; i++) {
		char *le = i < NB ? orch_fmt("%s,le=\"%g\"", labels, bucket[i])
			: orch_fmt("%s,le=\"+Inf\"", labels);
		put_value(name, "_bucket", le, i < NB ? h[i] : h[NB + 1]);
		free(le);
	}
	put_value(name, "_sum", labels, h[NB]);
	put_value(name, "_count", labels, h[NB + 1]);
}

static void put_family(int f, const struct groups *g)
{
	printf("# HELP %s %s\n# TYPE %s %s\n", fam[f].name, fam[f].help, fam[f].name, fam[f].type);
	for (size_t i = 0; i < g->n; i++) {
		if (f == M_STEP_SECS)
			put_histogram(fam[f].name, g->keys[i], &g->v[i * (NB + 2)]);
		else
			put_value(fam[f].name, "", g->keys[i], g->v[i]);
	}
}

int cmd_metrics(char **runs, int n)
{
	if (orch_price_load() < 0)
		orch_die(EX_USAGE, "the price table has errors (above)");
	struct metrics mx = {0};
	int rc = 0;
	for (int i = 0; i < n; i++)
		if (metrics_run(&mx, runs[i]) && !rc)
			rc = EX_FAIL;
	for (int f = 0; f < M_N; f++) {
		put_family(f, &mx.m[f]);
		groups_free(&mx.m[f]);
	}
	return rc;
}
