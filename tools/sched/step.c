/* step.c: a step's life, from waiting to done.
 *
 * WAIT until its needs are done, READY in the queue, RUN an attempt,
 * BACKOFF waiting to retry (keeping its job and pool slot), and at the end
 * OK (succeeded), FAIL, COND (when: false), UPSKIP (a need failed), DONE
 * (succeeded in an earlier run: --resume) or STOPPED (interrupted: not a
 * failure, resume runs it). Every change is an event (orch-events(5)), and
 * dirties the manifest. A result stays in memory only while dependants
 * have yet to take it into their input records. Assumes the plan is checked
 * and the run folder open.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>
#include <sodium.h>
#include "orch.h"
#include "sched.h"

struct tally tally;

/* The results of s's needs, as .steps of its input record, if it wants
 * them; each need's result is let go once its last dependant took it. */
static jv need_results(struct step *s, int want)
{
	jv steps = jv_object();
	for (size_t k = 0; k < s->ndep; k++) {
		struct step *d = &plan.step[s->dep[k]];
		if (want)  /* group.c: an instance's result goes into its group's array */
			steps = group_put(steps, d, d->st == ST_OK ||
			                  d->st == ST_DONE ? jv_copy(d->result) : jv_null());
		if (--d->users == 0) {
			jv_free(d->result);
			d->result = jv_invalid();
		}
	}
	return steps;
}

/* The input record: taken once per step, before its first attempt. */
jv input_record(struct step *s)
{
	jv steps = need_results(s, 1);
	jv in = jv_object();
	in = jv_object_set(in, jv_string("job_id"), jv_string(run.job_id));
	in = jv_object_set(in, jv_string("step"), jv_string(s->name));
	in = jv_object_set(in, jv_string("attempt"), jv_number(1));
	in = jv_object_set(in, jv_string("run_dir"), jv_string(run.dir));
	jv task = jv_is_valid(plan.job) ? jv_object_get(jv_copy(plan.job), jv_string("task")) : jv_null();
	in = jv_object_set(in, jv_string("task"), jv_is_valid(task) ? task : jv_null());
	jv inputs = jv_is_valid(plan.job) ? jv_object_get(jv_copy(plan.job), jv_string("inputs")) : jv_null();
	in = jv_object_set(in, jv_string("inputs"),
	                   jv_get_kind(inputs) == JV_KIND_OBJECT ? inputs : (jv_free(inputs), jv_object()));
	in = jv_object_set(in, jv_string("spec"), jv_copy(s->spec));
	static const char *const spend[] = {"budget", "prices"};  /* for orch-call(1) */
	for (size_t k = 0; k < 2; k++) {
		jv v = orch_jget(plan.job, spend[k]);
		in = jv_get_kind(v) == JV_KIND_NULL ? (jv_free(v), in) : jv_object_set(in, jv_string(spend[k]), v);
	}
	in = group_input(s, in);  /* a fan-out instance: .item, .key */
	jv_free(s->item);
	s->item = jv_invalid();
	return jv_object_set(in, jv_string("steps"), steps);
}

static void to_release(int i)
{
	typeof(queue.told) *t = &queue.told;
	if (t->n == t->cap)
		t->a = orch_xrealloc(t->a, (t->cap = t->cap ? 2 * t->cap : 64) * sizeof *t->a);
	t->a[t->n++] = i;
}

/* --resume: i succeeded before, as it is now: skip it, keep its result. */
static void skip_completed(int i)
{
	struct step *s = &plan.step[i];
	s->st = ST_DONE;
	tally.ndone++;
	tally.nstored++;
	jv_free(need_results(s, 0));
	emit("INFO", "step.skipped", s->name,
	     jv_object_set(jv_object(), jv_string("reason"), jv_string("completed")));
	run.manifest_dirty = 1;
	to_release(i);
}

