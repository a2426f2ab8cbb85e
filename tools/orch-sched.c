/* orch-sched: run a plan's steps as processes, like make -j.
 *
 * Reads plan lines (orch-plan(1)) on stdin or in PLAN files, checks the
 * whole graph first (unknown needs, cycles, duplicate ids, a prompt step
 * with no --exec, a plan file that cannot be read: exit 2, or 1 for an
 * unreadable file, before anything runs), then runs each step as a process
 * once all its needs have succeeded, at most -j at a time and at most
 * pools[p] per pool, higher priority first, then plan order.
 *
 * Assumptions and design (orch-sched(1) says the same for users):
 *  - No pipes. A step's stdin is its input record in a memfd, its stdout a
 *    new file artifacts/.<step>.out (renamed to <step>.json if it succeeds),
 *    its stderr logs/<step>.log. The main loop only waits for children,
 *    signals and timers (sigtimedwait), so no output size can deadlock it.
 *    The one exception, --batch-exec's workers, talk over pipes that wake
 *    the loop with SIGIO (sched/batch.c).
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
 *
 * This file holds main: the options, the run folder (locked), the job's
 * start and end. The parts are in sched/ (sched.h says which does what).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include "orch.h"
#include "sched/sched.h"

static const char usage[] =
	"usage: orch-sched [-knq] [-j N] [--resume] [--exec CMD] [--batch-exec CMD]\n"
	"                  [--wait] [--run DIR]\n"
	"                  [--grace S] [--backoff-base S] [--backoff-max S]\n"
	"                  [--spec FILE] [--forwarded] [--launcher CMD]\n"
	"                  [--status-wait S] [PLAN...]\n"
	"Run a plan's steps (plan lines on stdin or in PLAN files) as processes.\n"
	"  -j, --jobs N         run at most N steps at once (default: the job's\n"
	"                       concurrency, else 4)\n"
	"  -k, --keep-going     after a failure, run everything that does not need it\n"
	"      --resume         skip the steps that already succeeded in this run,\n"
	"                       unless they or their needs' results changed since\n"
	"  -n, --dry-run        print what each step would do, and why; run nothing\n"
	"      --exec CMD       the command of steps with no run: (prompt steps)\n"
	"      --batch-exec CMD one CMD per fan-out prompt step serves all its\n"
	"                       instances, a record a line (orch-sched(1) BATCH)\n"
	"      --wait           wait for the run's lock instead of refusing\n"
	"      --grace S        seconds between SIGTERM and SIGKILL (default 5)\n"
	"      --backoff-base S first retry delay bound (default 1)\n"
	"      --backoff-max S  retry delay cap (default 60)\n"
	"      --launcher CMD   run steps through CMD (slurm: srun), unless their\n"
	"                       spec says (default $ORCH_LAUNCHER; local: none)\n"
	"      --status-wait S  wait for a launched step's status file (default 2)\n"
	"  -q, --quiet          no progress line on a terminal\n"
	"      --spec FILE      keep FILE as the run's inputs/spec.yaml, written\n"
	"                       once the run's lock is held\n"
	"      --forwarded      the parent forwards its stop signals (orch run):\n"
	"                       a stop that reached us both from it and directly\n"
	"                       (a ^C or TERM to the whole group) counts once\n"
	"      --run DIR        the run folder (default $ORCH_RUN_DIR, else\n"
	"                       $ORCH_RUNS/<job_id>)\n"
	"      --help, --version\n";

struct opts opt = {.grace = 5, .backoff_base = 1, .backoff_max = 60, .status_wait = 2};
struct run run = {.art_fd = -1, .log_fd = -1};

/* A number >= min for option o, or a usage error. */
static double number(const char *o, const char *arg, double min)
{
	char *end;
	double d = strtod(arg, &end);
	if (end == arg || *end || !(d >= min) || !isfinite(d)) {
		orch_err("%s: not a number >= %g: %s", o, min, arg);
		orch_usage(usage);
	}
	return d;
}

