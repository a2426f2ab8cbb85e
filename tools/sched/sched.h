/* sched.h: the parts of orch-sched (tools/sched/) and the state they share.
 *
 * The state is five structs, one global each, as samurai keeps its
 * buildopts: opt (the options, set once by main), plan (the steps, their
 * graph, pools and when: conditions: plan.c), run (the run folder and what
 * every step is given: orch-sched.c), tally (counts, progress, stop state:
 * step.c) and queue (the ready heap and the active steps: loop.c).
 * A step is named by its index in plan.step; its dependency lists point
 * into plan.graph (lib/graph.c).
 *
 *   orch-sched.c  main: options, the run folder, the job's start and end
 *   plan.c        reading and checking plan lines, pools, when: conditions
 *   spawn.c       a step's process: input memfd, output file, env, spawn
 *   step.c        a step's life: attempts, retries, results, skips
 *   loop.c        the ready queue, timers, reaping, interrupts, progress
 *   spec.c        --spec: the job spec kept in inputs/, once the lock is held
 *   resume.c      fingerprints, and what the run's events say of each step
 *   dryrun.c      -n: what each step would do, and why
 *   orphan.c      steps a killed orch-sched left running: stopped first
 *   sweep.c       temporary files killed writers left: removed at start
 *   launch.c      steps run through a launcher (srun, ssh): argv, true status
 *   merge.c       a launched step's own event file, merged into the log
 *   group.c       fan-out instances: their items, their group's array
 *   expand.c      dynamic fan-out: instances made from a step's answer
 *   batch.c       --batch-exec: one worker serving a fan-out's instances
 */
#ifndef SCHED_H
#define SCHED_H

#include <math.h>
#include <signal.h>
#include <spawn.h>
#include <sys/types.h>
#include "orch.h"

enum state { ST_WAIT, ST_READY, ST_RUN, ST_BACKOFF, ST_OK, ST_COND, ST_DONE,
             ST_FAIL, ST_UPSKIP, ST_STOPPED };

struct step {
	char *name;
	jv spec, needs;      /* needs: array of names, for events */
	const size_t *dep, *rdep;  /* needs, dependants: in plan.graph */
	size_t ndep, nrdep;
	size_t pending;      /* needs not yet done */
	size_t users;        /* dependants that have not taken our result yet */
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
	int anon;            /* outfd has no name yet (O_TMPFILE: batch_output) */
	off_t log_at;        /* where this attempt's stderr begins in its log */
	double t0, deadline, kill_at, wake;
	int timed_out, stopped;
	jv result;           /* stored result, while users > 0 */
	jv input;            /* input record without attempt, while active */
	int launcher;        /* -1: none (launch.c) */
	int cpus, gpus;      /* resources: (gpus 0: not asked) */
	long mem_mb;         /* 0: not asked */
	double time_s;       /* 0: not asked */
	long events_bytes;   /* its event file's length, as its status said; -1 */
	char spec_hash[65];  /* what it is asked to do (resume.c) */
	char fp[65];         /* and what its needs gave it: set once ready */
	char art[65];        /* sha256 of artifacts/<step>.json, once stored */
	jv inst;             /* a fan-out instance's plan fields (group.c) */
	jv item;             /* and its item, from ready until its input record */
	jv expand;           /* a dynamic fan-out not yet expanded (expand.c) */
};

struct heap { int *a; int n, cap; };
struct pool { char *name; int limit, used; struct heap wait; const char *launcher; };

struct opts {
	int jobs, keep_going, resume, wait_lock, quiet, forwarded, dry_run;
	const char *exec_cmd;
	const char *batch_cmd; /* --batch-exec: serves prompt fan-outs (batch.c) */
	double grace, backoff_base, backoff_max;
	const char *launcher;  /* --launcher */
	double status_wait;    /* for a launched step's status file */
};

struct plan {
	struct step *step;
	int n, cap;
	orch_map *byname;
	orch_graph *graph;   /* needs and dependants (lib/graph.c) */
	size_t *order;       /* the steps in an order the graph allows */
	jv job;              /* the job object of the plan */
	struct pool *pool;
	int npools;
	orch_tmpl *conds;    /* the when: conditions, one jq program */
	char **cond_texts;   /* the templates borrow their texts */
	int nconds;
	int bad;             /* problems found in the plan lines */
	char *workdir;       /* the job's workdir:, resolved; NULL: ours */
};

struct run {
	char *dir, *job_id;
	int art_fd, log_fd;  /* artifacts/ and logs/ */
	char **envp;         /* environ, ORCH_RUN_DIR, ORCH_JOB_ID, and two */
	int nenv;            /* slots for ORCH_STEP and ORCH_ATTEMPT at nenv+2 */
	orch_manifest *manifest;
	int manifest_dirty;
	double manifest_at;
	sigset_t waited;     /* SIGCHLD, and the stop signals not ignored */
	char *spec;          /* --spec: the file's text, until saved (spec.c) */
	size_t spec_len;
};

struct tally {
	int ndone, nstored, nrun, nfailed;
	int nretired;        /* dynamic fan-outs expanded: their instances stand for them */
	int stop_starting, stop_sig;
	int progress;        /* a live progress line on stderr */
	double t_start, progress_at;
	jv failed_names;
	jv failures;         /* "<step>: <why>" of each failed step, for stderr */
};

