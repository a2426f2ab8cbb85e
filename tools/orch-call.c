/* orch-call: render a step's prompt and call an LLM provider.
 *
 * Reads ND-JSON records from the files named, or stdin. A step input
 * record (it has "spec") is rendered into a request: spec.system and
 * spec.prompt are {{ jq }} templates evaluated against the record. A
 * request record (it has "messages") is taken as it is. Each request is
 * sent to its provider; one response record per request is printed, in
 * input order. --render prints the requests instead of sending them.
 * --serve (orch-cache stream's CMD) takes stdin's lines as they come,
 * and prints each answer as it is done, with the request's "id" first,
 * a failure as its own {"id","step","failed","exit_code"} line.
 *
 * Providers: ollama (POST /api/chat, NDJSON), openai and every
 * OpenAI-compatible server (POST {base}/chat/completions, SSE), anthropic
 * (POST {base}/v1/messages, SSE) over libcurl; exec (any command, the
 * prompt on its stdin, its stdout the answer); echo (offline: the answer
 * is the last user message). Each is a row of the table in
 * call/provider.c; call/call.h says which part does what.
 *
 * This file is the queue: a job per request, in input order, up to -j N
 * of them in flight from one thread (the HTTP requests share one curl
 * multi handle, and exec commands' pipes are polled with its sockets);
 * echo answers at once. A transient fault (408, 409, 429, 500, 502-504,
 * 520-524, 529, a connection failure, a timeout, no byte for
 * --idle-timeout, a stream cut before its end marker, a transient error
 * inside a stream) is retried with exponential backoff and full jitter,
 * honouring Retry-After and x-should-retry, all within --timeout for the
 * whole call; if only transient faults exhausted the retries the exit
 * status is 75 (try again later), else 1. A request with fallback
 * providers then tries the next (at once when out of quota or
 * overloaded), which has retries and --timeout of its own. A provider
 * with limits (rpm, tpm) shares them with every process calling its
 * account: an attempt waits, queued, for its share (call/limit.c). API
 * keys travel only in request headers; --verbose shows them redacted,
 * and every provider message is scrubbed of them before it is printed
 * or logged. A request with a budget does not start an attempt once the
 * run has spent it (call/budget.c): it fails with kind budget, named on
 * stdout in its turn, and is not retried. Its cost is priced from the
 * request's prices, the config's, then the table (lib/price.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sodium.h>
#include "call/call.h"

static const char usage[] =
	"usage: orch-call [--render [--failure-lines]] [--stream] [--serve] [-j N]\n"
	"                 [--provider NAME] [--model MODEL] [--command CMD] [--retries N]\n"
	"                 [--timeout S] [--connect-timeout S] [--idle-timeout S] [--backoff S]\n"
	"                 [--rpm N] [--tpm N] [--verbose] [--budget USD] [--budget-tokens N]\n"
	"                 [--run DIR] [FILE...]\n"
	"       orch-call --config\n"
	"Call an LLM provider for each request or step input record (on stdin or\n"
	"in FILEs); print one response record per request, in input order.\n"
	"      --render            print the requests instead of calling (a dry run)\n"
	"      --failure-lines     with --render: a step input record that cannot be\n"
	"                          rendered prints a failure line in its place\n"
	"      --stream            ask for a streamed answer; append its text to the\n"
	"                          step's log, run/logs/STEP.log, as it arrives\n"
	"      --serve             take requests on stdin as they come; print each\n"
	"                          answer as it is done, with the request's \"id\"\n"
	"                          (orch-call(1), SERVE)\n"
	"  -j, --jobs N            keep up to N requests in flight (default 1)\n"
	"  -p, --provider NAME     ollama, openai, anthropic, exec or echo; overrides\n"
	"                          the spec and the request; NAME[:MODEL],... is a\n"
	"                          list, each tried when the one before fails\n"
	"  -m, --model MODEL       overrides the model\n"
	"      --command CMD       the command of the exec provider\n"
	"  -r, --retries N         retries after the first attempt (default 3)\n"
	"  -t, --timeout S         seconds for the whole call, retries included\n"
	"                          (default 600)\n"
	"      --connect-timeout S seconds to connect (default 10)\n"
	"      --idle-timeout S    seconds with no byte from the server before the\n"
	"                          attempt is cut and retried (default 60; 0: never)\n"
	"      --backoff S         the first backoff ceiling (default 1)\n"
	"      --rpm N, --tpm N    requests, tokens per minute for each provider\n"
	"                          account, shared with every run on it (over\n"
	"                          the request's limits)\n"
	"      --budget USD        refuse a call once the run has spent USD (over\n"
	"                          $ORCH_BUDGET and the request's budget.usd)\n"
	"      --budget-tokens N   refuse a call once the run has used N tokens\n"
	"  -v, --verbose           show each request (URL, headers) and response\n"
	"                          (status, headers) on stderr, keys redacted\n"
	"      --config            print the effective settings (config file,\n"
	"                          environment, built-in), keys never shown\n"
	"      --run DIR           the run folder, for events and logs (default\n"
	"                          $ORCH_RUN_DIR; without one, none are written)\n"
	"      --help, --version\n";

struct call_opts opt = {
	.jobs = 1, .retries = 3, .timeout = 600, .connect_timeout = 10,
	.idle_timeout = 60, .backoff = 1, .backoff_cap = 30,
};

/* The jobs, in input order: those before head are printed and gone. */
static struct {
	struct job **job;
	size_t n, head, cap;
	size_t active;      /* started and not finished */
	struct pollset ps;  /* the exec pipes of one turn of the loop */
	int worst;          /* exit status: EX_USAGE > EX_FAIL > EX_TEMP > EX_OK */
} q;

