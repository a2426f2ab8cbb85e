/* why.c: provenance, from the events alone.
 *
 *   why PATH [--json]       which step wrote the file, from which prompt
 *                           (its cache key), by which model, at what cost
 *   why-miss STEP [--json]  what changed in the request of the step's
 *                           latest cache miss (orch-cache's "changed")
 *
 * Assumes the events of one step attempt come in the order the step
 * makes them: step.started, then cache.hit or cache.miss (orch-cache),
 * then llm.response (orch-call, inside the cache on a miss), then
 * file.written (orch-write). Attempts of other steps may interleave: the
 * state is kept per step. A hit made no call: its figures are those of
 * the call that filled the entry, when that call is in the same log. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "events.h"

/* ---- why PATH: where the file is ---- */

/* The folder of events.jsonl at or above dir (a copy of dir, cut), or NULL. */
static char *run_above(const char *dir)
{
	char *d = orch_xstrdup(dir);
	for (;;) {
		char *log = orch_path(*d ? d : ".", "events.jsonl");
		int found = access(log, F_OK) == 0;
		free(log);
		if (found)
			return *d ? d : (free(d), orch_xstrdup("."));
		char *slash = strrchr(d, '/');
		if (!slash || slash == d) {
			free(d);
			return NULL;
		}
		*slash = 0;
	}
}

/* path made absolute through its folder's real path, when that exists;
 * else as given (the file and its folder may be gone). */
static char *real_path(const char *path)
{
	char *copy = orch_xstrdup(path), *slash = strrchr(copy, '/'), real[PATH_MAX];
	const char *dir = slash ? (slash == copy ? "/" : copy) : ".";
	if (slash)
		*slash = 0;
	char *p = realpath(dir, real) ? orch_fmt("%s/%s", real, slash ? slash + 1 : path)
	                                : orch_xstrdup(path);
	free(copy);
	return p;
}

static const char *strip_dot(const char *p)
{
	while (strncmp(p, "./", 2) == 0)
		p += 2;
	return p;
}

/* The run folder holding path and path's name under its outputs/ (both
 * malloc'd): the folder of events.jsonl above the path, else the run
 * (--run, $ORCH_RUN_DIR) with path relative to it or to its outputs/.
 * Exits 2 when neither says. */
static void locate(const char *path, char **run, char **rel)
{
	char *abs = real_path(path), *dir = orch_xstrdup(abs), *slash = strrchr(dir, '/');
	if (slash)
		*slash = 0;
	else
		*dir = 0;
	char *found = run_above(dir);
	free(dir);
	if (found) {
		size_t n = strcmp(found, ".") ? strlen(found) + 1 : 0;
		const char *rest = strip_dot(abs + n);
		if (strncmp(rest, "outputs/", 8) != 0)
			orch_die(EX_USAGE, "%s: not in the outputs/ of run %s", path, found);
		*run = found;
		*rel = orch_xstrdup(rest + 8);
	} else if (orch_run_dir()) {
		const char *r = strip_dot(path);
		*run = orch_xstrdup(orch_run_dir());
		*rel = orch_xstrdup(strncmp(r, "outputs/", 8) == 0 ? r + 8 : r);
	} else
		orch_die(EX_USAGE, "%s: in no run folder (no events.jsonl above it); give --run DIR", path);
	free(abs);
}

/* ---- why PATH: the events ---- */

struct why {
	const char *rel;
	jv steps;         /* step -> its attempt now: {"attempt","cache","cache_key","provider","model","call_ts"} */
	struct groups t;  /* step -> the calls of its attempt now (T_N) */
	jv calls;         /* cache key -> the call that filled the entry */
	jv last, earlier; /* the latest write of the file, and those before it */
};

static const char *const why_types[] = {"step.started", "cache.hit", "cache.miss",
                                        "llm.response", "file.written", NULL};

