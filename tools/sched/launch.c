/* launch.c: steps run through a launcher, such as Slurm's srun or ssh.
 *
 * A launcher is a command prefix (launcher: of a step, its pool or the
 * job, else --launcher, else $ORCH_LAUNCHER), split into words at blanks
 * (no shell, no quotes), with placeholders {step} {run} {runhash} {job}
 * {attempt} {cpus} {mem} {gpus} {time} {minutes}; a word whose placeholder
 * has no value (no mem, gpus or time given) is left out. "slurm" or "ssh"
 * as the first word is that preset below; "local" is no launcher. spawn.c
 * spawns
 *
 *   LAUNCHER... orch-sched --remote-exec RUN STEP TOKEN -- COMMAND...
 *
 * as the leader of the step's process group (for ssh, the words from
 * orch-sched on go as one, quoted for the far side's sh, after a cd to the
 * step's folder and with PATH and ORCH_* set: ssh passes no environment).
 * On the far side, this program runs the command (remote_exec) with
 * ORCH_EVENTS_FILE set (merge.c), and writes its true exit status
 * to RUN/logs/STEP.status; the launcher's own status is not trusted (srun
 * says 0 when the node under the step dies, with the output cut). No
 * status file with this attempt's TOKEN means the attempt was lost (ssh's
 * exit 255: no connection): it is retried. Assumes the run folder, and
 * this program, are at the same path on every machine the launcher may
 * choose (a shared file system), and for ssh a POSIX sh as login shell.
 * For srun, the launcher is checked once at start (srun --test-only), and
 * on --resume the steps that a killed scheduler left running are cancelled
 * before anything starts.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <sodium.h>
#include "orch.h"
#include "sched.h"

extern char **environ;

struct launcher {
	char *text;          /* as given */
	char *buf;           /* the user's words, split in place */
	const char **word;   /* the preset's words, then the user's */
	int nword;
	int srun;            /* its command is srun */
	int ssh;             /* its command is ssh: our words go as one */
};

static struct {
	struct launcher *l;
	int n;
	char *self;          /* this program, run on the far side */
	char runhash[17];    /* of the run folder's path: job names */
	char token[9];       /* this scheduler's, in each status file */
	char *cwd;           /* where steps run, if not in the job's workdir */
} L;

static const char *const slurm_preset[] = {"srun", "--quiet",
	"--job-name=orch.{runhash}.{step}", "--nodes=1", "--ntasks=1",
	"--cpus-per-task={cpus}", "--mem={mem}M", "--time={minutes}", "--export=ALL", 0};

static const char *const ssh_preset[] = {"ssh", "-T", "-o", "BatchMode=yes", 0};

static const char *const holders[] = {"step", "run", "runhash", "job", "attempt",
	"cpus", "mem", "gpus", "time", "minutes", 0};

/* The placeholder at p (a '{'): its index, and *len its length with the
 * braces; -1 if none is named there. */
static int holder_at(const char *p, size_t *len)
{
	size_t n = strcspn(p + 1, "{}");
	if (p[1 + n] != '}')
		return -1;
	for (int k = 0; holders[k]; k++)
		if (strlen(holders[k]) == n && strncmp(p + 1, holders[k], n) == 0) {
			*len = n + 2;
			return k;
		}
	return -1;
}

/* Placeholder k of step s, written to f; 0 if it has no value. */
static int put_value(int k, const struct step *s, FILE *f)
{
	switch (k) {
	case 0: fputs(s->name, f); return 1;
	case 1: fputs(run.dir, f); return 1;
	case 2: fputs(L.runhash, f); return 1;
	case 3: fputs(run.job_id, f); return 1;
	case 4: fprintf(f, "%d", s->attempt); return 1;
	case 5: fprintf(f, "%d", s->cpus); return 1;
	case 6: return s->mem_mb > 0 && fprintf(f, "%ld", s->mem_mb) > 0;
	case 7: return s->gpus > 0 && fprintf(f, "%d", s->gpus) > 0;
	case 8: return s->time_s > 0 && fprintf(f, "%.0f", ceil(s->time_s)) > 0;
	default: return s->time_s > 0 && fprintf(f, "%.0f", ceil(s->time_s / 60)) > 0;
	}
}

