/* dryrun.c: -n, what each step would do and why, one line each.
 *
 * The steps in the plan's order, each decided as the run would decide it
 * when its needs are done: with --resume, skip (completed) when it is
 * still done (resume.c), else run, and why; a need that would run makes
 * its dependants run. A when: condition is evaluated when every need's
 * result is known (skipped, completed or by condition): false is skip
 * (condition); else the step is shown as run, since whether its condition
 * holds is known only once its needs have run. Nothing is written, no
 * lock is taken: the events and artifacts are read as they are (a
 * scheduler working on the run meanwhile may change them). Assumes the
 * plan is checked; run.dir need not exist.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "orch.h"
#include "sched.h"

/* The first need of s that would run, or -1. */
static int need_that_runs(const struct step *s)
{
	for (size_t k = 0; k < s->ndep; k++)
		if (plan.step[s->dep[k]].st == ST_READY)
			return (int)s->dep[k];
	return -1;
}

/* Is s's when: false, its needs' results known? */
static int cond_false(struct step *s)
{
	char *err = NULL;
	s->input = input_record(s);
	int holds = cond_holds(s, &err);
	jv_free(s->input);
	s->input = jv_invalid();
	free(err);
	return holds == 0;
}

/* With --resume: why i would run, or NULL (skip: completed). A need that
 * would run is named when i itself has not changed: whether that need's
 * new result is the same is known only once it has run. */
static char *why_run(int i, unsigned char *changed)
{
	struct step *s = &plan.step[i];
	const char *why;
	int late = need_that_runs(s);
	fingerprint(s);  /* with no artifact for needs that would run */
	int done = why_not_done(s, &why);
	if (done && late < 0)
		return NULL;
	if (done) {
		jv_free(s->result);
		s->result = jv_invalid();
	}
	if (late >= 0 && (done || why[0] == 'w')) {
		changed[i] = changed[late];
		return orch_fmt("needs %s, which %s", plan.step[late].name,
		                changed[late] ? "changed" : "will run");
	}
	changed[i] = why[0] == 's' || why[0] == 'w';  /* spec, what its needs gave */
	return orch_xstrdup(why);
}

/* May a dependant of s read its result here: to test its when:, as its
 * item (a fan-out instance paired with s: group.c), or as the items of a
 * dynamic fan-out (expand.c)? If not, a completed step's result is
 * dropped at once: 100,000 of them are not held to the end. */
static int result_read(const struct step *s)
{
	for (size_t k = 0; k < s->nrdep; k++) {
		const struct step *d = &plan.step[s->rdep[k]];
		if (d->cond >= 0 || jv_is_valid(d->inst) || jv_is_valid(d->expand))
			return 1;
	}
	return 0;
}

/* i's decision as text, and its st: ST_DONE, ST_COND, or ST_READY (run);
 * changed[i] set when it runs because it, or what it needs, changed. */
static char *decide(int i, unsigned char *changed)
{
	struct step *s = &plan.step[i];
	char *why = opt.resume ? why_run(i, changed) : orch_xstrdup("no --resume");
	if (!why) {
		s->st = ST_DONE;
		if (!result_read(s)) {
			jv_free(s->result);
			s->result = jv_invalid();
		}
		return orch_xstrdup("skip (completed)");
	}
	if (s->cond >= 0 && need_that_runs(s) < 0 && cond_false(s)) {
		s->st = ST_COND;
		free(why);
		return orch_xstrdup("skip (condition)");
	}
	s->st = ST_READY;
	char *text = orch_fmt("run (%s)", why);
	free(why);
	return text;
}

static void say(int i, unsigned char *changed)
{
	char *what = decide(i, changed);
	printf("%s\t%s\n", plan.step[i].name, what);
	free(what);
}

int dry_run(void)
{
	int n = plan.n;  /* plan.order's; a dynamic fan-out may add instances */
	unsigned char *changed = orch_xmalloc(n + 1);
	for (int i = 0; i < n; i++)
		changed[i] = 0;
	resume_read();
	for (int k = 0; k < n; k++) {
		int i = (int)plan.order[k], before = plan.n;
		if (!expand_dry_run(i)) {  /* expand.c: a dynamic fan-out, its instances if known */
			say(i, changed);
			continue;
		}
		changed = orch_xrealloc(changed, plan.n + 1);
		memset(changed + before, 0, plan.n - before);
		for (int j = before; j < plan.n; j++)
			say(j, changed);
	}
	free(changed);
	return EX_OK;
}