static void parse_opts(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"jobs", required_argument, 0, 'j'},
		{"keep-going", no_argument, 0, 'k'},
		{"quiet", no_argument, 0, 'q'},
		{"resume", no_argument, 0, 'R'},
		{"dry-run", no_argument, 0, 'n'},
		{"exec", required_argument, 0, 'x'},
		{"batch-exec", required_argument, 0, 'X'},
		{"wait", no_argument, 0, 'W'},
		{"grace", required_argument, 0, 'g'},
		{"backoff-base", required_argument, 0, 'b'},
		{"backoff-max", required_argument, 0, 'B'},
		{"spec", required_argument, 0, 'S'},
		{"forwarded", no_argument, 0, 'F'},
		{"launcher", required_argument, 0, 'L'},
		{"status-wait", required_argument, 0, 'T'},
		ORCH_COMMON_LONGOPTS,
		{0, 0, 0, 0}};
	int c;
	double d;
	while ((c = getopt_long(argc, argv, "j:knqh", longopts, NULL)) != -1) {
		switch (c) {
		case 'j': d = number("-j", optarg, 1); opt.jobs = d > 100000 ? 100000 : (int)d; break;
		case 'k': opt.keep_going = 1; break;
		case 'q': opt.quiet = 1; break;
		case 'R': opt.resume = 1; break;
		case 'n': opt.dry_run = 1; break;
		case 'x': opt.exec_cmd = optarg; break;
		case 'X': opt.batch_cmd = optarg; break;
		case 'W': opt.wait_lock = 1; break;
		case 'g': opt.grace = number("--grace", optarg, 0); break;
		case 'b': opt.backoff_base = number("--backoff-base", optarg, 0); break;
		case 'B': opt.backoff_max = number("--backoff-max", optarg, 0); break;
		case 'S': spec_read(optarg); break;
		case 'F': opt.forwarded = 1; break;
		case 'L': opt.launcher = optarg; break;
		case 'T': opt.status_wait = number("--status-wait", optarg, 0); break;
		default:
			if (!orch_common(c, optarg, usage))
				orch_usage(usage);
		}
	}
}

