/* events.h: orch-events' reports, each derived from the events alone:
 * cost (cost.c), metrics (metrics.c), timeline (timeline.c, svg.c), and
 * the export to SQLite (export.c), read
 * by one reader (read.c) and started by one dispatcher (report.c).
 *
 * A report reads one run folder (--run, $ORCH_RUN_DIR) or the folders
 * named as operands. It parses only the lines whose type it asks for (the
 * type is read from the raw line first, as tail does). */
#ifndef EVENTS_H
#define EVENTS_H

#include "orch.h"

/* One event as a report sees it; every pointer is borrowed from e and
 * valid during the callback. */
struct ev {
	jv e, data;                      /* data: an object, or null */
	const char *type, *step, *ts, *job;
	const char *run;                 /* the run folder */
};
typedef int (*ev_fn)(const struct ev *ev, void *ctx);

/* Each event of run/events.jsonl whose type starts with one of the
 * prefixes (NULL-terminated list; NULL: every event), in order. A bad
 * line is reported and skipped. Returns -1 (reported) if there is no
 * readable log, else the first non-zero fn value, or 0. */
int ev_read(const char *run, const char *const *types, ev_fn fn, void *ctx);
/* ev_read over each run in runs[0..n): the first error code, after all. */
int ev_read_all(char **runs, int n, const char *const *types, ev_fn fn, void *ctx);
/* ev_read from the latest job.started on (fresh: the latest that was not
 * a resume), or from the start when there is none; types must hold
 * "job.started" (or "job."). Two passes: the first parses only the
 * job.started lines. */
int ev_read_latest(const char *run, int fresh, const char *const *types, ev_fn fn, void *ctx);
double ev_num(const struct ev *ev, const char *key);  /* data.key, or 0 */
const char *ev_str(const struct ev *ev, const char *key);  /* data.key, or NULL */
int ev_is_fresh_start(const struct ev *ev);  /* job.started, not a resume */

/* What one llm.response cost: data.cost_usd when there, else priced from
 * the table (lib/price.c); priced 0 when neither knows. */
struct llm_cost {
	const char *provider, *model;
	double prompt, cached, completion, usd;
	int priced, failed;
};
void ev_llm_cost(const struct ev *ev, struct llm_cost *c);

/* Numbers by a string key, in the order keys first came: w of them a
 * key (w from the first use on), zero at first. */
struct groups {
	orch_map *map;
	char **keys;
	double *v;
	size_t n, cap, w;
};
double *groups_at(struct groups *g, size_t w, const char *key);
void groups_free(struct groups *g);
/* The fan-out instances STEP[KEY] among steps (an object by step name,
 * consumed), folded per STEP in the order each first came: {STEP: acc},
 * acc starting as {"n": 0}; "n" is counted here, the rest is add's (it
 * is given acc and the instance's value, and returns acc). */
jv fold_instances(jv steps, jv (*add)(jv acc, jv v));

/* What cost tallies a key: one call added by tally_add. */
enum { T_CALLS, T_PROMPT, T_CACHED, T_COMPLETION, T_USD, T_UNPRICED, T_N };
void tally_add(double *t, const struct llm_cost *c);
/* o (consumed) with a tally's calls, prompt_tokens, cached_tokens,
 * completion_tokens, cost_usd (null: none priced), unpriced_calls. */
jv tally_json(jv o, const double *t);

/* timeline.c: every attempt of every step of the latest run, drawn by
 * svg.c. Times are seconds from the job's start. */
enum { K_WAIT, K_RUN, K_RETRY, K_CACHED, K_FAIL, K_SKIP, K_KINDS };
struct attempt { double start, end; int kind, open; };
struct tl_step {
	char *name;
	struct attempt *a;      /* attempts in order, and the waits before them */
	size_t na, cap;
	jv needs;               /* array of step names */
	int critical, cached;   /* on the critical path; a cache hit in this attempt */
};
struct timeline {
	struct tl_step *s;
	size_t n, cap;
	orch_map *map;
	double t0, t1;          /* epoch seconds: the job's start, its end */
	char *job;
};
/* The colour and the name of each kind. */
extern const char *const tl_colour[K_KINDS], *const tl_kind[K_KINDS];
int svg_timeline(const struct timeline *tl);

/* The reports, on the run folders runs[0..n) (report.c reads their options). */
struct report_opts {
	const char *by;   /* cost --by */
	int json, svg;
};
int cmd_cost(const struct report_opts *o, char **runs, int n);
int cmd_metrics(char **runs, int n);
int cmd_timeline(const struct report_opts *o, const char *run);
/* For stats: {"usd", "unpriced_calls", "steps": {step: usd}} of the
 * latest run in the folder (as the manifest counts), and its text. */
jv cost_of_latest(const char *run);
/* "cost: $X in total", then a line per step: a fan-out's instances as one
 * line STEP[N] (their sum); with step (cost's steps are those of step),
 * "cost: $X for STEP", the sum, then each on its own line. */
void cost_print(jv cost, const char *step);

/* why.c: why PATH (which step wrote the file, from which prompt, at what
 * cost) and why-miss STEP (what changed in its latest cache miss); argv
 * holds the operands after the command word. */
int events_why(const char *cmd, int argc, char **argv, int json, const char *usage);

/* report.c: if argv's command is one of these reports, run it and return
 * its exit code; else -1 (the caller goes on with its own commands). */
int events_report(int argc, char **argv, const char *usage);
/* Where the command word is in argv: the first operand, once options and
 * their arguments are passed over; -1 if none. */
int events_command_at(int argc, char **argv);
/* Once getopt is done: the RUN operands after the command word, else the
 * one folder of --run or $ORCH_RUN_DIR (exit 2 if none); *n of them. */
char **events_runs(int argc, char **argv, int *n);

/* export.c: if argv's command is export, append the runs to a SQLite
 * database and return the exit code; else -1. */
int events_export(int argc, char **argv, const char *usage);

#endif
