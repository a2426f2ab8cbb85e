/* orch-sched: run a plan's steps as processes, like make -j.
 *
 * Reads plan lines (orch-plan(1)) on stdin, checks the whole graph first
 * (unknown needs, cycles, duplicate ids, a prompt step with no --exec:
 * exit 2 before anything runs), then runs each step as a process once all
 * its needs have succeeded, at most -j at a time and at most pools[p] per
 * pool, higher priority first, then plan order.
 *
 * Assumptions and design (orch-sched(1) says the same for users):
 *  - No pipes. A step's stdin is its input record in a memfd, its stdout an
 *    unnamed temporary file in artifacts/ (O_TMPFILE), its stderr
 *    logs/<step>.log. The main loop only waits for children, signals and
 *    timers (sigtimedwait), so no output size can deadlock it.
 *  - Each step is its own process group: timeouts and interrupts signal the
 *    group (SIGTERM, then SIGKILL after --grace); when a step's command
 *    exits, whatever it left in its group is killed.
 *  - The events log is the truth (orch-events(5)); artifacts/<step>.json is
 *    written atomically, without fsync, before step.succeeded. The crash
 *    model is "the process is killed at any instant", not power loss; resume
 *    trusts a step only if it has both the event and a readable artifact.
 *  - A step waiting to retry keeps its job and pool slot.
 *  - Everything is linear: steps by name through a hash map, dependants as
 *    adjacency lists, the ready queue a heap; manifest.json is rewritten at
 *    most every 0.5 s while steps end, and at the end.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <sodium.h>
#include "orch.h"

extern char **environ;

static const char usage[] =
	"usage: orch-sched [-kq] [-j N] [--resume] [--exec CMD] [--wait] [--run DIR]\n"
	"                  [--grace S] [--backoff-base S] [--backoff-max S] [PLAN...]\n"
	"Run a plan's steps (plan lines on stdin or in PLAN files) as processes.\n"
	"  -j, --jobs N         run at most N steps at once (default: the job's\n"
	"                       concurrency, else 4)\n"
	"  -k, --keep-going     after a failure, run everything that does not need it\n"
	"      --resume         skip the steps that already succeeded in this run\n"
	"      --exec CMD       the command of steps with no run: (prompt steps)\n"
	"      --wait           wait for the run's lock instead of refusing\n"
	"      --grace S        seconds between SIGTERM and SIGKILL (default 5)\n"
	"      --backoff-base S first retry delay bound (default 1)\n"
	"      --backoff-max S  retry delay cap (default 60)\n"
	"  -q, --quiet          no progress line on a terminal\n"
	"      --run DIR        the run folder (default $ORCH_RUN_DIR, else\n"
	"                       $ORCH_RUNS/<job_id>)\n"
	"      --help, --version\n";

enum state { ST_WAIT, ST_READY, ST_RUN, ST_BACKOFF, ST_OK, ST_COND, ST_DONE,
             ST_FAIL, ST_UPSKIP, ST_STOPPED };

struct step {
	char *name;
	jv spec, needs;      /* needs: array of names, for events */
	int *dep, ndep;      /* needs as step indices */
	int *rdep, nrdep;    /* dependants */
	int pending;         /* needs not yet done */
	int users;           /* dependants that have not taken our result yet */
	double prio;
	long index;
	int pool;            /* -1: none */
	int retries;
	double timeout;      /* 0: none */
	int cond;            /* template index of when:, -1: none */
	const char *cmd;
	enum state st;
	int attempt;
	pid_t pid;
	int outfd;
	double t0, deadline, kill_at, wake;
	int timed_out, stopped;
	jv result;           /* stored result, while users > 0 */
	jv input;            /* input record without attempt, while active */
};

struct heap { int *a; int n, cap; };
struct pool { char *name; int limit, used; struct heap wait; };

static struct step *S;
static int nsteps, capsteps;
static orch_map *byname;
static jv job;           /* the job object of the plan */
static struct pool *pools;
static int npools;
static orch_tmpl *conds;
static char **cond_texts;  /* the templates borrow their texts */
static int nconds;
static struct heap ready;
static int *active, nactive;   /* running or waiting to retry */

static int jobs, keep_going, resume, wait_lock, quiet;
static const char *exec_cmd;
static double grace = 5, backoff_base = 1, backoff_max = 60;

static const char *run_dir;
static char *job_id;
static int art_fd = -1, log_fd = -1;
static char **envp;
static int nenv;
static orch_manifest *manifest;
static int manifest_dirty;
static double manifest_at;
static int stop_starting, stop_sig, nfailed, ndone, nstored, nrun, progress;
static double t_start, progress_at;
static sigset_t waited;  /* SIGCHLD, and the stop signals not ignored */
static jv failed_names;

/* ---- the ready queue: higher priority first, then plan order ---- */

static int before(int a, int b)
{
	if (S[a].prio != S[b].prio)
		return S[a].prio > S[b].prio;
	return S[a].index < S[b].index;
}

static void heap_push(struct heap *h, int i)
{
	if (h->n == h->cap)
		h->a = orch_xrealloc(h->a, (h->cap = h->cap ? 2 * h->cap : 64) * sizeof *h->a);
	int k = h->n++;
	while (k > 0 && before(i, h->a[(k - 1) / 2])) {
		h->a[k] = h->a[(k - 1) / 2];
		k = (k - 1) / 2;
	}
	h->a[k] = i;
}

static int heap_pop(struct heap *h)
{
	int top = h->a[0], last = h->a[--h->n], k = 0;
	for (;;) {
		int c = 2 * k + 1;
		if (c >= h->n)
			break;
		if (c + 1 < h->n && before(h->a[c + 1], h->a[c]))
			c++;
		if (!before(h->a[c], last))
			break;
		h->a[k] = h->a[c];
		k = c;
	}
	if (h->n > 0)
		h->a[k] = last;
	return top;
}

/* ---- reading and checking the plan ---- */

struct reader { const char *file; long rec; int bad; };

