/* event.c: the append-only event log, orch-events(5).
 *
 * Each event is one compact JSON line written with one write(2) on an
 * O_APPEND descriptor while holding flock(LOCK_EX), so concurrent writers
 * (the scheduler and local steps' tools) never interleave or tear lines;
 * a write that fails (a full disk) is taken back, under the same lock.
 * Readers skip, and report, a line that does not parse.
 *
 * A step run through a launcher, maybe on another machine, does not touch
 * events.jsonl (flock is not to be trusted over NFS, and only the
 * scheduler's host writes the log): $ORCH_EVENTS_FILE names its own file
 * in the run's logs/, which its tools append to with one write(2) per
 * line and no lock, and which orch-sched merges into the log
 * (orch_events_append) when the step ends. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include "orch.h"

static jv event(const char *job_id, const char *level, const char *type,
              const char *step, jv data)
{
	char ts[32];
	orch_now_iso(ts);
	jv e = jv_object();
	e = jv_object_set(e, jv_string("ts"), jv_string(ts));
	e = jv_object_set(e, jv_string("level"), jv_string(level ? level : "INFO"));
	e = jv_object_set(e, jv_string("job_id"), jv_string(job_id));
	e = jv_object_set(e, jv_string("type"), jv_string(type));
	if (step && *step)
		e = jv_object_set(e, jv_string("step"), jv_string(step));
	if (jv_is_valid(data) && jv_get_kind(data) != JV_KIND_NULL)
		e = jv_object_set(e, jv_string("data"), data);
	else
		jv_free(data);
	return e;
}

static int log_fd = -1;
static char *log_path;

static int open_log(const char *path)
{
	if (log_fd >= 0 && strcmp(path, log_path) == 0)
		return log_fd;
	if (log_fd >= 0)
		close(log_fd);
	free(log_path);
	log_path = orch_xstrdup(path);
	log_fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	return log_fd;
}

/* line starts with a spare byte: a newline, used only when a writer that
 * crashed mid-line left the log without one, so the torn line stays alone
 * and this event stays whole. A write cut short (a full disk, the file-size
 * limit) is followed by one for the rest, which fails with the reason; the
 * log is then cut back to its old size before the lock is let go, so no
 * torn line is left for good. before (if not NULL) is told, under the
 * lock, where the line will begin; if it fails, nothing is written.
 * Returns 0, or -1 with errno. */
static int append_line(int fd, char *line, size_t len, orch_append_fn before, void *ctx)
{
	while (flock(fd, LOCK_EX) < 0)
		if (errno != EINTR)
			return -1;
	struct stat st;
	char last = '\n';
	int rc = fstat(fd, &st);
	if (rc == 0 && st.st_size > 0 && pread(fd, &last, 1, st.st_size - 1) != 1)
		last = '\n';
	if (last == '\n')
		line++, len--;
	if (rc == 0 && before)
		rc = before(st.st_size + (last != '\n'), ctx);
	if (rc == 0 && (rc = orch_write_all(fd, line, len)) < 0) {
		int e = errno;
		while (ftruncate(fd, st.st_size) < 0 && errno == EINTR)
			;
		errno = e;
	}
	int e = errno;
	flock(fd, LOCK_UN);
	errno = e;
	return rc;
}

/* $ORCH_EVENTS_FILE, if it names a file in run_dir/logs/ (a launched
 * step's: so a run started inside a step still logs to its own log). */
static const char *step_events_file(const char *run_dir)
{
	const char *f = getenv("ORCH_EVENTS_FILE");
	size_t n = strlen(run_dir);
	if (!f || strncmp(f, run_dir, n) || strncmp(f + n, "/logs/", 6) || !f[n + 6] ||
	    strchr(f + n + 6, '/'))
		return NULL;
	return f;
}

static int note_at(off_t at, void *ctx)
{
	*(off_t *)ctx = at;
	return 0;
}

int orch_emit_kept(const char *run_dir, const char *level, const char *type,
                   const char *step, jv data, jv *ev, off_t *at)
{
	*ev = jv_invalid();
	*at = -1;
	if (!run_dir) {
		jv_free(data);
		return 0;
	}
	if (!step)
		step = getenv("ORCH_STEP");
	char *job = orch_run_job_id(run_dir);
	jv e = event(job, level, type, step, data);
	free(job);
	size_t n;
	char *text = orch_json_text(jv_copy(e), &n);
	char *line = orch_xmalloc(n + 2);  /* a spare "\n" first: append_line */
	line[0] = '\n';
	memcpy(line + 1, text, n);
	line[n + 1] = '\n';
	free(text);
	const char *own = step_events_file(run_dir);
	char *path = own ? orch_xstrdup(own) : orch_path(run_dir, "events.jsonl");
	int fd = open_log(path), rc = -1;
	off_t where = -1;
	if (fd < 0)
		orch_err_sys("cannot open %s", path);
	else if (own)  /* no lock: only the step's processes, on one host, write it */
		rc = orch_write_all(fd, line + 1, n + 1);
	else
		rc = append_line(fd, line, n + 2, note_at, &where);
	if (fd >= 0 && rc < 0)
		orch_err_sys("cannot append to %s", path);
	free(path);
	free(line);
	if (rc == 0) {
		*ev = e;
		*at = where;
	} else
		jv_free(e);
	return rc;
}

