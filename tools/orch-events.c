/* orch-events: the append-only event log of a run (orch-events(5)).
 *
 *   emit TYPE [--step S] [--level L] [--data JSON]   append one event
 *   emit -                                            one event per stdin record
 *   tail [-f [--forever]] [--type GLOB] [--step S] [--level L] [--since WHEN] [--jq EXPR] [--text]
 *   stats [--step S] [--json]                         job, steps, LLM, cache, files
 *   status                                            one line: status, age, steps done
 *   failed                                            the failed steps and their errors
 *   completed                                         steps that succeeded
 *   manifest                                          derive manifest.json
 *   out STEP [--json]                                 a step's output text, or its result
 *   cost, metrics, timeline                           reports: tools/events/
 *   why PATH, why-miss STEP                           provenance: tools/events/why.c
 *   export --sqlite DB [RUN...]                       runs into SQLite: events/export.c
 *
 * Assumptions: events.jsonl is written only by orch_emit (one line per
 * event, one write(2) under flock), so a reader sees whole lines, except
 * after a crash or a human edit: such a line is reported with its number
 * and skipped. Filtering reads the type, step and level from the raw line
 * (our writer puts keys first and compact) and parses only lines that
 * match; a line the quick look cannot read is parsed in full instead.
 */
#include <errno.h>
#include <fnmatch.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <jq.h>
#include <math.h>
#include "orch.h"
#include "events/events.h"

static const char usage[] =
	"usage: orch-events [--run DIR] COMMAND [OPTIONS]\n"
	"  emit TYPE [--step S] [--level INFO|WARN|ERROR] [--data JSON]\n"
	"  emit -             append one event per {\"type\",\"step\",\"level\",\"data\"} line on stdin\n"
	"  tail [-f [--forever]] [--type GLOB] [--step S] [--level L] [--since WHEN] [--jq EXPR] [--text]\n"
	"                     -f follows the log until the job ends; --forever, for good\n"
	"  stats [--step S] [--json]   job and step status, LLM calls, tokens, cache, files;\n"
	"                     --step: only S, or each instance S[KEY] of the fan-out S\n"
	"  status             STATUS<TAB>AGE<TAB>DONE<TAB>STEPS, one line (orch ls)\n"
	"  failed             STEP<TAB>ERROR per failed step (orch run)\n"
	"  completed          the steps that succeeded (what --resume skips)\n"
	"  manifest           write manifest.json, derived from the events\n"
	"  out STEP [--json]  the step's output text (artifacts/STEP.json's .output),\n"
	"                     or with --json its whole result record\n"
	"  cost [--by step|model|provider|day|job] [--json] [RUN...]   tokens and USD\n"
	"  metrics [RUN...]   Prometheus text format, for node_exporter's textfile collector\n"
	"  timeline [--svg] [RUN]   every attempt of every step, as text or an SVG picture\n"
	"  why PATH [--json]  which step wrote RUN/outputs/PATH, from which prompt, model, cost\n"
	"  why-miss STEP [--json]   what changed in the request of STEP's latest cache miss\n"
	"  export --sqlite DB [RUN...]   append the runs to a SQLite database (history)\n"
	"  The run folder is --run DIR, else $ORCH_RUN_DIR (or the RUN operands).\n";

static const char *run;

static char *events_path(void)
{
	run = orch_run_dir();
	if (!run)
		orch_die(EX_USAGE, "no run folder: give --run DIR or set ORCH_RUN_DIR");
	return orch_path(run, "events.jsonl");
}

/* ---- emit ------------------------------------------------------------ */

static int valid_type(const char *t)
{
	if (!*t || strlen(t) > 64)
		return 0;
	for (; *t; t++)
		if (!strchr("abcdefghijklmnopqrstuvwxyz0123456789._-", *t))
			return 0;
	return 1;
}

/* emit -: one event per input record {"type","step","level","data"}, each
 * appended on its own (so concurrent writers interleave whole lines). */
struct emit_state { long n; int bad; };  /* records read, any refused */