static int bad_at(struct reader *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static int bad_at(struct reader *r, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	orch_err_at(r->file, r->rec, 0, "%s", msg);
	r->bad++;
	return 0;
}

static jv str_array(jv v)
{
	if (jv_get_kind(v) != JV_KIND_ARRAY) {
		jv_free(v);
		return jv_invalid();
	}
	jv_array_foreach(v, i, x) {
		int ok = jv_get_kind(x) == JV_KIND_STRING;
		jv_free(x);
		(void)i;
		if (!ok) {
			jv_free(v);
			return jv_invalid();
		}
	}
	return v;
}

static int add_line(jv line, void *ctx)
{
	struct reader *r = ctx;
	r->rec++;
	const char *name = orch_jstr(line, "step");
	if (jv_get_kind(line) != JV_KIND_OBJECT || !name) {
		jv_free(line);
		return bad_at(r, "not a plan line (no \"step\")");
	}
	if (!orch_job_id_valid(name)) {
		bad_at(r, "step id \"%s\": use 1 to 64 of [A-Za-z0-9._-]", name);
		jv_free(line);
		return 0;
	}
	jv spec = jv_object_get(jv_copy(line), jv_string("spec"));
	if (jv_get_kind(spec) == JV_KIND_INVALID || jv_get_kind(spec) == JV_KIND_NULL) {
		jv_free(spec);
		spec = jv_object();
	}
	if (jv_get_kind(spec) != JV_KIND_OBJECT) {
		bad_at(r, "step %s: \"spec\" is not an object", name);
		jv_free(spec);
		jv_free(line);
		return 0;
	}
	jv needs = jv_object_get(jv_copy(line), jv_string("needs"));
	if (!jv_is_valid(needs) || jv_get_kind(needs) == JV_KIND_NULL) {
		jv_free(needs);
		needs = jv_object_get(jv_copy(spec), jv_string("needs"));
		if (!jv_is_valid(needs) || jv_get_kind(needs) == JV_KIND_NULL) {
			jv_free(needs);
			needs = jv_array();
		}
	}
	needs = str_array(needs);
	if (!jv_is_valid(needs)) {
		bad_at(r, "step %s: \"needs\" is not an array of step ids", name);
		jv_free(spec);
		jv_free(line);
		return 0;
	}
	if (!jv_is_valid(job)) {
		jv j = jv_object_get(jv_copy(line), jv_string("job"));
		if (jv_get_kind(j) == JV_KIND_OBJECT)
			job = j;
		else
			jv_free(j);
	}
	if (nsteps == capsteps)
		S = orch_xrealloc(S, (capsteps = capsteps ? 2 * capsteps : 256) * sizeof *S);
	struct step *s = &S[nsteps];
	memset(s, 0, sizeof *s);
	s->name = orch_xstrdup(name);
	s->spec = spec;
	s->needs = needs;
	s->result = jv_invalid();
	s->input = jv_invalid();
	s->pool = s->cond = -1;
	s->outfd = -1;
	double d;
	if (orch_jnum(line, "priority", &d) || orch_jnum(spec, "priority", &d))
		s->prio = d;
	s->index = orch_jnum(line, "index", &d) ? (long)d : nsteps;
	if (orch_jnum(spec, "retries", &d) && d >= 0)
		s->retries = d > 1000 ? 1000 : (int)d;
	if (orch_jnum(spec, "timeout_s", &d) && d > 0)
		s->timeout = d;
	s->cmd = orch_jstr(spec, "run");  /* lives as long as spec */
	if (!s->cmd)
		s->cmd = exec_cmd;
	if (!s->cmd)
		bad_at(r, "step %s has no run: and no --exec CMD was given", name);
	else if (!s->cmd[strspn(s->cmd, " \t\n")])
		bad_at(r, "step %s: empty command", name);
	if (orch_map_put(byname, s->name, nsteps)) {
		bad_at(r, "duplicate step id %s", name);
		free(s->name);
		jv_free(s->spec);
		jv_free(s->needs);
		jv_free(line);
		return 0;
	}
	nsteps++;
	jv_free(line);
	return 0;
}

static int find_pool(const char *name)
{
	for (int i = 0; i < npools; i++)
		if (strcmp(pools[i].name, name) == 0)
			return i;
	return -1;
}

static void load_pools(void)
{
	jv p = jv_is_valid(job) ? jv_object_get(jv_copy(job), jv_string("pools")) : jv_null();
	if (jv_get_kind(p) == JV_KIND_OBJECT) {
		pools = orch_xmalloc(jv_object_length(jv_copy(p)) * sizeof *pools);
		jv_object_foreach(p, k, v) {
			int lim = jv_get_kind(v) == JV_KIND_NUMBER ? (int)jv_number_value(v) : 0;
			if (lim < 1) {
				orch_err("pool %s: the limit must be a positive number", jv_string_value(k));
				lim = 1;
			}
			pools[npools++] = (struct pool){orch_xstrdup(jv_string_value(k)), lim, 0, {0}};
			jv_free(k);
			jv_free(v);
		}
	}
	jv_free(p);
}

/* Needs to indices, dependants, pools, cycles. Returns problems found. */
static int link_graph(void)
{
	int bad = 0;
	int *nr = orch_xmalloc((nsteps ? nsteps : 1) * sizeof *nr);
	memset(nr, 0, (nsteps ? nsteps : 1) * sizeof *nr);
	for (int i = 0; i < nsteps; i++) {
		struct step *s = &S[i];
		int n = jv_array_length(jv_copy(s->needs));
		s->dep = orch_xmalloc(n * sizeof *s->dep);
		jv_array_foreach(s->needs, k, nm) {
			long j = orch_map_get(byname, jv_string_value(nm));
			if (j < 0) {
				orch_err("step %s needs %s, which is not in the plan",
				         s->name, jv_string_value(nm));
				bad++;
			} else if (j == i) {
				orch_err("step %s needs itself", s->name);
				bad++;
			} else {
				int dup = 0;
				for (int m = 0; m < s->ndep; m++)
					dup |= s->dep[m] == j;
				if (!dup) {
					s->dep[s->ndep++] = (int)j;
					nr[j]++;
				}
			}
			jv_free(nm);
			(void)k;
		}
		const char *pool = orch_jstr(s->spec, "pool");
		if (pool && (s->pool = find_pool(pool)) < 0) {
			orch_err("step %s: pool %s is not in the job's pools", s->name, pool);
			bad++;
		}
	}
	for (int i = 0; i < nsteps; i++) {
		S[i].rdep = orch_xmalloc(nr[i] * sizeof(int));
		S[i].users = nr[i];
	}
	for (int i = 0; i < nsteps; i++)
		for (int k = 0; k < S[i].ndep; k++) {
			struct step *d = &S[S[i].dep[k]];
			d->rdep[d->nrdep++] = i;
		}
	if (bad == 0) {  /* Kahn: whatever is left over lies on or after a cycle */
		int *q = orch_xmalloc(nsteps * sizeof *q), qn = 0, seen = 0;
		for (int i = 0; i < nsteps; i++)
			if ((nr[i] = S[i].ndep) == 0)
				q[qn++] = i;
		while (qn > 0) {
			int i = q[--qn];
			seen++;
			for (int k = 0; k < S[i].nrdep; k++)
				if (--nr[S[i].rdep[k]] == 0)
					q[qn++] = S[i].rdep[k];
		}
		if (seen < nsteps) {
			for (int i = 0; i < nsteps; i++)
				if (nr[i] > 0) {
					orch_err("the plan has a cycle through step %s", S[i].name);
					break;
				}
			bad++;
		}
		free(q);
	}
	free(nr);
	return bad;
}

/* when: conditions, all compiled as one jq program. */
static int compile_conds(void)
{
	int n = 0, bad = 0;
	for (int i = 0; i < nsteps; i++)
		n += orch_jstr(S[i].spec, "when") != NULL;
	if (n == 0)
		return 0;
	char **texts = cond_texts = orch_xmalloc(n * sizeof *texts);
	char **errs = orch_xmalloc(n * sizeof *errs);
	memset(errs, 0, n * sizeof *errs);
	nconds = n;
	int *who = orch_xmalloc(n * sizeof *who), k = 0;
	for (int i = 0; i < nsteps; i++) {
		const char *w = orch_jstr(S[i].spec, "when");
		if (!w)
			continue;
		S[i].cond = k;
		who[k] = i;
		texts[k++] = orch_fmt("{{ [(%s\n) | if . then 1 else 0 end] | .[0] // 0 }}", w);
	}
	conds = orch_tmpl_compile((const char **)texts, n, errs);
	for (k = 0; k < n; k++) {
		if (errs[k]) {
			orch_err("step %s: when: %s", S[who[k]].name, errs[k]);
			bad++;
		}
		free(errs[k]);
	}
	if (!conds && !bad) {
		orch_err("cannot compile the when: conditions");
		bad++;
	}
	free(errs);
	free(who);
	return bad;
}

/* ---- events, output, progress ---- */

static double now(void) { return orch_mono(); }

static jv secs(double d) { return jv_number(round(d * 1000) / 1000); }

static void emit(const char *level, const char *type, const char *step, jv data)
{
	orch_emit(run_dir, level, type, step, data);
}

static void manifest_write(int force)
{
	if (!manifest || (!force && (!manifest_dirty || now() < manifest_at)))
		return;
	double t = now();
	orch_manifest_write(manifest);
	manifest_dirty = 0;
	/* at most every 0.5 s, and never more than ~5% of the time */
	manifest_at = now() + fmax(0.5, 20 * (now() - t));
}

static void show_progress(int force)
{
	if (!progress)
		return;
	double t = now();
	if (!force && t - progress_at < 0.1)
		return;
	progress_at = t;
	struct winsize ws;
	int width = ioctl(2, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 20 ? ws.ws_col - 1 : 79;
	char line[1024];
	int n = snprintf(line, sizeof line, "[%d/%d done, %d running, %d failed] %.1fs",
	                 ndone, nsteps, nrun, nfailed, t - t_start);
	for (int i = 0; i < nactive && n < (int)sizeof line - 1; i++)
		if (S[active[i]].st == ST_RUN)
			n += snprintf(line + n, sizeof line - n, " %s", S[active[i]].name);
	if (n > width)
		n = width;
	if (n > (int)sizeof line - 1)
		n = sizeof line - 1;
	fprintf(stderr, "\r\033[K%.*s", n, line);
	fflush(stderr);
}

static void clear_progress(void)
{
	if (progress)
		fputs("\r\033[K", stderr);
}

/* ---- running a step ---- */

/* Has cmd anything a shell would interpret? (as make decides) */
static int needs_shell(const char *cmd)
{
	static const char *builtins[] = {".", ":", "alias", "break", "case", "cd",
		"continue", "eval", "exec", "exit", "export", "for", "if", "read",
		"readonly", "return", "set", "shift", "source", "trap", "ulimit",
		"umask", "unalias", "unset", "until", "wait", "while", "{", "!", 0};
	if (strpbrk(cmd, "#;\"'*?[]&|<>(){}$`^~!\\\n=%"))
		return 1;
	const char *b = cmd + strspn(cmd, " \t");
	size_t n = strcspn(b, " \t");
	for (int i = 0; builtins[i]; i++)
		if (strlen(builtins[i]) == n && strncmp(b, builtins[i], n) == 0)
			return 1;
	return 0;
}

static int input_fd(struct step *s)
{
	jv in = jv_object_set(jv_copy(s->input), jv_string("attempt"), jv_number(s->attempt));
	size_t n;
	char *txt = orch_json_text(in, &n);
	txt[n++] = '\n';  /* over the NUL: the length is what counts */
	int fd = memfd_create("orch-step-input", MFD_CLOEXEC);
	if (fd >= 0 && (orch_write_all(fd, txt, n) < 0 || lseek(fd, 0, SEEK_SET) < 0)) {
		int e = errno;
		close(fd);
		errno = e;
		fd = -1;
	}
	free(txt);
	return fd;
}

/* stdout goes to artifacts/.<step>.out, renamed to <step>.json on success:
 * one file created per step, and no copy of a JSON result. */
static char *out_name(struct step *s) { return orch_fmt(".%s.out", s->name); }

/* A new file, never one that a process left over from a killed run may
 * still be writing to. */
static int create_new(int dirfd, const char *name, int flags)
{
	flags |= O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW;
	int fd = openat(dirfd, name, flags, 0644);
	if (fd < 0 && errno == EEXIST && unlinkat(dirfd, name, 0) == 0)
		fd = openat(dirfd, name, flags, 0644);
	return fd;
}

static int output_fd(struct step *s)
{
	char *name = out_name(s);
	int fd = create_new(art_fd, name, O_RDWR);
	free(name);
	return fd;
}

/* Commands are looked up in PATH once per name, not once per step. */
static orch_map *paths;
static char **path_keys, **path_vals;
static int npaths;

static const char *resolve(const char *name)
{
	if (strchr(name, '/'))
		return name;
	long k = orch_map_get(paths, name);
	if (k >= 0)
		return path_vals[k];
	const char *p = getenv("PATH");
	char *found = NULL;
	for (p = p ? p : "/usr/local/bin:/usr/bin:/bin"; !found; p++) {
		size_t n = strcspn(p, ":");
		char *cand = orch_fmt("%.*s%s%s", (int)n, p, n ? "/" : "", name);
		struct stat st;
		if (access(cand, X_OK) == 0 && stat(cand, &st) == 0 && S_ISREG(st.st_mode))
			found = cand;
		else
			free(cand);
		p += n;
		if (!*p)
			break;
	}
	if (!found)
		return name;  /* posix_spawnp will say what is wrong */
	path_keys = orch_xrealloc(path_keys, (npaths + 1) * sizeof *path_keys);
	path_vals = orch_xrealloc(path_vals, (npaths + 1) * sizeof *path_vals);
	path_keys[npaths] = orch_xstrdup(name);
	path_vals[npaths] = found;
	orch_map_put(paths, path_keys[npaths], npaths);
	return path_vals[npaths++];
}

/* Start attempt s->attempt. 0, or errno (nothing runs). */
static int spawn(struct step *s)
{
	char *lname = orch_fmt("%s.log", s->name);
	int in = input_fd(s), out = in < 0 ? -1 : output_fd(s);
	int log = out < 0 ? -1 : openat(log_fd, lname, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC |
	                                (s->attempt == 1 ? O_TRUNC : 0), 0644);
	int err = log < 0 ? errno : 0;
	free(lname);
	if (err) {
		if (in >= 0)
			close(in);
		if (out >= 0)
			close(out);
		char *o = out_name(s);
		unlinkat(art_fd, o, 0);
		free(o);
		return err;
	}
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t none, dfl;
	sigemptyset(&none);
	sigemptyset(&dfl);
	int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE, SIGCHLD, SIGTTOU, SIGTTIN};
	for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++)
		sigaddset(&dfl, sigs[i]);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, in, 0);
	posix_spawn_file_actions_adddup2(&fa, out, 1);
	posix_spawn_file_actions_adddup2(&fa, log, 2);
	posix_spawnattr_init(&at);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
	                         POSIX_SPAWN_SETSIGDEF);
	posix_spawnattr_setpgroup(&at, 0);
	posix_spawnattr_setsigmask(&at, &none);
	posix_spawnattr_setsigdefault(&at, &dfl);

	envp[nenv + 2] = orch_fmt("ORCH_STEP=%s", s->name);
	envp[nenv + 3] = orch_fmt("ORCH_ATTEMPT=%d", s->attempt);
	char *copy = NULL, *shv[4] = {"/bin/sh", "-c", (char *)s->cmd, NULL};
	char **argv = shv;
	if (!needs_shell(s->cmd)) {
		copy = orch_xstrdup(s->cmd);
		size_t n = 0;
		for (char *p = copy; *p; p++)
			n += (p == copy || p[-1] == ' ' || p[-1] == '\t') && *p != ' ' && *p != '\t';
		argv = orch_xmalloc((n + 1) * sizeof *argv);
		n = 0;
		for (char *t = strtok(copy, " \t"); t; t = strtok(NULL, " \t"))
			argv[n++] = t;
		argv[n] = NULL;
	}
	const char *file = resolve(argv[0]);
	err = file == argv[0] ? posix_spawnp(&s->pid, file, &fa, &at, argv, envp)
	                      : posix_spawn(&s->pid, file, &fa, &at, argv, envp);
	if (copy) {
		free(argv);
		free(copy);
	}
	free(envp[nenv + 2]);
	free(envp[nenv + 3]);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	close(in);
	close(log);
	if (err) {
		close(out);
		char *o = out_name(s);
		unlinkat(art_fd, o, 0);
		free(o);
		s->pid = 0;
		return err;
	}
	s->outfd = out;
	return 0;
}