/* The calls of the step's attempt now, or null if it made none. */
static jv call_json(struct why *w, const char *step, jv st)
{
	double *t = groups_at(&w->t, T_N, step);
	if (t[T_CALLS] == 0)
		return jv_null();
	jv c = jv_object_set(jv_object(), jv_string("ts"), orch_jget(st, "call_ts"));
	c = jv_object_set(c, jv_string("provider"), orch_jget(st, "provider"));
	c = jv_object_set(c, jv_string("model"), orch_jget(st, "model"));
	return tally_json(c, t);
}

static void note_call(struct why *w, const struct ev *ev, const char *step, jv st)
{
	struct llm_cost c;
	ev_llm_cost(ev, &c);
	tally_add(groups_at(&w->t, T_N, step), &c);
	st = jv_object_set(st, jv_string("provider"), c.provider ? jv_string(c.provider) : jv_null());
	st = jv_object_set(st, jv_string("model"), c.model ? jv_string(c.model) : jv_null());
	st = jv_object_set(st, jv_string("call_ts"), jv_string(ev->ts));
	const char *cache = orch_jstr(st, "cache"), *key = orch_jstr(st, "cache_key");
	if (cache && key && strcmp(cache, "miss") == 0)
		w->calls = jv_object_set(w->calls, jv_string(key), call_json(w, step, st));
	w->steps = jv_object_set(w->steps, jv_string(step), st);
}

/* A write of the file: it is the latest now, the one it follows joins
 * the earlier ones. */
static void note_write(struct why *w, const struct ev *ev, const char *step, jv st)
{
	const char *cache = orch_jstr(st, "cache"), *key = orch_jstr(st, "cache_key");
	jv r = jv_object_set(jv_object(), jv_string("ts"), jv_string(ev->ts));
	r = jv_object_set(r, jv_string("job"), jv_string(ev->job));
	r = jv_object_set(r, jv_string("step"), ev->step ? jv_string(ev->step) : jv_null());
	r = jv_object_set(r, jv_string("attempt"), orch_jget(st, "attempt"));
	r = jv_object_set(r, jv_string("reason"), orch_jget(ev->data, "reason"));
	r = jv_object_set(r, jv_string("sha256"), orch_jget(ev->data, "sha256"));
	r = jv_object_set(r, jv_string("size_bytes"), orch_jget(ev->data, "size_bytes"));
	r = jv_object_set(r, jv_string("cache"), orch_jget(st, "cache"));
	r = jv_object_set(r, jv_string("cache_key"), orch_jget(st, "cache_key"));
	jv call = cache && key && strcmp(cache, "hit") == 0
		? jv_object_get(jv_copy(w->calls), jv_string(key)) : call_json(w, step, st);
	r = jv_object_set(r, jv_string("call"), jv_is_valid(call) ? call : (jv_free(call), jv_null()));
	if (jv_get_kind(w->last) == JV_KIND_OBJECT) {
		jv e = jv_object();
		const char *const keep[] = {"ts", "step", "reason", "sha256", NULL};
		for (const char *const *k = keep; *k; k++)
			e = jv_object_set(e, jv_string(*k), orch_jget(w->last, *k));
		w->earlier = jv_array_append(w->earlier, e);
	}
	jv_free(w->last);
	w->last = r;
	jv_free(st);
}

static int why_event(const struct ev *ev, void *ctx)
{
	struct why *w = ctx;
	const char *step = ev->step ? ev->step : "";
	jv st = jv_object_get(jv_copy(w->steps), jv_string(step));
	if (!jv_is_valid(st))
		st = (jv_free(st), jv_object());
	if (strcmp(ev->type, "step.started") == 0) {
		memset(groups_at(&w->t, T_N, step), 0, T_N * sizeof(double));
		jv_free(st);
		st = jv_object_set(jv_object(), jv_string("attempt"), orch_jget(ev->data, "attempt"));
	} else if (strncmp(ev->type, "cache.", 6) == 0) {
		st = jv_object_set(st, jv_string("cache"), jv_string(ev->type + 6));
		st = jv_object_set(st, jv_string("cache_key"), orch_jget(ev->data, "cache_key"));
	} else if (strcmp(ev->type, "llm.response") == 0) {
		note_call(w, ev, step, st);
		return 0;
	} else {
		const char *p = ev_str(ev, "path");
		if (p && strcmp(strip_dot(p), w->rel) == 0 && orch_jbool(ev->data, "wrote", 0))
			note_write(w, ev, step, st);
		else
			jv_free(st);
		return 0;
	}
	w->steps = jv_object_set(w->steps, jv_string(step), st);
	return 0;
}