static void status_is(int code)
{
	static const int rank[] = {[EX_OK] = 0, [EX_TEMP] = 1, [EX_FAIL] = 2, [EX_USAGE] = 3};
	if (code == EX_OK || code == EX_TEMP || code == EX_FAIL || code == EX_USAGE)
		if (rank[code] > rank[q.worst])
			q.worst = code;
}

double ms3(double s)
{
	return round(s * 1000) / 1000;
}

static long estimate(size_t bytes)  /* tokens: one per four bytes */
{
	return (long)((bytes + 3) / 4);
}

/* ---- a job's answer ---- */

/* Every scheme://user:password@ in s (malloc'd) without user:password@. */
static char *scrub_userinfo(char *s)
{
	for (char *p = s; (p = strstr(p, "://")); ) {
		p += 3;
		size_t n = strcspn(p, "/?# \"'<>()");
		char *at = memrchr(p, '@', n);
		if (at)
			memmove(p, at + 1, strlen(at + 1) + 1);
	}
	return s;
}

char *redact(const char *s)
{
	static const char *keys[] = {"OPENAI_API_KEY", "ANTHROPIC_API_KEY"};
	size_t nenv = sizeof keys / sizeof *keys;
	char *out = orch_xstrdup(s);
	for (size_t i = 0; i < nenv + ORCH_NKEYS; i++) {  /* the config's keys too */
		const char *k = i < nenv ? getenv(keys[i]) : config_secret((int)(i - nenv));
		size_t kl = k ? strlen(k) : 0;
		char *p;
		while (kl >= 4 && (p = strstr(out, k))) {
			char *n = orch_fmt("%.*s[REDACTED]%s", (int)(p - out), out, p + kl);
			free(out);
			out = n;
		}
	}
	for (char *p = out; *p; p++)
		if (*p == '\n' || *p == '\r' || *p == '\t')
			*p = ' ';
	return scrub_userinfo(out);
}

void job_fail(struct job *j, int transient, const char *fmt, ...)
{
	if (j->err)
		return;  /* the first problem is the one to tell */
	va_list ap;
	char *s;
	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		orch_die(EX_FAIL, "out of memory");
	va_end(ap);
	j->err = redact(s);
	free(s);
	j->transient = transient;
}

void job_text(struct job *j, const char *s, size_t n)
{
	if (!n)
		return;
	j->content = jv_string_append_buf(j->content, s, (int)n);
	if (j->logfd >= 0 && write(j->logfd, s, n) < 0) {
		/* the log is a view; the answer is what matters */
	}
}

static void log_note(struct job *j, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void log_note(struct job *j, const char *fmt, ...)
{
	if (j->logfd < 0)
		return;
	va_list ap;
	char *s;
	va_start(ap, fmt);
	int n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n > 0 && write(j->logfd, s, n) < 0) {
		/* as above */
	}
	if (n >= 0)
		free(s);
}

/* ---- an attempt, and how it settles ---- */

void job_begin_attempt(struct job *j)
{
	jv_free(j->content);
	jv_free(j->finish);
	jv_free(j->reasoning);
	jv_free(j->refusal);
	j->content = jv_string("");
	j->finish = jv_null();
	j->reasoning = jv_string("");
	j->refusal = jv_string("");
	j->ptok = j->ctok = j->cache_read = j->cache_write = 0;
	j->has_ptok = j->has_ctok = j->has_cache = j->ended = j->transient = j->quota = 0;
	free(j->err);
	j->err = NULL;
	j->status = 0;
	j->retry_after = -1;
	j->should_retry = -1;
	j->attempt++;
	j->t_att = orch_mono();
	emit_request(j);
}

