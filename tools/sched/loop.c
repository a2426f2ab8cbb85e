/* loop.c: the scheduler's loop: start what may start, wait, reap.
 *
 * The ready queue is a heap (higher priority first, then plan order); a
 * step whose pool is full waits in its pool's heap until a slot frees.
 * The loop only waits for children, signals and timers (sigtimedwait, all
 * of them blocked): timeouts and interrupts signal a step's process group
 * (SIGTERM, then SIGKILL after --grace); when a step's command exits,
 * whatever it left in its group is killed. manifest.json is rewritten at
 * most every 0.5 s while steps end; a terminal gets a live progress line.
 * Assumes the run is open and the job started (orch-sched.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <time.h>
#include "orch.h"
#include "sched.h"

struct queue queue;

void heap_push(struct heap *h, int i)
{
	if (h->n == h->cap)
		h->a = orch_xrealloc(h->a, (h->cap = h->cap ? 2 * h->cap : 64) * sizeof *h->a);
	int k = h->n++;
	while (k > 0 && step_before(i, h->a[(k - 1) / 2])) {
		h->a[k] = h->a[(k - 1) / 2];
		k = (k - 1) / 2;
	}
	h->a[k] = i;
}

int heap_pop(struct heap *h)
{
	int top = h->a[0], last = h->a[--h->n], k = 0;
	for (;;) {
		int c = 2 * k + 1;
		if (c >= h->n)
			break;
		if (c + 1 < h->n && step_before(h->a[c + 1], h->a[c]))
			c++;
		if (!step_before(h->a[c], last))
			break;
		h->a[k] = h->a[c];
		k = c;
	}
	if (h->n > 0)
		h->a[k] = last;
	return top;
}

void add_active(int i)
{
	queue.active[queue.nactive++] = i;
	if (plan.step[i].pool >= 0)
		plan.pool[plan.step[i].pool].used++;
}

void drop_active(int i)
{
	struct step *s = &plan.step[i];
	for (int k = 0; k < queue.nactive; k++)
		if (queue.active[k] == i) {
			queue.active[k] = queue.active[--queue.nactive];
			break;
		}
	if (s->pool >= 0) {
		struct pool *p = &plan.pool[s->pool];
		p->used--;
		if (p->wait.n > 0)
			heap_push(&queue.ready, heap_pop(&p->wait));
	}
	jv_free(s->input);
	s->input = jv_invalid();
}

/* Start what may start: ready steps, by priority, within -j and pools. */
static void start_ready(void)
{
	while (!tally.stop_starting && queue.ready.n > 0 && queue.nactive < opt.jobs) {
		int i = heap_pop(&queue.ready);
		struct step *s = &plan.step[i];
		if (s->pool >= 0 && plan.pool[s->pool].used >= plan.pool[s->pool].limit) {
			heap_push(&plan.pool[s->pool].wait, i);
			continue;
		}
		start_step(i);
	}
}

void manifest_write(int force)
{
	if (!run.manifest || (!force && (!run.manifest_dirty || now() < run.manifest_at)))
		return;
	double t = now();
	orch_manifest_write(run.manifest);
	run.manifest_dirty = 0;
	/* at most every 0.5 s, and never more than ~5% of the time */
	run.manifest_at = now() + fmax(0.5, 20 * (now() - t));
}

/* The running part of the progress line into line[*n..size): each
 * running step's name, but a fan-out's instances once, as "GROUP
 * done/total" (", N failed" when some did): 3,000 instances are not
 * listed. done counts those that succeeded or were skipped. */
