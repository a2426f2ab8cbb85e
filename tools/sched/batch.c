/* batch.c: fan-out instances served by one long-lived worker per step.
 *
 * With --batch-exec CMD, the instances of a fan-out step that has no run:
 * (a prompt step, whose command is --exec) are not one process each: CMD
 * is started once for the step (its "group") and given each instance's
 * input record as one line on its stdin when the instance starts; it
 * prints one line per instance, in any order, as each finishes: the
 * instance's result record (a JSON object whose "step" names it), or
 * {"step":ID,"failed":{"kind","message"},"exit_code":N} when it failed
 * (N as the one-at-a-time command would have exited: 75 retries). Every
 * instance is otherwise a step as any other: its attempt, step.started
 * when handed over, its artifact, events, -j and pool slot, timeout,
 * retries; the scheduler writes the line to the instance's stdout file
 * and goes on as if the instance's own process had exited (reaped()).
 *
 * A timeout or an interrupt signals the worker's process group (it is
 * the instance's "process"): every instance in flight with it then ends,
 * the timed out one as timeout, the interrupted ones as interrupted, the
 * others as lost (retried as any lost attempt is). A worker that dies
 * loses its unfinished instances the same way. A worker's stdin is closed
 * once no instance of its step is left to run; all are closed, and their
 * workers waited for (SIGKILL after --grace), when the loop ends.
 *
 * The pipes are the one exception to "no pipes": both ends are ours
 * non-blocking with O_ASYNC, so SIGIO (blocked, waited for with the rest
 * by sigtimedwait) wakes the loop when a worker has written, or can take
 * more; records wait in a buffer, so a worker that does not read its
 * stdin while we do not read its stdout cannot deadlock us. The worker
 * has no ORCH_STEP or ORCH_ATTEMPT (one process serves many instances):
 * both are in each record; its stderr goes to logs/<step>.log.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "orch.h"
#include "sched.h"


struct worker {
	pid_t pid;
	char *group;
	int in, out;         /* our ends: its stdin (-1: closed), its stdout */
	struct orch_buf w, r;  /* records to write, result text read */
	size_t woff;         /* w's bytes written so far */
	int inflight;        /* instances handed and not answered */
	int lo, hi, next;    /* its step's instances: plan.step[lo..hi] */
	unsigned long long start;  /* its start time (orphan.c), read once */
};

static struct { struct worker *a; int n; int sigio; } workers;

/* Does --batch-exec serve s? (a prompt step's fan-out instance) */
int batch_serves(const struct step *s)
{
	return opt.batch_cmd && s->cmd == opt.exec_cmd && s->launcher < 0 &&
	       jv_is_valid(s->inst);
}

static const char *group_of(const struct step *s)
{
	const char *g = orch_jstr(s->inst, "group");
	return g ? g : s->name;
}

/* SIGIO joins the signals the loop waits for (blocked: never handled). */
static void wait_for_sigio(void)
{
	if (workers.sigio)
		return;
	workers.sigio = 1;
	sigaddset(&run.waited, SIGIO);
	sigset_t s;
	sigemptyset(&s);
	sigaddset(&s, SIGIO);
	sigprocmask(SIG_BLOCK, &s, NULL);
}

static int async_fd(int fd)
{
	return fcntl(fd, F_SETOWN, getpid()) < 0 ||
	       fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK | O_ASYNC) < 0 ? -1 : 0;
}

/* The range of plan.step holding s's group (orch-plan writes a fan-out's
 * instances together; others inside the range are skipped). */
static void group_range(struct worker *w, int i)
{
	w->lo = w->hi = i;
	while (w->lo > 0 && batch_serves(&plan.step[w->lo - 1]) &&
	       strcmp(group_of(&plan.step[w->lo - 1]), w->group) == 0)
		w->lo--;
	while (w->hi + 1 < plan.n && batch_serves(&plan.step[w->hi + 1]) &&
	       strcmp(group_of(&plan.step[w->hi + 1]), w->group) == 0)
		w->hi++;
	w->next = w->lo;
}

/* A worker for s's group: 0, or errno (nothing runs). */
static int start_worker(int i, struct worker *w)
{
	struct step *s = &plan.step[i];
	int in[2], out[2], err = 0;
	if (pipe2(in, O_CLOEXEC) < 0)
		return errno;
	if (pipe2(out, O_CLOEXEC) < 0) {
		err = errno;
		close(in[0]);
		close(in[1]);
		return err;
	}
	wait_for_sigio();
	int fd[3] = {in[0], out[1], -1};
	memset(w, 0, sizeof *w);
	w->group = orch_xstrdup(group_of(s));
	err = spawn_worker(opt.batch_cmd, w->group, fd, &w->pid);
	close(in[0]);
	close(out[1]);
	if (!err && (async_fd(in[1]) < 0 || async_fd(out[0]) < 0))
		err = errno;
	if (err) {
		if (w->pid > 0)
			kill(-w->pid, SIGKILL);  /* reaped by the loop: no instance is its */
		close(in[1]);
		close(out[0]);
		free(w->group);
		return err;
	}
	w->in = in[1];
	w->out = out[0];
	w->start = proc_start(w->pid);
	group_range(w, i);
	return 0;
}