/* Done: the answer (or error) waits in the queue for its turn; the
 * answers behind a slow one may pile up, so let go of the log now. */
static void finished(struct job *j)
{
	if (j->logfd >= 0)
		close(j->logfd);
	j->logfd = -1;
	j->state = J_DONE;
	q.active--;
}

static void succeed(struct job *j, double now)
{
	if (!j->has_ctok)
		j->ctok = estimate(jv_string_length_bytes(jv_copy(j->content)));
	emit_response(j, now - j->t_att, 0, 0, 0);
	jv u = jv_object();
	u = jv_object_set(u, jv_string("prompt_tokens"), jv_number(prompt_tokens(j)));
	u = jv_object_set(u, jv_string("completion_tokens"), jv_number(j->ctok));
	if (j->has_cache) {
		u = jv_object_set(u, jv_string("cache_read_tokens"), jv_number(j->cache_read));
		u = jv_object_set(u, jv_string("cache_creation_tokens"), jv_number(j->cache_write));
	}
	jv r = jv_object();
	r = jv_object_set(r, jv_string("provider"), jv_string(j->name));
	r = jv_object_set(r, jv_string("model"), jv_string(j->model));
	r = jv_object_set(r, jv_string("content"), jv_copy(j->content));
	r = jv_object_set(r, jv_string("finish_reason"),
	                  is_kind(j->finish, JV_KIND_STRING) ? jv_copy(j->finish) : jv_string("stop"));
	r = jv_object_set(r, jv_string("usage"), u);
	if (jv_string_length_bytes(jv_copy(j->reasoning)) > 0)
		r = jv_object_set(r, jv_string("reasoning"), jv_copy(j->reasoning));
	if (j->schema)
		r = jv_object_set(r, jv_string("json"), jv_copy(j->json));
	r = jv_object_set(r, jv_string("duration_s"), jv_number(ms3(now - j->t0)));
	j->out = r;
	finished(j);
}

/* The HTTP status, the provider's message and the attempts; malloc'd. */
static char *failure(const struct job *j, int late)
{
	char st[32] = "", tries[80] = "";
	if (j->status)
		snprintf(st, sizeof st, "HTTP %ld: ", j->status);
	if (j->attempt > 1 || late)
		snprintf(tries, sizeof tries, " (after %d attempt%s%s)", j->attempt,
		         j->attempt > 1 ? "s" : "", late ? "; no time left to retry" : "");
	return orch_fmt("%s%s%s", st, j->err, tries);
}

/* {"failed":{"kind"?,"message"}} (message consumed). */
static jv failed_line(jv message, const char *kind)
{
	jv f = jv_object();
	if (kind)
		f = jv_object_set(f, jv_string("kind"), jv_string(kind));
	f = jv_object_set(f, jv_string("message"), message);
	return jv_object_set(jv_object(), jv_string("failed"), f);
}

/* One line: step, provider, HTTP status, the provider's message. */
static void give_up(struct job *j, int late)
{
	char *f = failure(j, late);
	orch_err("step %s: %s: %s", j->step ? j->step : "-", j->name, f);
	log_note(j, "\n[orch-call: %s: %s]\n", j->name, f);
	j->rc = j->transient ? EX_TEMP : EX_FAIL;
	if (opt.serve)  /* its own failure line; the others go on */
		j->out = failed_line(jv_string_fmt("step %s: %s: %s", j->step ? j->step : "-", j->name, f), NULL);
	free(f);
	finished(j);
}

/* Past its budget: the job fails with kind budget (orch-sched(1),
 * "Failure kinds"), its line printed in its turn; never retried. */
static void refuse(struct job *j, char *why)
{
	orch_err("step %s: %s", j->step ? j->step : "-", why);
	log_note(j, "\n[orch-call: %s]\n", why);
	jv_free(j->out);
	j->out = failed_line(jv_string(why), "budget");
	free(why);
	j->rc = EX_FAIL;
	finished(j);
}

/* An attempt starts, unless the run has spent its budget. */
static void start(struct job *j)
{
	char *why = budget_check(j);
	if (why)
		refuse(j, why);
	else
		j->p->start(j);
}

/* ---- fallback ---- */

static int overloaded(const struct job *j)
{
	return j->status == 529 || strncmp(j->err, "overloaded_error", 16) == 0;
}

/* Does the request name another provider to try? */
static int has_fallback(const struct job *j)
{
	jv fb = orch_jget(j->req, "fallback");
	int n = is_kind(fb, JV_KIND_ARRAY) ? jv_array_length(jv_copy(fb)) : 0;
	jv_free(fb);
	return n > 0;
}

