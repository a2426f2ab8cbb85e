/* orphan.c: steps that a killed orch-sched left running are stopped first.
 *
 * Each step.started records the step's process group (pgid, the leader's
 * pid) and the leader's start time (pid_start: field 22 of
 * /proc/PID/stat, in clock ticks since boot). Before a job starts (the
 * lock held), every attempt the events leave open (resume.c) whose group
 * still lives is sent SIGTERM, and SIGKILL after --grace, and waited for:
 * so no step runs twice at once. A group is ours when its leader is the
 * process that started then; or, the leader gone, when processes are left
 * in the group (Linux does not reuse a pid while a group bears it). A pid
 * reused by another process is never signalled. Assumes Linux's /proc.
 */
#include <ctype.h>
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "orch.h"
#include "sched.h"

/* The fields of /proc/PID/stat after "(comm) ": state is field 3. */
static int proc_stat(pid_t pid, char *state, long *pgrp, unsigned long long *start)
{
	char path[64], buf[1024];
	snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
	FILE *f = fopen(path, "re");
	size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
	if (f)
		fclose(f);
	buf[n] = 0;
	char *p = strrchr(buf, ')');
	if (!p)
		return -1;
	return sscanf(p + 2, "%c %*d %ld %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d "
	              "%*d %*d %*d %*d %llu", state, pgrp, start) == 3 ? 0 : -1;
}

unsigned long long proc_start(pid_t pid)
{
	char st;
	long pg;
	unsigned long long start;
	return proc_stat(pid, &st, &pg, &start) == 0 ? start : 0;
}

/* Is any live (not zombie) process in group pgid? */
static int group_alive(long pgid)
{
	DIR *d = opendir("/proc");
	struct dirent *de;
	int alive = 0;
	while (d && !alive && (de = readdir(d))) {
		char st;
		long pg;
		unsigned long long start;
		if (isdigit((unsigned char)de->d_name[0]) &&
		    proc_stat((pid_t)atol(de->d_name), &st, &pg, &start) == 0)
			alive = pg == pgid && st != 'Z' && st != 'X';
	}
	if (d)
		closedir(d);
	return alive;
}

/* The group of an open attempt, if it is still ours and alive; else 0. */
static long orphan_group(jv open)
{
	double pg, t;
	if (!orch_jnum(open, "pgid", &pg) || !orch_jnum(open, "pid_start", &t) || pg < 2)
		return 0;
	unsigned long long now_start = proc_start((pid_t)pg);
	if (now_start != 0 && now_start != (unsigned long long)t)
		return 0;  /* the pid is another process's now */
	return group_alive((long)pg) ? (long)pg : 0;
}

/* Signal the groups; wait up to secs for them all to end. 1 if they did. */
static int stop_groups(const long *g, int n, int sig, double secs)
{
	for (int k = 0; k < n; k++)
		kill((pid_t)-g[k], sig);
	double until = now() + secs;
	for (;;) {
		int left = 0;
		for (int k = 0; k < n && !left; k++)
			left = group_alive(g[k]);
		if (!left)
			return 1;
		if (now() >= until)
			return 0;
		nanosleep(&(struct timespec){0, 20 * 1000 * 1000}, NULL);
	}
}

void stop_orphans(void)
{
	jv open = open_attempts();
	int n = 0, cap = jv_array_length(jv_copy(open));
	long *g = orch_xmalloc((cap + 1) * sizeof *g);
	jv_array_foreach(open, k, o) {
		long pg = orphan_group(o);
		if (pg) {
			orch_err("%s: step %s is still running (process group %ld) from an "
			         "orch-sched that was killed: stopping it", run.job_id,
			         orch_jstr(o, "step"), pg);
			g[n++] = pg;
		}
		jv_free(o);
		(void)k;
	}
	if (n > 0 && !stop_groups(g, n, SIGTERM, opt.grace) && !stop_groups(g, n, SIGKILL, 5))
		orch_err("%s: a step's process group does not end after SIGKILL", run.job_id);
	free(g);
	jv_free(open);
}