/* The input record: taken once per step, before its first attempt. */
static jv input_record(struct step *s)
{
	jv steps = jv_object();
	for (int k = 0; k < s->ndep; k++) {
		struct step *d = &S[s->dep[k]];
		jv r = d->st == ST_OK || d->st == ST_DONE ? jv_copy(d->result) : jv_null();
		steps = jv_object_set(steps, jv_string(d->name), r);
		if (--d->users == 0) {
			jv_free(d->result);
			d->result = jv_invalid();
		}
	}
	jv in = jv_object();
	in = jv_object_set(in, jv_string("job_id"), jv_string(job_id));
	in = jv_object_set(in, jv_string("step"), jv_string(s->name));
	in = jv_object_set(in, jv_string("attempt"), jv_number(1));
	in = jv_object_set(in, jv_string("run_dir"), jv_string(run_dir));
	jv task = jv_is_valid(job) ? jv_object_get(jv_copy(job), jv_string("task")) : jv_null();
	in = jv_object_set(in, jv_string("task"), jv_is_valid(task) ? task : jv_null());
	jv inputs = jv_is_valid(job) ? jv_object_get(jv_copy(job), jv_string("inputs")) : jv_null();
	in = jv_object_set(in, jv_string("inputs"),
	                   jv_get_kind(inputs) == JV_KIND_OBJECT ? inputs : (jv_free(inputs), jv_object()));
	in = jv_object_set(in, jv_string("spec"), jv_copy(s->spec));
	return jv_object_set(in, jv_string("steps"), steps);
}

