/* timeline.c: orch-events timeline, every attempt of every step of the
 * latest run (from its last job.started, a resume or not), as text or, with
 * --svg, as a picture (svg.c).
 *
 * An attempt runs from its step.started to the step.succeeded or
 * step.failed after it: retried when that failure had will_retry, cached
 * when a cache.hit came in between, failed, or (when none came yet) still
 * running at the last event. A step waits from the moment the last step it
 * needs ended (or the job started) to its first attempt, and between
 * attempts. The critical path: from the step that ended last, back through
 * the needed step that ended last, to a step that needed none. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "events.h"

const char *const tl_colour[K_KINDS] = {"#d4d4d4", "#4c78a8", "#f2a33a", "#54a24b", "#e45756",
                                        "#b9b0ab"};
const char *const tl_kind[K_KINDS] = {"waiting", "running", "retried", "cached", "failed",
                                      "skipped"};
static const char tl_char[K_KINDS] = {'.', '#', 'r', 'c', 'x', '-'};

static struct tl_step *tl_get(struct timeline *tl, const char *name)
{
	long i = orch_map_get(tl->map, name);
	if (i >= 0)
		return &tl->s[i];
	if (tl->n == tl->cap) {
		tl->cap = tl->cap ? 2 * tl->cap : 64;
		tl->s = orch_xrealloc(tl->s, tl->cap * sizeof *tl->s);
	}
	struct tl_step *s = &tl->s[tl->n];
	*s = (struct tl_step){.name = orch_xstrdup(name), .needs = jv_array()};
	orch_map_put(tl->map, s->name, (long)tl->n++);
	return s;
}

static struct attempt *push(struct tl_step *s, double start, double end, int kind)
{
	if (s->na == s->cap) {
		s->cap = s->cap ? 2 * s->cap : 2;
		s->a = orch_xrealloc(s->a, s->cap * sizeof *s->a);
	}
	s->a[s->na] = (struct attempt){start, end, kind, 0};
	return &s->a[s->na++];
}

static void step_end(struct tl_step *s, const struct ev *ev, double t)
{
	struct attempt *a = s->na && s->a[s->na - 1].open ? &s->a[s->na - 1] : NULL;
	if (strcmp(ev->type, "step.skipped") == 0) {
		push(s, t, t, K_SKIP);
		return;
	}
	if (!a)  /* no start seen (one lost by a scheduler that died) */
		a = push(s, t - ev_num(ev, "duration_s"), t, K_RUN);
	a->end = t;
	a->open = 0;
	if (strcmp(ev->type, "step.succeeded") == 0)
		a->kind = s->cached ? K_CACHED : K_RUN;
	else if (strcmp(ev->type, "step.failed") == 0)
		a->kind = orch_jbool(ev->data, "will_retry", 0) ? K_RETRY : K_FAIL;
}

static int tl_event(const struct ev *ev, void *ctx)
{
	struct timeline *tl = ctx;
	double t;
	if (orch_parse_iso(ev->ts, &t) < 0)
		return 0;
	if (!tl->job || strcmp(ev->type, "job.started") == 0) {
		free(tl->job);
		tl->job = orch_xstrdup(ev->job);
		tl->t0 = t;
	}
	if (t > tl->t1)
		tl->t1 = t;
	if (!ev->step || strncmp(ev->type, "job.", 4) == 0)
		return 0;
	struct tl_step *s = tl_get(tl, ev->step);
	if (strcmp(ev->type, "step.started") == 0) {
		jv needs = orch_jget(ev->data, "needs");
		if (jv_get_kind(needs) == JV_KIND_ARRAY && jv_array_length(jv_copy(s->needs)) == 0)
			jv_free(s->needs), s->needs = needs;
		else
			jv_free(needs);
		push(s, t, t, K_RUN)->open = 1;
		s->cached = 0;
	} else if (strcmp(ev->type, "cache.hit") == 0)
		s->cached = 1;
	else if (strncmp(ev->type, "step.", 5) == 0)
		step_end(s, ev, t);
	return 0;
}

/* When a step's last attempt ended (its start if still open); -1: none. */
static double ended(const struct tl_step *s)
{
	return s->na ? s->a[s->na - 1].end : -1;
}

/* The needed step that ended last, or NULL. */
static struct tl_step *last_need(const struct timeline *tl, const struct tl_step *s)
{
	struct tl_step *best = NULL;
	jv_array_foreach(s->needs, i, name) {
		long k = jv_get_kind(name) == JV_KIND_STRING ? orch_map_get(tl->map, jv_string_value(name)) : -1;
		if (k >= 0 && tl->s[k].na && (!best || ended(&tl->s[k]) > ended(best)))
			best = &tl->s[k];
		jv_free(name);
		(void)i;
	}
	return best;
}

