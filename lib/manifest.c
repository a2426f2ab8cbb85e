/* manifest.c: fold events.jsonl into manifest.json (orch-run(5)).
 *
 * The manifest is derived, never the source of truth: it can always be
 * rebuilt from the events. The fold keeps the byte offset of the last whole
 * line it read, so each update costs only what was appended since. A fresh
 * job.started (data.resume not true) starts the state again; a resumed one
 * keeps the steps that finished before. steps_total is the plan's count of
 * steps (job.started data.steps): steps holds only those that have begun
 * or been skipped, so pending ones are steps_total less those.
 *
 * Scale: 100,000 steps are held as C records (struct mstep: a few numbers,
 * the jv values events gave, and the order its keys were set in, since a
 * jv object keeps keys in the order they were first set and a deleted key
 * set again goes last), not as 100,000 jv objects; the manifest is written
 * as a stream of each step's object, never built whole; files.paths is
 * checked through a map, not a scan. The text is what jv_dump_string of
 * the whole object gives (orch_manifest_get builds it, for orch-events).
 * A writer that folds its own events (orch-sched writes two of every
 * three lines of a fan-out's log) hands each over with the offset its
 * line begins at, and the fold takes it there instead of parsing the line
 * again: the same events in the same order, without the parse. A reader
 * may take manifest.json for the fold (orch_manifest_fresh) when its
 * event count is the log's count of whole lines: it can be of no less.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include "orch.h"

/* A step's keys, in the order fold_step sets them first. */
enum mkey { K_STATUS, K_ATTEMPTS, K_CALLS, K_STARTED, K_ENDED, K_DURATION, K_REASON,
            K_ERROR_KIND, K_ERROR, K_ARTIFACT, NKEYS };
static const char *const key_name[NKEYS] = {
	"status", "attempts", "provider_calls", "started", "ended", "duration_s", "reason",
	"error_kind", "error", "artifact"};
enum mstatus { S_PENDING, S_RUNNING, S_RETRYING, S_SUCCEEDED, S_FAILED, S_SKIPPED };
static const char *const status_name[] = {
	"pending", "running", "retrying", "succeeded", "failed", "skipped"};

struct mstep {
	char *name;
	double attempts, calls;
	jv val[K_ERROR - K_STARTED + 1];  /* started .. error, as the events gave them */
	unsigned char order[NKEYS], n; /* the keys it has, in their object's order */
	unsigned char status;
};

struct orch_manifest {
	char *run_dir, *events, *out;
	long offset, lineno;
	jv state;             /* all but the steps: "steps" is {} in its place */
	struct mstep *step;   /* in the order they first appeared */
	size_t nstep, cap;
	orch_map *byname;     /* step name -> index in step */
	orch_map *paths;      /* files.paths, borrowed from state */
	struct owned { off_t at; jv e; } *own;  /* orch_manifest_own's, by offset */
	size_t own0, nown, owncap;             /* own[own0..nown) not yet folded */
};

static jv fresh(const char *job_id)
{
	jv m = jv_object();
	m = jv_object_set(m, jv_string("job_id"), jv_string(job_id));
	m = jv_object_set(m, jv_string("status"), jv_string("pending"));
	static const char *later[] = {"project", "task", "provider", "started", "ended",
	                              "duration_s", "error", "steps_total"};
	for (size_t i = 0; i < sizeof later / sizeof *later; i++)  /* key order */
		m = jv_object_set(m, jv_string(later[i]), jv_null());
	m = jv_object_set(m, jv_string("steps"), jv_object());
	jv z = jv_object();
	z = jv_object_set(z, jv_string("calls"), jv_number(0));
	z = jv_object_set(z, jv_string("failures"), jv_number(0));
	z = jv_object_set(z, jv_string("prompt_tokens"), jv_number(0));
	z = jv_object_set(z, jv_string("completion_tokens"), jv_number(0));
	z = jv_object_set(z, jv_string("duration_s"), jv_number(0));
	m = jv_object_set(m, jv_string("llm"), z);
	jv c = jv_object_set(jv_object(), jv_string("hits"), jv_number(0));
	c = jv_object_set(c, jv_string("misses"), jv_number(0));
	m = jv_object_set(m, jv_string("cache"), c);
	jv f = jv_object_set(jv_object(), jv_string("written"), jv_number(0));
	f = jv_object_set(f, jv_string("unchanged"), jv_number(0));
	f = jv_object_set(f, jv_string("paths"), jv_array());
	m = jv_object_set(m, jv_string("files"), f);
	return m;
}