static int emit_record(jv r, void *ctx)
{
	struct emit_state *st = ctx;
	st->n++;
	const char *type = orch_jstr(r, "type"), *step = orch_jstr(r, "step");
	const char *level = orch_jstr(r, "level");
	jv data = jv_object_get(jv_copy(r), jv_string("data"));
	int rc = EX_OK;
	if (!type || !valid_type(type) || (step && !orch_step_name_valid(step)) ||
	    (level && strcmp(level, "INFO") && strcmp(level, "WARN") && strcmp(level, "ERROR")) ||
	    (jv_is_valid(data) && jv_get_kind(data) != JV_KIND_OBJECT && jv_get_kind(data) != JV_KIND_NULL)) {
		orch_err("<stdin>: record %ld: not an event {\"type\",\"step\",\"level\",\"data\":{}}: skipped",
		         st->n);
		st->bad = 1;
		jv_free(data);
	} else if (orch_emit(run, level ? level : "INFO", type, step ? step : "", data) < 0)
		rc = EX_FAIL;
	jv_free(r);
	return rc;
}

static int cmd_emit(int argc, char **argv, const char *step, const char *level,
                    const char *data)
{
	if (argc != 1)
		orch_usage(usage);
	if (strcmp(argv[0], "-") == 0) {
		free(events_path());
		if (orch_mkdir_p(run, 0700) < 0)
			orch_die_sys(EX_FAIL, "cannot create %s", run);
		struct emit_state st = {0, 0};
		int rc = orch_records(stdin, "<stdin>", emit_record, &st);
		return rc ? rc : st.bad ? EX_USAGE : EX_OK;  /* the valid ones are in */
	}
	if (!valid_type(argv[0]))
		orch_die(EX_USAGE, "invalid event type '%s' (lower case, digits, . _ -)", argv[0]);
	if (strcmp(level, "INFO") && strcmp(level, "WARN") && strcmp(level, "ERROR"))
		orch_die(EX_USAGE, "invalid level '%s' (INFO, WARN or ERROR)", level);
	if (step && !orch_step_name_valid(step))
		orch_die(EX_USAGE, "invalid step name '%s'", step);
	jv d = jv_null();
	if (data) {
		d = jv_parse(data);
		if (!jv_is_valid(d)) {
			jv msg = jv_invalid_get_msg(d);
			orch_err_at("--data", 0, 0, "%s", jv_string_value(msg));
			jv_free(msg);
			orch_exit(EX_USAGE);
		}
		if (jv_get_kind(d) != JV_KIND_OBJECT) {
			jv_free(d);
			orch_die(EX_USAGE, "--data must be a JSON object");
		}
	}
	char *path = events_path();
	free(path);
	if (orch_mkdir_p(run, 0700) < 0)
		orch_die_sys(EX_FAIL, "cannot create %s", run);
	return orch_emit(run, level, argv[0], step, d) < 0 ? EX_FAIL : EX_OK;
}

/* ---- tail ------------------------------------------------------------ */

struct filter {
	const char *type, *step, *level;
	char since[32];
	int glob, text;
	int ended;  /* -f: 0 while the job runs; 1 + quiet polls since it ended */
	jq_state *jq;
	long lineno;
	const char *path;
};

/* The string value of "key":"..." in a compact line, copied to out
 * (escapes left as they are); 0 if the quick look cannot tell. */
static int quick(const char *line, const char *key, char *out, size_t cap)
{
	char pat[32];
	snprintf(pat, sizeof pat, "\"%s\":\"", key);
	const char *p = strstr(line, pat);
	if (!p)
		return 0;
	p += strlen(pat);
	size_t n = 0;
	while (p[n] && p[n] != '"' && p[n] != '\\' && n + 1 < cap)
		n++;
	if (p[n] != '"')
		return 0;
	memcpy(out, p, n);
	out[n] = 0;
	return 1;
}

static int match_str(const char *want, const char *have, int glob)
{
	if (!want)
		return 1;
	if (!have)
		return 0;
	return glob ? fnmatch(want, have, 0) == 0 : strcmp(want, have) == 0;
}