/* Write what is buffered for w, as far as its pipe takes it. */
static void flush_records(struct worker *w)
{
	while (w->in >= 0 && w->woff < w->w.n) {
		ssize_t k = write(w->in, w->w.p + w->woff, w->w.n - w->woff);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)  /* EAGAIN: SIGIO says when; EPIPE: it died, reaping says */
			return;
		w->woff += (size_t)k;
	}
	w->w.n = w->woff = 0;
}

/* The start time of the worker whose pid is pid (an instance's
 * step.started names it, as any step's process group): read once, not
 * from /proc at each instance. */
unsigned long long batch_start_time(pid_t pid)
{
	for (int k = 0; k < workers.n; k++)
		if (workers.a[k].pid == pid)
			return workers.a[k].start;
	return proc_start(pid);
}

static struct worker *open_worker(const char *group)
{
	for (int k = 0; k < workers.n; k++)
		if (workers.a[k].in >= 0 && strcmp(workers.a[k].group, group) == 0)
			return &workers.a[k];
	return NULL;
}

/* Hand instance s to its step's worker (started if none is open): 0, or
 * errno. s->pid becomes the worker's. */
int batch_hand(struct step *s)
{
	struct worker *w = open_worker(group_of(s));
	if (!w) {
		workers.a = orch_xrealloc(workers.a, (workers.n + 1) * sizeof *workers.a);
		int err = start_worker((int)(s - plan.step), &workers.a[workers.n]);
		if (err)
			return err;
		w = &workers.a[workers.n++];
	}
	size_t n;
	char *txt = input_text(s, &n);
	orch_buf_add(&w->w, txt, n);  /* written with the turn's others: batch_flush */
	free(txt);
	w->inflight++;
	s->pid = w->pid;
	s->outfd = -1;
	s->log_at = 0;
	return 0;
}

/* Close w's stdin once no instance of its step is left to hand it. */
static void close_if_done(struct worker *w)
{
	if (w->in < 0 || w->inflight > 0)
		return;
	static const int done[] = {ST_OK, ST_COND, ST_DONE, ST_FAIL, ST_UPSKIP, ST_STOPPED};
	for (; w->next <= w->hi; w->next++) {
		struct step *s = &plan.step[w->next];
		int over = 0;
		for (size_t k = 0; k < sizeof done / sizeof *done; k++)
			over |= (int)s->st == done[k];
		if (!over && strcmp(group_of(s), w->group) == 0)
			return;
	}
	close(w->in);
	w->in = -1;
}

/* The instance named name, if it is in flight with w; else -1. */
static int line_step(struct worker *w, const char *name)
{
	long i = name ? orch_map_get(plan.byname, name) : -1;
	if (i < 0 || plan.step[i].st != ST_RUN || plan.step[i].pid != w->pid ||
	    plan.step[i].outfd >= 0)
		return -1;
	return (int)i;
}

/* A failure line's message goes to the end of the instance's log, where
 * the scheduler reads its last words (last_stderr), as it would have
 * been the instance's own stderr. */
static void note_failure(struct step *s, jv failed)
{
	const char *m = orch_jstr(failed, "message");
	char *lname = orch_fmt("%s.log", s->name);
	int fd = m && *m ? openat(run.log_fd, lname, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644) : -1;
	free(lname);
	if (fd < 0)
		return;
	off_t at = lseek(fd, 0, SEEK_END);
	if (at >= 0 && orch_write_all(fd, m, strlen(m)) == 0 && orch_write_all(fd, "\n", 1) == 0)
		s->log_at = at;
	close(fd);
}

/* The step of a result line that begins {"step":"NAME" (as orch step
 * --batch prints it), ends with "}" and has no "failed" key anywhere
 * (a key: inside a string its quotes would be escaped), copied to name:
 * a success, known without parsing the line (store_output parses it
 * once, when it becomes the artifact). 0: the line must be parsed. */
static int quick_success(const char *line, size_t n, char *name, size_t size)
{
	static const char head[] = "{\"step\":\"";
	if (n < sizeof head || memcmp(line, head, sizeof head - 1) != 0 || line[n - 1] != '}')
		return 0;
	const char *p = line + sizeof head - 1, *q = memchr(p, '"', n - (size_t)(p - line));
	if (!q || (size_t)(q - p) >= size || memchr(p, '\\', (size_t)(q - p)) ||
	    memmem(line, n, "\"failed\"", 8))
		return 0;
	memcpy(name, p, (size_t)(q - p));
	name[q - p] = 0;
	return 1;
}