orch_manifest *orch_manifest_new(const char *run_dir)
{
	orch_manifest *m = orch_xmalloc(sizeof *m);
	m->run_dir = orch_xstrdup(run_dir);
	m->events = orch_path(run_dir, "events.jsonl");
	m->out = orch_path(run_dir, "manifest.json");
	m->offset = m->lineno = 0;
	char *job = orch_run_job_id(run_dir);
	m->state = fresh(job);
	free(job);
	m->step = NULL;
	m->nstep = m->cap = 0;
	m->byname = orch_map_new(64);
	m->paths = orch_map_new(16);
	m->own = NULL;
	m->own0 = m->nown = m->owncap = 0;
	return m;
}

/* No steps, no paths seen: with a fresh state, or at the end. */
static void forget_steps(orch_manifest *m)
{
	for (size_t i = 0; i < m->nstep; i++) {
		free(m->step[i].name);
		for (int k = K_STARTED; k <= K_ERROR; k++)
			jv_free(m->step[i].val[k - K_STARTED]);
	}
	m->nstep = 0;
	orch_map_free(m->byname);
	orch_map_free(m->paths);
	m->byname = orch_map_new(64);
	m->paths = orch_map_new(16);
}

void orch_manifest_free(orch_manifest *m)
{
	if (!m)
		return;
	forget_steps(m);
	for (size_t i = m->own0; i < m->nown; i++)
		jv_free(m->own[i].e);
	free(m->own);
	orch_map_free(m->byname);
	orch_map_free(m->paths);
	free(m->step);
	jv_free(m->state);
	free(m->run_dir);
	free(m->events);
	free(m->out);
	free(m);
}

/* Returns m with m[a] = v, or m[a][b] = v (b not NULL). */
static jv set_in(jv m, const char *a, const char *b, jv v)
{
	if (!b)
		return jv_object_set(m, jv_string(a), v);
	jv inner = jv_object_get(jv_copy(m), jv_string(a));
	m = jv_object_set(m, jv_string(a), jv_null());  /* inner unshared: no O(n) copy */
	if (jv_get_kind(inner) != JV_KIND_OBJECT) {
		jv_free(inner);
		inner = jv_object();
	}
	inner = jv_object_set(inner, jv_string(b), v);
	return jv_object_set(m, jv_string(a), inner);
}

static double num_in(jv m, const char *a, const char *b)
{
	jv v = jv_copy(m);
	const char *path[] = {a, b};
	for (int i = 0; i < 2 && path[i]; i++) {
		if (jv_get_kind(v) != JV_KIND_OBJECT) {
			jv_free(v);
			return 0;
		}
		v = jv_object_get(v, jv_string(path[i]));
	}
	double d = jv_get_kind(v) == JV_KIND_NUMBER ? jv_number_value(v) : 0;
	jv_free(v);
	return d;
}

static jv add_in(jv m, const char *a, const char *b, double d)
{
	return set_in(m, a, b, jv_number(num_in(m, a, b) + d));
}

static jv get_data(jv e, const char *key)
{
	jv d = jv_object_get(jv_copy(e), jv_string("data"));
	if (jv_get_kind(d) != JV_KIND_OBJECT) {
		jv_free(d);
		return jv_null();
	}
	jv v = jv_object_get(d, jv_string(key));
	return jv_is_valid(v) ? v : (jv_free(v), jv_null());
}

/* Copy data[key] (if any) into m[a]. */
static jv copy_data(jv m, jv e, const char *key, const char *a)
{
	jv v = get_data(e, key);
	if (jv_get_kind(v) == JV_KIND_NULL) {
		jv_free(v);
		return m;
	}
	return set_in(m, a, NULL, v);
}