static void add_active(int i)
{
	active[nactive++] = i;
	if (S[i].pool >= 0)
		pools[S[i].pool].used++;
}

static void drop_active(int i)
{
	for (int k = 0; k < nactive; k++)
		if (active[k] == i) {
			active[k] = active[--nactive];
			break;
		}
	if (S[i].pool >= 0) {
		struct pool *p = &pools[S[i].pool];
		p->used--;
		if (p->wait.n > 0)
			heap_push(&ready, heap_pop(&p->wait));
	}
	jv_free(S[i].input);
	S[i].input = jv_invalid();
}

static void ready_step(int i)
{
	if (S[i].st != ST_WAIT)
		return;
	S[i].st = ST_READY;
	heap_push(&ready, i);
}

/* s is done and dependants may take its result. */
static void release(int i)
{
	for (int k = 0; k < S[i].nrdep; k++) {
		int d = S[i].rdep[k];
		if (--S[d].pending == 0)
			ready_step(d);
	}
	if (S[i].users == 0) {
		jv_free(S[i].result);
		S[i].result = jv_invalid();
	}
}

/* Every step that needs i, directly or not, will not run. */
static void skip_dependants(int i)
{
	int *stack = orch_xmalloc(nsteps * sizeof *stack), n = 0;
	stack[n++] = i;
	while (n > 0) {
		struct step *s = &S[stack[--n]];
		for (int k = 0; k < s->nrdep; k++) {
			struct step *d = &S[s->rdep[k]];
			if (d->st != ST_WAIT)
				continue;
			d->st = ST_UPSKIP;
			jv data = jv_object_set(jv_object(), jv_string("reason"), jv_string("upstream_failed"));
			data = jv_object_set(data, jv_string("failed"), jv_string(S[i].name));
			emit("WARN", "step.skipped", d->name, data);
			manifest_dirty = 1;
			stack[n++] = s->rdep[k];
		}
	}
	free(stack);
}