/* A verdict from the raw text: -1 surely not, 1 maybe (parse it), 2 surely
 * (if the line is valid JSON). Only a line as orch_emit writes it, starting
 * {"ts":", is read this way: in it nothing before "type" and "level" can
 * hold a quote, so their first occurrences are the top-level keys. */
static int prefilter(const struct filter *f, const char *line)
{
	if (strncmp(line, "{\"ts\":\"", 7) != 0)
		return 1;
	char v[128];
	int sure = !f->step && !f->jq && !f->text;
	if (f->type) {
		if (!quick(line, "type", v, sizeof v))
			sure = 0;
		else if (!match_str(f->type, v, f->glob))
			return -1;
	}
	if (f->level) {
		if (!quick(line, "level", v, sizeof v))
			sure = 0;
		else if (strcmp(f->level, v))
			return -1;
	}
	if (f->since[0]) {
		if (!quick(line, "ts", v, sizeof v))
			sure = 0;
		else if (strcmp(v, f->since) < 0)
			return -1;
	}
	return sure ? 2 : 1;
}

static int full_match(const struct filter *f, jv e)
{
	const char *ts = orch_jstr(e, "ts");
	if (!match_str(f->type, orch_jstr(e, "type"), f->glob) ||
	    !match_str(f->step, orch_jstr(e, "step"), 0) ||
	    !match_str(f->level, orch_jstr(e, "level"), 0) ||
	    (f->since[0] && (!ts || strcmp(ts, f->since) < 0)))
		return 0;
	if (!f->jq)
		return 1;
	jv r = orch_jq_first(f->jq, jv_copy(e));
	jv_kind k = jv_get_kind(r);
	jv_free(r);
	return k != JV_KIND_INVALID && k != JV_KIND_NULL && k != JV_KIND_FALSE;
}

static void print_text(jv e)
{
	const char *ts = orch_jstr(e, "ts"), *step = orch_jstr(e, "step");
	jv data = jv_object_get(jv_copy(e), jv_string("data"));
	printf("%s %-5s %-14s %s", ts ? ts : "?", orch_jstr(e, "level") ? orch_jstr(e, "level") : "?",
	       orch_jstr(e, "type") ? orch_jstr(e, "type") : "?", step ? step : "-");
	if (jv_get_kind(data) == JV_KIND_OBJECT) {
		jv_object_foreach(data, k, v) {
			jv s = jv_get_kind(v) == JV_KIND_STRING ? v : jv_dump_string(v, 0);
			printf(" %s=%s", jv_string_value(k), jv_string_value(s));
			jv_free(k);
			jv_free(s);
		}
	}
	jv_free(data);
	putchar('\n');
}

/* One raw line (no newline): print it if it matches. */
static int tail_line(struct filter *f, char *line, size_t n)
{
	f->lineno++;
	int verdict = n == 0 ? -1 : prefilter(f, line);
	if (verdict < 0)
		return 0;
	if (verdict == 2 && orch_json_valid(line, n)) {  /* no need to build it */
		fwrite(line, 1, n, stdout);
		putchar('\n');
		return 1;
	}
	jv e = orch_parse_line(line, n);
	if (jv_get_kind(e) != JV_KIND_OBJECT) {
		orch_err_at(f->path, f->lineno, 0, "not an event, skipped");
		jv_free(e);
		return 0;
	}
	int ok = full_match(f, e);
	if (ok && f->text)
		print_text(e);
	else if (ok) {
		fwrite(line, 1, n, stdout);
		putchar('\n');
	}
	jv_free(e);
	return ok;
}

/* -f stops when the job ends: a job.succeeded, job.failed or
 * job.cancelled line not followed by a job.started (a resume). */
static void note_job_end(struct filter *f, const char *line)
{
	char type[32];
	if (strncmp(line, "{\"ts\":\"", 7) != 0 || !quick(line, "type", type, sizeof type))
		return;
	if (strcmp(type, "job.started") == 0)
		f->ended = 0;
	else if (strcmp(type, "job.succeeded") == 0 || strcmp(type, "job.failed") == 0 ||
	         strcmp(type, "job.cancelled") == 0)
		f->ended = 1;
}