/* Returns 1 when the job starts afresh: no steps, no files. */
static int fold_job(orch_manifest *mf, jv e, const char *type, const char *ts)
{
	jv m = mf->state;
	int afresh = 0;
	if (strcmp(type, "job.started") == 0) {
		jv resume = get_data(e, "resume");
		if ((afresh = jv_get_kind(resume) != JV_KIND_TRUE)) {
			jv job = jv_object_get(jv_copy(m), jv_string("job_id"));
			jv_free(m);
			m = fresh("");
			m = jv_object_set(m, jv_string("job_id"), job);
		}
		jv_free(resume);
		m = set_in(m, "status", NULL, jv_string("running"));
		m = set_in(m, "started", NULL, jv_string(ts));
		m = set_in(m, "ended", NULL, jv_null());
		m = set_in(m, "duration_s", NULL, jv_null());
		m = set_in(m, "error", NULL, jv_null());
		m = copy_data(m, e, "project", "project");
		m = copy_data(m, e, "task", "task");
		m = copy_data(m, e, "provider", "provider");
		m = copy_data(m, e, "steps", "steps_total");
	} else if (strcmp(type, "job.succeeded") == 0 || strcmp(type, "job.failed") == 0 ||
	           strcmp(type, "job.cancelled") == 0) {
		m = set_in(m, "status", NULL, jv_string(type + 4));
		m = set_in(m, "ended", NULL, jv_string(ts));
		m = copy_data(m, e, "duration_s", "duration_s");
		m = copy_data(m, e, "error", "error");
		m = copy_data(m, e, "artifacts", "artifacts");
	}
	mf->state = m;
	return afresh;
}

/* ---- the steps, as C records ---- */

static int has(const struct mstep *s, enum mkey k)
{
	return memchr(s->order, k, s->n) != NULL;
}

/* Key k set: last in the order unless it was there. */
static void put(struct mstep *s, enum mkey k)
{
	if (!has(s, k))
		s->order[s->n++] = (unsigned char)k;
}

static void put_jv(struct mstep *s, enum mkey k, jv v)
{
	put(s, k);
	jv_free(s->val[k - K_STARTED]);
	s->val[k - K_STARTED] = v;
}

/* Key k deleted: the keys after it move up. */
static void drop(struct mstep *s, enum mkey k)
{
	unsigned char *at = memchr(s->order, k, s->n);
	if (!at)
		return;
	memmove(at, at + 1, (size_t)(s->order + s->n - at - 1));
	s->n--;
	if (k >= K_STARTED && k <= K_ERROR) {
		jv_free(s->val[k - K_STARTED]);
		s->val[k - K_STARTED] = jv_invalid();
	}
}

/* The step named, new (at the end) if it was not there: with status
 * pending, no attempts and no calls if with_defaults, else no keys. */
static struct mstep *step_named(orch_manifest *m, const char *name, int with_defaults)
{
	long i = orch_map_get(m->byname, name);
	if (i >= 0)
		return &m->step[i];
	if (m->nstep == m->cap)
		m->step = orch_xrealloc(m->step, (m->cap = m->cap ? 2 * m->cap : 64) * sizeof *m->step);
	struct mstep *s = &m->step[m->nstep];
	memset(s, 0, sizeof *s);
	s->name = orch_xstrdup(name);
	for (int k = K_STARTED; k <= K_ERROR; k++)
		s->val[k - K_STARTED] = jv_invalid();
	orch_map_put(m->byname, s->name, (long)m->nstep++);
	if (with_defaults) {
		put(s, K_STATUS);  /* s->status is S_PENDING */
		put(s, K_ATTEMPTS);
		put(s, K_CALLS);
	}
	return s;
}

/* Copy data[key] (if any) into s's key k. */
static void copy_step_data(struct mstep *s, jv e, const char *key, enum mkey k)
{
	jv v = get_data(e, key);
	if (jv_get_kind(v) == JV_KIND_NULL)
		jv_free(v);
	else
		put_jv(s, k, v);
}

static void fold_started(struct mstep *s, jv e, const char *ts)
{
	s->status = S_RUNNING;
	put(s, K_STATUS);
	put_jv(s, K_STARTED, jv_string(ts));
	jv att = get_data(e, "attempt");
	s->attempts = jv_get_kind(att) == JV_KIND_NUMBER ? jv_number_value(att) :
	              (has(s, K_ATTEMPTS) ? s->attempts : 0) + 1;
	jv_free(att);
	put(s, K_ATTEMPTS);
	drop(s, K_ERROR);
	drop(s, K_REASON);  /* of a skip before */
}

/* step.succeeded, step.failed, step.skipped: what is after "step.". */
static void fold_ended(struct mstep *s, jv e, const char *what, const char *ts)
{
	jv retry = get_data(e, "will_retry");
	int again = jv_get_kind(retry) == JV_KIND_TRUE;
	jv_free(retry);
	s->status = again ? S_RETRYING : *what == 'f' ? S_FAILED :
	            what[1] == 'u' ? S_SUCCEEDED : S_SKIPPED;
	put(s, K_STATUS);
	put_jv(s, K_ENDED, jv_string(ts));
	copy_step_data(s, e, "duration_s", K_DURATION);
	copy_step_data(s, e, "reason", K_REASON);
	if (*what == 'f') {
		copy_step_data(s, e, "kind", K_ERROR_KIND);
		copy_step_data(s, e, "message", K_ERROR);
	}
	if (*what == 's' && what[1] == 'u')
		put(s, K_ARTIFACT);  /* "artifacts/<step>.json" */
}