/* i's needs are done: it is skipped (--resume), or queued. */
void ready_step(int i)
{
	struct step *s = &plan.step[i];
	if (s->st != ST_WAIT)
		return;
	fingerprint(s);
	if (opt.resume && still_done(s)) {
		skip_completed(i);
		return;
	}
	s->st = ST_READY;
	heap_push(&queue.ready, i);
}

/* Tell the dependants of the steps done: those whose needs are all done
 * become ready, or are skipped in turn (no recursion: plans are deep). */
void settle(void)
{
	while (queue.told.n > 0) {
		struct step *s = &plan.step[queue.told.a[--queue.told.n]];
		for (size_t k = 0; k < s->nrdep; k++) {
			size_t d = s->rdep[k];
			if (--plan.step[d].pending == 0)
				ready_step((int)d);
		}
		if (s->users == 0) {
			jv_free(s->result);
			s->result = jv_invalid();
		}
	}
}

/* i is done and dependants may take its result. */
void release(int i)
{
	to_release(i);
	settle();
}

/* Every step that needs i, directly or not, will not run. */
static void skip_dependants(int i)
{
	size_t *stack = orch_xmalloc(plan.n * sizeof *stack), n = 0;
	stack[n++] = (size_t)i;
	while (n > 0) {
		struct step *s = &plan.step[stack[--n]];
		for (size_t k = 0; k < s->nrdep; k++) {
			struct step *d = &plan.step[s->rdep[k]];
			if (d->st != ST_WAIT)
				continue;
			d->st = ST_UPSKIP;
			jv data = jv_object_set(jv_object(), jv_string("reason"), jv_string("upstream_failed"));
			data = jv_object_set(data, jv_string("failed"), jv_string(plan.step[i].name));
			emit("WARN", "step.skipped", d->name, data);
			run.manifest_dirty = 1;
			stack[n++] = s->rdep[k];
		}
	}
	free(stack);
}

static void final_failure(int i, const char *msg)
{
	tally.failures = jv_array_append(tally.failures, jv_string_fmt("%s: %s", plan.step[i].name, msg));
	plan.step[i].st = ST_FAIL;
	tally.nfailed++;
	tally.failed_names = jv_array_append(tally.failed_names, jv_string(plan.step[i].name));
	skip_dependants(i);
	if (!opt.keep_going)
		tally.stop_starting = 1;
}

void emit_failed(struct step *s, const char *kind, const char *msg, int will_retry,
                 const char *extra, int val)
{
	jv data = jv_object();
	data = jv_object_set(data, jv_string("kind"), jv_string(kind));
	data = jv_object_set(data, jv_string("message"), jv_string(msg));
	data = jv_object_set(data, jv_string("attempt"), jv_number(s->attempt));
	data = jv_object_set(data, jv_string("will_retry"), jv_bool(will_retry));
	if (extra)
		data = jv_object_set(data, jv_string(extra), jv_number(val));
	if (s->t0 > 0)
		data = jv_object_set(data, jv_string("duration_s"), secs(now() - s->t0));
	emit("ERROR", "step.failed", s->name, data);
	run.manifest_dirty = 1;
}

/* An attempt failed: retry it after a backoff, or give up. */
void attempt_failed(int i, const char *kind, const char *msg, int retryable,
                    const char *extra, int val)
{
	struct step *s = &plan.step[i];
	int again = retryable && s->attempt <= s->retries && !tally.stop_sig;
	emit_failed(s, kind, msg, again, extra, val);
	if (strcmp(kind, "interrupted") == 0) {  /* not a failure: resume runs it */
		drop_active(i);
		s->st = ST_STOPPED;
		return;
	}
	if (again) {
		double cap = opt.backoff_base * pow(2, s->attempt - 1);
		if (cap > opt.backoff_max)
			cap = opt.backoff_max;
		double delay = cap * (randombytes_random() / 4294967296.0);  /* full jitter */
		jv data = jv_object_set(jv_object(), jv_string("attempt"), jv_number(s->attempt + 1));
		data = jv_object_set(data, jv_string("delay_s"), secs(delay));
		emit("INFO", "step.retrying", s->name, data);
		s->st = ST_BACKOFF;
		s->wake = now() + delay;
		return;
	}
	drop_active(i);
	final_failure(i, msg);
}