/* Read whole lines from f until EOF; a last line without its newline is
 * kept for later (it may still be being written) unless final. */
static void tail_stream(struct filter *f, FILE *in, char **buf, size_t *cap, int follow)
{
	ssize_t n;
	while ((n = getline(buf, cap, in)) > 0) {
		if ((*buf)[n - 1] != '\n') {
			if (follow) {  /* come back for the rest of it */
				fseeko(in, -(off_t)n, SEEK_CUR);
				break;
			}
		} else
			(*buf)[--n] = 0;
		note_job_end(f, *buf);
		tail_line(f, *buf, n);
	}
	clearerr(in);
}

/* "2025-10-22T10:00:00Z", "2025-10-22", or an age (orch_parse_age). */
static int parse_since(const char *s, char out[32])
{
	double t, age = orch_parse_age(s);
	if (age >= 0 && strspn(s, "0123456789.") < strlen(s))  /* a bare number is no age here */
		t = orch_wall() - age;
	else if (orch_parse_iso(s, &t) < 0)
		return -1;
	time_t sec = (time_t)t;
	struct tm tm;
	gmtime_r(&sec, &tm);
	size_t k = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out + k, 32 - k, ".%03dZ", (int)((t - (double)sec) * 1000));
	return 0;
}

/* tail: the events that match f; with follow, new ones as they come,
 * until the job has ended and the log has stayed quiet for 0.3 s (so
 * orch cancel's job.cancelled, just after job.failed, is seen), or for
 * good with forever. */
static int cmd_tail(struct filter *f, int follow, int forever)
{
	char *path = events_path();
	f->path = path;
	FILE *in = NULL;
	char *buf = NULL;
	size_t cap = 0;
	for (;;) {
		if (!in && !(in = fopen(path, "r")) && (errno != ENOENT || !follow))
			break;  /* no log yet and not following: no events */
		if (in) {
			tail_stream(f, in, &buf, &cap, follow);
			if (fflush(stdout) != 0)
				break;
		}
		if (!follow || (!forever && f->ended && ++f->ended > 3))
			break;
		nanosleep(&(struct timespec){0, 100 * 1000 * 1000}, NULL);
	}
	if (in)
		fclose(in);
	free(buf);
	free(path);
	if (f->jq)
		jq_teardown(&f->jq);
	return EX_OK;
}

/* ---- stats, completed, manifest ------------------------------------- */

static const char *str_or(jv o, const char *k, const char *dflt)
{
	const char *s = orch_jstr(o, k);
	return s ? s : dflt;
}

static double num_or(jv o, const char *k)
{
	double d = 0;
	orch_jnum(o, k, &d);
	return d;
}

/* One instance s (consumed) into its fan-out's row (fold_instances):
 * attempts, calls, duration_s (the longest), status: {status: count}. */
static jv add_instance(jv a, jv s)
{
	jv st = jv_object_get(jv_copy(a), jv_string("status"));
	if (!jv_is_valid(st))
		st = (jv_free(st), jv_object());
	const char *status = str_or(s, "status", "?");
	double was = num_or(st, status), dur = num_or(s, "duration_s");
	a = jv_object_set(a, jv_string("status"), jv_object_set(st, jv_string(status), jv_number(was + 1)));
	a = jv_object_set(a, jv_string("attempts"), jv_number(num_or(a, "attempts") + num_or(s, "attempts")));
	a = jv_object_set(a, jv_string("calls"), jv_number(num_or(a, "calls") + num_or(s, "provider_calls")));
	if (dur > num_or(a, "duration_s"))
		a = jv_object_set(a, jv_string("duration_s"), jv_number(dur));
	jv_free(s);
	return a;
}

/* One row for a fan-out, "summarize[*]  3000 instances ... 2813/3000
 * succeeded, 4 failed", from a (its fold_instances sum, consumed): [*],
 * never a count, which would read as the instance of that key (a key is
 * never *). */