static void final_failure(int i)
{
	S[i].st = ST_FAIL;
	nfailed++;
	failed_names = jv_array_append(failed_names, jv_string(S[i].name));
	skip_dependants(i);
	if (!keep_going)
		stop_starting = 1;
}

static void emit_failed(struct step *s, const char *kind, const char *msg, int will_retry,
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
	manifest_dirty = 1;
}

/* An attempt failed: retry it after a backoff, or give up. */
static void attempt_failed(int i, const char *kind, const char *msg, int retryable,
                           const char *extra, int val)
{
	struct step *s = &S[i];
	int again = retryable && s->attempt <= s->retries && !stop_sig;
	emit_failed(s, kind, msg, again, extra, val);
	if (strcmp(kind, "interrupted") == 0) {  /* not a failure: resume runs it */
		drop_active(i);
		s->st = ST_STOPPED;
		return;
	}
	if (again) {
		double cap = backoff_base * pow(2, s->attempt - 1);
		if (cap > backoff_max)
			cap = backoff_max;
		double delay = cap * (randombytes_random() / 4294967296.0);  /* full jitter */
		jv data = jv_object_set(jv_object(), jv_string("attempt"), jv_number(s->attempt + 1));
		data = jv_object_set(data, jv_string("delay_s"), secs(delay));
		emit("INFO", "step.retrying", s->name, data);
		s->st = ST_BACKOFF;
		s->wake = now() + delay;
		return;
	}
	drop_active(i);
	final_failure(i);
}

static void start_attempt(int i)
{
	struct step *s = &S[i];
	s->attempt++;
	s->timed_out = s->stopped = 0;
	s->kill_at = 0;
	jv data = jv_object_set(jv_object(), jv_string("needs"), jv_copy(s->needs));
	data = jv_object_set(data, jv_string("attempt"), jv_number(s->attempt));
	emit("INFO", "step.started", s->name, data);
	manifest_dirty = 1;
	s->t0 = now();
	int err = spawn(s);
	if (err) {
		char *msg = orch_fmt("cannot run %s: %s", s->cmd, strerror(err));
		s->st = ST_RUN;
		attempt_failed(i, "spawn", msg, 0, "exit_code", 127);
		free(msg);
		return;
	}
	s->st = ST_RUN;
	nrun++;
	s->deadline = s->timeout > 0 ? s->t0 + s->timeout : 0;
}

/* Start what may start: ready steps, by priority, within -j and pools. */
static void start_ready(void)
{
	while (!stop_starting && ready.n > 0 && nactive < jobs) {
		int i = heap_pop(&ready);
		struct step *s = &S[i];
		if (s->pool >= 0 && pools[s->pool].used >= pools[s->pool].limit) {
			heap_push(&pools[s->pool].wait, i);
			continue;
		}
		s->input = input_record(s);
		if (s->cond >= 0) {
			char *err = NULL, *r = orch_tmpl_render(conds, s->cond, s->input, &err);
			if (!r || strcmp(r, "1") != 0) {
				if (r) {
					s->st = ST_COND;
					ndone++;
					emit("INFO", "step.skipped", s->name,
					     jv_object_set(jv_object(), jv_string("reason"), jv_string("condition")));
					manifest_dirty = 1;
					jv_free(s->input);
					s->input = jv_invalid();
					release(i);
				} else {
					/* err is "{{ <the hole> }}: <what jq said>": keep the latter */
					size_t len = strlen(cond_texts[s->cond]);
					const char *why = err;
					if (strlen(err) >= len + 2 && strncmp(err + len - 3, " }}: ", 5) == 0)
						why = err + len + 2;
					char *msg = orch_fmt("when: %s", why);
					add_active(i);
					s->attempt = 1;
					attempt_failed(i, "condition", msg, 0, NULL, 0);
					free(msg);
				}
				free(r);
				free(err);
				continue;
			}
			free(r);
		}
		add_active(i);
		start_attempt(i);
	}
}