/* An attempt begins: its process first, so that step.started can name
 * its process group (pgid, and the leader's start time: orphan.c). */
void start_attempt(int i)
{
	struct step *s = &plan.step[i];
	s->attempt++;
	s->timed_out = s->stopped = 0;
	s->kill_at = 0;
	s->t0 = now();
	int err = spawn(s);
	jv data = jv_object_set(jv_object(), jv_string("needs"), jv_copy(s->needs));
	data = jv_object_set(data, jv_string("attempt"), jv_number(s->attempt));
	if (!err) {
		data = jv_object_set(data, jv_string("pgid"), jv_number(s->pid));
		data = jv_object_set(data, jv_string("pid_start"), jv_number((double)(batch_serves(s)
		                     ? batch_start_time(s->pid) : proc_start(s->pid))));
	}
	emit("INFO", "step.started", s->name, data);
	run.manifest_dirty = 1;
	s->st = ST_RUN;
	if (err) {
		char *msg = orch_fmt("cannot run %s: %s", s->cmd, strerror(err));
		attempt_failed(i, "spawn", msg, 0, "exit_code", 127);
		free(msg);
		return;
	}
	tally.nrun++;
	s->deadline = s->timeout > 0 ? s->t0 + s->timeout : 0;
}

/* when: false: the step is skipped, and its dependants see null. */
static void skip_by_condition(int i)
{
	struct step *s = &plan.step[i];
	s->st = ST_COND;
	tally.ndone++;
	emit("INFO", "step.skipped", s->name,
	     jv_object_set(jv_object(), jv_string("reason"), jv_string("condition")));
	run.manifest_dirty = 1;
	jv_free(s->input);
	s->input = jv_invalid();
	release(i);
}

/* when: could not be evaluated: the step fails, at its first attempt. */
static void condition_failed(int i, const char *err)
{
	struct step *s = &plan.step[i];
	/* err is "{{ <the hole> }}: <what jq said>": keep the latter */
	size_t len = strlen(plan.cond_texts[s->cond]);
	const char *why = err;
	if (strlen(err) >= len + 2 && strncmp(err + len - 3, " }}: ", 5) == 0)
		why = err + len + 2;
	char *msg = orch_fmt("when: %s", why);
	add_active(i);
	s->attempt = 1;
	attempt_failed(i, "condition", msg, 0, NULL, 0);
	free(msg);
}

/* Does s's when: hold for its input record? 1, 0, or -1 and *err. */
int cond_holds(struct step *s, char **err)
{
	char *r = orch_tmpl_render(plan.conds, s->cond, s->input, err);
	int holds = r ? strcmp(r, "1") == 0 : -1;
	free(r);
	return holds;
}

/* A step taken from the ready queue, within -j and its pool: its input
 * record, its when: condition, its first attempt. */
void start_step(int i)
{
	if (expand_step(i))  /* expand.c: a dynamic fan-out makes its instances */
		return;
	struct step *s = &plan.step[i];
	s->input = input_record(s);
	if (s->cond >= 0) {
		char *err = NULL;
		int holds = cond_holds(s, &err);
		if (holds == 0)
			skip_by_condition(i);
		else if (holds < 0)
			condition_failed(i, err);
		free(err);
		if (holds != 1)
			return;
	}
	add_active(i);
	start_attempt(i);
}

static int provider_calls(jv result)
{
	double d;
	if (orch_jnum(result, "provider_calls", &d))
		return (int)d;
	const char *c = orch_jstr(result, "cache");
	return c && strcmp(c, "miss") == 0;
}

