/* merge.c: a launched step's events, merged into the run's log.
 *
 * Tools in a step run through a launcher, maybe on another machine, do
 * not write events.jsonl (CONTRACT §10; flock over NFS is not to be
 * trusted): remote_exec (launch.c) gives them ORCH_EVENTS_FILE =
 * RUN/logs/<step>.<attempt>.events.jsonl, and orch_emit appends there.
 * When the attempt ends, however it ends, its whole lines are appended to
 * events.jsonl, in order, as one write under the log's lock, before the
 * step's own step.succeeded or step.failed; a last line without its
 * newline (a node killed mid-write) or a line that is not a JSON object is
 * dropped, and a WARN event (events.dropped) says so.
 *
 * Exactly once, with orch-sched killed at any instant: with the log's
 * lock held, the file is renamed to <name>.at<OFFSET>, OFFSET being where
 * its lines will begin in the log; then they are appended; then the file
 * is removed. At start (merge_left, the lock held, no step running) a
 * plain file was not merged: it is, whole. A .at<OFFSET> file was begun:
 * the lines already at OFFSET in the log (all, or a prefix if kill -9 cut
 * the write short) are not appended again; the rest are first written
 * back to the plain name (atomically), the .at file removed, and merged.
 * Each state is a file name, so a crash in any of these steps leaves one
 * that the next start finishes.
 *
 * On a shared file system, the file is read to its end (not to a cached
 * size), and, when the status file said how long it was, read again until
 * it is that long, for at most --status-wait seconds.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "orch.h"
#include "sched.h"

static const char suffix[] = ".events.jsonl";

char *events_file_name(const struct step *s)
{
	return orch_fmt("%s.%d%s", s->name, s->attempt, suffix);
}

/* logs/name read to its end, into *len bytes (NUL after them); NULL if it
 * is not there. */