/* The stored result: stdout if it is one JSON object, else wrapped. */
static jv read_result(struct step *s, int code, int *err, int *wrapped)
{
	struct stat st;
	*err = errno = 0;
	*wrapped = 0;
	if (fstat(s->outfd, &st) < 0) {
		*err = errno;
		return jv_invalid();
	}
	char *buf = orch_xmalloc((size_t)st.st_size + 1);
	size_t n = 0;
	while (n < (size_t)st.st_size) {
		ssize_t r = pread(s->outfd, buf + n, (size_t)st.st_size - n, (off_t)n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			if (r < 0)
				*err = errno;
			break;
		}
		n += (size_t)r;
	}
	buf[n] = 0;
	jv v = n > 0 && n < (size_t)INT32_MAX ? jv_parse_sized(buf, (int)n) : jv_invalid();
	if (jv_get_kind(v) != JV_KIND_OBJECT) {
		jv_free(v);
		*wrapped = 1;
		v = jv_object_set(jv_object(), jv_string("step"), jv_string(s->name));
		v = jv_object_set(v, jv_string("output"), jv_string_sized(buf, n > INT32_MAX ? INT32_MAX : (int)n));
		v = jv_object_set(v, jv_string("exit_code"), jv_number(code));
	}
	free(buf);
	return v;
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
	struct step *s = &S[i];
	int err;
	int wrapped;
	jv r = read_result(s, 0, &err, &wrapped);
	char *out = out_name(s), *name = orch_fmt("%s.json", s->name);
	if (!err && wrapped) {  /* the wrapped record replaces what it wraps */
		size_t n;
		char *txt = orch_json_text(jv_copy(r), &n);
		txt[n++] = '\n';
		if (ftruncate(s->outfd, 0) < 0 || pwrite(s->outfd, txt, n, 0) != (ssize_t)n)
			err = errno ? errno : EIO;
		free(txt);
	}
	if (!err && renameat(art_fd, out, art_fd, name) < 0)  /* no fsync: see the header */
		err = errno;
	free(out);
	free(name);
	if (err) {
		char *msg = orch_fmt("cannot store artifacts/%s.json: %s", s->name, strerror(err));
		orch_err("%s", msg);
		attempt_failed(i, "artifact", msg, 0, NULL, 0);
		free(msg);
		jv_free(r);
		return;
	}
	jv data = jv_object_set(jv_object(), jv_string("duration_s"), secs(now() - s->t0));
	data = jv_object_set(data, jv_string("provider_calls"), jv_number(provider_calls(r)));
	data = jv_object_set(data, jv_string("attempt"), jv_number(s->attempt));
	emit("INFO", "step.succeeded", s->name, data);
	manifest_dirty = 1;
	orch_put(jv_copy(r));
	s->st = ST_OK;
	s->result = r;
	ndone++;
	nstored++;
	drop_active(i);
	release(i);
}

static void reaped(int i, int status)
{
	struct step *s = &S[i];
	nrun--;
	s->pid = 0;
	char msg[256];
	if (s->stopped) {
		snprintf(msg, sizeof msg, "interrupted");
		attempt_failed(i, "interrupted", msg, 0, NULL, 0);
	} else if (s->timed_out) {
		snprintf(msg, sizeof msg, "timed out after %gs", s->timeout);
		attempt_failed(i, "timeout", msg, 1, NULL, 0);
	} else if (WIFSIGNALED(status)) {
		int sig = WTERMSIG(status);
		snprintf(msg, sizeof msg, "killed by signal %d (SIG%s)", sig, sigabbrev_np(sig) ? sigabbrev_np(sig) : "?");
		attempt_failed(i, "signal", msg, 1, "signal", sig);
	} else if (WEXITSTATUS(status) != 0) {
		int code = WEXITSTATUS(status);
		snprintf(msg, sizeof msg, "exited with %d%s", code,
		         code == EX_TEMP ? " (temporary failure)" : code == EX_USAGE ? " (bad input)" : "");
		attempt_failed(i, "exit", msg, code == EX_TEMP, "exit_code", code);
	} else
		succeeded(i);
	if (s->outfd >= 0) {
		close(s->outfd);
		s->outfd = -1;
	}
	if (s->st != ST_OK) {  /* failed: its stdout is not a result */
		char *out = out_name(s);
		unlinkat(art_fd, out, 0);
		free(out);
	}
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
		for (int k = 0; k < nactive; k++)
			if (S[active[k]].pid == pid) {
				reaped(active[k], status);
				break;
			}
	}
}

/* Timers: timeouts, kills after grace, retries. Returns the next one. */
static double timers(void)
{
	double t = now(), next = INFINITY;
	for (int k = 0; k < nactive; k++) {
		int i = active[k];
		struct step *s = &S[i];
		if (s->st == ST_BACKOFF) {
			if (t >= s->wake && !stop_sig) {
				start_attempt(i);
				if (S[i].st != ST_RUN || k >= nactive || active[k] != i)
					k--;  /* it left the active list; look at this slot again */
				continue;
			}
			next = fmin(next, s->wake);
			continue;
		}
		if (s->st != ST_RUN)
			continue;
		if (s->deadline > 0 && !s->timed_out && !s->stopped && t >= s->deadline) {
			kill(-s->pid, SIGTERM);
			s->timed_out = 1;
			s->kill_at = t + grace;
		}
		if (s->kill_at > 0 && t >= s->kill_at) {
			kill(-s->pid, SIGKILL);
			s->kill_at = 0;
		}
		if (s->kill_at > 0)
			next = fmin(next, s->kill_at);
		else if (s->deadline > 0 && !s->timed_out && !s->stopped)
			next = fmin(next, s->deadline);
	}
	if (manifest_dirty)
		next = fmin(next, manifest_at);
	if (progress)
		next = fmin(next, t + 0.5);
	return next;
}

static void interrupt(int sig)
{
	int again = stop_sig != 0;
	stop_sig = sig;
	stop_starting = 1;
	double t = now();
	for (int k = 0; k < nactive; k++) {
		struct step *s = &S[active[k]];
		if (s->st != ST_RUN)
			continue;
		s->stopped = 1;
		kill(-s->pid, again ? SIGKILL : SIGTERM);
		s->kill_at = again ? 0 : t + grace;
	}
	for (int k = 0; k < nactive; k++) {
		int i = active[k];
		if (S[i].st == ST_BACKOFF) {
			S[i].t0 = 0;
			attempt_failed(i, "interrupted", "interrupted while waiting to retry", 0, NULL, 0);
			k--;
		}
	}
}

static void run_loop(void)
{
	for (;;) {
		reap_all();
		timers();
		start_ready();
		double next = timers();  /* again: what just started has deadlines */
		manifest_write(0);
		show_progress(0);
		if (nactive == 0 && (stop_starting || ready.n == 0))
			break;
		if (nrun > 0 || isfinite(next)) {
			/* a child that exited since reap_all left SIGCHLD pending */
			struct timespec ts, *tp = NULL;
			if (isfinite(next)) {
				double d = next - now();
				if (d < 0)
					d = 0;
				ts.tv_sec = (time_t)d;
				ts.tv_nsec = (long)((d - (double)ts.tv_sec) * 1e9);
				tp = &ts;
			}
			int sig = sigtimedwait(&waited, NULL, tp);
			if (sig == SIGINT || sig == SIGTERM || sig == SIGHUP)
				interrupt(sig);
		}
	}
}

/* ---- the run folder ---- */

