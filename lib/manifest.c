/* manifest.c: fold events.jsonl into manifest.json (orch-run(5)).
 *
 * The manifest is derived, never the source of truth: it can always be
 * rebuilt from the events. The fold keeps the byte offset of the last whole
 * line it read, so each update costs only what was appended since. A fresh
 * job.started (data.resume not true) starts the state again; a resumed one
 * keeps the steps that finished before. steps_total is the plan's count of
 * steps (job.started data.steps): steps holds only those that have begun
 * or been skipped, so pending ones are steps_total less those. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "orch.h"

struct orch_manifest {
	char *run_dir, *events, *out;
	long offset, lineno;
	jv state;
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
	return m;
}

void orch_manifest_free(orch_manifest *m)
{
	if (!m)
		return;
	jv_free(m->state);
	free(m->run_dir);
	free(m->events);
	free(m->out);
	free(m);
}

/* path is a list of keys; returns m with m[path] = v. */
static jv set_in(jv m, const char *a, const char *b, const char *c, jv v)
{
	if (!b)
		return jv_object_set(m, jv_string(a), v);
	jv inner = jv_object_get(jv_copy(m), jv_string(a));
	m = jv_object_set(m, jv_string(a), jv_null());  /* inner unshared: no O(n) copy */
	if (jv_get_kind(inner) != JV_KIND_OBJECT) {
		jv_free(inner);
		inner = jv_object();
	}
	inner = set_in(inner, b, c, NULL, v);
	return jv_object_set(m, jv_string(a), inner);
}