static void fold_step(orch_manifest *m, jv e, const char *type, const char *step, const char *ts)
{
	struct mstep *s = step_named(m, step, 1);
	const char *what = type + 5;  /* after "step." */
	if (strcmp(what, "started") == 0)
		fold_started(s, e, ts);
	else if (strcmp(what, "succeeded") == 0 || strcmp(what, "failed") == 0 ||
	         strcmp(what, "skipped") == 0)
		fold_ended(s, e, what, ts);
	else if (strcmp(what, "retrying") == 0) {
		s->status = S_RETRYING;
		put(s, K_STATUS);
	}
}

/* A step's object, its keys in their order. */
static jv step_jv(const struct mstep *s)
{
	jv o = jv_object();
	for (int i = 0; i < s->n; i++) {
		enum mkey k = s->order[i];
		jv v = k == K_STATUS ? jv_string(status_name[s->status]) :
		       k == K_ATTEMPTS ? jv_number(s->attempts) :
		       k == K_CALLS ? jv_number(s->calls) :
		       k == K_ARTIFACT ? jv_string_fmt("artifacts/%s.json", s->name) :
		       jv_copy(s->val[k - K_STARTED]);
		o = jv_object_set(o, jv_string(key_name[k]), v);
	}
	return o;
}

/* ---- the rest of the state, as jv ---- */

static jv fold_llm(orch_manifest *mf, jv e, const char *step)
{
	jv m = mf->state;
	jv ok = get_data(e, "success");
	int failed = jv_get_kind(ok) == JV_KIND_FALSE;
	jv_free(ok);
	m = add_in(m, "llm", "calls", 1);
	m = add_in(m, "llm", "failures", failed);
	jv tok = get_data(e, "tokens");
	double p = 0, c = 0;
	if (jv_get_kind(tok) == JV_KIND_NUMBER)
		c = jv_number_value(tok);
	else if (jv_get_kind(tok) == JV_KIND_OBJECT) {
		p = num_in(tok, "prompt", 0) + num_in(tok, "prompt_tokens", 0);
		c = num_in(tok, "completion", 0) + num_in(tok, "completion_tokens", 0);
	}
	jv_free(tok);
	jv d = get_data(e, "duration_s");
	double secs = jv_get_kind(d) == JV_KIND_NUMBER ? jv_number_value(d) : 0;
	jv_free(d);
	m = add_in(m, "llm", "prompt_tokens", p);
	m = add_in(m, "llm", "completion_tokens", c);
	m = add_in(m, "llm", "duration_s", secs);
	if (step) {
		struct mstep *s = step_named(mf, step, 0);
		s->calls = (has(s, K_CALLS) ? s->calls : 0) + 1;
		put(s, K_CALLS);
	}
	return m;
}

/* Is path in paths already? Through the map, unless a NUL in it hides
 * what follows from the map: then by a scan. */
static int path_seen(orch_manifest *mf, jv paths, jv path)
{
	const char *p = jv_string_value(path);
	if (!memchr(p, 0, (size_t)jv_string_length_bytes(jv_copy(path))))
		return orch_map_get(mf->paths, p) >= 0;
	int seen = 0;
	jv_array_foreach(paths, i, x) {
		seen |= jv_equal(x, jv_copy(path));
		(void)i;
	}
	return seen;
}

static jv fold_file(orch_manifest *mf, jv e)
{
	jv m = mf->state;
	jv wrote = get_data(e, "wrote");
	int w = jv_get_kind(wrote) != JV_KIND_FALSE;
	jv_free(wrote);
	m = add_in(m, "files", w ? "written" : "unchanged", 1);
	jv path = get_data(e, "path");
	if (jv_get_kind(path) != JV_KIND_STRING) {
		jv_free(path);
		return m;
	}
	jv files = jv_object_get(jv_copy(m), jv_string("files"));
	m = jv_object_set(m, jv_string("files"), jv_null());  /* unshared: no O(n) copy */
	jv paths = jv_object_get(jv_copy(files), jv_string("paths"));
	files = jv_object_set(files, jv_string("paths"), jv_null());
	if (!path_seen(mf, paths, path)) {
		/* the map borrows the text of the copy that paths keeps */
		orch_map_put(mf->paths, jv_string_value(path), 0);
		paths = jv_array_append(paths, jv_copy(path));
	}
	jv_free(path);
	files = jv_object_set(files, jv_string("paths"), paths);
	return jv_object_set(m, jv_string("files"), files);
}