/* "same", "changed" or "missing": the file on disk against sha256. */
static const char *on_disk(const char *run, const char *rel, const char *sha256, char now[65])
{
	char *path = orch_fmt("%s/outputs/%s", run, rel);
	size_t n;
	char *text = orch_slurp(path, &n);
	free(path);
	*now = 0;
	if (!text)
		return "missing";
	orch_sha256_hex(text, n, now);
	free(text);
	return sha256 && strcmp(now, sha256) == 0 ? "same" : "changed";
}

/* ---- why PATH: the answer ---- */

static void put_call_text(jv r, jv call)
{
	const char *cache = orch_jstr(r, "cache");
	if (jv_get_kind(call) != JV_KIND_OBJECT) {
		printf("  model:   unknown (%s)\n", cache && strcmp(cache, "hit") == 0
		       ? "a cache hit whose call is not in this log" : "no LLM call in this attempt");
		return;
	}
	double calls = 0, p = 0, c = 0, k = 0, usd = 0, unpriced = 0;
	orch_jnum(call, "calls", &calls);
	orch_jnum(call, "unpriced_calls", &unpriced);
	orch_jnum(call, "prompt_tokens", &p);
	orch_jnum(call, "cached_tokens", &c);
	orch_jnum(call, "completion_tokens", &k);
	const char *model = orch_jstr(call, "model"), *prov = orch_jstr(call, "provider");
	printf("  model:   %s (provider %s)", model ? model : "?", prov ? prov : "?");
	if (cache && strcmp(cache, "hit") == 0)
		printf(", its answer from the call at %s", orch_jstr(call, "ts") ? orch_jstr(call, "ts") : "?");
	printf("\n  tokens:  %.0f prompt (%.0f cached), %.0f completion, in %.0f call%s\n", p, c, k,
	       calls, calls == 1 ? "" : "s");
	if (orch_jnum(call, "cost_usd", &usd))
		printf("  cost:    $%.6f%s\n", usd, unpriced > 0 ? " (and calls without a price)" : "");
	else
		printf("  cost:    unknown (no price for %s)\n", model ? model : "the model");
}

static void put_text(jv r, const char *disk, const char *now)
{
	const char *step = orch_jstr(r, "step"), *cache = orch_jstr(r, "cache");
	const char *key = orch_jstr(r, "cache_key"), *sha = orch_jstr(r, "sha256");
	double attempt = 0;
	printf("%s: written by step %s", orch_jstr(r, "path"), step ? step : "-");
	if (orch_jnum(r, "attempt", &attempt))
		printf(" (attempt %.0f)", attempt);
	printf(" at %s, %s\n", orch_jstr(r, "ts"), orch_jstr(r, "reason") ? orch_jstr(r, "reason") : "?");
	if (key)
		printf("  prompt:  cache key %s (a cache %s)\n", key, cache);
	else
		printf("  prompt:  no cache key (the step did not go through orch-cache)\n");
	jv call = orch_jget(r, "call");
	put_call_text(r, call);
	jv_free(call);
	if (strcmp(disk, "same") == 0)
		printf("  on disk: as written, sha256 %s\n", sha ? sha : "?");
	else if (strcmp(disk, "changed") == 0)
		printf("  on disk: changed since (sha256 written %s, now %s)\n", sha ? sha : "?", now);
	else
		printf("  on disk: gone since (sha256 written %s)\n", sha ? sha : "?");
	jv earlier = orch_jget(r, "earlier");
	jv_array_foreach(earlier, i, e) {
		printf("  earlier: %s by %s, %s\n", orch_jstr(e, "ts"),
		       orch_jstr(e, "step") ? orch_jstr(e, "step") : "-", orch_jstr(e, "reason"));
		jv_free(e);
	}
	jv_free(earlier);
}