/* Word w with step s's values; NULL if a placeholder has none. */
static char *expand(const char *w, const struct step *s)
{
	char *out = NULL;
	size_t n = 0, len;
	FILE *f = open_memstream(&out, &n);
	int ok = 1;
	for (const char *p = w; *p && ok; p++) {
		int k = *p == '{' ? holder_at(p, &len) : -1;
		if (k < 0)
			fputc(*p, f);
		else {
			ok = put_value(k, s, f);
			p += len - 1;
		}
	}
	fclose(f);
	if (!ok) {
		free(out);
		out = NULL;
	}
	return out;
}

/* Every placeholder in the launcher's words is known: 0, or 1 (reported). */
static int check_holders(const struct launcher *l, const char *where)
{
	size_t len;
	for (int i = 0; i < l->nword; i++)
		for (const char *p = strchr(l->word[i], '{'); p; p = strchr(p + 1, '{'))
			if (holder_at(p, &len) < 0) {
				orch_err("%s: launcher: unknown placeholder in %s", where, l->word[i]);
				return 1;
			}
	return 0;
}

/* The preset's words at w, for the launcher's first word t: how many (0:
 * t is no preset). Inside a Slurm allocation ($SLURM_JOB_ID) a step takes
 * only what it asks for (--exact). */
static int put_preset(const char *t, const char **w)
{
	const char *const *p = strcmp(t, "slurm") == 0 ? slurm_preset
	                     : strcmp(t, "ssh") == 0 ? ssh_preset : NULL;
	int n = 0;
	while (p && p[n])
		w[n] = p[n], n++;
	if (p == slurm_preset && getenv("SLURM_JOB_ID")) {
		w[n++] = "--exact";
		w[n++] = "-N1";
	}
	return n;
}

static int named(const char *path, const char *base)
{
	const char *b = strrchr(path, '/');
	return strcmp(b ? b + 1 : path, base) == 0;
}

/* The launcher text as words: 0, or 1 (reported). "slurm" or "ssh" first
 * is that preset, the user's words after its own. */
static int split_launcher(struct launcher *l, const char *where)
{
	char *b = l->buf = orch_xstrdup(l->text);
	const char **w = l->word = orch_xmalloc((strlen(b) / 2 + 16) * sizeof *w);
	int n = 0;  /* at most strlen/2 + 1 words, one of them a preset's 11 */
	for (char *t = strtok(b, " \t\n"); t; t = strtok(NULL, " \t\n")) {
		int k = n == 0 ? put_preset(t, w) : 0;
		n += k ? k : (w[n] = t, 1);
	}
	l->nword = n;
	if (n == 0) {
		orch_err("%s: launcher: empty", where);
		return 1;
	}
	l->srun = named(w[0], "srun");
	l->ssh = named(w[0], "ssh");
	return check_holders(l, where);
}

/* The launcher of this text: its index, -1 for none, -2 if bad. */
static int intern(const char *text, const char *where)
{
	if (!text || strcmp(text, "local") == 0)
		return -1;
	for (int i = 0; i < L.n; i++)
		if (strcmp(L.l[i].text, text) == 0)
			return i;
	L.l = orch_xrealloc(L.l, (L.n + 1) * sizeof *L.l);
	struct launcher *l = &L.l[L.n];
	memset(l, 0, sizeof *l);
	l->text = orch_xstrdup(text);
	L.n++;
	return split_launcher(l, where) ? -2 : L.n - 1;
}

/* MB from v (consumed): a number (MB), or a string with a K, M, G or T
 * suffix; -1 if neither. */