/* Will the next provider be tried? After the retries ran out, or at once
 * for running out of quota or an overload. */
static int falls_back(const struct job *j, int retrying)
{
	return !retrying && (j->transient || j->quota || overloaded(j)) && has_fallback(j);
}

static void emit_fallback(struct job *j, jv next)
{
	jv d = jv_object();
	d = jv_object_set(d, jv_string("provider"), jv_string(j->name));
	d = jv_object_set(d, jv_string("model"), jv_string(j->model));
	d = jv_object_set(d, jv_string("error"), jv_string(j->err));
	d = jv_object_set(d, jv_string("next_provider"), orch_jget(next, "provider"));
	d = jv_object_set(d, jv_string("next_model"), orch_jget(next, "model"));
	orch_emit(orch_run_dir(), "WARN", "llm.fallback", j->step, d);
}

/* The next provider of the list takes the request over, with retries
 * and --timeout of its own; it starts at the next turn of the loop. */
static void fall_back(struct job *j, double now)
{
	jv fb = orch_jget(j->req, "fallback");
	int n = jv_array_length(jv_copy(fb));
	jv next = jv_array_get(jv_copy(fb), 0), req = j->req;
	char *f = failure(j, 0);
	orch_err("step %s: %s: %s; falling back to %s (%s)", j->step ? j->step : "-", j->name,
	         f, orch_jstr(next, "provider"), orch_jstr(next, "model"));
	log_note(j, "\n[orch-call: %s: %s; falling back to %s]\n", j->name, f,
	         orch_jstr(next, "provider"));
	free(f);
	emit_fallback(j, next);
	req = jv_object_delete(req, jv_string("command"));
	req = jv_object_delete(req, jv_string("limits"));
	req = jv_object_delete(req, jv_string("base_url"));
	jv_object_foreach(next, k, v)
		req = jv_object_set(req, k, v);
	jv_free(next);
	if (n > 1)
		req = jv_object_set(req, jv_string("fallback"), jv_array_slice(fb, 1, n));
	else {
		jv_free(fb);
		req = jv_object_delete(req, jv_string("fallback"));
	}
	j->req = req;
	j->name = orch_jstr(req, "provider");
	j->model = orch_jstr(req, "model");
	j->step = orch_jstr(req, "step");
	j->p = provider_find(j->name);
	http_free(j);
	exec_free(j);
	j->attempt = 0;
	j->deadline = now + opt.timeout;
	j->wake = now;
	j->state = J_WAIT;
}

/* ---- structured output: the answer checked, asked again ---- */

/* Tries ran out: each error on a line, the first again last, as the one
 * line that says why the step failed. */
static void give_up_invalid(struct job *j)
{
	const char *sp = j->step ? j->step : "-";
	jv first = jv_null();
	jv_array_foreach(j->errors, i, e) {
		jv line = schema_error_line(e);
		orch_err("step %s: %s", sp, jv_string_value(line));
		log_note(j, "\n[orch-call: schema: %s]\n", jv_string_value(line));
		if (i == 0)
			first = jv_copy(line);
		jv_free(line);
		jv_free(e);
	}
	orch_err("step %s: %s: the answer is invalid after %d tr%s; schema: %s", sp, j->name,
	         j->repairs + 1, j->repairs ? "ies" : "y", jv_string_value(first));
	/* the step's failure kind (orch-sched(1), "Failure kinds") */
	jv_free(j->out);  /* printed in its turn */
	j->out = failed_line(jv_string_fmt("schema: %s", jv_string_value(first)), "schema");
	jv_free(first);
	j->rc = EX_FAIL;
	finished(j);
}

/* Is the answer JSON valid against the schema? If not, it is asked again
 * (from the next turn of the loop, with retries of its own, within
 * --timeout) with the answer and the errors appended, or the job fails. */
static int answer_valid(struct job *j, double now)
{
	jv_free(j->json);
	jv_free(j->errors);
	j->json = schema_answer(j->schema, jv_copy(j->content), &j->errors);
	if (jv_is_valid(j->json))
		return 1;
	int again = j->repairs < j->repair_max && now < j->deadline;
	emit_response(j, now - j->t_att, again, 0, !again);
	if (!again) {
		give_up_invalid(j);
		return 0;
	}
	log_note(j, "\n[orch-call: the answer is invalid (%d error%s); asking again]\n",
	         jv_array_length(jv_copy(j->errors)), jv_array_length(jv_copy(j->errors)) > 1 ? "s" : "");
	jv msgs = schema_repair(orch_jget(j->req, "messages"), jv_copy(j->content), j->errors);
	j->req = jv_object_set(j->req, jv_string("messages"), msgs);
	j->name = orch_jstr(j->req, "provider");  /* the request moved */
	j->model = orch_jstr(j->req, "model");
	j->step = orch_jstr(j->req, "step");
	j->repairs++;
	http_free(j);
	exec_free(j);
	j->attempt = 0;
	j->wake = now;
	j->state = J_WAIT;
	return 0;
}