/* Times from the job's start; open attempts run to the end; the waits
 * put in before each attempt. */
static void settle(struct timeline *tl)
{
	for (size_t i = 0; i < tl->n; i++)
		for (size_t j = 0; j < tl->s[i].na; j++) {
			struct attempt *a = &tl->s[i].a[j];
			if (a->open)
				a->end = tl->t1;
			a->start -= tl->t0;
			a->end -= tl->t0;
		}
	for (size_t i = 0; i < tl->n; i++) {
		struct tl_step *s = &tl->s[i];
		struct tl_step *need = last_need(tl, s);
		double from = need ? ended(need) : 0;
		struct attempt *old = s->a;
		size_t n = s->na;
		s->a = NULL, s->na = s->cap = 0;
		for (size_t j = 0; j < n; j++) {
			if (old[j].kind != K_SKIP && old[j].start > from)
				push(s, from, old[j].start, K_WAIT);
			push(s, old[j].start, old[j].end, old[j].kind);
			from = old[j].end;
		}
		free(old);
	}
}

static void mark_critical(struct timeline *tl)
{
	struct tl_step *s = NULL;
	for (size_t i = 0; i < tl->n; i++)
		if (tl->s[i].na && tl->s[i].a[tl->s[i].na - 1].kind != K_SKIP &&
		    (!s || ended(&tl->s[i]) > ended(s)))
			s = &tl->s[i];
	for (size_t hops = 0; s && !s->critical && hops < tl->n; hops++) {
		s->critical = 1;
		s = last_need(tl, s);
	}
}

/* Columns [from, to) of the text bar of an attempt. */
static void text_bar(char *bar, int width, double scale, const struct attempt *a)
{
	int from = (int)floor(a->start * scale), to = (int)ceil(a->end * scale);
	if (from >= width)
		from = width - 1;  /* at the very end */
	if (to <= from)
		to = from + 1;
	for (int c = from < 0 ? 0 : from; c < to && c < width; c++)
		bar[c] = tl_char[a->kind];
}

static void text_timeline(const struct timeline *tl)
{
	enum { WIDTH = 60 };
	double span = tl->t1 - tl->t0;
	int w = 4;
	for (size_t i = 0; i < tl->n; i++)
		if ((int)strlen(tl->s[i].name) > w)
			w = (int)strlen(tl->s[i].name) > 40 ? 40 : (int)strlen(tl->s[i].name);
	printf("%s: %.3fs, %zu steps; * marks the critical path\n", tl->job ? tl->job : "?", span, tl->n);
	for (size_t i = 0; i < tl->n; i++) {
		const struct tl_step *s = &tl->s[i];
		char bar[WIDTH + 1];
		memset(bar, ' ', WIDTH);
		bar[WIDTH] = 0;
		for (size_t j = 0; j < s->na; j++)
			text_bar(bar, WIDTH, span > 0 ? WIDTH / span : 0, &s->a[j]);
		double start = s->na ? s->a[s->na - 1].start : 0;
		printf("%-*.*s%c |%s| %8.3fs %8.3fs\n", w, w, s->name, s->critical ? '*' : ' ', bar,
		       start, s->na ? ended(s) - start : 0);
	}
	printf("%*s   ", w, "");
	for (int k = 0; k < K_KINDS; k++)
		printf("%c %s%s", tl_char[k], tl_kind[k], k + 1 < K_KINDS ? "  " : "\n");
}

static void tl_free(struct timeline *tl)
{
	for (size_t i = 0; i < tl->n; i++) {
		free(tl->s[i].name);
		free(tl->s[i].a);
		jv_free(tl->s[i].needs);
	}
	free(tl->s);
	free(tl->job);
	orch_map_free(tl->map);
}

int cmd_timeline(const struct report_opts *o, const char *run)
{
	static const char *const types[] = {"job.", "step.", "cache.hit", NULL};
	struct timeline tl = {.map = orch_map_new(256)};
	int rc = ev_read_latest(run, 0, types, tl_event, &tl) < 0 ? EX_FAIL : 0;
	if (rc == 0) {
		settle(&tl);
		mark_critical(&tl);
		if (o->svg)
			rc = svg_timeline(&tl);
		else
			text_timeline(&tl);
	}
	tl_free(&tl);
	return rc;
}