/* The run's .lock, held (flock) until we exit; our pid written in it. */
static void lock_run(void)
{
	char *path = orch_path(run.dir, ".lock");
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
		if (!opt.wait_lock)
			orch_die(EX_TEMP, "%s: another orch-sched%s is running this job "
			         "(--wait waits for it)", run.dir, who);
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

/* run.dir (absolute) and run.job_id: --run, $ORCH_RUN_DIR, else the
 * plan's job id under $ORCH_RUNS; the folder is created if create. */
static void find_run(int create)
{
	const char *jid = orch_jstr(plan.job, "job_id");
	const char *dir = orch_run_dir();
	char *made = NULL;
	if (!dir) {
		if (!jid || !orch_job_id_valid(jid))
			orch_die(EX_USAGE, "the plan has no valid job.job_id: give --run DIR");
		dir = made = orch_run_dir_for(jid);
	}
	if (create && orch_run_create(dir) < 0)
		orch_exit(EX_FAIL);
	run.dir = realpath(dir, NULL);
	if (!run.dir && !create && errno == ENOENT)
		run.dir = orch_xstrdup(dir);  /* nothing there yet */
	if (!run.dir)
		orch_die_sys(EX_FAIL, "%s", dir);
	free(made);
	run.job_id = jid ? orch_xstrdup(jid) : orch_run_job_id(run.dir);
}

static int open_dir(const char *sub)
{
	char *path = orch_path(run.dir, sub);
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	free(path);
	return fd;
}

/* Whether our parent catches sig, from /proc/PPID/status (SigCgt); when
 * that cannot be read, assume it does. */
static int parent_catches(int sig)
{
	char path[64], line[256];
	snprintf(path, sizeof path, "/proc/%ld/status", (long)getppid());
	FILE *f = fopen(path, "re");
	if (!f)
		return 1;
	int catches = 1;
	unsigned long long mask;
	while (fgets(line, sizeof line, f))
		if (sscanf(line, "SigCgt: %llx", &mask) == 1) {
			catches = (mask >> (sig - 1)) & 1;
			break;
		}
	fclose(f);
	return catches;
}

/* Signals: waited for (sigtimedwait), never handled asynchronously. A stop
 * signal ignored at startup (nohup) stays ignored, except SIGINT with
 * --forwarded when the parent traps it: sh starts a background job with
 * SIGINT ignored, and the parent forwards the ^C it gets. A parent that
 * ignores SIGINT itself (a driver started in a script's background) never
 * forwards one, and we ignore it as it does. */
static void block_signals(void)
{
	static const int stops[] = {SIGINT, SIGTERM, SIGHUP};
	int take_int = opt.forwarded && parent_catches(SIGINT);
	sigemptyset(&run.waited);
	sigaddset(&run.waited, SIGCHLD);
	for (int k = 0; k < 3; k++) {
		struct sigaction sa;
		if (sigaction(stops[k], NULL, &sa) == 0 && sa.sa_handler != SIG_IGN)
			sigaddset(&run.waited, stops[k]);
	}
	if (take_int)
		sigaddset(&run.waited, SIGINT);
	sigprocmask(SIG_BLOCK, &run.waited, NULL);
	if (take_int)
		signal(SIGINT, SIG_DFL);  /* blocked: delivered to sigtimedwait */
	signal(SIGPIPE, SIG_IGN);
}

/* The run folder, locked, with what every step is given. */
static void open_run(void)
{
	find_run(1);
	lock_run();
	spec_save();
	setenv("ORCH_RUN_DIR", run.dir, 1);
	setenv("ORCH_JOB_ID", run.job_id, 1);
	unsetenv("ORCH_STEP");
	run.art_fd = open_dir("artifacts");
	run.log_fd = open_dir("logs");
	if (run.art_fd < 0 || run.log_fd < 0)
		orch_die_sys(EX_FAIL, "%s: cannot open artifacts/ or logs/", run.dir);
	setup_env();
	block_signals();
}

static jv provider_name(void)
{
	jv p = orch_jget(plan.job, "provider");
	for (int i = 0; i < plan.n && jv_get_kind(p) != JV_KIND_OBJECT &&
	                jv_get_kind(p) != JV_KIND_STRING; i++) {
		jv_free(p);
		p = jv_object_get(jv_copy(plan.step[i].spec), jv_string("provider"));
	}
	if (jv_get_kind(p) == JV_KIND_OBJECT)
		p = jv_object_get(p, jv_string("name"));
	if (jv_get_kind(p) != JV_KIND_STRING) {
		jv_free(p);
		p = jv_null();
	}
	return p;
}

/* The job.started event; with --resume, resumed unless the log is empty. */
static void emit_started(void)
{
	char *evp = orch_path(run.dir, "events.jsonl");
	struct stat est;
	int resumed = opt.resume && stat(evp, &est) == 0 && est.st_size > 0;
	free(evp);
	jv data = jv_object();
	data = jv_object_set(data, jv_string("project"), jv_string(run.job_id));
	data = jv_object_set(data, jv_string("provider"), provider_name());
	data = jv_object_set(data, jv_string("task"), orch_jget(plan.job, "task"));
	data = jv_object_set(data, jv_string("resume"), jv_bool(resumed));
	data = jv_object_set(data, jv_string("steps"), jv_number(plan.n));
	data = jv_object_set(data, jv_string("jobs"), jv_number(opt.jobs));
	emit("INFO", "job.started", NULL, data);
}

/* The job begins: its event, what succeeded before (--resume), the steps
 * with no needs in the ready queue. */
static void start_job(void)
{
	double d;
	if (opt.jobs == 0)
		opt.jobs = orch_jnum(plan.job, "concurrency", &d) && d >= 1 ? (int)d : 4;
	tally.t_start = now();
	tally.progress = !opt.quiet && isatty(2);
	tally.failed_names = jv_array();
	tally.failures = jv_array();
	resume_read();
	stop_orphans();
	sweep_temps();
	merge_left();  /* launched steps' events that killed schedulers left */
	emit_started();
	if (opt.resume)
		record_lost();
	run.manifest = orch_manifest_new(run.dir);
	for (int i = 0; i < plan.n; i++)
		plan.step[i].pending = plan.step[i].ndep;
	queue.active = orch_xmalloc(((opt.jobs < plan.n ? opt.jobs : plan.n) + 1) * sizeof *queue.active);
	for (int i = 0; i < plan.n; i++)
		if (plan.step[i].pending == 0)
			ready_step(i);
	settle();
}

/* The job's last event and the manifest; returns the exit status. */
/* Why the job failed, on stderr: one line, or a count then a line per
 * failed step (what make -k prints as it goes, said once at the end). */
static void say_failures(void)
{
	int n = jv_array_length(jv_copy(tally.failures));
	jv first = jv_array_get(jv_copy(tally.failures), 0);
	if (n == 1)
		orch_err("%s: %d of %d steps failed: %s", run.job_id, tally.nfailed, plan.n - tally.nretired,
		         jv_string_value(first));
	else {
		orch_err("%s: %d of %d steps failed:", run.job_id, tally.nfailed, plan.n - tally.nretired);
		jv_array_foreach(tally.failures, k, why) {
			orch_err("  %s", jv_string_value(why));
			jv_free(why);
			(void)k;
		}
	}
	jv_free(first);
}

static int end_job(void)
{
	jv data = jv_object();
	int code = EX_OK;
	clear_progress();
	if (tally.stop_sig) {
		data = jv_object_set(data, jv_string("error"), jv_string("interrupted"));
		data = jv_object_set(data, jv_string("signal"), jv_number(tally.stop_sig));
		code = EX_SIGNAL + tally.stop_sig;
	} else if (tally.nfailed) {
		jv first = jv_array_get(jv_copy(tally.failed_names), 0);
		data = jv_object_set(data, jv_string("error"), tally.nfailed == 1
		                     ? jv_string_fmt("step %s failed", jv_string_value(first))
		                     : jv_string_fmt("%d steps failed", tally.nfailed));
		jv_free(first);
		data = jv_object_set(data, jv_string("failed"), jv_copy(tally.failed_names));
		code = EX_FAIL;
	} else
		data = jv_object_set(data, jv_string("artifacts"), jv_number(tally.nstored));
	data = jv_object_set(data, jv_string("duration_s"), secs(now() - tally.t_start));
	emit(code ? "ERROR" : "INFO", code ? "job.failed" : "job.succeeded", NULL, data);
	manifest_write(1);
	if (code == EX_FAIL)
		say_failures();
	else if (tally.stop_sig)
		orch_err("%s: interrupted (%s)", run.job_id, sigabbrev_np(tally.stop_sig));
	return code;
}

static void free_all(void)
{
	plan_free();
	spawn_free();
	launch_free();
	loop_free();
	step_free();
	resume_free();
	orch_manifest_free(run.manifest);
	jv_free(tally.failed_names);
	jv_free(tally.failures);
	free(run.job_id);
	free(run.dir);
}

int main(int argc, char **argv)
{
	orch_init(argc, argv);
	if (argc > 1 && strcmp(argv[1], "--remote-exec") == 0)  /* launch.c */
		orch_exit(remote_exec(argc - 2, argv + 2));
	parse_opts(argc, argv);
	int rc = read_plan(argv + optind, argc - optind);
	if (rc == EX_OK && opt.dry_run) {
		find_run(0);  /* read without the lock: nothing is written */
		rc = dry_run();
	} else if (rc == EX_OK) {
		open_run();
		rc = launch_check();
		if (rc == EX_OK) {
			if (opt.resume)
				launch_cancel_left();
			start_job();
			run_loop();
			rc = end_job();
		}
	}
	free_all();
	orch_exit(rc);
}