struct queue {
	struct heap ready;   /* higher priority first, then plan order */
	int *active, nactive;  /* running or waiting to retry */
	struct { int *a; int n, cap; } told;  /* done; dependants yet to be told */
};

extern struct opts opt;
extern struct plan plan;
extern struct run run;
extern struct tally tally;
extern struct queue queue;

static inline double now(void) { return orch_mono(); }
static inline jv secs(double d) { return jv_number(round(d * 1000) / 1000); }
/* An event; the manifest folds it as written, without reading it back. */
static inline void emit(const char *level, const char *type, const char *step, jv data)
{
	jv e;
	off_t at;
	if (orch_emit_kept(run.dir, level, type, step, data, &e, &at) == 0 && at >= 0 &&
	    run.manifest)
		orch_manifest_own(run.manifest, at, e);
	else
		jv_free(e);
}

/* plan.c */
int read_plan(char **files, int n);  /* 0, or the exit status: nothing ran */
int step_before(int a, int b);       /* higher priority, then plan order */
int add_step(const char *name, jv spec, jv needs, jv line);  /* running: its index */
void plan_free(void);

/* spawn.c */
void setup_env(void);
int spawn(struct step *s);           /* 0, or errno (nothing runs) */
int store_output(struct step *s, jv *result);  /* 0, or errno */
void end_output(struct step *s);   /* close stdout; remove it unless stored */
char *last_stderr(struct step *s);   /* "line (logs/<step>.log)", or NULL */
void spawn_free(void);
void child_signals(posix_spawnattr_t *at, int pgroup);
char *input_text(struct step *s, size_t *n);  /* the record, one line */
int spawn_worker(const char *cmd, const char *group, int fd[3], pid_t *pid);
int batch_output(struct step *s, const char *line, size_t n);  /* 0, or errno */

/* batch.c */
int batch_serves(const struct step *s);
int batch_hand(struct step *s);      /* 0, or errno (nothing runs) */
unsigned long long batch_start_time(pid_t pid);  /* a worker's proc_start */
void batch_io(void);                 /* results read, records written */
void batch_flush(void);              /* the records handed over, written */
int batch_reaped(pid_t pid, int status);  /* 1: pid was a worker */
void batch_end(void);                /* the loop is over: workers end */

/* launch.c */
int link_launchers(void);            /* problems found */
int launch_check(void);              /* 0, or EX_USAGE: a launcher refuses */
void launch_cancel_left(void);       /* --resume: Slurm steps left running */
char **launch_argv(struct step *s, char **cmd, int *owned);
void launch_argv_free(char **argv, int owned);
int launched_status(struct step *s, int *status, char *msg, size_t size);
int remote_exec(int argc, char **argv);  /* --remote-exec: an exit status */
void launch_free(void);

/* merge.c */
char *events_file_name(const struct step *s);  /* "<step>.<attempt>.events.jsonl" */
void merge_step_events(struct step *s);  /* a launched attempt ended */
void merge_left(void);               /* at start: what killed schedulers left */

/* step.c */
jv input_record(struct step *s);
int cond_holds(struct step *s, char **err);
void ready_step(int i);
void release(int i);
void start_step(int i);
void start_attempt(int i);
void emit_failed(struct step *s, const char *kind, const char *msg, int will_retry,
                 const char *extra, int val);
void attempt_failed(int i, const char *kind, const char *msg, int retryable,
                    const char *extra, int val);
void reaped(int i, int status);
void settle(void);
void step_free(void);

/* resume.c */
void resume_read(void);              /* the events, before job.started */
void record_lost(void);              /* attempts cut off: step.failed lost */
jv open_attempts(void);              /* their step.started data, with step */
void fingerprint(struct step *s);    /* spec_hash and fp; needs done */
int still_done(struct step *s);      /* --resume may skip it: result, art */
int why_not_done(struct step *s, const char **why);  /* still_done, or why not */
void resume_free(void);

/* dryrun.c */
int dry_run(void);                   /* what would run, and why: -n */

/* orphan.c */
unsigned long long proc_start(pid_t pid);  /* /proc/PID/stat's starttime; 0: gone */
void stop_orphans(void);             /* groups a killed orch-sched left running */

/* sweep.c */
void sweep_temps(void);              /* what killed writers left: at start */

/* spec.c */
void spec_read(const char *file);  /* at start: the spec, or exit 2 */
void spec_save(void);              /* with the lock: inputs/spec.yaml */

/* group.c */
jv group_of_line(jv line);           /* line borrowed: its instance fields */
jv group_spec_shared(jv spec, jv line);  /* an instance's spec: its group's */
void group_load_item(struct step *s);  /* ready: its item, content read */
jv group_input(struct step *s, jv in);  /* .item, .key into the record */
jv group_spec(const struct step *s, jv spec);  /* less foreach: etc (resume.c) */
jv group_put(jv steps, const struct step *d, jv r);  /* .steps.<group>[] */

/* expand.c */
jv expand_of_line(jv line);          /* line borrowed: expand_after/_with, or invalid */
int check_expand(void);              /* problems found */
int expand_step(int i);              /* 1: i was a dynamic fan-out, now expanded or failed */
int expand_dry_run(int i);           /* 1: i is one, and -n said so */

/* loop.c */
void heap_push(struct heap *h, int i);
int heap_pop(struct heap *h);
void add_active(int i);
void drop_active(int i);
void manifest_write(int force);
void run_loop(void);
void clear_progress(void);
void loop_free(void);

#endif