static long mem_mb(jv v)
{
	double d = -1;
	char *end = NULL;
	if (jv_get_kind(v) == JV_KIND_NUMBER)
		d = jv_number_value(v);
	else if (jv_get_kind(v) == JV_KIND_STRING) {
		const char *t = jv_string_value(v), *units = "KMGT", *u;
		d = strtod(t, &end);
		u = *end ? strchr(units, *end) : units + 1;
		if (end == t || !u || !*u || (*end && end[1] && strcmp(end + 1, "B")))
			d = -1;
		else
			d *= pow(1024, (u - units) - 1);
	}
	jv_free(v);
	return d >= 1 && d < 1e12 ? (long)ceil(d) : -1;
}

/* A number in [lo, hi] at key k of r, into *out; 0 if absent, -1 if bad. */
static int number_in(jv r, const char *k, double lo, double hi, double *out)
{
	jv v = orch_jget(r, k);
	jv_kind kind = jv_get_kind(v);
	double d = kind == JV_KIND_NUMBER ? jv_number_value(v) : 0;
	jv_free(v);
	if (kind == JV_KIND_NULL)
		return 0;
	if (kind != JV_KIND_NUMBER || d < lo || d > hi)
		return -1;
	*out = d;
	return 1;
}

/* resources: {cpus, mem, gpus, time}: 0, or 1 (reported). The time
 * defaults to past the step's timeout and grace. */
static int read_resources(struct step *s)
{
	jv r = orch_jget(s->spec, "resources");
	int bad = jv_get_kind(r) != JV_KIND_NULL && jv_get_kind(r) != JV_KIND_OBJECT;
	double cpus = 1, gpus = 0, t = s->timeout > 0 ? s->timeout + opt.grace + 1 : 0;
	if (!bad && jv_get_kind(r) == JV_KIND_OBJECT) {
		jv mem = orch_jget(r, "mem");
		const char *ts = orch_jstr(r, "time");
		bad |= number_in(r, "cpus", 1, 1e6, &cpus) < 0 || number_in(r, "gpus", 0, 1e6, &gpus) < 0;
		if (ts)
			bad |= (t = orch_parse_age(ts)) < 0;
		else
			bad |= number_in(r, "time", 0, 1e9, &t) < 0;
		if (jv_get_kind(mem) != JV_KIND_NULL)
			bad |= (s->mem_mb = mem_mb(jv_copy(mem))) < 0;
		jv_free(mem);
	}
	jv_free(r);
	s->cpus = (int)cpus;
	s->gpus = (int)gpus;
	s->time_s = t;
	if (bad)
		orch_err("step %s: resources: want {cpus: N, mem: MB or \"4G\", gpus: N, "
		         "time: seconds or \"90m\"}", s->name);
	return bad;
}

/* Each step's launcher and resources. Returns the problems found. */
int link_launchers(void)
{
	int bad = 0;
	const char *dflt = opt.launcher ? opt.launcher : getenv("ORCH_LAUNCHER");
	const char *job = orch_jstr(plan.job, "launcher");
	for (int i = 0; i < plan.n; i++) {
		struct step *s = &plan.step[i];
		const char *text = orch_jstr(s->spec, "launcher");
		if (!text && s->pool >= 0)
			text = plan.pool[s->pool].launcher;
		if (!text)
			text = job ? job : dflt;
		char *where = orch_fmt("step %s", s->name);
		s->launcher = intern(text && *text ? text : NULL, where);
		free(where);
		bad += s->launcher == -2;
		bad += read_resources(s);
	}
	return bad;
}

/* The run's names for the launcher: its hash, this scheduler's token. */
static void name_run(void)
{
	char hex[65];
	orch_sha256_hex(run.dir, strlen(run.dir), hex);
	memcpy(L.runhash, hex, 16);
	snprintf(L.token, sizeof L.token, "%08x", randombytes_random());
	L.self = realpath("/proc/self/exe", NULL);
	L.cwd = getcwd(NULL, 0);
	if (!L.self || !L.cwd)
		orch_die_sys(EX_FAIL, "cannot find this program (/proc/self/exe) or folder");
}