static void progress_running(char *line, int *n, int size)
{
	enum { MAXG = 8 };
	struct fan { const char *name; int done, total, failed; } g[MAXG];
	int ng = 0;
	for (int i = 0; i < queue.nactive; i++) {
		const struct step *s = &plan.step[queue.active[i]];
		const char *name = s->st != ST_RUN ? NULL : jv_is_valid(s->inst) ?
		                   orch_jstr(s->inst, "group") : s->name;
		int k = 0;
		while (name && k < ng && strcmp(g[k].name, name) != 0)
			k++;
		if (name && k == ng && ng < MAXG && jv_is_valid(s->inst))
			g[ng++] = (struct fan){name, 0, 0, 0};
		else if (name && !jv_is_valid(s->inst) && *n < size - 1)
			*n += snprintf(line + *n, (size_t)(size - *n), " %s", name);
	}
	for (int i = 0; ng > 0 && i < plan.n; i++) {
		const struct step *s = &plan.step[i];
		const char *name = jv_is_valid(s->inst) ? orch_jstr(s->inst, "group") : NULL;
		for (int k = 0; name && k < ng; k++)
			if (strcmp(g[k].name, name) == 0) {
				g[k].total++;
				g[k].done += s->st == ST_OK || s->st == ST_DONE || s->st == ST_COND;
				g[k].failed += s->st == ST_FAIL;
				break;
			}
	}
	for (int k = 0; k < ng && *n < size - 1; k++) {
		*n += snprintf(line + *n, (size_t)(size - *n), " %s %d/%d", g[k].name, g[k].done, g[k].total);
		if (g[k].failed && *n < size - 1)
			*n += snprintf(line + *n, (size_t)(size - *n), ", %d failed", g[k].failed);
	}
}

static void show_progress(int force)
{
	if (!tally.progress)
		return;
	double t = now();
	if (!force && t - tally.progress_at < 0.1)
		return;
	tally.progress_at = t;
	struct winsize ws;
	int width = ioctl(2, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 20 ? ws.ws_col - 1 : 79;
	char line[1024];
	int n = snprintf(line, sizeof line, "[%d/%d done, %d running, %d failed] %.1fs",
	                 tally.ndone - tally.nretired, plan.n - tally.nretired, tally.nrun,
	                 tally.nfailed, t - tally.t_start);
	progress_running(line, &n, (int)sizeof line);
	if (n > width)
		n = width;
	if (n > (int)sizeof line - 1)
		n = sizeof line - 1;
	fprintf(stderr, "\r\033[K%.*s", n, line);
	fflush(stderr);
}

void clear_progress(void)
{
	if (tally.progress)
		fputs("\r\033[K", stderr);
}

static void reap_all(void)
{
	for (;;) {
		siginfo_t si;
		si.si_pid = 0;
		if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) < 0 || si.si_pid == 0)
			break;
		/* kill whatever it left behind in its group while the unreaped
		 * leader still holds the group's id, then reap it */
		pid_t pid = si.si_pid;
		int status;
		kill(-pid, SIGKILL);
		if (waitpid(pid, &status, 0) != pid)
			break;
		if (batch_reaped(pid, status))  /* a --batch-exec worker */
			continue;
		for (int k = 0; k < queue.nactive; k++)
			if (plan.step[queue.active[k]].pid == pid) {
				reaped(queue.active[k], status);
				break;
			}
	}
}

/* A running step's timeout, and its kill after grace; its next timer. */
static double step_timers(struct step *s, double t)
{
	if (s->deadline > 0 && !s->timed_out && !s->stopped && t >= s->deadline) {
		kill(-s->pid, SIGTERM);
		s->timed_out = 1;
		s->kill_at = t + opt.grace;
	}
	if (s->kill_at > 0 && t >= s->kill_at) {
		kill(-s->pid, SIGKILL);
		s->kill_at = 0;
	}
	if (s->kill_at > 0)
		return s->kill_at;
	if (s->deadline > 0 && !s->timed_out && !s->stopped)
		return s->deadline;
	return INFINITY;
}

/* Timers: timeouts, kills after grace, retries. Returns the next one. */
static double timers(void)
{
	double t = now(), next = INFINITY;
	for (int k = 0; k < queue.nactive; k++) {
		int i = queue.active[k];
		struct step *s = &plan.step[i];
		if (s->st == ST_BACKOFF) {
			if (t >= s->wake && !tally.stop_sig) {
				start_attempt(i);
				if (s->st != ST_RUN || k >= queue.nactive || queue.active[k] != i)
					k--;  /* it left the active list; look at this slot again */
				continue;
			}
			next = fmin(next, s->wake);
		} else if (s->st == ST_RUN)
			next = fmin(next, step_timers(s, t));
	}
	if (run.manifest_dirty)
		next = fmin(next, run.manifest_at);
	if (tally.progress)
		next = fmin(next, t + 0.5);
	return next;
}