static char *read_all(const char *name, size_t *len)
{
	int fd = openat(run.log_fd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	size_t cap = 65536, n = 0;
	char *buf = orch_xmalloc(cap + 1);
	ssize_t r;
	while ((r = read(fd, buf + n, cap - n)) != 0) {
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			break;
		if ((n += (size_t)r) == cap)
			buf = orch_xrealloc(buf, (cap *= 2) + 1);
	}
	close(fd);
	buf[n] = 0;
	*len = n;
	return buf;
}

/* As read_all, read again until it is want bytes long (want >= 0: what
 * the far side's status file said) or --status-wait passed. */
static char *read_wanted(const char *name, long want, size_t *len)
{
	struct timespec ts = {0, 20 * 1000000};
	double until = now() + opt.status_wait;
	char *text = read_all(name, len);
	while (want >= 0 && (!text || *len < (size_t)want) && now() < until) {
		nanosleep(&ts, NULL);
		free(text);
		text = read_all(name, len);
	}
	return text;
}

struct dropped { int torn, bad; };

/* text's lines that are whole JSON objects, moved to its start: their
 * length. The others are counted in *d. */
static size_t whole_lines(char *text, size_t len, struct dropped *d)
{
	size_t out = 0;
	for (size_t at = 0; at < len;) {
		char *nl = memchr(text + at, '\n', len - at);
		if (!nl) {
			d->torn++;
			break;
		}
		size_t n = (size_t)(nl - (text + at)) + 1;
		jv v = n > 1 ? jv_parse_sized(text + at, (int)(n - 1)) : jv_invalid();
		if (jv_get_kind(v) == JV_KIND_OBJECT) {
			memmove(text + out, text + at, n);
			out += n;
		} else
			d->bad += n > 1;
		jv_free(v);
		at += n;
	}
	return out;
}

/* "a[k].3.events.jsonl..." -> "a[k]": the step the file is of. */
static char *step_of(const char *name)
{
	const char *end = strstr(name, suffix);
	while (end && end > name && end[-1] != '.')
		end--;
	return orch_fmt("%.*s", end && end > name ? (int)(end - name - 1) : 0, name);
}

static void say_dropped(const char *name, struct dropped d)
{
	if (!d.torn && !d.bad)
		return;
	char *step = step_of(name);
	jv data = jv_object_set(jv_object(), jv_string("file"), jv_string_fmt("logs/%s", name));
	data = jv_object_set(data, jv_string("torn"), jv_number(d.torn));
	data = jv_object_set(data, jv_string("invalid"), jv_number(d.bad));
	emit("WARN", "events.dropped", step, data);
	free(step);
}

struct merging { const char *name; char *at_name; };

/* With the log's lock held, before the lines go in: the file is renamed
 * to say where they begin. */
static int mark_offset(off_t at, void *ctx)
{
	struct merging *m = ctx;
	m->at_name = orch_fmt("%s.at%lld", m->name, (long long)at);
	return renameat(run.log_fd, m->name, run.log_fd, m->at_name);
}

/* logs/name into the log, and gone (want: its length, or -1). A file that
 * cannot be merged now stays, for the next start. */
static void merge_file(const char *name, long want)
{
	size_t len;
	struct dropped d = {0, 0};
	char *text = read_wanted(name, want, &len);
	if (!text)
		return;
	size_t n = whole_lines(text, len, &d);
	struct merging m = {name, NULL};
	if (n == 0)
		unlinkat(run.log_fd, name, 0);
	else if (orch_events_append(run.dir, text, n, mark_offset, &m) < 0)
		orch_err_sys("cannot merge logs/%s into events.jsonl (merged at the next start)", name);
	else
		unlinkat(run.log_fd, m.at_name, 0);
	say_dropped(name, d);
	free(m.at_name);
	free(text);
}

/* A launched attempt has ended: its events into the log. */
void merge_step_events(struct step *s)
{
	char *name = events_file_name(s);
	merge_file(name, s->events_bytes);
	free(name);
}

/* How much of text (whole lines, n bytes) is at offset at in the log. */
static size_t in_log_at(const char *text, size_t n, off_t at)
{
	char *path = orch_path(run.dir, "events.jsonl");
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	free(path);
	char *log = orch_xmalloc(n + 1);
	ssize_t got = fd < 0 ? 0 : pread(fd, log, n, at);
	size_t same = 0;
	for (size_t k = 0; got > 0 && k < (size_t)got && log[k] == text[k]; k++)
		if (text[k] == '\n')
			same = k + 1;
	if (fd >= 0)
		close(fd);
	free(log);
	return same;
}

/* A merge begun by a killed scheduler (<name>.at<OFFSET>): what it did
 * not append goes back to <name>, to be merged. */
static void unfinished(const char *at_name)
{
	const char *p = strstr(at_name, ".events.jsonl.at") + strlen(".events.jsonl.at");
	char *name = orch_fmt("%.*s", (int)(p - at_name - 3), at_name);
	size_t len, n;
	struct dropped d = {0, 0};
	char *text = read_all(at_name, &len);
	if (text) {
		n = whole_lines(text, len, &d);
		size_t done = in_log_at(text, n, (off_t)strtoll(p, NULL, 10));
		if (done == n || orch_atomic_write_at(run.log_fd, name, text + done, n - done, 0600, 0) == 0)
			unlinkat(run.log_fd, at_name, 0);
		else
			orch_err_sys("cannot write logs/%s", name);
	}
	free(text);
	free(name);
}

/* Is name a step's event file (.at: 1, while merging), or not (-1)? */
static int kind_of(const char *name)
{
	const char *p = strstr(name, ".events.jsonl");
	if (name[0] == '.' || !p)
		return -1;
	p += strlen(suffix);
	if (!*p)
		return 0;
	return strncmp(p, ".at", 3) == 0 && p[3] && strspn(p + 3, "0123456789") == strlen(p + 3) ? 1 : -1;
}

/* At start (lock held, no step running): the event files that earlier
 * schedulers did not merge, or did not finish merging, are merged, in
 * the order of their names. */
void merge_left(void)
{
	for (int pass = 1; pass >= 0; pass--) {
		struct dirent **de;
		int n = scandirat(run.log_fd, ".", &de, NULL, alphasort);
		for (int k = 0; k < n; k++) {
			if (kind_of(de[k]->d_name) == pass)
				pass ? unfinished(de[k]->d_name) : merge_file(de[k]->d_name, -1);
			free(de[k]);
		}
		if (n >= 0)
			free(de);
	}
}