static void print_group(const char *step, jv a)
{
	char name[96], count[32], dur[32] = "-";
	double n = num_or(a, "n"), d;
	snprintf(name, sizeof name, "%s[*]", step);
	snprintf(count, sizeof count, "%.0f instance%s", n, n == 1 ? "" : "s");
	if (orch_jnum(a, "duration_s", &d))
		snprintf(dur, sizeof dur, "%.2fs", d);
	jv st = jv_object_get(jv_copy(a), jv_string("status"));
	printf("%-20s %-25s %8.0f %9s %6.0f  %.0f/%.0f succeeded", name, count,
	       num_or(a, "attempts"), dur, num_or(a, "calls"), num_or(st, "succeeded"), n);
	jv_object_foreach(st, k, c) {
		if (strcmp(jv_string_value(k), "succeeded"))
			printf(", %.0f %s", jv_number_value(c), jv_string_value(k));
		jv_free(k);
		jv_free(c);
	}
	printf("\n");
	jv_free(st);
	jv_free(a);
}

/* One step's row; a skipped step says why. */
static void print_row(const char *name, jv s)
{
	char dur[32] = "-", st[64];
	double d;
	if (orch_jnum(s, "duration_s", &d))
		snprintf(dur, sizeof dur, "%.2fs", d);
	snprintf(st, sizeof st, orch_jstr(s, "reason") ? "%s (%s)" : "%s",
	         str_or(s, "status", "?"), str_or(s, "reason", ""));
	printf("%-20s %-25s %8.0f %9s %6.0f\n", name, st,
	       num_or(s, "attempts"), dur, num_or(s, "provider_calls"));
}

/* The steps (consumed), a fan-out's instances as one row where its first
 * one is (grouped), or each on its own row. */
static void print_step_rows(jv steps, int grouped)
{
	jv groups = grouped ? fold_instances(jv_copy(steps), add_instance) : jv_object();
	printf("%-20s %-25s %8s %9s %6s\n", "step", "status", "attempts", "duration", "calls");
	jv_object_foreach(steps, k, s) {
		const char *name = jv_string_value(k), *open = grouped ? strchr(name, '[') : NULL;
		jv key = open ? jv_string_sized(name, (int)(open - name)) : jv_invalid();
		jv a = open ? jv_object_get(jv_copy(groups), jv_copy(key)) : jv_invalid();
		if (jv_is_valid(a)) {  /* printed once: then gone */
			print_group(jv_string_value(key), a);
			groups = jv_object_delete(groups, key);
		} else {
			if (!open)
				print_row(name, s);
			jv_free(a);
			jv_free(key);
		}
		jv_free(k);
		jv_free(s);
	}
	jv_free(groups);
	jv_free(steps);
}

/* The step table; the plan's steps not yet started (job.started counts
 * them) are one line at the end. */
static void print_steps(jv m)
{
	jv steps = orch_jget(m, "steps");
	int n = jv_get_kind(steps) == JV_KIND_OBJECT ? jv_object_length(jv_copy(steps)) : 0;
	double total;
	if (n > 0)
		print_step_rows(jv_copy(steps), 1);
	if (orch_jnum(m, "steps_total", &total) && total > n)
		printf("%.0f more step%s of the plan not started\n", total - n, total - n == 1 ? "" : "s");
	jv_free(steps);
}

static void print_stats(jv m)
{
	printf("job %s: %s", str_or(m, "job_id", "?"), str_or(m, "status", "?"));
	double d;
	if (orch_jnum(m, "duration_s", &d))
		printf(" in %.1fs", d);
	if (orch_jstr(m, "started"))
		printf(" (started %s)", orch_jstr(m, "started"));
	if (orch_jstr(m, "error"))
		printf(": %s", orch_jstr(m, "error"));
	printf("\n");
	print_steps(m);
	jv llm = jv_object_get(jv_copy(m), jv_string("llm"));
	printf("llm: %.0f calls, %.0f failed, %.0f prompt + %.0f completion tokens, %.2fs\n",
	       num_or(llm, "calls"), num_or(llm, "failures"), num_or(llm, "prompt_tokens"),
	       num_or(llm, "completion_tokens"), num_or(llm, "duration_s"));
	jv_free(llm);
	jv cache = jv_object_get(jv_copy(m), jv_string("cache"));
	printf("cache: %.0f hits, %.0f misses (hit rate %.0f%%)\n", num_or(cache, "hits"),
	       num_or(cache, "misses"), 100 * num_or(cache, "hit_rate"));
	jv_free(cache);
	jv files = jv_object_get(jv_copy(m), jv_string("files"));
	printf("files: %.0f written, %.0f unchanged\n", num_or(files, "written"),
	       num_or(files, "unchanged"));
	jv_free(files);
}