/* The launcher's words with step s's values, at argv; how many. */
static int put_words(const struct launcher *l, const struct step *s, char **argv)
{
	int n = 0;
	for (int k = 0; k < l->nword; k++)
		if ((argv[n] = expand(l->word[k], s)))
			n++;
	return n;
}

/* word, quoted for sh, and a blank, to f */
static void put_quoted(FILE *f, const char *word)
{
	fputc('\'', f);
	for (const char *c = word; *c; c++)
		*c == '\'' ? fputs("'\\''", f) : fputc(*c, f);
	fputs("' ", f);
}

/* Passed on to the far side by ssh, as srun --export=ALL would: PATH and
 * ORCH_*, but nothing whose name looks like a secret's. */
static int passed_on(const char *e)
{
	static const char *const secret[] = {"KEY", "TOKEN", "SECRET", "PASS", 0};
	int n = (int)strcspn(e, "=");
	if (strncmp(e, "PATH=", 5) == 0)
		return 1;
	for (int k = 0; secret[k]; k++)
		if (memmem(e, n, secret[k], strlen(secret[k])))
			return 0;
	return strncmp(e, "ORCH_", 5) == 0;
}

/* ssh hands its command to the far side's shell as one string: the words
 * from argv[at] on become one, quoted, run in the step's folder with what
 * passed_on keeps of our environment. The words taken are freed up to
 * owned. */
static void ssh_command(char **argv, int at, int owned, const struct step *s)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	fputs("cd ", f);
	put_quoted(f, plan.workdir && orch_jstr(s->spec, "run") ? plan.workdir : L.cwd);
	fputs("&& exec env ", f);
	for (char **e = environ; *e; e++)
		if (passed_on(*e))
			put_quoted(f, *e);
	for (int k = at; argv[k]; k++) {
		put_quoted(f, argv[k]);
		if (k < owned)
			free(argv[k]);
	}
	fclose(f);
	text[len - 1] = 0;  /* the last blank */
	argv[at] = text;
	argv[at + 1] = NULL;
}

static char *status_name(const struct step *s) { return orch_fmt("%s.status", s->name); }

/* The argv that runs cmd for step s through its launcher; the launcher's
 * part (the first *owned) is allocated. The last attempt's status file
 * goes. */
char **launch_argv(struct step *s, char **cmd, int *owned)
{
	struct launcher *l = &L.l[s->launcher];
	int ncmd = 0;
	while (cmd[ncmd])
		ncmd++;
	char **argv = orch_xmalloc((l->nword + 7 + ncmd) * sizeof *argv);
	int n = put_words(l, s, argv);
	argv[n++] = orch_xstrdup(L.self);
	argv[n++] = orch_xstrdup("--remote-exec");
	argv[n++] = orch_xstrdup(run.dir);
	argv[n++] = orch_xstrdup(s->name);
	argv[n++] = orch_fmt("%s.%d", L.token, s->attempt);
	argv[n++] = orch_xstrdup("--");
	*owned = n;
	memcpy(argv + n, cmd, (ncmd + 1) * sizeof *argv);
	if (l->ssh) {
		int at = n - 6;
		ssh_command(argv, at, n, s);
		*owned = at + 1;
	}
	char *st = status_name(s);
	unlinkat(run.log_fd, st, 0);
	free(st);
	s->events_bytes = -1;
	return argv;
}

void launch_argv_free(char **argv, int owned)
{
	for (int k = 0; argv && k < owned; k++)
		free(argv[k]);
	free(argv);
}

/* The status file of this attempt, if there: 1 and *status (as wait(2)
 * gives it), else 0. */
static int read_status(struct step *s, const char *token, int *status)
{
	char *name = status_name(s), *path = orch_path(run.dir, "logs");
	char *full = orch_fmt("%s/%s", path, name), *text = orch_slurp(full, NULL);
	jv v = text ? jv_parse(text) : jv_invalid();
	const char *t = jv_get_kind(v) == JV_KIND_OBJECT ? orch_jstr(v, "token") : NULL;
	int ok = t && strcmp(t, token) == 0;
	double d;
	if (ok && orch_jnum(v, "signal", &d))
		*status = W_EXITCODE(0, (int)d);
	else if (ok && orch_jnum(v, "exit_code", &d))
		*status = W_EXITCODE((int)d & 255, 0);
	else
		ok = 0;
	if (ok && orch_jnum(v, "events_bytes", &d))
		s->events_bytes = (long)d;
	jv_free(v);
	free(text);
	free(full);
	free(path);
	free(name);
	return ok;
}