static void interrupt(int sig)
{
	int again = tally.stop_sig != 0;
	tally.stop_sig = sig;
	tally.stop_starting = 1;
	double t = now();
	for (int k = 0; k < queue.nactive; k++) {
		struct step *s = &plan.step[queue.active[k]];
		if (s->st != ST_RUN)
			continue;
		s->stopped = 1;
		kill(-s->pid, again ? SIGKILL : SIGTERM);
		s->kill_at = again ? 0 : t + opt.grace;
	}
	for (int k = 0; k < queue.nactive; k++) {
		int i = queue.active[k];
		if (plan.step[i].st == ST_BACKOFF) {
			plan.step[i].t0 = 0;
			attempt_failed(i, "interrupted", "interrupted while waiting to retry", 0, NULL, 0);
			k--;
		}
	}
}

/* Whether stop signal sig counts. With --forwarded, orch run forwards
 * every stop signal it gets, and a ^C or a TERM to the whole group
 * reaches us too: each signal from the parent pairs with one of the same
 * number from elsewhere, so one stop counts once and a second is still a
 * second. Two of a number that arrive while it is blocked merge into one
 * (standard signals do not queue), and that one counts: the pairs are
 * counted as they are taken, never by the sender alone. */
static int stop_counts(int sig, const siginfo_t *si)
{
	static int parent[NSIG], other[NSIG];
	if (!opt.forwarded)
		return 1;
	int from_parent = si->si_code == SI_USER && si->si_pid == getppid();
	int *mine = from_parent ? parent : other, *theirs = from_parent ? other : parent;
	return mine[sig]++ >= theirs[sig];
}

/* Wait until next (a monotonic time, or INFINITY) for a child or a signal. */
static void wait_for(double next)
{
	struct timespec ts, *tp = NULL;
	if (isfinite(next)) {
		double d = next - now();
		if (d < 0)
			d = 0;
		ts.tv_sec = (time_t)d;
		ts.tv_nsec = (long)((d - (double)ts.tv_sec) * 1e9);
		tp = &ts;
	}
	siginfo_t si;
	int sig = sigtimedwait(&run.waited, &si, tp);
	if ((sig == SIGINT || sig == SIGTERM || sig == SIGHUP) && stop_counts(sig, &si))
		interrupt(sig);
}

/* A stop signal already pending (one that came as we began, or while a
 * turn ran) is taken before anything more starts: a step must not start
 * after the stop that should have kept it from starting. SIGCHLD and
 * SIGIO stay pending for wait_for. */
static void take_stops(void)
{
	static const int stops[] = {SIGINT, SIGTERM, SIGHUP};
	static const struct timespec now0 = {0, 0};
	sigset_t set;
	siginfo_t si;
	int sig;
	sigemptyset(&set);
	for (int k = 0; k < 3; k++)
		if (sigismember(&run.waited, stops[k]))
			sigaddset(&set, stops[k]);
	while ((sig = sigtimedwait(&set, &si, &now0)) > 0)
		if (stop_counts(sig, &si))
			interrupt(sig);
}

void run_loop(void)
{
	for (;;) {
		reap_all();
		batch_io();
		timers();
		take_stops();
		start_ready();
		double next = timers();  /* again: what just started has deadlines */
		batch_flush();  /* what this turn handed to --batch-exec workers */
		manifest_write(0);
		show_progress(0);
		if (queue.nactive == 0 && (tally.stop_starting || queue.ready.n == 0))
			break;
		/* a child that exited since reap_all left SIGCHLD pending */
		if (tally.nrun > 0 || isfinite(next))
			wait_for(next);
	}
	batch_end();
}

void loop_free(void)
{
	free(queue.ready.a);
	free(queue.active);
}