int orch_emit(const char *run_dir, const char *level, const char *type,
              const char *step, jv data)
{
	jv e;
	off_t at;
	int rc = orch_emit_kept(run_dir, level, type, step, data, &e, &at);
	jv_free(e);
	return rc;
}

int orch_events_append(const char *run_dir, const char *lines, size_t len,
                       orch_append_fn before, void *ctx)
{
	char *path = orch_path(run_dir, "events.jsonl");
	int fd = open_log(path), rc = -1;
	free(path);
	if (fd < 0)
		return -1;
	char *buf = orch_xmalloc(len + 1);  /* a spare "\n" first: append_line */
	buf[0] = '\n';
	memcpy(buf + 1, lines, len);
	rc = append_line(fd, buf, len + 1, before, ctx);
	free(buf);
	return rc;
}

struct reading { const char *path; orch_record_fn fn; void *ctx; };

static int event_line(char *line, size_t n, long lineno, void *ctx)
{
	struct reading *r = ctx;
	if (n == 0)
		return 0;
	jv e = orch_parse_line(line, n);
	if (jv_get_kind(e) != JV_KIND_OBJECT) {
		orch_err_at(r->path, lineno, 0, "not an event, skipped");
		jv_free(e);
		return 0;
	}
	return r->fn(e, r->ctx);
}

/* Read an event log line by line; a torn or invalid line is reported
 * with its line number and skipped. fn gets each event (consumed).
 * A missing file is no events. Returns 0, or fn's non-zero value. */
static int events_read(const char *path, orch_record_fn fn, void *ctx)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	struct reading r = {path, fn, ctx};
	int rc = orch_lines(f, event_line, &r);
	fclose(f);
	return rc;
}

static int add_completed(jv e, void *ctx)
{
	jv *set = ctx;
	const char *type = orch_jstr(e, "type"), *step = orch_jstr(e, "step");
	if (type && step && strcmp(type, "step.succeeded") == 0)
		*set = jv_object_set(*set, jv_string(step), jv_true());
	else if (type && strcmp(type, "job.started") == 0) {
		/* a fresh (not resumed) run starts the count again */
		jv data = jv_object_get(jv_copy(e), jv_string("data"));
		if (!orch_jbool(data, "resume", 0)) {
			jv_free(*set);
			*set = jv_object();
		}
		jv_free(data);
	}
	jv_free(e);
	return 0;
}

jv orch_events_completed(const char *path)
{
	jv set = jv_object();
	events_read(path, add_completed, &set);
	return set;
}

/* orch_events_steps: one small fold per event type, as lib/manifest.c.
 * Each step's value: "done" (a step.succeeded), its "fingerprint" and
 * "spec_hash" (when that event carried them), and "open": the data of a
 * step.started that no step.succeeded or step.failed has followed. */
static jv step_entry(jv all, const char *step)
{
	jv s = jv_object_get(jv_copy(all), jv_string(step));
	return jv_get_kind(s) == JV_KIND_OBJECT ? s : (jv_free(s), jv_object());
}

static jv fold_succeeded(jv s, jv data)
{
	s = jv_object_set(s, jv_string("done"), jv_true());
	s = jv_object_set(s, jv_string("fingerprint"), orch_jget(data, "fingerprint"));
	s = jv_object_set(s, jv_string("spec_hash"), orch_jget(data, "spec_hash"));
	return jv_object_delete(s, jv_string("open"));
}

static jv fold_step_event(jv s, const char *type, jv data)
{
	if (strcmp(type, "step.succeeded") == 0)
		return fold_succeeded(s, data);
	if (strcmp(type, "step.started") == 0)
		return jv_object_set(s, jv_string("open"), jv_copy(data));
	if (strcmp(type, "step.failed") == 0)
		return jv_object_delete(s, jv_string("open"));
	return s;
}

static int add_step_state(jv e, void *ctx)
{
	jv *all = ctx;
	const char *type = orch_jstr(e, "type"), *step = orch_jstr(e, "step");
	jv data = orch_jget(e, "data");
	if (jv_get_kind(data) != JV_KIND_OBJECT) {
		jv_free(data);
		data = jv_object();
	}
	if (type && strcmp(type, "job.started") == 0 && !orch_jbool(data, "resume", 0)) {
		jv_free(*all);  /* a fresh run starts again */
		*all = jv_object();
	} else if (type && step && strncmp(type, "step.", 5) == 0) {
		jv s = step_entry(*all, step);
		*all = jv_object_set(*all, jv_string(step), jv_null());  /* s unshared */
		*all = jv_object_set(*all, jv_string(step), fold_step_event(s, type, data));
	}
	jv_free(data);
	jv_free(e);
	return 0;
}

jv orch_events_steps(const char *path)
{
	jv all = jv_object();
	events_read(path, add_step_state, &all);
	return all;
}