static void succeeded(int i)
{
	struct step *s = &plan.step[i];
	jv r;
	int err = store_output(s, &r);
	if (err) {
		char *msg = orch_fmt("cannot store artifacts/%s.json: %s", s->name, strerror(err));
		orch_err("%s", msg);
		attempt_failed(i, "artifact", msg, 0, NULL, 0);
		free(msg);
		return;
	}
	jv data = jv_object_set(jv_object(), jv_string("duration_s"), secs(now() - s->t0));
	data = jv_object_set(data, jv_string("provider_calls"), jv_number(provider_calls(r)));
	data = jv_object_set(data, jv_string("attempt"), jv_number(s->attempt));
	data = jv_object_set(data, jv_string("fingerprint"), jv_string(s->fp));
	data = jv_object_set(data, jv_string("spec_hash"), jv_string(s->spec_hash));
	emit("INFO", "step.succeeded", s->name, data);
	run.manifest_dirty = 1;
	orch_put(jv_copy(r));
	s->st = ST_OK;
	s->result = r;
	tally.ndone++;
	tally.nstored++;
	drop_active(i);
	release(i);
}

/* The last line in the attempt's stderr (its last 4 KB) that says the
 * disk is full: on a full disk the last line seldom does (dd prints its
 * counts after it, tr says "write error" again on close). "line
 * (logs/<step>.log)", or NULL. */
static char *no_space_line(struct step *s)
{
	char *lname = orch_fmt("%s.log", s->name), *msg = NULL, buf[4097];
	int fd = openat(run.log_fd, lname, O_RDONLY | O_CLOEXEC);
	struct stat st;
	ssize_t n = 0;
	if (fd >= 0 && fstat(fd, &st) == 0 && st.st_size > s->log_at) {
		off_t from = st.st_size - s->log_at > 4096 ? st.st_size - 4096 : s->log_at;
		n = pread(fd, buf, (size_t)(st.st_size - from), from);
	}
	buf[n > 0 ? n : 0] = 0;
	const char *hit = NULL, *words[] = {strerror(ENOSPC), strerror(EDQUOT)};
	for (int w = 0; w < 2; w++)
		for (const char *p = buf; (p = strstr(p, words[w])); p++)
			hit = p > hit ? p : hit;
	if (hit) {
		const char *a = hit, *z = hit + strcspn(hit, "\n");
		while (a > buf && a[-1] != '\n')
			a--;
		int len = z - a > 300 ? 300 : (int)(z - a);
		msg = orch_fmt("%.*s (logs/%s)", len, a, lname);
	}
	if (fd >= 0)
		close(fd);
	free(lname);
	return msg;
}

/* msg (of size n) with fmt's text at its end */
static void append(char *msg, size_t n, const char *fmt, ...)
{
	size_t k = strlen(msg);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg + k, n - k, fmt, ap);
	va_end(ap);
}

/* Is the run folder's file system full (for whoever we are)? */
static int run_disk_full(void)
{
	struct statvfs v;
	return statvfs(run.dir, &v) == 0 && (geteuid() == 0 ? v.f_bfree : v.f_bavail) == 0;
}

/* Why the attempt failed, from its status: in msg (of size n). */
static void failure_text(struct step *s, int status, char *msg, size_t n)
{
	if (s->timed_out)
		snprintf(msg, n, "timed out after %gs", s->timeout);
	else if (WIFSIGNALED(status)) {
		int sig = WTERMSIG(status);
		snprintf(msg, n, "killed by signal %d (SIG%s)", sig, sigabbrev_np(sig) ? sigabbrev_np(sig) : "?");
	} else {
		int code = WEXITSTATUS(status);
		snprintf(msg, n, "exited with %d%s", code,
		         code == EX_TEMP ? " (temporary failure)" : code == EX_USAGE ? " (bad input)" : "");
	}
	char *line = no_space_line(s);
	int said = line != NULL;
	if (!line)
		line = last_stderr(s);
	if (line)
		append(msg, n, ": %s", line);
	if (!said && run_disk_full())  /* its last words may be lost: say what we see */
		append(msg, n, "; %s in the run folder %s", strerror(ENOSPC), run.dir);
	free(line);
}