static void fold(orch_manifest *m, jv e)
{
	const char *type = orch_jstr(e, "type"), *ts = orch_jstr(e, "ts");
	const char *step = orch_jstr(e, "step");
	if (!type || !ts)
		return;
	if (strncmp(type, "job.", 4) == 0) {
		if (fold_job(m, e, type, ts))
			forget_steps(m);
	} else if (strncmp(type, "step.", 5) == 0 && step)
		fold_step(m, e, type, step, ts);
	else if (strcmp(type, "llm.response") == 0)
		m->state = fold_llm(m, e, step);
	else if (strcmp(type, "cache.hit") == 0)
		m->state = add_in(m->state, "cache", "hits", 1);
	else if (strcmp(type, "cache.miss") == 0)
		m->state = add_in(m->state, "cache", "misses", 1);
	else if (strcmp(type, "file.written") == 0)
		m->state = fold_file(m, e);
	m->state = add_in(m->state, "events", NULL, 1);
}

/* Events held for the fold at most: more are folded at once, so 100,000
 * step.skipped of a resume do not wait in memory for the next write. */
enum { OWN_MAX = 512 };

void orch_manifest_own(orch_manifest *m, off_t at, jv e)
{
	if (m->nown - m->own0 >= OWN_MAX && orch_manifest_update(m) < 0)
		orch_err_sys("cannot read %s", m->events);
	if (m->own0 == m->nown)
		m->own0 = m->nown = 0;
	if (m->nown == m->owncap) {
		m->owncap = m->owncap ? 2 * m->owncap : 64;
		m->own = orch_xrealloc(m->own, m->owncap * sizeof *m->own);
	}
	m->own[m->nown++] = (struct owned){at, e};
}

/* The event the writer handed over for the line at offset at, if it did
 * (those before at are lines this fold never reached whole: dropped), else
 * jv_invalid(). */
static jv owned(orch_manifest *m, off_t at)
{
	while (m->own0 < m->nown && m->own[m->own0].at < at)
		jv_free(m->own[m->own0++].e);
	if (m->own0 < m->nown && m->own[m->own0].at == at)
		return m->own[m->own0++].e;
	return jv_invalid();
}

int orch_manifest_update(orch_manifest *m)
{
	FILE *f = fopen(m->events, "r");
	if (!f)
		return errno == ENOENT ? 0 : -1;
	if (fseek(f, m->offset, SEEK_SET) < 0) {
		fclose(f);
		return -1;
	}
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	while ((n = getline(&line, &cap, f)) > 0) {
		if (line[n - 1] != '\n')
			break;  /* a line still being written: next time */
		jv e = owned(m, m->offset);
		m->offset += n;
		m->lineno++;
		if (!jv_is_valid(e))
			e = orch_parse_line(line, n - 1);
		if (jv_get_kind(e) == JV_KIND_OBJECT)
			fold(m, e);  /* e is only read */
		else if (n > 1)
			orch_err_at(m->events, m->lineno, 0, "not an event, skipped");
		jv_free(e);
	}
	free(line);
	fclose(f);
	return 0;
}

/* The state with what is computed on the way out ("steps" still {}). */
static jv outer(orch_manifest *m)
{
	jv s = jv_copy(m->state);
	double h = num_in(s, "cache", "hits"), x = num_in(s, "cache", "misses");
	s = set_in(s, "cache", "hit_rate", jv_number(h + x > 0 ? h / (h + x) : 0));
	char ts[32];
	orch_now_iso(ts);
	return jv_object_set(s, jv_string("updated"), jv_string(ts));
}

/* Lines that end in a newline in path; -1 when it cannot be read. */
static long whole_lines(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return errno == ENOENT ? 0 : -1;
	char buf[65536];
	long n = 0;
	size_t k;
	while ((k = fread(buf, 1, sizeof buf, f)) > 0)
		for (const char *p = buf; (p = memchr(p, '\n', (size_t)(buf + k - p))); p++)
			n++;
	int bad = ferror(f);
	fclose(f);
	return bad ? -1 : n;
}