static void lock_run(void)
{
	char *path = orch_path(run_dir, ".lock");
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		orch_die_sys(EX_FAIL, "cannot open %s", path);
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		if (errno != EWOULDBLOCK)
			orch_die_sys(EX_FAIL, "cannot lock %s", path);
		char pid[32] = "", who[48] = "";
		ssize_t n = pread(fd, pid, sizeof pid - 1, 0);
		pid[n > 0 ? n : 0] = 0;
		pid[strcspn(pid, "\n")] = 0;
		if (*pid)
			snprintf(who, sizeof who, " (pid %s)", pid);
		if (!wait_lock)
			orch_die(EX_TEMP, "%s: another orch-sched%s is running this job "
			         "(--wait waits for it)", run_dir, who);
		while (flock(fd, LOCK_EX) < 0)
			if (errno != EINTR)
				orch_die_sys(EX_FAIL, "cannot lock %s", path);
	}
	char pid[32];
	int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) == 0 && pwrite(fd, pid, n, 0) < 0)
		orch_err_sys("cannot write %s", path);
	free(path);  /* fd stays open, and locked, until we exit */
}

static void setup_env(void)
{
	size_t n = 0;
	for (char **e = environ; *e; e++)
		n++;
	envp = orch_xmalloc((n + 5) * sizeof *envp);
	for (char **e = environ; *e; e++)
		if (strncmp(*e, "ORCH_RUN_DIR=", 13) && strncmp(*e, "ORCH_JOB_ID=", 12) &&
		    strncmp(*e, "ORCH_STEP=", 10) && strncmp(*e, "ORCH_ATTEMPT=", 13))
			envp[nenv++] = *e;
	envp[nenv] = orch_fmt("ORCH_RUN_DIR=%s", run_dir);
	envp[nenv + 1] = orch_fmt("ORCH_JOB_ID=%s", job_id);
	envp[nenv + 4] = NULL;
}

static jv provider_name(void)
{
	jv p = jv_is_valid(job) ? jv_object_get(jv_copy(job), jv_string("provider")) : jv_null();
	for (int i = 0; i < nsteps && jv_get_kind(p) != JV_KIND_OBJECT &&
	                jv_get_kind(p) != JV_KIND_STRING; i++) {
		jv_free(p);
		p = jv_object_get(jv_copy(S[i].spec), jv_string("provider"));
	}
	if (jv_get_kind(p) == JV_KIND_OBJECT)
		p = jv_object_get(p, jv_string("name"));
	if (jv_get_kind(p) != JV_KIND_STRING) {
		jv_free(p);
		p = jv_null();
	}
	return p;
}

static int usable(const char *opt, const char *arg, double *out, double min)
{
	char *end;
	double d = strtod(arg, &end);
	if (end == arg || *end || !(d >= min) || !isfinite(d)) {
		orch_err("%s: not a number >= %g: %s", opt, min, arg);
		orch_usage(usage);
	}
	*out = d;
	return 1;
}

/* Steps that succeeded before: skipped, their stored results kept. */
static void take_completed(void)
{
	char *ev = orch_path(run_dir, "events.jsonl");
	jv done = orch_events_completed(ev);
	free(ev);
	for (int i = 0; i < nsteps; i++) {
		jv has = jv_object_get(jv_copy(done), jv_string(S[i].name));
		int yes = jv_get_kind(has) == JV_KIND_TRUE;
		jv_free(has);
		if (!yes)
			continue;
		char *path = orch_fmt("%s/artifacts/%s.json", run_dir, S[i].name);
		char *text = orch_slurp(path, NULL);
		free(path);
		jv r = text ? jv_parse(text) : jv_invalid();
		free(text);
		if (jv_get_kind(r) != JV_KIND_OBJECT) {  /* no usable artifact: run it again */
			jv_free(r);
			continue;
		}
		S[i].st = ST_DONE;
		S[i].result = r;
		ndone++;
		nstored++;
		emit("INFO", "step.skipped", S[i].name,
		     jv_object_set(jv_object(), jv_string("reason"), jv_string("completed")));
	}
	jv_free(done);
	for (int i = 0; i < nsteps; i++)
		if (S[i].st == ST_DONE)
			release(i);
}