/* A launched attempt has ended with the launcher's status: 1 and *status
 * the command's own, or 0 and msg saying why the attempt was lost (no
 * status file after a short wait for a shared file system's caches; or the
 * launcher failed after the command succeeded: its output may be cut). */
int launched_status(struct step *s, int *status, char *msg, size_t size)
{
	char *token = orch_fmt("%s.%d", L.token, s->attempt);
	int own = *status, found = 0;
	double until = now() + opt.status_wait;
	struct timespec ts = {0, 20 * 1000000};
	while (!(found = read_status(s, token, status)) && now() < until)
		nanosleep(&ts, NULL);
	free(token);
	if (found && !(*status == 0 && own != 0))
		return 1;
	const char *who = L.l[s->launcher].word[0];
	char how[64];
	if (WIFSIGNALED(own))
		snprintf(how, sizeof how, "was killed by signal %d", WTERMSIG(own));
	else
		snprintf(how, sizeof how, "exited with %d", WEXITSTATUS(own));
	if (found)
		snprintf(msg, size, "lost: %s %s but the command succeeded: its output may be cut", who, how);
	else
		snprintf(msg, size, "lost: %s %s and the command left no status in logs/%s.status "
		         "(node lost, or the launch failed)", who, how, s->name);
	return 0;
}

/* Run argv with stdout and stderr in *out (NUL-terminated): its wait
 * status, or -1. */
static int run_captured(char **argv, char **out)
{
	int fd = memfd_create("orch-launch-check", MFD_CLOEXEC), status = -1;
	posix_spawn_file_actions_t fa;
	pid_t pid;
	*out = NULL;
	if (fd < 0)
		return -1;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, fd, 1);
	posix_spawn_file_actions_adddup2(&fa, fd, 2);
	if (posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ) == 0)
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
	posix_spawn_file_actions_destroy(&fa);
	off_t n = lseek(fd, 0, SEEK_END);
	*out = orch_xmalloc(n > 0 ? (size_t)n + 1 : 1);
	ssize_t r = n > 0 ? pread(fd, *out, (size_t)n, 0) : 0;
	(*out)[r > 0 ? r : 0] = 0;
	close(fd);
	return status;
}

/* Step s's srun with --test-only: 0, or 1 (reported). */
static int test_only(struct step *s)
{
	struct launcher *l = &L.l[s->launcher];
	char **argv = orch_xmalloc((l->nword + 3) * sizeof *argv), *out;
	int n = put_words(l, s, argv + 1);
	argv[0] = argv[1];  /* srun --test-only ARGS... true */
	argv[1] = orch_xstrdup("--test-only");
	argv[++n] = orch_xstrdup("true");
	argv[++n] = NULL;
	int st = run_captured(argv, &out);
	if (st != 0) {
		out[strcspn(out, "\n")] = 0;
		orch_err("step %s: the launcher refuses it: %s", s->name,
		         *out ? out : "srun --test-only failed");
	}
	free(out);
	launch_argv_free(argv, n);
	return st != 0;
}

/* Steps a and b ask the same launcher for the same resources. */
static int same_ask(const struct step *a, const struct step *b)
{
	return a->launcher == b->launcher && a->cpus == b->cpus && a->mem_mb == b->mem_mb &&
	       a->gpus == b->gpus && ceil(a->time_s / 60) == ceil(b->time_s / 60);
}

/* Once at start: the run's names; each srun launcher, with each set of
 * resources asked of it, tried with --test-only (a bad partition is
 * refused here, not retried). 0, or EX_USAGE. */