/* The attempt is over: the answer, a retry, the next provider, or the
 * error. */
void job_settle(struct job *j)
{
	double now = orch_mono(), delay = 0;
	if (!j->err && jv_string_length_bytes(jv_copy(j->refusal)) > 0)
		job_fail(j, 0, "the model refused: %s", jv_string_value(j->refusal));
	if (!j->err && jv_string_length_bytes(jv_copy(j->content)) == 0)
		job_fail(j, 0, "the answer has no content");
	if (!j->err) {
		if (!j->schema || answer_valid(j, now))
			succeed(j, now);
		return;
	}
	int wanted = j->transient && j->attempt <= opt.retries, retry = 0;
	if (overloaded(j) && has_fallback(j))
		wanted = 0;  /* rather the next provider than a busy one */
	if (wanted) {
		double cap = fmin(opt.backoff_cap, opt.backoff * pow(2, j->attempt - 1));
		delay = cap * (randombytes_uniform(1000001) / 1e6);  /* full jitter */
		if (j->retry_after >= 0)
			delay = fmax(delay, j->retry_after);
		retry = now + delay < j->deadline;
	}
	int next = falls_back(j, retry);
	emit_response(j, now - j->t_att, retry, delay, !retry && !next);
	if (next) {
		fall_back(j, now);
		return;
	}
	if (!retry) {
		give_up(j, wanted);
		return;
	}
	log_note(j, "\n[orch-call: attempt %d failed: %s; retrying in %.2fs]\n",
	         j->attempt, j->err, delay);
	j->wake = now + delay;
	j->state = J_WAIT;
}

/* ---- the queue ---- */

static void job_free(struct job *j)
{
	jv_free(j->req);
	jv_free(j->id);
	jv_free(j->content);
	jv_free(j->finish);
	jv_free(j->reasoning);
	jv_free(j->refusal);
	jv_free(j->out);
	jv_free(j->json);
	jv_free(j->errors);
	orch_schema_free(j->schema);
	exec_free(j);
	http_free(j);
	free(j->err);
	if (j->logfd >= 0)
		close(j->logfd);
	free(j);
}

/* --serve: an answer as it is printed: {"id"?, response...}, or a
 * failure {"id"?,"step","failed":{"kind"?,"message"},"exit_code":N}. */
static jv served(struct job *j)
{
	jv o = jv_object();
	if (!is_kind(j->id, JV_KIND_NULL))
		o = jv_object_set(o, jv_string("id"), jv_copy(j->id));
	if (!is_kind(j->out, JV_KIND_OBJECT) || jv_object_has(jv_copy(j->out), jv_string("failed"))) {
		const char *sp = j->step ? j->step : nonempty_env("ORCH_STEP");
		o = jv_object_set(o, jv_string("step"), sp ? jv_string(sp) : jv_null());
		o = jv_object_set(o, jv_string("failed"), is_kind(j->out, JV_KIND_OBJECT) ?
		                  orch_jget(j->out, "failed") : jv_object());
		return jv_object_set(o, jv_string("exit_code"), jv_number(j->rc ? j->rc : EX_FAIL));
	}
	jv_object_foreach(j->out, k, v)
		o = jv_object_set(o, k, v);
	return o;
}

/* --serve: print every answer that is done, whatever its place, and
 * let it go; the others keep their order. */
static void flush_served(void)
{
	size_t keep = 0;
	for (size_t i = 0; i < q.n; i++) {
		struct job *j = q.job[i];
		if (j->state != J_DONE) {
			q.job[keep++] = j;
			continue;
		}
		if (orch_put(served(j)) < 0)
			orch_die_sys(EX_FAIL, "writing output failed");
		status_is(j->rc);
		job_free(j);
	}
	q.n = keep;
	q.head = 0;
}

/* Print the answers that are next in input order, and let them go. */
static void flush_ready(void)
{
	if (opt.serve) {
		flush_served();
		return;
	}
	while (q.head < q.n && q.job[q.head]->state == J_DONE) {
		struct job *j = q.job[q.head];
		if (is_kind(j->out, JV_KIND_OBJECT) && orch_put(jv_copy(j->out)) < 0)
			orch_die_sys(EX_FAIL, "writing output failed");
		status_is(j->rc);
		job_free(j);
		q.job[q.head++] = NULL;
	}
	if (q.head == q.n)
		q.head = q.n = 0;
}