/* The run's state, folded from its events (the manifest object). */
static jv fold(void)
{
	free(events_path());
	jv fresh = orch_manifest_fresh(run);  /* a 10,000-instance log: 2 MB read, not 30,000 events */
	if (jv_is_valid(fresh))
		return fresh;
	jv_free(fresh);
	orch_manifest *m = orch_manifest_new(run);
	if (orch_manifest_update(m) < 0) {
		orch_manifest_free(m);
		orch_die_sys(EX_FAIL, "cannot read the events of %s", run);
	}
	jv s = orch_manifest_get(m);
	orch_manifest_free(m);
	return s;
}

/* A files.none event: its step, and whether it had files: required. */
static int note_files_none(char *line, size_t n, long lineno, void *ctx)
{
	(void)lineno;
	jv *seen = ctx;
	if (!strstr(line, "\"files.none\""))
		return 0;  /* not worth parsing */
	jv e = orch_parse_line(line, n);
	const char *type = orch_jstr(e, "type"), *step = orch_jstr(e, "step");
	if (type && step && strcmp(type, "files.none") == 0) {
		jv data = orch_jget(e, "data");
		*seen = jv_object_set(*seen, jv_string(step), jv_bool(orch_jbool(data, "required", 0)));
		jv_free(data);
	}
	jv_free(e);
	return 0;
}

/* A line per step whose answer named no file though it has files: */
static void print_files_none(void)
{
	char *path = events_path();
	FILE *f = fopen(path, "r");
	jv seen = jv_object();
	if (f) {
		orch_lines(f, note_files_none, &seen);
		fclose(f);
	}
	free(path);
	jv_object_foreach(seen, k, req) {
		printf("warning: %s: files: %s, but its answer named no file (files.none)\n",
		       jv_string_value(k), jv_get_kind(req) == JV_KIND_TRUE ? "required" : "true");
		jv_free(k);
		jv_free(req);
	}
	jv_free(seen);
}

/* Is name step, or one of the instances step[KEY] of the fan-out step? */
static int step_is(const char *name, const char *step)
{
	size_t n = strlen(step);
	return strncmp(name, step, n) == 0 && (name[n] == 0 || name[n] == '[');
}

/* o (an object by step name, consumed) with only step and its instances. */
static jv only_step(jv o, const char *step)
{
	jv out = jv_object();
	jv_object_foreach(o, k, v) {
		if (step_is(jv_string_value(k), step))
			out = jv_object_set(out, k, v);
		else
			jv_free(k), jv_free(v);
	}
	jv_free(o);
	return out;
}

/* stats --step STEP: the job's line, then STEP's row or, for a fan-out,
 * each instance's row and cost (the whole table gives them one row). */
static int stats_step(jv s, const char *step, int json)
{
	jv steps = only_step(orch_jget(s, "steps"), step);
	int n = jv_object_length(jv_copy(steps));
	if (n == 0) {
		jv_free(steps);
		jv_free(s);
		orch_err("%s: no step %s has begun, nor any instance %s[KEY]", run, step, step);
		return EX_FAIL;
	}
	jv cost = orch_jget(s, "cost");
	cost = jv_object_set(cost, jv_string("steps"), only_step(orch_jget(cost, "steps"), step));
	if (json) {
		s = jv_object_set(s, jv_string("steps"), steps);
		s = jv_object_set(s, jv_string("cost"), cost);
		return orch_put(s) < 0 ? EX_FAIL : EX_OK;
	}
	printf("job %s: %s\n", str_or(s, "job_id", "?"), str_or(s, "status", "?"));
	print_step_rows(steps, 0);
	cost_print(cost, step);
	jv_free(cost);
	jv_free(s);
	return EX_OK;
}