/* The kinds orch-sched gives itself: a step cannot claim them. */
static int own_kind(const char *k)
{
	static const char *const own[] = {"exit", "signal", "timeout", "lost", "spawn",
		"interrupted", "artifact", "condition", "foreach", 0};
	for (int i = 0; own[i]; i++)
		if (strcmp(k, own[i]) == 0)
			return 1;
	return strspn(k, "abcdefghijklmnopqrstuvwxyz0123456789_") != strlen(k) ||
	       !*k || strlen(k) > 32;
}

/* A failed step may name its failure (orch-sched(1), "Failure kinds"):
 * its last stdout line {"failed":{"kind":K,"message":M}}. 1 and kind
 * (of 33 bytes) and msg (of n, "" when it gave none), else 0. Reads the
 * last 4 KB of its stdout file. */
static int step_says(struct step *s, char *kind, char *msg, size_t n)
{
	struct stat st;
	char buf[4096];
	if (s->outfd < 0 || fstat(s->outfd, &st) < 0 || st.st_size == 0)
		return 0;
	off_t from = st.st_size > (off_t)sizeof buf ? st.st_size - (off_t)sizeof buf : 0;
	ssize_t len = pread(s->outfd, buf, (size_t)(st.st_size - from), from);
	while (len > 0 && strchr("\n\r \t", buf[len - 1]))
		len--;
	ssize_t at = len;
	while (at > 0 && buf[at - 1] != '\n')
		at--;
	if (len <= at || buf[at] != '{')
		return 0;
	jv v = jv_parse_sized(buf + at, (int)(len - at));
	jv why = orch_jget(v, "failed");
	const char *k = orch_jstr(why, "kind"), *m = orch_jstr(why, "message");
	int ok = k && !own_kind(k);
	if (ok) {
		snprintf(kind, 33, "%s", k);
		snprintf(msg, n, "%.*s", m ? (int)strcspn(m, "\n") : 0, m ? m : "");
	}
	jv_free(why);
	jv_free(v);
	return ok;
}

/* A non-zero exit: its kind and message as the step named them (no
 * message: its last stderr line), else "exit" and msg (failure_text's).
 * Retried on exit 75 alone, whatever the kind. */
static void exit_failed(int i, int status, const char *msg)
{
	struct step *s = &plan.step[i];
	char kind[33], said[512];
	int named = step_says(s, kind, said, sizeof said);
	char *line = named && !*said ? last_stderr(s) : NULL;
	if (line)
		snprintf(said, sizeof said, "%s", line);
	free(line);
	attempt_failed(i, named ? kind : "exit", named && *said ? said : msg,
	               WEXITSTATUS(status) == EX_TEMP, "exit_code", WEXITSTATUS(status));
}

/* The attempt's process has ended with status. */
void reaped(int i, int status)
{
	struct step *s = &plan.step[i];
	tally.nrun--;
	s->pid = 0;
	char msg[512];
	int lost = s->launcher >= 0 && !s->stopped && !s->timed_out &&
	           !launched_status(s, &status, msg, sizeof msg);  /* the command's own */
	if (s->launcher >= 0)
		merge_step_events(s);  /* its tools' events, before its own */
	if (s->stopped)
		attempt_failed(i, "interrupted", "interrupted", 0, NULL, 0);
	else if (lost)
		attempt_failed(i, "lost", msg, 1, NULL, 0);
	else if (s->timed_out || WIFSIGNALED(status) || WEXITSTATUS(status) != 0) {
		failure_text(s, status, msg, sizeof msg);
		if (s->timed_out)
			attempt_failed(i, "timeout", msg, 1, NULL, 0);
		else if (WIFSIGNALED(status))
			attempt_failed(i, "signal", msg, 1, "signal", WTERMSIG(status));
		else
			exit_failed(i, status, msg);
	} else
		succeeded(i);
	end_output(s);
}

void step_free(void)
{
	free(queue.told.a);
}