/* A job's part in a turn of the loop: when to look at it again (-1: no
 * time of its own); a retry that is due starts (or waits on: its share
 * of a rate limit may not be there yet). */
static double due(struct job *j, double now)
{
	if (j->state == J_EXEC)
		return exec_watch(j, now, &q.ps);
	if (j->state != J_WAIT)
		return -1;
	if (j->wake > now)
		return j->wake;
	start(j);
	return j->state == J_WAIT ? j->wake : -1;
}

/* One turn: settle what is over, start the retries that are due, print
 * what is ready, then wait for the next thing to happen (at most 1 s),
 * fd too if it is >= 0 (--serve's stdin): 1 if it is readable. */
static int pump_fd(int fd)
{
	http_perform();
	double now = orch_mono(), next = -1;
	q.ps.n = 0;
	for (size_t i = q.head; i < q.n; i++) {
		double at = due(q.job[i], now);
		if (at >= 0 && (next < 0 || at < next))
			next = at;
	}
	flush_ready();
	if (!q.active && fd < 0)
		return 0;
	size_t in = q.ps.n;
	if (fd >= 0) {
		if (q.ps.n == q.ps.cap)
			q.ps.fd = orch_xrealloc(q.ps.fd, (q.ps.cap = 2 * q.ps.cap + 16) * sizeof *q.ps.fd);
		q.ps.fd[q.ps.n++] = (struct pollfd){fd, POLLIN, 0};
	}
	long t = http_timeout();
	if (t < 0 || t > 1000)
		t = 1000;
	if (next >= 0 && (next - now) * 1000 < t)
		t = (long)((next - now) * 1000) + 1;
	http_wait(&q.ps, t);
	for (size_t i = q.head; i < q.n; i++)
		if (q.job[i]->state == J_EXEC)
			exec_io(q.job[i], &q.ps);
	return fd >= 0 && q.ps.fd[in].revents != 0;
}

static void pump(void)
{
	pump_fd(-1);
}

/* The step's log for a streamed answer, or -1. */
static int open_log(const char *step)
{
	const char *run = orch_run_dir();
	if (!opt.stream || !run || !step)
		return -1;
	if (!orch_step_name_valid(step)) {
		orch_err("step %s: not a name for a log file; not logging the stream", step);
		return -1;
	}
	char *dir = orch_path(run, "logs"), *path = orch_fmt("%s/%s.log", dir, step);
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0 && errno == ENOENT && orch_mkdir_p(dir, 0700) == 0)  /* no logs/ yet */
		fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		orch_err_sys("cannot open %s", path);
	free(dir);
	free(path);
	return fd;
}

static struct job *job_new(jv req)
{
	struct job *j = orch_xmalloc(sizeof *j);
	memset(j, 0, sizeof *j);
	j->req = req;
	j->name = orch_jstr(req, "provider");
	j->model = orch_jstr(req, "model");
	j->step = orch_jstr(req, "step");
	j->p = provider_find(j->name);
	j->content = jv_string("");
	j->finish = jv_null();
	j->reasoning = jv_string("");
	j->refusal = jv_string("");
	j->out = jv_null();
	j->id = jv_null();
	j->json = jv_invalid();
	j->errors = jv_array();
	jv s = orch_jget(req, "schema");
	if (!is_kind(s, JV_KIND_NULL))  /* checked by request.c */
		j->schema = orch_schema_new(s, NULL);
	else
		jv_free(s);
	double rmax = 1;
	orch_jnum(req, "repair", &rmax);
	j->repair_max = (int)rmax;
	j->retry_after = -1;
	j->t0 = orch_mono();
	j->deadline = j->t0 + opt.timeout;
	size_t bytes = 0;
	jv msgs = orch_jget(req, "messages");
	jv_array_foreach(msgs, i, m) {
		bytes += strlen(orch_jstr(m, "content"));
		jv_free(m);
	}
	jv_free(msgs);
	j->prompt_est = estimate(bytes);
	j->logfd = open_log(j->step ? j->step : nonempty_env("ORCH_STEP"));
	return j;
}

/* A request (finalized, consumed) joins the queue and starts; id
 * (consumed) is its tag under --serve. */
static void enqueue(jv req, jv id)
{
	struct job *j = job_new(req);
	jv_free(j->id);
	j->id = id;
	if (q.n == q.cap)
		q.job = orch_xrealloc(q.job, (q.cap = q.cap ? 2 * q.cap : 64) * sizeof *q.job);
	q.job[q.n++] = j;
	q.active++;
	start(j);
	flush_ready();
}