static int cmd_stats(int json, const char *step)
{
	jv s = fold();
	s = jv_object_set(s, jv_string("cost"), cost_of_latest(run));
	if (step)
		return stats_step(s, step, json);
	if (json)
		orch_put(s);
	else {
		print_stats(s);
		jv cost = orch_jget(s, "cost");
		cost_print(cost, NULL);
		jv_free(cost);
		jv_free(s);
		print_files_none();
	}
	return EX_OK;
}

/* status: one line for orch ls, "STATUS<TAB>AGE<TAB>DONE<TAB>STEPS": the
 * job's status, whole seconds since it started ("-" before), the steps
 * that succeeded or were skipped, all steps (the plan's, pending included,
 * when job.started says how many). */
static int cmd_status(void)
{
	jv m = fold(), steps = orch_jget(m, "steps");
	double started;
	char age[32] = "-";
	if (orch_jstr(m, "started") && orch_parse_iso(orch_jstr(m, "started"), &started) == 0)
		snprintf(age, sizeof age, "%.0f", floor(orch_wall()) - floor(started));
	int done = 0, all = 0;
	jv_object_foreach(steps, k, st) {
		const char *s = str_or(st, "status", "");
		done += strcmp(s, "succeeded") == 0 || strcmp(s, "skipped") == 0;
		all++;
		jv_free(k);
		jv_free(st);
	}
	double total;  /* the plan's count: pending steps have no entry yet */
	if (orch_jnum(m, "steps_total", &total) && total > all)
		all = (int)total;
	printf("%s\t%s\t%d\t%d\n", str_or(m, "status", "unknown"), age, done, all);
	jv_free(steps);
	jv_free(m);
	return EX_OK;
}

/* failed: one line per failed step, "STEP<TAB>ERROR": its error (tabs and
 * line ends as blanks), or "failed" when it has none. */
static int cmd_failed(void)
{
	jv m = fold(), steps = orch_jget(m, "steps");
	jv_object_foreach(steps, k, st) {
		if (strcmp(str_or(st, "status", ""), "failed") == 0) {
			char *err = orch_xstrdup(str_or(st, "error", "failed"));
			for (char *c = err; *c; c++)
				if (*c == '\t' || *c == '\n' || *c == '\r')
					*c = ' ';
			printf("%s\t%s\n", jv_string_value(k), err);
			free(err);
		}
		jv_free(k);
		jv_free(st);
	}
	jv_free(steps);
	jv_free(m);
	return EX_OK;
}

/* The steps orch_events_completed() gives (what --resume skips), in the
 * order they first succeeded: a jv object keeps its keys' order. */
static int cmd_completed(void)
{
	char *path = events_path();
	jv set = orch_events_completed(path);
	jv_object_foreach(set, k, v) {
		printf("%s\n", jv_string_value(k));
		jv_free(k);
		jv_free(v);
	}
	jv_free(set);
	free(path);
	return EX_OK;
}

/* out STEP: artifacts/STEP.json's output text as it is (a line end added
 * if it has none), or with json the whole record; exit 1 if the step has
 * no result, or (without json) no output text. */
static int cmd_out(int argc, char **argv, int json)
{
	if (argc != 1)
		orch_usage(usage);
	const char *step = argv[0];
	if (!*step || strchr(step, '/') || *step == '.')
		orch_die(EX_USAGE, "invalid step name '%s'", step);
	free(events_path());
	char *rel = orch_fmt("artifacts/%s.json", step), *path = orch_path(run, rel);
	size_t len;
	char *text = orch_slurp(path, &len);
	jv r = text ? orch_parse_line(text, len) : jv_invalid();
	int rc = EX_FAIL;
	if (!text)
		orch_err("%s: no result for step %s (not run, or not succeeded)", run, step);
	else if (jv_get_kind(r) != JV_KIND_OBJECT)
		orch_err("%s: not a result record", path);
	else if (json)
		rc = orch_put(jv_copy(r)) < 0 ? EX_FAIL : EX_OK;
	else if (!orch_jstr(r, "output"))
		orch_err("step %s has no output text (--json shows its record)", step);
	else {
		const char *o = orch_jstr(r, "output");
		size_t n = strlen(o);
		fwrite(o, 1, n, stdout);
		if (n && o[n - 1] != '\n')
			putchar('\n');
		rc = EX_OK;
	}
	jv_free(r);
	free(text);
	free(path);
	free(rel);
	return rc;
}