jv orch_manifest_fresh(const char *run_dir)
{
	char *mpath = orch_path(run_dir, "manifest.json"), *epath = orch_path(run_dir, "events.jsonl");
	size_t len;
	char *text = orch_slurp(mpath, &len);
	jv m = text && len < INT32_MAX ? jv_parse_sized(text, (int)len) : jv_invalid();
	free(text);
	double folded;
	/* It folded a prefix of the log, events <= its lines <= the log's
	 * lines now: equal only when that prefix is the whole log. */
	if (jv_get_kind(m) != JV_KIND_OBJECT || !orch_jnum(m, "events", &folded) ||
	    folded != (double)whole_lines(epath)) {
		jv_free(m);
		m = jv_invalid();
	}
	free(mpath);
	free(epath);
	return m;
}

jv orch_manifest_get(orch_manifest *m)
{
	jv steps = jv_object();
	for (size_t i = 0; i < m->nstep; i++)
		steps = jv_object_set(steps, jv_string(m->step[i].name), step_jv(&m->step[i]));
	return jv_object_set(outer(m), jv_string("steps"), steps);
}

/* The manifest's text is 20 MB at 100,000 steps: it grows in pages of
 * its own, by mremap, never copied into a buffer twice its size. One JSON
 * writer (w) writes it, the bytes jv_dumpf would, with no FILE and, for a
 * step, no object built; its buffer is moved on every 64 KB. */
struct text { char *p; size_t n, cap; orch_jw w; int bad; };

/* w's bytes so far onto the end of t's text */
static void text_flush(struct text *t)
{
	size_t len = t->w.b.n;
	t->w.b.n = 0;
	if (t->bad || len == 0)
		return;
	if (t->n + len > t->cap) {
		size_t cap = (2 * (t->n + len) + 0xfffff) & ~(size_t)0xfffff;
		void *p = t->p ? mremap(t->p, t->cap, cap, MREMAP_MAYMOVE) :
		          mmap(NULL, cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED) {
			t->bad = 1;
			return;
		}
		t->p = p;
		t->cap = cap;
	}
	memcpy(t->p + t->n, t->w.b.p, len);
	t->n += len;
}

/* Step s's "name":{...}, as step_jv would give its object. */
static void put_step(orch_jw *w, const struct mstep *s)
{
	orch_jw_key(w, s->name);
	orch_jw_open(w, '{');
	for (int i = 0; i < s->n; i++) {
		enum mkey k = s->order[i];
		orch_jw_key(w, key_name[k]);
		if (k == K_STATUS)
			orch_jw_str(w, status_name[s->status]);
		else if (k == K_ATTEMPTS || k == K_CALLS)
			orch_jw_jv(w, jv_number(k == K_ATTEMPTS ? s->attempts : s->calls));
		else if (k == K_ARTIFACT) {
			char *a = orch_fmt("artifacts/%s.json", s->name);
			orch_jw_str(w, a);
			free(a);
		} else
			orch_jw_jv(w, jv_copy(s->val[k - K_STARTED]));
	}
	orch_jw_close(w);
}

/* Into t: the manifest's text, as jv_dump_string(orch_manifest_get(m), 0)
 * and a newline, without the whole object, one step at a time. 0, or -1. */
static int manifest_text(orch_manifest *m, struct text *t)
{
	orch_jw *w = &t->w;
	jv top = outer(m);
	orch_jw_open(w, '{');
	jv_object_foreach(top, k, v) {
		orch_jw_key(w, jv_string_value(k));
		if (strcmp(jv_string_value(k), "steps")) {
			orch_jw_jv(w, v);
		} else {
			jv_free(v);
			orch_jw_open(w, '{');
			for (size_t i = 0; i < m->nstep; i++) {
				put_step(w, &m->step[i]);
				if (w->b.n >= 65536)
					text_flush(t);
			}
			orch_jw_close(w);
		}
		jv_free(k);
	}
	orch_jw_close(w);
	orch_buf_add(&w->b, "\n", 1);
	text_flush(t);
	jv_free(top);
	orch_jw_free(w);
	return t->bad ? -1 : 0;
}

int orch_manifest_write(orch_manifest *m)
{
	if (orch_manifest_update(m) < 0) {
		orch_err_sys("cannot read %s", m->events);
		return -1;
	}
	struct text t = {0};
	int rc = manifest_text(m, &t) < 0 ? -1 : orch_atomic_write(m->out, t.p, t.n, 0644, 0);
	if (t.p)
		munmap(t.p, t.cap);
	if (rc < 0) {
		orch_err_sys("cannot write %s", m->out);
		return -1;
	}
	return 0;
}