static double num_in(jv m, const char *a, const char *b, const char *c)
{
	jv v = jv_copy(m);
	const char *path[] = {a, b, c};
	for (int i = 0; i < 3 && path[i]; i++) {
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

static jv add_in(jv m, const char *a, const char *b, const char *c, double d)
{
	return set_in(m, a, b, c, jv_number(num_in(m, a, b, c) + d));
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

/* Copy data[key] (if any) into m.a.b.c? as key. */
static jv copy_data(jv m, jv e, const char *key, const char *a, const char *b)
{
	jv v = get_data(e, key);
	if (jv_get_kind(v) == JV_KIND_NULL) {
		jv_free(v);
		return m;
	}
	return set_in(m, a, b, b ? key : NULL, v) ;
}

static jv fold_job(jv m, jv e, const char *type, const char *ts)
{
	if (strcmp(type, "job.started") == 0) {
		jv resume = get_data(e, "resume");
		if (jv_get_kind(resume) != JV_KIND_TRUE) {
			jv job = jv_object_get(jv_copy(m), jv_string("job_id"));
			jv_free(m);
			m = fresh("");
			m = jv_object_set(m, jv_string("job_id"), job);
		}
		jv_free(resume);
		m = set_in(m, "status", NULL, NULL, jv_string("running"));
		m = set_in(m, "started", NULL, NULL, jv_string(ts));
		m = set_in(m, "ended", NULL, NULL, jv_null());
		m = set_in(m, "duration_s", NULL, NULL, jv_null());
		m = set_in(m, "error", NULL, NULL, jv_null());
		m = copy_data(m, e, "project", "project", NULL);
		m = copy_data(m, e, "task", "task", NULL);
		m = copy_data(m, e, "provider", "provider", NULL);
		m = copy_data(m, e, "steps", "steps_total", NULL);
	} else if (strcmp(type, "job.succeeded") == 0 || strcmp(type, "job.failed") == 0 ||
	           strcmp(type, "job.cancelled") == 0) {
		m = set_in(m, "status", NULL, NULL, jv_string(type + 4));
		m = set_in(m, "ended", NULL, NULL, jv_string(ts));
		m = copy_data(m, e, "duration_s", "duration_s", NULL);
		m = copy_data(m, e, "error", "error", NULL);
		m = copy_data(m, e, "artifacts", "artifacts", NULL);
	}
	return m;
}

static jv fold_step(jv m, jv e, const char *type, const char *step, const char *ts)
{
	jv steps = jv_object_get(jv_copy(m), jv_string("steps"));
	m = jv_object_set(m, jv_string("steps"), jv_null());  /* unshared: no O(n) copy */
	jv s = jv_object_get(jv_copy(steps), jv_string(step));
	if (jv_get_kind(s) != JV_KIND_OBJECT) {
		jv_free(s);
		s = jv_object_set(jv_object(), jv_string("status"), jv_string("pending"));
		s = jv_object_set(s, jv_string("attempts"), jv_number(0));
		s = jv_object_set(s, jv_string("provider_calls"), jv_number(0));
	}
	const char *what = type + 5;  /* after "step." */
	if (strcmp(what, "started") == 0) {
		s = set_in(s, "status", NULL, NULL, jv_string("running"));
		s = set_in(s, "started", NULL, NULL, jv_string(ts));
		jv att = get_data(e, "attempt");
		s = set_in(s, "attempts", NULL, NULL,
		           jv_get_kind(att) == JV_KIND_NUMBER ? att :
		           (jv_free(att), jv_number(num_in(s, "attempts", 0, 0) + 1)));
		s = jv_object_delete(s, jv_string("error"));
		s = jv_object_delete(s, jv_string("reason"));  /* of a skip before */
	} else if (strcmp(what, "succeeded") == 0 || strcmp(what, "failed") == 0 ||
	           strcmp(what, "skipped") == 0) {
		jv retry = get_data(e, "will_retry");
		int again = jv_get_kind(retry) == JV_KIND_TRUE;
		jv_free(retry);
		s = set_in(s, "status", NULL, NULL, jv_string(again ? "retrying" : what));
		s = set_in(s, "ended", NULL, NULL, jv_string(ts));
		s = copy_data(s, e, "duration_s", "duration_s", NULL);
		s = copy_data(s, e, "reason", "reason", NULL);
		if (*what == 'f') {
			s = copy_data(s, e, "kind", "error_kind", NULL);
			s = copy_data(s, e, "message", "error", NULL);
		}
		if (*what == 's' && what[1] == 'u')
			s = set_in(s, "artifact", NULL, NULL, jv_string_fmt("artifacts/%s.json", step));
	} else if (strcmp(what, "retrying") == 0)
		s = set_in(s, "status", NULL, NULL, jv_string("retrying"));
	steps = jv_object_set(steps, jv_string(step), s);
	return jv_object_set(m, jv_string("steps"), steps);
}

static jv fold_llm(jv m, jv e, const char *step)
{
	jv ok = get_data(e, "success");
	int failed = jv_get_kind(ok) == JV_KIND_FALSE;
	jv_free(ok);
	m = add_in(m, "llm", "calls", NULL, 1);
	m = add_in(m, "llm", "failures", NULL, failed);
	jv tok = get_data(e, "tokens");
	double p = 0, c = 0;
	if (jv_get_kind(tok) == JV_KIND_NUMBER)
		c = jv_number_value(tok);
	else if (jv_get_kind(tok) == JV_KIND_OBJECT) {
		p = num_in(tok, "prompt", 0, 0) + num_in(tok, "prompt_tokens", 0, 0);
		c = num_in(tok, "completion", 0, 0) + num_in(tok, "completion_tokens", 0, 0);
	}
	jv_free(tok);
	jv d = get_data(e, "duration_s");
	double secs = jv_get_kind(d) == JV_KIND_NUMBER ? jv_number_value(d) : 0;
	jv_free(d);
	m = add_in(m, "llm", "prompt_tokens", NULL, p);
	m = add_in(m, "llm", "completion_tokens", NULL, c);
	m = add_in(m, "llm", "duration_s", NULL, secs);
	if (step)
		m = add_in(m, "steps", step, "provider_calls", 1);
	return m;
}

static jv fold_file(jv m, jv e)
{
	jv wrote = get_data(e, "wrote");
	int w = jv_get_kind(wrote) != JV_KIND_FALSE;
	jv_free(wrote);
	m = add_in(m, "files", w ? "written" : "unchanged", NULL, 1);
	jv path = get_data(e, "path");
	if (jv_get_kind(path) != JV_KIND_STRING) {
		jv_free(path);
		return m;
	}
	jv files = jv_object_get(jv_copy(m), jv_string("files"));
	jv paths = jv_object_get(jv_copy(files), jv_string("paths"));
	int seen = 0;
	jv_array_foreach(paths, i, p) {
		seen |= jv_equal(p, jv_copy(path));
		(void)i;
	}
	if (!seen)
		paths = jv_array_append(paths, jv_copy(path));
	jv_free(path);
	files = jv_object_set(files, jv_string("paths"), paths);
	return jv_object_set(m, jv_string("files"), files);
}

static jv fold(jv m, jv e)
{
	const char *type = orch_jstr(e, "type"), *ts = orch_jstr(e, "ts");
	const char *step = orch_jstr(e, "step");
	if (!type || !ts)
		return m;
	if (strncmp(type, "job.", 4) == 0)
		m = fold_job(m, e, type, ts);
	else if (strncmp(type, "step.", 5) == 0 && step)
		m = fold_step(m, e, type, step, ts);
	else if (strcmp(type, "llm.response") == 0)
		m = fold_llm(m, e, step);
	else if (strcmp(type, "cache.hit") == 0)
		m = add_in(m, "cache", "hits", NULL, 1);
	else if (strcmp(type, "cache.miss") == 0)
		m = add_in(m, "cache", "misses", NULL, 1);
	else if (strcmp(type, "file.written") == 0)
		m = fold_file(m, e);
	return add_in(m, "events", NULL, NULL, 1);
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
		m->offset += n;
		m->lineno++;
		jv e = orch_parse_line(line, n - 1);
		if (jv_get_kind(e) == JV_KIND_OBJECT)
			m->state = fold(m->state, e);  /* e is only read */
		else if (n > 1)
			orch_err_at(m->events, m->lineno, 0, "not an event, skipped");
		jv_free(e);
	}
	free(line);
	fclose(f);
	return 0;
}

jv orch_manifest_get(orch_manifest *m)
{
	jv s = jv_copy(m->state);
	double h = num_in(s, "cache", "hits", 0), x = num_in(s, "cache", "misses", 0);
	s = set_in(s, "cache", "hit_rate", NULL, jv_number(h + x > 0 ? h / (h + x) : 0));
	char ts[32];
	orch_now_iso(ts);
	return jv_object_set(s, jv_string("updated"), jv_string(ts));
}

int orch_manifest_write(orch_manifest *m)
{
	if (orch_manifest_update(m) < 0) {
		orch_err_sys("cannot read %s", m->events);
		return -1;
	}
	if (orch_atomic_json(m->out, orch_manifest_get(m), 0) < 0) {
		orch_err_sys("cannot write %s", m->out);
		return -1;
	}
	return 0;
}