static void free_all(void)
{
	for (int i = 0; i < nsteps; i++) {
		free(S[i].name);
		jv_free(S[i].spec);
		jv_free(S[i].needs);
		jv_free(S[i].result);
		jv_free(S[i].input);
		free(S[i].dep);
		free(S[i].rdep);
	}
	free(S);
	for (int i = 0; i < npools; i++) {
		free(pools[i].name);
		free(pools[i].wait.a);
	}
	free(pools);
	free(ready.a);
	free(active);
	orch_map_free(byname);
	orch_map_free(paths);
	for (int i = 0; i < npaths; i++) {
		free(path_keys[i]);
		free(path_vals[i]);
	}
	free(path_keys);
	free(path_vals);
	orch_tmpl_free(conds);
	for (int k = 0; k < nconds; k++)
		free(cond_texts[k]);
	free(cond_texts);
	orch_manifest_free(manifest);
	jv_free(job);
	jv_free(failed_names);
	if (envp) {
		free(envp[nenv]);
		free(envp[nenv + 1]);
		free(envp);
	}
	free(job_id);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"jobs", required_argument, 0, 'j'},
		{"keep-going", no_argument, 0, 'k'},
		{"quiet", no_argument, 0, 'q'},
		{"resume", no_argument, 0, 'R'},
		{"exec", required_argument, 0, 'x'},
		{"wait", no_argument, 0, 'W'},
		{"grace", required_argument, 0, 'g'},
		{"backoff-base", required_argument, 0, 'b'},
		{"backoff-max", required_argument, 0, 'B'},
		ORCH_COMMON_LONGOPTS,
		{0, 0, 0, 0}};
	orch_init(argc, argv);
	int c;
	double d;
	while ((c = getopt_long(argc, argv, "j:kqh", longopts, NULL)) != -1) {
		switch (c) {
		case 'j': usable("-j", optarg, &d, 1); jobs = d > 100000 ? 100000 : (int)d; break;
		case 'k': keep_going = 1; break;
		case 'q': quiet = 1; break;
		case 'R': resume = 1; break;
		case 'x': exec_cmd = optarg; break;
		case 'W': wait_lock = 1; break;
		case 'g': usable("--grace", optarg, &grace, 0); break;
		case 'b': usable("--backoff-base", optarg, &backoff_base, 0); break;
		case 'B': usable("--backoff-max", optarg, &backoff_max, 0); break;
		default:
			if (!orch_common(c, optarg, usage))
				orch_usage(usage);
		}
	}
	job = jv_invalid();
	failed_names = jv_array();
	byname = orch_map_new(1024);
	paths = orch_map_new(16);

	/* 1. the whole plan, checked before anything runs */
	struct reader r = {"-", 0, 0};
	int rc = 0;
	if (optind == argc)
		rc = orch_records(stdin, "-", add_line, &r);
	for (int k = optind; k < argc && rc == 0; k++) {
		FILE *f = strcmp(argv[k], "-") ? fopen(argv[k], "r") : stdin;
		if (!f)
			orch_die_sys(EX_USAGE, "cannot open %s", argv[k]);
		r.file = argv[k];
		r.rec = 0;
		rc = orch_records(f, argv[k], add_line, &r);
		if (f != stdin)
			fclose(f);
	}
	if (rc)
		orch_exit(rc);
	if (nsteps == 0 && !r.bad)
		orch_die(EX_USAGE, "no plan lines: nothing to run");
	load_pools();
	if (r.bad || link_graph() || compile_conds()) {
		free_all();
		orch_exit(EX_USAGE);
	}
	if (jobs == 0) {
		jobs = 4;
		if (jv_is_valid(job) && orch_jnum(job, "concurrency", &d) && d >= 1)
			jobs = (int)d;
	}

	/* 2. the run folder, locked */
	const char *jid = jv_is_valid(job) ? orch_jstr(job, "job_id") : NULL;
	char *dir = NULL;
	run_dir = orch_run_dir();
	if (!run_dir) {
		if (!jid || !orch_job_id_valid(jid))
			orch_die(EX_USAGE, "the plan has no valid job.job_id: give --run DIR");
		run_dir = dir = orch_run_dir_for(jid);
	}
	if (orch_run_create(run_dir) < 0)
		orch_exit(EX_FAIL);
	char *abs = realpath(run_dir, NULL);
	if (!abs)
		orch_die_sys(EX_FAIL, "%s", run_dir);
	free(dir);
	run_dir = abs;
	job_id = jid ? orch_xstrdup(jid) : orch_run_job_id(run_dir);
	lock_run();
	setenv("ORCH_RUN_DIR", run_dir, 1);
	setenv("ORCH_JOB_ID", job_id, 1);
	unsetenv("ORCH_STEP");
	char *sub = orch_path(run_dir, "artifacts");
	art_fd = open(sub, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	free(sub);
	sub = orch_path(run_dir, "logs");
	log_fd = open(sub, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	free(sub);
	if (art_fd < 0 || log_fd < 0)
		orch_die_sys(EX_FAIL, "%s: cannot open artifacts/ or logs/", run_dir);
	setup_env();

	/* 3. signals: waited for, never handled asynchronously */
	sigemptyset(&waited);
	sigaddset(&waited, SIGCHLD);
	int stops[] = {SIGINT, SIGTERM, SIGHUP};
	for (int k = 0; k < 3; k++) {  /* ignored at startup (nohup): stays ignored */
		struct sigaction sa;
		if (sigaction(stops[k], NULL, &sa) == 0 && sa.sa_handler != SIG_IGN)
			sigaddset(&waited, stops[k]);
	}
	sigprocmask(SIG_BLOCK, &waited, NULL);
	signal(SIGPIPE, SIG_IGN);

	/* 4. run */
	t_start = now();
	progress = !quiet && isatty(2);
	jv data = jv_object();
	data = jv_object_set(data, jv_string("project"), jv_string(job_id));
	data = jv_object_set(data, jv_string("provider"), provider_name());
	jv task = jv_is_valid(job) ? jv_object_get(jv_copy(job), jv_string("task")) : jv_null();
	data = jv_object_set(data, jv_string("task"), jv_is_valid(task) ? task : jv_null());
	char *evp = orch_path(run_dir, "events.jsonl");
	struct stat est;
	int resumed = resume && stat(evp, &est) == 0 && est.st_size > 0;  /* else: a fresh start */
	free(evp);
	data = jv_object_set(data, jv_string("resume"), jv_bool(resumed));
	data = jv_object_set(data, jv_string("steps"), jv_number(nsteps));
	data = jv_object_set(data, jv_string("jobs"), jv_number(jobs));
	emit("INFO", "job.started", NULL, data);
	manifest = orch_manifest_new(run_dir);
	for (int i = 0; i < nsteps; i++)
		S[i].pending = S[i].ndep;
	active = orch_xmalloc(((jobs < nsteps ? jobs : nsteps) + 1) * sizeof *active);
	if (resume)
		take_completed();
	for (int i = 0; i < nsteps; i++)
		if (S[i].pending == 0)
			ready_step(i);
	run_loop();

	/* 5. the end */
	clear_progress();
	data = jv_object();
	int code = EX_OK;
	if (stop_sig) {
		data = jv_object_set(data, jv_string("error"), jv_string("interrupted"));
		data = jv_object_set(data, jv_string("signal"), jv_number(stop_sig));
		code = EX_SIGNAL + stop_sig;
	} else if (nfailed) {
		jv first = jv_array_get(jv_copy(failed_names), 0);
		data = jv_object_set(data, jv_string("error"),
		                     nfailed == 1 ? jv_string_fmt("step %s failed", jv_string_value(first))
		                                  : jv_string_fmt("%d steps failed", nfailed));
		jv_free(first);
		data = jv_object_set(data, jv_string("failed"), jv_copy(failed_names));
		code = EX_FAIL;
	} else
		data = jv_object_set(data, jv_string("artifacts"), jv_number(nstored));
	data = jv_object_set(data, jv_string("duration_s"), secs(now() - t_start));
	emit(code ? "ERROR" : "INFO", code ? "job.failed" : "job.succeeded", NULL, data);
	manifest_write(1);
	if (code == EX_FAIL)
		orch_err("%s: %d of %d steps failed", job_id, nfailed, nsteps);
	else if (stop_sig)
		orch_err("%s: interrupted (%s)", job_id, sigabbrev_np(stop_sig));
	free_all();
	free(abs);
	orch_exit(code);
}