static int on_record(jv rec, void *ctx)
{
	(void)ctx;
	jv id = jv_null();
	char *step = NULL;
	if (opt.serve && is_kind(rec, JV_KIND_OBJECT)) {  /* the tag is no part of the request */
		jv_free(id);
		id = orch_jget(rec, "id");
		rec = jv_object_delete(rec, jv_string("id"));
		if (orch_jstr(rec, "step"))
			step = orch_xstrdup(orch_jstr(rec, "step"));
	}
	if (opt.failure_lines && is_kind(rec, JV_KIND_OBJECT) && orch_jstr(rec, "step")) {
		step = orch_xstrdup(orch_jstr(rec, "step"));  /* (--serve is never with --render) */
		orch_take_said();  /* what request_from says is this record's */
	}
	jv req = request_from(rec);
	if (!jv_is_valid(req)) {
		jv_free(req);
		status_is(EX_USAGE);
		if (opt.failure_lines && step) {  /* what it said, as orch-sched(1) BATCH takes it */
			const char *said = orch_take_said();
			jv msg = *said ? jv_string(said) : jv_string_fmt("step %s: cannot be rendered", step);
			jv f = jv_object_set(jv_object(), jv_string("step"), jv_string(step));
			f = jv_object_merge(f, failed_line(msg, "template"));
			if (orch_put(jv_object_set(f, jv_string("exit_code"), jv_number(EX_USAGE))) < 0)
				orch_die_sys(EX_FAIL, "writing output failed");
		} else if (opt.serve) {  /* said on stderr; its line says it failed */
			struct job j = {.id = id, .step = step, .rc = EX_USAGE,
			                .out = failed_line(jv_string("no request"), NULL)};
			if (orch_put(served(&j)) < 0)
				orch_die_sys(EX_FAIL, "writing output failed");
			jv_free(j.out);  /* j.id is id, freed below */
		}
	} else if (opt.render) {
		if (orch_put(req) < 0)
			orch_die_sys(EX_FAIL, "writing output failed");
	} else if (opt.serve) {
		enqueue(req, id);
		id = jv_null();
	} else {
		enqueue(req, jv_null());
		while (q.active >= (size_t)opt.jobs)
			pump();
	}
	jv_free(id);
	free(step);
	return 0;
}

/* --serve: the request lines of stdin taken as they come, up to -j in
 * flight, each answer printed as it is done (flush_served), until stdin
 * ends and every answer is out. */
static void serve(void)
{
	struct { char *p; size_t n, cap; } in = {0};
	size_t used = 0;
	int open = 1;
	for (;;) {
		char *nl;
		while (q.active < (size_t)opt.jobs && in.n > used &&
		       (nl = memchr(in.p + used, '\n', in.n - used))) {
			char *line = in.p + used;
			used = (size_t)(nl - in.p) + 1;
			line += strspn(line, " \t\r");
			if (line == nl)
				continue;
			jv rec = jv_parse_sized(line, (int)(nl - line));
			if (jv_is_valid(rec))
				on_record(rec, NULL);
			else {
				jv msg = jv_invalid_get_msg(rec);
				orch_err("<stdin>: not a JSON record: %s",
				         is_kind(msg, JV_KIND_STRING) ? jv_string_value(msg) : "?");
				jv_free(msg);
				status_is(EX_USAGE);
			}
		}
		if (!open && !q.n && (in.n == used || !memchr(in.p + used, '\n', in.n - used)))
			break;
		if (!pump_fd(open && q.active < (size_t)opt.jobs ? 0 : -1) || !open)
			continue;
		if (used) {
			memmove(in.p, in.p + used, in.n - used);
			in.n -= used;
			used = 0;
		}
		if (in.cap - in.n < 65536)
			in.p = orch_xrealloc(in.p, in.cap = 2 * in.cap + 65536);
		ssize_t r = read(0, in.p + in.n, in.cap - in.n - 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			open = 0;
			if (in.n > 0 && in.p[in.n - 1] != '\n')
				in.p[in.n++] = '\n';
		} else
			in.n += (size_t)r;
	}
	free(in.p);
}

/* ---- the command line ---- */

static double num_arg(const char *s, const char *what, double min)
{
	char *e;
	double v = strtod(s, &e);
	if (e == s || *e || !(v >= min) || v > 1e9)
		orch_die(EX_USAGE, "%s: not a number >= %g: %s", what, min, s);
	return v;
}

static double positive_arg(const char *s, const char *what)
{
	double v = num_arg(s, what, 0);
	if (v <= 0)
		orch_die(EX_USAGE, "%s: not a number > 0: %s", what, s);
	return v;
}