static int why_path(const char *path, int json)
{
	char *run, *rel;
	if (orch_price_load() < 0)
		orch_die(EX_USAGE, "the price table has errors (above)");
	locate(path, &run, &rel);
	struct why w = {.rel = rel, .steps = jv_object(), .calls = jv_object(), .last = jv_null(),
	                .earlier = jv_array()};
	int rc = ev_read(run, why_types, why_event, &w) < 0 ? EX_FAIL : EX_OK;
	if (rc == EX_OK && jv_get_kind(w.last) != JV_KIND_OBJECT) {
		orch_err("%s: not written by run %s (no file.written with wrote:true for outputs/%s)",
		         path, run, rel);
		rc = EX_FAIL;
	} else if (rc == EX_OK) {
		char now[65];
		const char *disk = on_disk(run, rel, orch_jstr(w.last, "sha256"), now);
		jv r = jv_object_set(jv_object(), jv_string("path"), jv_string(rel));
		r = jv_object_set(r, jv_string("run"), jv_string(run));
		r = jv_object_merge(r, jv_copy(w.last));
		r = jv_object_set(r, jv_string("on_disk"), jv_string(disk));
		r = jv_object_set(r, jv_string("earlier"), jv_copy(w.earlier));
		if (json)
			orch_put(r);
		else {
			put_text(r, disk, now);
			jv_free(r);
		}
	}
	jv_free(w.steps);
	jv_free(w.calls);
	jv_free(w.last);
	jv_free(w.earlier);
	groups_free(&w.t);
	free(run);
	free(rel);
	return rc;
}

/* ---- why-miss STEP ---- */

/* The latest cache.hit or cache.miss of each step named STEP, or of each
 * of its fan-out instances STEP[KEY]: {name: {"step","type","ts",
 * "cache_key","changed","changed_more"}}. */
struct misses { const char *step; jv last; };

static int miss_event(const struct ev *ev, void *ctx)
{
	struct misses *m = ctx;
	size_t n = strlen(m->step);
	if (!ev->step || strncmp(ev->step, m->step, n) != 0 || (ev->step[n] && ev->step[n] != '['))
		return 0;
	jv c = jv_object_set(jv_object(), jv_string("step"), jv_string(ev->step));
	c = jv_object_set(c, jv_string("type"), jv_string(ev->type));
	c = jv_object_set(c, jv_string("ts"), jv_string(ev->ts));
	c = jv_object_set(c, jv_string("cache_key"), orch_jget(ev->data, "cache_key"));
	c = jv_object_set(c, jv_string("changed"), orch_jget(ev->data, "changed"));
	double more;
	if (orch_jnum(ev->data, "changed_more", &more))
		c = jv_object_set(c, jv_string("changed_more"), jv_number(more));
	m->last = jv_object_set(m->last, jv_string(ev->step), c);
	return 0;
}

static void put_miss_text(jv c)
{
	jv changed = orch_jget(c, "changed");
	double more = 0;
	orch_jnum(c, "changed_more", &more);
	printf("%s: a cache miss at %s (key %s)", orch_jstr(c, "step"), orch_jstr(c, "ts"),
	       orch_jstr(c, "cache_key") ? orch_jstr(c, "cache_key") : "?");
	if (jv_get_kind(changed) != JV_KIND_ARRAY)
		printf(": the step had no answered call in the cache to compare with\n");
	else if (jv_array_length(jv_copy(changed)) == 0)
		printf(": the request of its last answered call, whose entry is gone (pruned or corrupt)\n");
	else
		printf(", changed since its last answered call:\n");
	if (jv_get_kind(changed) == JV_KIND_ARRAY)
		jv_array_foreach(changed, i, p) {
			printf("  %s\n", jv_string_value(p));
			jv_free(p);
		}
	if (more > 0)
		printf("  and %.0f more\n", more);
	jv_free(changed);
}