static int cmd_manifest(void)
{
	free(events_path());
	orch_manifest *m = orch_manifest_new(run);
	int rc = orch_manifest_write(m);
	orch_manifest_free(m);
	return rc < 0 ? EX_FAIL : EX_OK;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"step", required_argument, 0, 's'},
		{"level", required_argument, 0, 'l'},
		{"data", required_argument, 0, 'd'},
		{"type", required_argument, 0, 't'},
		{"since", required_argument, 0, 'S'},
		{"jq", required_argument, 0, 'q'},
		{"follow", no_argument, 0, 'f'},
		{"json", no_argument, 0, 'j'},
		{"text", no_argument, 0, 'T'},
		{"forever", no_argument, 0, 'F'},
		ORCH_COMMON_LONGOPTS,
		{0, 0, 0, 0},
	};
	struct filter f = {0};
	const char *level = NULL, *data = NULL, *jqexpr = NULL, *since = NULL;
	int c, follow = 0, json = 0, forever = 0;
	orch_init(argc, argv);
	int report = events_report(argc, argv, usage);
	if (report < 0)
		report = events_export(argc, argv, usage);
	if (report >= 0)
		orch_exit(report);
	/* GNU getopt moves the command word and TYPE after the options */
	while ((c = getopt_long(argc, argv, "hf", longopts, NULL)) != -1) {
		switch (c) {
		case 's': f.step = optarg; break;
		case 'l': level = optarg; break;
		case 'd': data = optarg; break;
		case 't': f.type = optarg; break;
		case 'S': since = optarg; break;
		case 'q': jqexpr = optarg; break;
		case 'f': follow = 1; break;
		case 'j': json = 1; break;
		case 'T': f.text = 1; break;
		case 'F': forever = 1; break;
		default: orch_common(c, optarg, usage);
		}
	}
	if (optind >= argc)
		orch_usage(usage);
	const char *cmd = argv[optind];
	argc -= optind + 1;
	argv += optind + 1;
	int rc;
	if (strcmp(cmd, "emit") == 0)
		rc = cmd_emit(argc, argv, f.step, level ? level : "INFO", data);
	else if (strcmp(cmd, "out") == 0)
		rc = cmd_out(argc, argv, json);
	else if (strcmp(cmd, "why") == 0 || strcmp(cmd, "why-miss") == 0)
		rc = events_why(cmd, argc, argv, json, usage);
	else if (argc > 0)
		orch_usage(usage);
	else if (strcmp(cmd, "tail") == 0) {
		f.level = level;
		f.glob = f.type && strpbrk(f.type, "*?[");
		if (since && parse_since(since, f.since) < 0)
			orch_die(EX_USAGE, "--since %s: not a time (2025-10-22T10:00:00Z) or an age (90s, 10m, 2h, 1d, 2w)", since);
		char *err = NULL;
		if (jqexpr && !(f.jq = orch_jq_compile(jqexpr, &err))) {
			orch_err_at("--jq", 0, 0, "%s", err);
			free(err);
			orch_exit(EX_USAGE);
		}
		rc = cmd_tail(&f, follow, forever);
	} else if (strcmp(cmd, "stats") == 0)
		rc = cmd_stats(json, f.step);
	else if (strcmp(cmd, "status") == 0)
		rc = cmd_status();
	else if (strcmp(cmd, "failed") == 0)
		rc = cmd_failed();
	else if (strcmp(cmd, "completed") == 0)
		rc = cmd_completed();
	else if (strcmp(cmd, "manifest") == 0)
		rc = cmd_manifest();
	else {
		orch_err("unknown command '%s'", cmd);
		orch_usage(usage);
	}
	orch_exit(rc);
}