/* $ORCH_BUDGET, $ORCH_BUDGET_TOKENS (orch run --budget): under the flags. */
static void budget_env(void)
{
	const char *usd = nonempty_env("ORCH_BUDGET"), *tok = nonempty_env("ORCH_BUDGET_TOKENS");
	if (usd && !opt.budget_usd)
		opt.budget_usd = positive_arg(usd, "ORCH_BUDGET");
	if (tok && !opt.budget_tokens)
		opt.budget_tokens = positive_arg(tok, "ORCH_BUDGET_TOKENS");
}

/* Each provider of a --provider list ("name[:model],...") is known. */
static void check_providers(const char *list)
{
	for (const char *p = list; p && *p; p += *p == ',') {
		size_t n = strcspn(p, ",");
		size_t k = strcspn(p, ":,");
		char *name = orch_fmt("%.*s", (int)k, p);
		if (!provider_find(name))
			orch_die(EX_USAGE, "unknown provider \"%s\" (%s)", name, provider_names());
		free(name);
		p += n;
	}
}

static int show_config;  /* --config */

/* The options into opt; returns optind. */
static int options(int argc, char **argv)
{
	static const struct option lo[] = {
		{"render", no_argument, 0, 'R'},
		{"failure-lines", no_argument, 0, 'F'},
		{"stream", no_argument, 0, 's'},
		{"serve", no_argument, 0, 'S'},
		{"jobs", required_argument, 0, 'j'},
		{"provider", required_argument, 0, 'p'},
		{"model", required_argument, 0, 'm'},
		{"command", required_argument, 0, 'c'},
		{"retries", required_argument, 0, 'r'},
		{"timeout", required_argument, 0, 't'},
		{"connect-timeout", required_argument, 0, 'C'},
		{"idle-timeout", required_argument, 0, 'I'},
		{"backoff", required_argument, 0, 'B'},
		{"rpm", required_argument, 0, 'Q'},
		{"tpm", required_argument, 0, 'T'},
		{"budget", required_argument, 0, 'U'},
		{"budget-tokens", required_argument, 0, 'N'},
		{"verbose", no_argument, 0, 'v'},
		{"config", no_argument, 0, 'K'},
		ORCH_COMMON_LONGOPTS,
		{0, 0, 0, 0},
	};
	int c;
	while ((c = getopt_long(argc, argv, "j:p:m:r:t:vh", lo, NULL)) != -1)
		switch (c) {
		case 'R': opt.render = 1; break;
		case 'F': opt.failure_lines = 1; break;
		case 's': opt.stream = 1; break;
		case 'S': opt.serve = 1; break;
		case 'j': opt.jobs = (int)num_arg(optarg, "-j", 1); break;
		case 'p': opt.provider = optarg; break;
		case 'm': opt.model = optarg; break;
		case 'c': opt.command = optarg; break;
		case 'r': opt.retries = (int)num_arg(optarg, "--retries", 0); break;
		case 't': opt.timeout = num_arg(optarg, "--timeout", 0.001); break;
		case 'C': opt.connect_timeout = num_arg(optarg, "--connect-timeout", 0.001); break;
		case 'I': opt.idle_timeout = num_arg(optarg, "--idle-timeout", 0); break;
		case 'B': opt.backoff = num_arg(optarg, "--backoff", 0); break;
		case 'Q': opt.rpm = num_arg(optarg, "--rpm", 0); break;
		case 'T': opt.tpm = num_arg(optarg, "--tpm", 0); break;
		case 'U': opt.budget_usd = positive_arg(optarg, "--budget"); break;
		case 'N': opt.budget_tokens = positive_arg(optarg, "--budget-tokens"); break;
		case 'v': opt.verbose = 1; break;
		case 'K': show_config = 1; break;
		default: orch_common(c, optarg, usage);
		}
	check_providers(opt.provider);
	budget_env();
	return optind;
}

int main(int argc, char **argv)
{
	orch_init(argc, argv);
	int first = options(argc, argv);
	orch_config();  /* an invalid config: exit 2 before any work */
	if (show_config)
		orch_exit(config_print());
	signal(SIGPIPE, SIG_IGN);
	if (opt.serve && (first < argc || opt.render))
		orch_die(EX_USAGE, "--serve reads requests on stdin, and calls them");
	if (opt.failure_lines && !opt.render)
		orch_die(EX_USAGE, "--failure-lines goes with --render");
	int rc = 0;
	if (opt.serve)
		serve();
	else
		rc = orch_loop(argv + first, argc - first, on_record, NULL);
	while (q.active > 0)
		pump();
	flush_ready();
	status_is(rc);
	http_end();
	request_end();
	config_end();
	free(q.job);
	free(q.ps.fd);
	orch_exit(q.worst);
}