/* For a fan-out: how many instances missed, and each path how often. */
static void put_miss_summary(const char *step, jv misses, int instances)
{
	jv count = jv_object();
	jv_array_foreach(misses, i, c) {
		jv changed = orch_jget(c, "changed");
		if (jv_get_kind(changed) != JV_KIND_ARRAY)  /* nothing to compare with */
			changed = (jv_free(changed), jv_array_append(jv_array(), jv_string("(first call)")));
		jv_array_foreach(changed, j, p) {
			double k = 0;
			orch_jnum(count, jv_string_value(p), &k);
			count = jv_object_set(count, p, jv_number(k + 1));
		}
		jv_free(changed);
		jv_free(c);
	}
	printf("%s: %d of %d instances missed", step, jv_array_length(jv_copy(misses)), instances);
	jv_object_foreach(count, p, n) {
		printf("; %s in %.0f", jv_string_value(p), jv_number_value(n));
		jv_free(p);
		jv_free(n);
	}
	printf("\n");
	jv_free(count);
	jv_free(misses);
}

enum { MISS_LINES = 10 };  /* a fan-out's instances shown one by one */

static int why_miss(const char *step, int json)
{
	static const char *const types[] = {"cache.hit", "cache.miss", NULL};
	const char *run = orch_run_dir();
	if (!run)
		orch_die(EX_USAGE, "no run folder: give --run DIR or set ORCH_RUN_DIR");
	struct misses m = {step, jv_object()};
	if (ev_read(run, types, miss_event, &m) < 0) {
		jv_free(m.last);
		return EX_FAIL;
	}
	jv names = jv_keys(jv_copy(m.last)), misses = jv_array();
	int n = jv_array_length(jv_copy(names));
	jv_array_foreach(names, i, k) {
		jv c = jv_object_get(jv_copy(m.last), k);
		if (strcmp(orch_jstr(c, "type"), "cache.miss") == 0)
			misses = jv_array_append(misses, c);
		else
			jv_free(c);
	}
	int nm = jv_array_length(jv_copy(misses));
	int fanout = n > 1 || (n == 1 && !jv_object_has(jv_copy(m.last), jv_string(step)));
	if (n == 0)
		orch_err("%s: made no cached call in %s", step, run);
	else if (nm == 0 && fanout)
		orch_err("%s: the last call of each of its %d instances was a cache hit", step, n);
	else if (nm == 0) {
		jv c = jv_object_get(jv_copy(m.last), jv_string(step));
		orch_err("%s: its last call was a cache hit, at %s (key %s)", step, orch_jstr(c, "ts"),
		         orch_jstr(c, "cache_key") ? orch_jstr(c, "cache_key") : "?");
		jv_free(c);
	}
	jv_array_foreach(misses, i, c) {
		if (json)
			orch_put(c);
		else {
			if (i < MISS_LINES)
				put_miss_text(c);
			jv_free(c);
		}
	}
	if (!json && fanout && nm > 0) {
		if (nm > MISS_LINES)
			printf("... and %d more instances missed\n", nm - MISS_LINES);
		put_miss_summary(step, jv_copy(misses), n);
	}
	jv_free(misses);
	jv_free(names);
	jv_free(m.last);
	return nm > 0 ? EX_OK : EX_FAIL;
}

int events_why(const char *cmd, int argc, char **argv, int json, const char *usage)
{
	if (argc != 1)
		orch_usage(usage);
	if (strcmp(cmd, "why") == 0)
		return why_path(argv[0], json);
	if (!orch_step_name_valid(argv[0]))
		orch_die(EX_USAGE, "invalid step name '%s'", argv[0]);
	return why_miss(argv[0], json);
}