int launch_check(void)
{
	int *asked = NULL, nasked = 0, bad = 0;
	if (L.n == 0)
		return 0;
	name_run();
	for (int i = 0; i < plan.n && !bad; i++) {
		struct step *s = &plan.step[i];
		int k = 0;
		if (s->launcher < 0 || !L.l[s->launcher].srun)
			continue;
		while (k < nasked && !same_ask(s, &plan.step[asked[k]]))
			k++;
		if (k < nasked)
			continue;
		asked = orch_xrealloc(asked, (nasked + 1) * sizeof *asked);
		asked[nasked++] = i;
		bad = test_only(s);
	}
	free(asked);
	return bad ? EX_USAGE : 0;
}

/* The ids of this run's Slurm jobs still in squeue (pending, running or
 * completing), separated by blanks; NULL if none. */
static char *jobs_left(void)
{
	char uid[32], *out, *ids = NULL;
	snprintf(uid, sizeof uid, "%u", (unsigned)getuid());
	char *argv[] = {"squeue", "-h", "-u", uid, "-t", "PD,R,CG,S", "-o", "%i %j", NULL};
	char *prefix = orch_fmt("orch.%s.", L.runhash);
	if (run_captured(argv, &out) == 0)
		for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
			char *name = strchr(line, ' ');
			if (!name || strncmp(name + 1, prefix, strlen(prefix)))
				continue;
			*name = 0;
			char *more = orch_fmt("%s%s%s", ids ? ids : "", ids ? " " : "", line);
			free(ids);
			ids = more;
		}
	free(out);
	free(prefix);
	return ids;
}

/* --resume: the run's Slurm steps that a killed scheduler left running
 * are cancelled, and gone (or 60 s passed), before any step starts. */
void launch_cancel_left(void)
{
	int srun = 0;
	for (int k = 0; k < L.n; k++)
		srun |= L.l[k].srun;
	char *ids = srun ? jobs_left() : NULL, *out;
	if (!ids)
		return;
	orch_err("cancelling the Slurm jobs an earlier scheduler left running: %s", ids);
	char **argv = orch_xmalloc((strlen(ids) / 2 + 3) * sizeof *argv);
	int n = 0;
	argv[n++] = "scancel";
	for (char *t = strtok(ids, " "); t; t = strtok(NULL, " "))
		argv[n++] = t;
	argv[n] = NULL;
	run_captured(argv, &out);
	free(out);
	free(argv);
	free(ids);
	struct timespec ts = {0, 200 * 1000000};
	for (double until = now() + 60; (ids = jobs_left()) && now() < until; free(ids))
		nanosleep(&ts, NULL);
	if (ids)
		orch_err("Slurm jobs %s are still there after 60 s", ids);
	free(ids);
}

/* ---- the far side ---- */

/* The command's end as the status file says it: one JSON line; with the
 * length of the step's event file, if it wrote one, for merge.c to wait
 * for on a shared file system. */
static void write_status(const char *dir, const char *step, const char *token, int st)
{
	char host[256] = "";
	struct stat es;
	gethostname(host, sizeof host - 1);
	jv v = jv_object_set(jv_object(), jv_string("token"), jv_string(token));
	v = jv_object_set(v, jv_string("step"), jv_string(step));
	v = jv_object_set(v, jv_string("host"), jv_string(host));
	if (stat(getenv("ORCH_EVENTS_FILE"), &es) == 0)
		v = jv_object_set(v, jv_string("events_bytes"), jv_number((double)es.st_size));
	v = WIFSIGNALED(st) ? jv_object_set(v, jv_string("signal"), jv_number(WTERMSIG(st)))
	                    : jv_object_set(v, jv_string("exit_code"), jv_number(WEXITSTATUS(st)));
	char *path = orch_fmt("%s/logs/%s.status", dir, step);
	if (orch_atomic_json(path, v, 0) < 0)
		orch_err_sys("cannot write %s (is the run folder on a file system that "
		             "this machine shares?)", path);
	free(path);
}

/* Is the reader of our output gone (ssh's connection closed, so sshd
 * closed its end of our stdout or stderr)? Pipes and sockets say so,
 * files never. */