/* One line of w's stdout: an instance's result, or its failure. */
static void result_line(struct worker *w, const char *line, size_t n)
{
	char name[1024];
	int quick = quick_success(line, n, name, sizeof name);
	jv v = quick ? jv_null() : n < INT32_MAX ? jv_parse_sized(line, (int)n) : jv_invalid();
	int i = quick ? line_step(w, name) :
	        jv_get_kind(v) == JV_KIND_OBJECT ? line_step(w, orch_jstr(v, "step")) : -1;
	if (i < 0) {
		orch_err("%s: the --batch-exec worker of %s printed a line that answers "
		         "no instance in flight with it: %.80s", run.job_id, w->group, line);
		jv_free(v);
		return;
	}
	struct step *s = &plan.step[i];
	double code = 0;
	jv failed = orch_jget(v, "failed");
	if (jv_get_kind(failed) != JV_KIND_NULL && (!orch_jnum(v, "exit_code", &code) ||
	                                           code < 1 || code > 255))
		code = 1;
	if (code != 0)
		note_failure(s, failed);
	jv_free(failed);
	jv_free(v);
	int err = batch_output(s, line, n + 1);  /* line[n] is its newline */
	w->inflight--;
	if (err) {
		orch_err("%s: cannot keep the result of %s: %s", run.job_id, s->name, strerror(err));
		code = 1;
	}
	reaped(i, W_EXITCODE((int)code, 0));
}

/* Read what w has written; act on each whole line. 0 at end of file. */
static int read_results(struct worker *w)
{
	char chunk[65536];
	int open = 1;
	for (;;) {
		ssize_t k = read(w->out, chunk, sizeof chunk);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			open = k < 0 && errno == EAGAIN;
			break;
		}
		orch_buf_add(&w->r, chunk, (size_t)k);
	}
	if (w->r.n == 0)
		return open;
	char *p = w->r.p, *end = p + w->r.n, *nl;
	while (p < end && (nl = memchr(p, '\n', (size_t)(end - p)))) {
		if (nl > p)
			result_line(w, p, (size_t)(nl - p));
		p = nl + 1;
	}
	w->r.n = (size_t)(end - p);
	memmove(w->r.p, p, w->r.n + 1);  /* the part line, and the NUL after it */
	return open;
}

/* The worker's pipes: results read, records written; idle ones closed. */
void batch_io(void)
{
	for (int k = 0; k < workers.n; k++) {
		struct worker *w = &workers.a[k];
		if (w->out >= 0)
			read_results(w);
		flush_records(w);
		close_if_done(w);
	}
}

/* The records handed over this turn, to their workers: one write each. */
void batch_flush(void)
{
	for (int k = 0; k < workers.n; k++)
		flush_records(&workers.a[k]);
}

static void forget(int k)
{
	struct worker *w = &workers.a[k];
	if (w->in >= 0)
		close(w->in);
	if (w->out >= 0)
		close(w->out);
	free(w->group);
	orch_buf_free(&w->w);
	orch_buf_free(&w->r);
	workers.a[k] = workers.a[--workers.n];
}

/* Its instances still in flight: ended as its death means for each. */
static void lose_inflight(pid_t pid, int status, const char *group)
{
	for (int k = 0; k < queue.nactive; k++) {
		int i = queue.active[k];
		struct step *s = &plan.step[i];
		if (s->st != ST_RUN || s->pid != pid)
			continue;
		if (s->stopped || s->timed_out) {
			reaped(i, status);
		} else {
			char *msg = orch_fmt("its --batch-exec worker (pid %ld) %s before it answered "
			                     "(logs/%s.log)", (long)pid, WIFSIGNALED(status) ?
			                     "was killed" : "exited", group);
			tally.nrun--;
			s->pid = 0;
			attempt_failed(i, "lost", msg, 1, NULL, 0);
			free(msg);
		}
		k = -1;  /* the active list changed: from the start */
	}
}

/* A child reaped: if it was a worker, what it had said is taken, and its
 * instances still in flight end. 1 if it was one. */
int batch_reaped(pid_t pid, int status)
{
	for (int k = 0; k < workers.n; k++) {
		struct worker *w = &workers.a[k];
		if (w->pid != pid)
			continue;
		if (w->out >= 0)
			read_results(w);  /* its last lines, written before it ended */
		char *group = orch_xstrdup(w->group);
		forget(k);
		lose_inflight(pid, status, group);
		free(group);
		return 1;
	}
	return 0;
}

/* The loop is over: stdins closed, workers waited for (SIGKILL after
 * --grace), instances that were still in flight lost. */
void batch_end(void)
{
	for (int k = 0; k < workers.n; k++)
		if (workers.a[k].in >= 0) {
			close(workers.a[k].in);
			workers.a[k].in = -1;
		}
	double until = now() + opt.grace;
	while (workers.n > 0) {
		int status;
		pid_t pid = waitpid(workers.a[0].pid, &status, WNOHANG);
		if (pid == 0 && now() < until) {
			nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
			continue;
		}
		if (pid == 0) {
			kill(-workers.a[0].pid, SIGKILL);
			pid = waitpid(workers.a[0].pid, &status, 0);
		}
		kill(-workers.a[0].pid, SIGKILL);  /* what it left in its group */
		if (pid <= 0 || !batch_reaped(workers.a[0].pid, status))
			forget(0);
	}
	free(workers.a);
	workers.a = NULL;
}