static int reader_gone(void)
{
	struct pollfd p[2] = {{1, 0, 0}, {2, 0, 0}};
	return poll(p, 2, 0) > 0 && ((p[0].revents | p[1].revents) & (POLLERR | POLLHUP));
}

/* Run cmd in our process group, passing on the stop signals we get; its
 * wait status. If the reader of our output goes (a killed or timed-out
 * ssh: sshd sends no signal), the command gets SIGTERM (our whole group,
 * if we lead it), then SIGKILL 5 s later. */
static int run_forwarding(char **cmd)
{
	static const int fwd[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	for (size_t k = 0; k < sizeof fwd / sizeof *fwd; k++)
		sigaddset(&set, fwd[k]);
	sigprocmask(SIG_BLOCK, &set, NULL);
	posix_spawnattr_t at;
	pid_t pid;
	child_signals(&at, 0);
	int err = posix_spawnp(&pid, cmd[0], NULL, &at, cmd, environ), st = W_EXITCODE(127, 0);
	posix_spawnattr_destroy(&at);
	if (err) {
		orch_err("cannot run %s: %s", cmd[0], strerror(err));
		return st;
	}
	struct timespec tick = {0, 250 * 1000000};
	for (double kill_at = 0;;) {
		int sig = sigtimedwait(&set, NULL, &tick);
		if (sig == SIGCHLD && waitpid(pid, &st, WNOHANG) == pid)
			return st;
		if (sig > 0 && sig != SIGCHLD)
			kill(pid, sig);
		else if (sig < 0 && !kill_at && reader_gone()) {
			/* our group if it is ours (sshd's shell made it), so the
			 * command's children go too; we take our SIGTERM next */
			kill(getpgrp() == getpid() ? 0 : pid, SIGTERM);
			kill_at = now() + 5;
		} else if (kill_at && now() > kill_at)
			kill(pid, SIGKILL);
	}
}

/* What the command is given, whether the launcher passed our environment
 * on (srun --export=ALL) or not (ssh): the run, the step, the attempt (the
 * token's last part), and its own event file (merge.c), not events.jsonl. */
static void set_step_env(const char *dir, const char *step, const char *token)
{
	const char *dot = strrchr(token, '.'), *attempt = dot ? dot + 1 : token;
	setenv("ORCH_RUN_DIR", dir, 1);
	setenv("ORCH_STEP", step, 1);
	setenv("ORCH_ATTEMPT", attempt, 1);
	char *job = orch_run_job_id(dir), *events = orch_fmt("%s/logs/%s.%s.events.jsonl", dir, step, attempt);
	setenv("ORCH_JOB_ID", job, 0);
	setenv("ORCH_EVENTS_FILE", events, 1);
	free(job);
	free(events);
}

/* orch-sched --remote-exec RUN STEP TOKEN -- COMMAND...: run the command
 * (on the launcher's side), write RUN/logs/STEP.status, and end as it
 * did. */
int remote_exec(int argc, char **argv)
{
	if (argc < 5 || strcmp(argv[3], "--")) {
		orch_err("usage: orch-sched --remote-exec RUN STEP TOKEN -- COMMAND...");
		return EX_USAGE;
	}
	set_step_env(argv[0], argv[1], argv[2]);
	int st = run_forwarding(argv + 4);
	write_status(argv[0], argv[1], argv[2], st);
	if (!WIFSIGNALED(st))
		return WEXITSTATUS(st);
	sigset_t all;
	signal(WTERMSIG(st), SIG_DFL);
	sigfillset(&all);
	sigprocmask(SIG_UNBLOCK, &all, NULL);
	raise(WTERMSIG(st));
	return EX_SIGNAL + WTERMSIG(st);
}

void launch_free(void)
{
	for (int i = 0; i < L.n; i++) {
		free(L.l[i].text);
		free(L.l[i].buf);
		free(L.l[i].word);
	}
	free(L.l);
	free(L.self);
	free(L.cwd);
}
