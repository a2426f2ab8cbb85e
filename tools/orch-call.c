/* orch-call: render a step's prompt and call an LLM provider.
 *
 * Reads ND-JSON records from the files named, or stdin. A step input
 * record (it has "spec") is rendered into a request: spec.system and
 * spec.prompt are {{ jq }} templates evaluated against the record. A
 * request record (it has "messages") is taken as it is. Each request is
 * sent to its provider; one response record per request is printed, in
 * input order. --render prints the requests instead of sending them.
 *
 * Providers: ollama (POST /api/chat, NDJSON), openai and every
 * OpenAI-compatible server (POST {base}/chat/completions, SSE), anthropic
 * (POST {base}/v1/messages, SSE) over libcurl; exec (any command, the
 * prompt on its stdin, its stdout the answer); echo (offline: the answer
 * is the last user message).
 *
 * Assumptions: the HTTP requests of one process share one curl multi
 * handle, and exec commands' pipes are polled with its sockets, so -j N
 * keeps N requests in flight from one thread; echo answers at once. A
 * transient fault (429, 500, 502, 503, 504, 529, a connection failure, a
 * timeout, a stream cut before its end marker, a transient error inside a
 * stream) is retried with exponential backoff and full jitter, honouring
 * Retry-After, all within --timeout for the whole call; if only transient
 * faults exhausted the retries the exit status is 75 (try again later),
 * else 1. API keys travel only in request
 * headers; --verbose shows them redacted, and every provider message is
 * scrubbed of them before it is printed or logged.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <curl/curl.h>
#include <dlfcn.h>
#include <sodium.h>
#include "orch.h"

/* libcurl is loaded (dlopen) by the first HTTP request: relocating it and
 * the TLS libraries under it costs ~8 ms at every start, which --render,
 * echo and exec never need. The curl_* names below are its functions. */
static struct {
	CURLcode (*global_init)(long);
	void (*global_cleanup)(void);
	CURL *(*easy_init)(void);
	void (*easy_cleanup)(CURL *);
	CURLcode (*easy_setopt)(CURL *, CURLoption, ...);
	CURLcode (*easy_getinfo)(CURL *, CURLINFO, ...);
	const char *(*easy_strerror)(CURLcode);
	time_t (*getdate)(const char *, const time_t *);
	struct curl_slist *(*slist_append)(struct curl_slist *, const char *);
	void (*slist_free_all)(struct curl_slist *);
	CURLM *(*multi_init)(void);
	CURLMcode (*multi_cleanup)(CURLM *);
	CURLMcode (*multi_add_handle)(CURLM *, CURL *);
	CURLMcode (*multi_remove_handle)(CURLM *, CURL *);
	CURLMcode (*multi_perform)(CURLM *, int *);
	CURLMsg *(*multi_info_read)(CURLM *, int *);
	CURLMcode (*multi_timeout)(CURLM *, long *);
	CURLMcode (*multi_poll)(CURLM *, struct curl_waitfd *, unsigned int, int, int *);
} lc;
#undef curl_easy_setopt
#undef curl_easy_getinfo
#define curl_global_init lc.global_init
#define curl_global_cleanup lc.global_cleanup
#define curl_easy_init lc.easy_init
#define curl_easy_cleanup lc.easy_cleanup
#define curl_easy_setopt lc.easy_setopt
#define curl_easy_getinfo lc.easy_getinfo
#define curl_easy_strerror lc.easy_strerror
#define curl_getdate lc.getdate
#define curl_slist_append lc.slist_append
#define curl_slist_free_all lc.slist_free_all
#define curl_multi_init lc.multi_init
#define curl_multi_cleanup lc.multi_cleanup
#define curl_multi_add_handle lc.multi_add_handle
#define curl_multi_remove_handle lc.multi_remove_handle
#define curl_multi_perform lc.multi_perform
#define curl_multi_info_read lc.multi_info_read
#define curl_multi_timeout lc.multi_timeout
#define curl_multi_poll lc.multi_poll

static void curl_load(void)
{
	void *so = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
	if (!so)
		orch_die(EX_FAIL, "cannot load libcurl: %s", dlerror());
#define LOAD(f) \
	if (!(*(void **)&lc.f = dlsym(so, "curl_" #f))) \
		orch_die(EX_FAIL, "libcurl has no curl_%s", #f)
	LOAD(global_init); LOAD(global_cleanup); LOAD(easy_init); LOAD(easy_cleanup);
	LOAD(easy_setopt); LOAD(easy_getinfo); LOAD(easy_strerror); LOAD(getdate);
	LOAD(slist_append); LOAD(slist_free_all); LOAD(multi_init); LOAD(multi_cleanup);
	LOAD(multi_add_handle); LOAD(multi_remove_handle); LOAD(multi_perform);
	LOAD(multi_info_read); LOAD(multi_timeout); LOAD(multi_poll);
#undef LOAD
}

extern char **environ;

static const char usage[] =
	"usage: orch-call [--render] [--stream] [-j N] [--provider NAME] [--model MODEL]\n"
	"                 [--command CMD] [--retries N] [--timeout S] [--connect-timeout S]\n"
	"                 [--backoff S] [--verbose] [--run DIR] [FILE...]\n";

static struct {
	int render, stream, verbose, jobs, retries;
	const char *provider, *model, *command;
	double timeout, connect_timeout, backoff, backoff_cap;
} opt = {0, 0, 0, 1, 3, NULL, NULL, NULL, 600, 10, 1, 30};

static int worst;  /* exit status: EX_USAGE > EX_FAIL > EX_TEMP > EX_OK */

static void status_is(int code)
{
	static const int rank[] = {[EX_OK] = 0, [EX_TEMP] = 1, [EX_FAIL] = 2, [EX_USAGE] = 3};
	if (code == EX_OK || code == EX_TEMP || code == EX_FAIL || code == EX_USAGE)
		if (rank[code] > rank[worst])
			worst = code;
}

/* ---- small helpers ---- */

struct buf { char *p; size_t n, cap; };

static void buf_add(struct buf *b, const char *s, size_t n)
{
	if (b->n + n + 1 > b->cap) {
		b->cap = (b->n + n + 1) * 2;
		b->p = orch_xrealloc(b->p, b->cap);
	}
	memcpy(b->p + b->n, s, n);
	b->n += n;
	b->p[b->n] = 0;
}

static void buf_clear(struct buf *b)
{
	b->n = 0;
	if (b->p)
		b->p[0] = 0;
}

/* obj.key (a new value), or null; obj is not consumed. */
static jv get(jv obj, const char *key)
{
	if (jv_get_kind(obj) != JV_KIND_OBJECT)
		return jv_null();
	jv v = jv_object_get(jv_copy(obj), jv_string(key));
	if (!jv_is_valid(v)) {
		jv_free(v);
		return jv_null();
	}
	return v;
}

static int is_kind(jv v, jv_kind k)
{
	return jv_get_kind(v) == k;
}

/* Provider text as JSON. A NUL byte is never JSON, and libjq 1.6 leaks on
 * some inputs holding one: refuse it first (lib's orch_parse_line, when
 * it lands, does the same). */
static double ms3(double s)
{
	return round(s * 1000) / 1000;
}

/* s with every API key of the environment replaced, on one line. */
static char *redact(const char *s)
{
	static const char *keys[] = {"OPENAI_API_KEY", "ANTHROPIC_API_KEY"};
	char *out = orch_xstrdup(s);
	for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
		const char *k = getenv(keys[i]);
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
	return out;
}

/* ---- requests ---- */

static int known_provider(const char *name)
{
	static const char *names[] = {"ollama", "openai", "anthropic", "exec", "echo"};
	for (size_t i = 0; i < sizeof names / sizeof *names; i++)
		if (strcmp(name, names[i]) == 0)
			return 1;
	return 0;
}

static const char *env(const char *name)
{
	const char *v = getenv(name);
	return v && *v ? v : NULL;
}

/* The request in its canonical shape, flags and environment applied:
 * {"provider","model","messages","opts","step"[,"command"]}. Consumes
 * req; invalid (reported) when it cannot be called. */
static jv finalize(jv req)
{
	const char *rp = orch_jstr(req, "provider"), *step = orch_jstr(req, "step");
	const char *name = opt.provider ? opt.provider : rp ? rp : env("ORCH_PROVIDER");
	if (!name)
		name = "echo";
	int same = !opt.provider || (rp && strcmp(rp, opt.provider) == 0);
	const char *model = opt.model ? opt.model : same ? orch_jstr(req, "model") : NULL;
	const char *command = opt.command ? opt.command : same ? orch_jstr(req, "command") : NULL;
	const char *sp = step ? step : "-";
	jv out = jv_invalid();
	if (!model)
		model = env("ORCH_MODEL");
	if (!known_provider(name)) {
		orch_err("step %s: unknown provider \"%s\" (ollama, openai, anthropic, exec, echo)", sp, name);
		goto done;
	}
	if (strcmp(name, "exec") == 0 && !command) {
		orch_err("step %s: provider exec needs a command (provider.command or --command)", sp);
		goto done;
	}
	if (!model)
		model = strcmp(name, "exec") == 0 ? command : strcmp(name, "echo") == 0 ? "echo" : NULL;
	if (!model) {
		orch_err("step %s: provider %s needs a model (provider.model, --model or ORCH_MODEL)", sp, name);
		goto done;
	}
	jv msgs = get(req, "messages");
	int ok = is_kind(msgs, JV_KIND_ARRAY) && jv_array_length(jv_copy(msgs)) > 0;
	jv_array_foreach(msgs, i, m) {
		ok = ok && orch_jstr(m, "role") && orch_jstr(m, "content");
		jv_free(m);
	}
	if (!ok) {
		jv_free(msgs);
		orch_err("step %s: messages must be a non-empty array of {role, content} strings", sp);
		goto done;
	}
	jv opts = same ? get(req, "opts") : jv_null();
	if (!is_kind(opts, JV_KIND_OBJECT)) {
		jv_free(opts);
		opts = jv_object();
	}
	out = jv_object();
	out = jv_object_set(out, jv_string("provider"), jv_string(name));
	out = jv_object_set(out, jv_string("model"), jv_string(model));
	out = jv_object_set(out, jv_string("messages"), msgs);
	out = jv_object_set(out, jv_string("opts"), opts);
	if (step)
		out = jv_object_set(out, jv_string("step"), jv_string(step));
	if (strcmp(name, "exec") == 0)
		out = jv_object_set(out, jv_string("command"), jv_string(command));
done:
	jv_free(req);
	return out;
}

/* Templates of the last spec rendered: steps of one job rarely repeat,
 * but many records of one spec (a benchmark, a fan-out) compile once. */
static struct { char *sys, *prompt; orch_tmpl *t; } tc;

static orch_tmpl *compile(const char *sys, const char *prompt, const char *step)
{
	if (tc.t && strcmp(tc.sys, sys) == 0 && strcmp(tc.prompt, prompt) == 0)
		return tc.t;
	orch_tmpl_free(tc.t);
	free(tc.sys);
	free(tc.prompt);
	tc.t = NULL;
	tc.sys = orch_xstrdup(sys);
	tc.prompt = orch_xstrdup(prompt);
	const char *texts[2] = {sys, prompt};
	char *errs[2];
	tc.t = orch_tmpl_compile(texts, 2, errs);
	for (int i = 0; i < 2; i++)
		if (errs[i]) {
			orch_err("step %s: %s: %s", step, i ? "prompt" : "system", errs[i]);
			free(errs[i]);
		}
	return tc.t;
}

static jv message(const char *role, const char *content)
{
	jv m = jv_object_set(jv_object(), jv_string("role"), jv_string(role));
	return jv_object_set(m, jv_string("content"), jv_string(content));
}

/* A step input record (consumed) rendered into a request (not finalized). */
static jv render(jv rec)
{
	jv spec = get(rec, "spec"), out = jv_invalid();
	const char *step = orch_jstr(rec, "step");
	const char *sys = orch_jstr(spec, "system"), *prompt = orch_jstr(spec, "prompt");
	const char *sp = step ? step : "-";
	char *text[2] = {NULL, NULL};
	if (!prompt) {
		orch_err("step %s: spec.prompt: missing or not a string", sp);
		goto done;
	}
	if (orch_tmpl_has(sys) || orch_tmpl_has(prompt)) {
		orch_tmpl *t = compile(sys ? sys : "", prompt, sp);
		if (!t)
			goto done;
		for (int i = 0; i < 2; i++) {
			char *err = NULL;
			if (i == 0 && !sys)
				continue;
			if (!(text[i] = orch_tmpl_render(t, i, rec, &err))) {
				orch_err("step %s: %s: %s", sp, i ? "prompt" : "system", err);
				free(err);
				goto done;
			}
		}
	} else {
		text[0] = sys ? orch_xstrdup(sys) : NULL;
		text[1] = orch_xstrdup(prompt);
	}
	jv msgs = jv_array();
	if (text[0] && *text[0])
		msgs = jv_array_append(msgs, message("system", text[0]));
	msgs = jv_array_append(msgs, message("user", text[1]));
	jv prov = get(spec, "provider");
	out = jv_object();
	if (is_kind(prov, JV_KIND_STRING))  /* provider: ollama */
		prov = jv_object_set(jv_object(), jv_string("name"), prov);
	if (is_kind(prov, JV_KIND_OBJECT)) {
		static const char *f[][2] = {{"name", "provider"}, {"model", "model"},
		                             {"command", "command"}, {"opts", "opts"}};
		for (size_t i = 0; i < sizeof f / sizeof *f; i++) {
			jv v = get(prov, f[i][0]);
			if (is_kind(v, JV_KIND_NULL))
				jv_free(v);
			else
				out = jv_object_set(out, jv_string(f[i][1]), v);
		}
	}
	jv_free(prov);
	out = jv_object_set(out, jv_string("messages"), msgs);
	if (step)
		out = jv_object_set(out, jv_string("step"), jv_string(step));
done:
	free(text[0]);
	free(text[1]);
	jv_free(spec);
	jv_free(rec);
	return out;
}

/* ---- jobs: one request each, printed in input order ---- */

enum { J_RUN = 1, J_WAIT, J_EXEC, J_DONE };
struct prov;

struct job {
	jv req;
	const struct prov *p;
	const char *name, *model, *step;  /* point into req */
	int state, attempt, rc, logfd;
	long prompt_est;
	double t0, t_att, deadline, wake;
	/* exec: the command, the pipes to it (-1 once closed), the prompt */
	pid_t pid;
	int wfd, rfd, pw, pr;  /* pw, pr: their places in pump's poll list */
	jv in;
	size_t off;
	/* HTTP */
	CURL *h;
	struct curl_slist *hdrs;
	char *url, *body, errbuf[CURL_ERROR_SIZE];
	struct buf raw, line, sse;
	long status;
	double retry_after;
	/* the answer as it is parsed */
	jv content, finish;
	double ptok, ctok;
	int has_ptok, has_ctok, ended, transient;
	char *err;
	jv out;
};

static struct job **queue;
static size_t qn, qhead, qcap, active;
static CURLM *multi;  /* made for the first HTTP request: see curl_up */

/* Only an HTTP request pays for libcurl, never --render, echo or exec. */
static void curl_up(void)
{
	if (multi)
		return;
	curl_load();
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0 || !(multi = curl_multi_init()))
		orch_die(EX_FAIL, "cannot initialise libcurl");
}

static void fail(struct job *j, int transient, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void fail(struct job *j, int transient, const char *fmt, ...)
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

static void got_text(struct job *j, const char *s, size_t n)
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

static void set_usage(struct job *j, jv u, const char *pk, const char *ck)
{
	double v;
	if (orch_jnum(u, pk, &v))
		j->ptok = v, j->has_ptok = 1;
	if (orch_jnum(u, ck, &v))
		j->ctok = v, j->has_ctok = 1;
}

static void set_finish(struct job *j, jv reason)
{
	if (!is_kind(reason, JV_KIND_STRING)) {
		jv_free(reason);
		return;
	}
	const char *r = jv_string_value(reason);
	const char *n = strcmp(r, "end_turn") == 0 || strcmp(r, "stop_sequence") == 0 ? "stop"
	              : strcmp(r, "max_tokens") == 0 ? "length" : r;
	jv_free(j->finish);
	j->finish = jv_string(n);
	jv_free(reason);
}

/* An {"error": ...} object from any of the three providers: its message. */
static int error_in(struct job *j, jv obj, int transient_default)
{
	jv e = get(obj, "error");
	if (is_kind(e, JV_KIND_NULL)) {
		jv_free(e);
		return 0;
	}
	if (is_kind(e, JV_KIND_STRING))
		fail(j, transient_default, "%s", jv_string_value(e));
	else {
		const char *type = orch_jstr(e, "type"), *msg = orch_jstr(e, "message");
		int t = type && (strcmp(type, "overloaded_error") == 0 ||
		                 strcmp(type, "api_error") == 0 ||
		                 strcmp(type, "server_error") == 0 ||
		                 strcmp(type, "rate_limit_error") == 0);
		fail(j, t, "%s%s%s", type ? type : "", type ? ": " : "", msg ? msg : "error");
	}
	jv_free(e);
	return 1;
}

/* ---- the wire formats ---- */

/* ollama: one object per line; the last has done:true and the counts. */
static void ollama_obj(struct job *j, jv v)
{
	if (!error_in(j, v, 0)) {
		jv m = get(v, "message");
		const char *c = orch_jstr(m, "content");
		if (c)
			got_text(j, c, strlen(c));
		jv_free(m);
		if (orch_jbool(v, "done", 0)) {
			j->ended = 1;
			set_finish(j, get(v, "done_reason"));
			set_usage(j, v, "prompt_eval_count", "eval_count");
		}
	}
	jv_free(v);
}

/* openai: "data: {chunk}" events, then "data: [DONE]". */
static void openai_chunk(struct job *j, jv v)
{
	if (!error_in(j, v, 0)) {
		jv ch = get(v, "choices");
		jv c0 = is_kind(ch, JV_KIND_ARRAY) && jv_array_length(jv_copy(ch)) > 0
		        ? jv_array_get(jv_copy(ch), 0) : jv_null();
		jv d = get(c0, "delta");
		if (is_kind(d, JV_KIND_NULL)) {  /* a whole (non-streamed) answer? */
			jv_free(d);
			d = get(c0, "message");
			j->ended |= !opt.stream && is_kind(d, JV_KIND_OBJECT);
		}
		const char *c = orch_jstr(d, "content");
		if (c)
			got_text(j, c, strlen(c));
		set_finish(j, get(c0, "finish_reason"));
		jv u = get(v, "usage");
		set_usage(j, u, "prompt_tokens", "completion_tokens");
		jv_free(u);
		jv_free(d);
		jv_free(c0);
		jv_free(ch);
	}
	jv_free(v);
}

/* One item of a stream: a JSON object for fn (which takes it), or a
 * failure of the attempt. */
static void stream_object(struct job *j, const char *s, size_t n, void (*fn)(struct job *, jv))
{
	jv v = orch_parse_line(s, n);
	if (!is_kind(v, JV_KIND_OBJECT)) {
		jv_free(v);
		fail(j, 0, "invalid JSON in the stream");
		return;
	}
	fn(j, v);
}

static void openai_data(struct job *j, const char *s, size_t n)
{
	if (n == 6 && memcmp(s, "[DONE]", 6) == 0) {
		j->ended = 1;
		return;
	}
	stream_object(j, s, n, openai_chunk);
}

/* anthropic: typed events; usage is cumulative, so the last one counts. */
static void anthropic_event(struct job *j, jv v)
{
	const char *type = orch_jstr(v, "type");
	if (!type)
		type = "";
	if (strcmp(type, "error") == 0)
		error_in(j, v, 1);
	else if (strcmp(type, "message_start") == 0) {
		jv m = get(v, "message"), u = get(m, "usage");
		set_usage(j, u, "input_tokens", "output_tokens");
		jv_free(u);
		jv_free(m);
	} else if (strcmp(type, "content_block_delta") == 0) {
		jv d = get(v, "delta");
		const char *dt = orch_jstr(d, "type"), *t = orch_jstr(d, "text");
		if (dt && strcmp(dt, "text_delta") == 0 && t)
			got_text(j, t, strlen(t));
		jv_free(d);
	} else if (strcmp(type, "message_delta") == 0) {
		jv d = get(v, "delta"), u = get(v, "usage");
		set_finish(j, get(d, "stop_reason"));
		set_usage(j, u, "input_tokens", "output_tokens");
		jv_free(u);
		jv_free(d);
	} else if (strcmp(type, "message_stop") == 0)
		j->ended = 1;
	else if (strcmp(type, "message") == 0) {  /* a whole (non-streamed) answer */
		jv c = get(v, "content"), u = get(v, "usage");
		if (is_kind(c, JV_KIND_ARRAY))
			jv_array_foreach(c, i, b) {
				const char *bt = orch_jstr(b, "type"), *t = orch_jstr(b, "text");
				if (bt && strcmp(bt, "text") == 0 && t)
					got_text(j, t, strlen(t));
				jv_free(b);
			}
		set_finish(j, get(v, "stop_reason"));
		set_usage(j, u, "input_tokens", "output_tokens");
		j->ended = 1;
		jv_free(u);
		jv_free(c);
	}
	/* ping, content_block_start/stop and unknown events: nothing to do */
	jv_free(v);
}

static void anthropic_data(struct job *j, const char *s, size_t n)
{
	stream_object(j, s, n, anthropic_event);
}

static void ollama_line(struct job *j, const char *s, size_t n)
{
	stream_object(j, s, n, ollama_obj);
}

/* The body of a request: opts merged in, ours set last so they win. */
static jv body_with_opts(struct job *j, int ollama)
{
	static const char *top[] = {"format", "keep_alive", "think", "tools"};
	jv b = jv_object(), opts = get(j->req, "opts"), options = jv_object();
	jv_object_foreach(opts, k, v) {
		int is_top = !ollama;
		for (size_t i = 0; ollama && i < sizeof top / sizeof *top; i++)
			is_top |= strcmp(jv_string_value(k), top[i]) == 0;
		if (is_top)
			b = jv_object_set(b, k, v);
		else
			options = jv_object_set(options, k, v);
	}
	jv_free(opts);
	if (ollama && jv_object_length(jv_copy(options)) > 0)
		b = jv_object_set(b, jv_string("options"), options);
	else
		jv_free(options);
	b = jv_object_set(b, jv_string("model"), jv_string(j->model));
	b = jv_object_set(b, jv_string("stream"), opt.stream ? jv_true() : jv_false());
	return b;
}

static char *base(const char *var, const char *dflt)
{
	const char *b = env(var);
	char *s = b ? (strstr(b, "://") ? orch_xstrdup(b) : orch_fmt("http://%s", b))
	            : orch_xstrdup(dflt);
	size_t n = strlen(s);
	while (n > 0 && s[n - 1] == '/')
		s[--n] = 0;
	return s;
}

static struct curl_slist *header(struct curl_slist *l, const char *name, const char *val)
{
	char *h = orch_fmt("%s: %s", name, val);
	l = curl_slist_append(l, h);
	free(h);
	return l;
}

static void ollama_prepare(struct job *j)
{
	char *b = base("OLLAMA_HOST", "http://127.0.0.1:11434");
	j->url = orch_fmt("%s/api/chat", b);
	free(b);
	jv body = body_with_opts(j, 1);
	body = jv_object_set(body, jv_string("messages"), get(j->req, "messages"));
	j->body = orch_dump(body, 0);
}

static void openai_prepare(struct job *j)
{
	char *b = base("OPENAI_BASE_URL", "https://api.openai.com/v1");
	j->url = orch_fmt("%s/chat/completions", b);
	free(b);
	jv body = body_with_opts(j, 0);
	body = jv_object_set(body, jv_string("messages"), get(j->req, "messages"));
	if (opt.stream)
		body = jv_object_set(body, jv_string("stream_options"),
		                     jv_object_set(jv_object(), jv_string("include_usage"), jv_true()));
	j->body = orch_dump(body, 0);
	const char *key = env("OPENAI_API_KEY");
	if (key) {
		char *v = orch_fmt("Bearer %s", key);
		j->hdrs = header(j->hdrs, "Authorization", v);
		sodium_memzero(v, strlen(v));
		free(v);
	}
}

static void anthropic_prepare(struct job *j)
{
	char *b = base("ANTHROPIC_BASE_URL", "https://api.anthropic.com");
	j->url = orch_fmt("%s/v1/messages", b);
	free(b);
	jv body = body_with_opts(j, 0), msgs = get(j->req, "messages"), rest = jv_array();
	jv sys = jv_string("");
	jv_array_foreach(msgs, i, m) {
		if (strcmp(orch_jstr(m, "role"), "system") == 0) {
			if (jv_string_length_bytes(jv_copy(sys)) > 0)
				sys = jv_string_append_str(sys, "\n\n");
			sys = jv_string_append_str(sys, orch_jstr(m, "content"));
			jv_free(m);
		} else
			rest = jv_array_append(rest, m);
	}
	jv_free(msgs);
	if (jv_string_length_bytes(jv_copy(sys)) > 0)
		body = jv_object_set(body, jv_string("system"), sys);
	else
		jv_free(sys);
	body = jv_object_set(body, jv_string("messages"), rest);
	jv mt = get(body, "max_tokens");
	if (!is_kind(mt, JV_KIND_NUMBER))
		body = jv_object_set(body, jv_string("max_tokens"), jv_number(4096));
	jv_free(mt);
	j->body = orch_dump(body, 0);
	const char *key = env("ANTHROPIC_API_KEY");
	if (key)
		j->hdrs = header(j->hdrs, "x-api-key", key);
	j->hdrs = header(j->hdrs, "anthropic-version", "2023-06-01");
}

struct prov {
	const char *name;
	void (*prepare)(struct job *);
	void (*data)(struct job *, const char *, size_t);  /* one line or SSE data */
	void (*whole)(struct job *, jv);                    /* a non-streamed body */
	int sse;
};

static const struct prov provs[] = {
	{"ollama", ollama_prepare, ollama_line, ollama_obj, 0},
	{"openai", openai_prepare, openai_data, openai_chunk, 1},
	{"anthropic", anthropic_prepare, anthropic_data, anthropic_event, 1},
	{"exec", NULL, NULL, NULL, 0},
	{"echo", NULL, NULL, NULL, 0},
};

/* ---- events and the answer ---- */

static void emit_request(struct job *j)
{
	jv d = jv_object();
	d = jv_object_set(d, jv_string("provider"), jv_string(j->name));
	d = jv_object_set(d, jv_string("model"), jv_string(j->model));
	d = jv_object_set(d, jv_string("prompt_tokens"), jv_number(j->prompt_est));
	d = jv_object_set(d, jv_string("attempt"), jv_number(j->attempt));
	orch_emit(orch_run_dir(), "INFO", "llm.request", j->step, d);
}

static void emit_response(struct job *j, double dur, int will_retry, double delay)
{
	int ok = !j->err;
	jv tok = jv_object();
	tok = jv_object_set(tok, jv_string("prompt"), jv_number(ok ? (j->has_ptok ? j->ptok : j->prompt_est) : 0));
	tok = jv_object_set(tok, jv_string("completion"), jv_number(ok ? j->ctok : 0));
	jv d = jv_object();
	d = jv_object_set(d, jv_string("provider"), jv_string(j->name));
	d = jv_object_set(d, jv_string("model"), jv_string(j->model));
	d = jv_object_set(d, jv_string("duration_s"), jv_number(ms3(dur)));
	d = jv_object_set(d, jv_string("tokens"), tok);
	d = jv_object_set(d, jv_string("success"), jv_bool(ok));
	d = jv_object_set(d, jv_string("attempt"), jv_number(j->attempt));
	if (!ok) {
		if (j->status)
			d = jv_object_set(d, jv_string("status"), jv_number(j->status));
		d = jv_object_set(d, jv_string("error"), jv_string(j->err));
		d = jv_object_set(d, jv_string("will_retry"), jv_bool(will_retry));
		if (will_retry)
			d = jv_object_set(d, jv_string("retry_in_s"), jv_number(ms3(delay)));
	}
	orch_emit(orch_run_dir(), ok ? "INFO" : "WARN", "llm.response", j->step, d);
}

static long estimate(size_t bytes)
{
	return (long)((bytes + 3) / 4);
}

/* Done: the answer (or error) waits in the queue for its turn; the
 * answers behind a slow one may pile up, so let go of the log now. */
static void finished(struct job *j)
{
	if (j->logfd >= 0)
		close(j->logfd);
	j->logfd = -1;
	j->state = J_DONE;
}

static void succeed(struct job *j, double now)
{
	if (!j->has_ctok)
		j->ctok = estimate(jv_string_length_bytes(jv_copy(j->content)));
	emit_response(j, now - j->t_att, 0, 0);
	jv u = jv_object();
	u = jv_object_set(u, jv_string("prompt_tokens"), jv_number(j->has_ptok ? j->ptok : j->prompt_est));
	u = jv_object_set(u, jv_string("completion_tokens"), jv_number(j->ctok));
	jv r = jv_object();
	r = jv_object_set(r, jv_string("provider"), jv_string(j->name));
	r = jv_object_set(r, jv_string("model"), jv_string(j->model));
	r = jv_object_set(r, jv_string("content"), jv_copy(j->content));
	r = jv_object_set(r, jv_string("finish_reason"),
	                  is_kind(j->finish, JV_KIND_STRING) ? jv_copy(j->finish) : jv_string("stop"));
	r = jv_object_set(r, jv_string("usage"), u);
	r = jv_object_set(r, jv_string("duration_s"), jv_number(ms3(now - j->t0)));
	j->out = r;
	finished(j);
}

/* One line: step, provider, HTTP status, the provider's message. */
static void give_up(struct job *j, int late)
{
	char st[32] = "", tries[80] = "";
	if (j->status)
		snprintf(st, sizeof st, "HTTP %ld: ", j->status);
	if (j->attempt > 1 || late)
		snprintf(tries, sizeof tries, " (after %d attempt%s%s)", j->attempt,
		         j->attempt > 1 ? "s" : "", late ? "; no time left to retry" : "");
	orch_err("step %s: %s: %s%s%s", j->step ? j->step : "-", j->name, st, j->err, tries);
	log_note(j, "\n[orch-call: %s: %s%s%s]\n", j->name, st, j->err, tries);
	j->rc = j->transient ? EX_TEMP : EX_FAIL;
	finished(j);
}

/* The attempt is over: the answer, a retry, or the error. */
static void settle(struct job *j)
{
	double now = orch_mono(), delay = 0;
	if (!j->err && jv_string_length_bytes(jv_copy(j->content)) == 0)
		fail(j, 0, "the answer has no content");
	if (!j->err) {
		succeed(j, now);
		return;
	}
	int wanted = j->transient && j->attempt <= opt.retries, retry = 0;
	if (wanted) {
		double cap = fmin(opt.backoff_cap, opt.backoff * pow(2, j->attempt - 1));
		delay = cap * (randombytes_uniform(1000001) / 1e6);  /* full jitter */
		if (j->retry_after >= 0)
			delay = fmax(delay, j->retry_after);
		retry = now + delay < j->deadline;
	}
	emit_response(j, now - j->t_att, retry, delay);
	if (!retry) {
		give_up(j, wanted);
		return;
	}
	log_note(j, "\n[orch-call: attempt %d failed: %s; retrying in %.2fs]\n",
	         j->attempt, j->err, delay);
	j->wake = now + delay;
	j->state = J_WAIT;
}

static void reset_answer(struct job *j)
{
	jv_free(j->content);
	jv_free(j->finish);
	j->content = jv_string("");
	j->finish = jv_null();
	j->ptok = j->ctok = 0;
	j->has_ptok = j->has_ctok = j->ended = j->transient = 0;
	free(j->err);
	j->err = NULL;
	j->status = 0;
	j->retry_after = -1;
	buf_clear(&j->raw);
	buf_clear(&j->line);
	buf_clear(&j->sse);
	j->errbuf[0] = 0;
}

/* ---- echo and exec: run here and now ---- */

static void run_echo(struct job *j)
{
	j->attempt = 1;
	j->t_att = orch_mono();
	emit_request(j);
	jv msgs = get(j->req, "messages");
	const char *last = NULL;
	jv_array_foreach(msgs, i, m) {
		if (strcmp(orch_jstr(m, "role"), "user") == 0)
			last = orch_jstr(m, "content");  /* msgs holds it */
		jv_free(m);
	}
	if (last)
		got_text(j, last, strlen(last));
	jv_free(msgs);
	settle(j);
}

/* environ with ORCH_SYSTEM and ORCH_MODEL set, made before fork. */
static char **exec_env(const char *sys, const char *model)
{
	size_t n = 0;
	while (environ[n])
		n++;
	char **e = orch_xmalloc((n + 3) * sizeof *e);
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (strncmp(environ[i], "ORCH_SYSTEM=", 12) && strncmp(environ[i], "ORCH_MODEL=", 11))
			e[k++] = environ[i];
	e[k++] = orch_fmt("ORCH_SYSTEM=%s", sys);
	e[k++] = orch_fmt("ORCH_MODEL=%s", model);
	e[k] = NULL;
	return e;
}

/* The prompt the command reads: every message's content, in order,
 * separated by a blank line; the system prompt also in $ORCH_SYSTEM. */
static jv exec_prompt(struct job *j, jv *sys)
{
	jv msgs = get(j->req, "messages"), in = jv_string("");
	*sys = jv_string("");
	jv_array_foreach(msgs, i, m) {
		if (i > 0)
			in = jv_string_append_str(in, "\n\n");
		in = jv_string_append_str(in, orch_jstr(m, "content"));
		if (strcmp(orch_jstr(m, "role"), "system") == 0)
			*sys = jv_string_append_str(*sys, orch_jstr(m, "content"));
		jv_free(m);
	}
	jv_free(msgs);
	return jv_string_append_str(in, "\n");
}

/* sh -c cmd with pipes to its stdin (*wfd) and from its stdout (*rfd). */
static pid_t spawn(const char *cmd, char **envp, int *wfd, int *rfd)
{
	int pin[2], pout[2];
	if (pipe2(pin, O_CLOEXEC) < 0 || pipe2(pout, O_CLOEXEC) < 0)
		orch_die_sys(EX_FAIL, "pipe");
	pid_t pid = fork();
	if (pid < 0)
		orch_die_sys(EX_FAIL, "fork");
	if (pid == 0) {
		dup2(pin[0], 0);
		dup2(pout[1], 1);
		/* nothing else: libcurl's multi handle holds a socketpair that it
		 * does not mark close-on-exec */
		if (close_range(3, ~0U, 0) < 0)
			for (int fd = 3; fd < 1024; fd++)
				close(fd);
		signal(SIGPIPE, SIG_DFL);
		char *argv[] = {"sh", "-c", (char *)cmd, NULL};
		execve("/bin/sh", argv, envp);
		_exit(127);
	}
	close(pin[0]);
	close(pout[1]);
	fcntl(pin[1], F_SETFL, O_NONBLOCK);
	*wfd = pin[1];
	*rfd = pout[0];
	return pid;
}

/* exec runs beside the HTTP requests: pump() polls its pipes with theirs. */
static void exec_start(struct job *j)
{
	j->attempt = 1;
	j->t_att = orch_mono();
	emit_request(j);
	jv sys;
	j->in = exec_prompt(j, &sys);
	char **envp = exec_env(jv_string_value(sys), j->model);
	j->pid = spawn(orch_jstr(j->req, "command"), envp, &j->wfd, &j->rfd);
	size_t ne = 0;
	while (envp[ne])
		ne++;
	free(envp[ne - 1]);  /* the two exec_env made */
	free(envp[ne - 2]);
	free(envp);
	jv_free(sys);
	j->state = J_EXEC;
}

/* Poll said the pipes are ready (pw, pr: revents): feed the prompt, read
 * the answer. */
static void exec_io(struct job *j, short pw, short pr)
{
	if (j->wfd >= 0 && pw) {
		size_t len = jv_string_length_bytes(jv_copy(j->in));
		ssize_t w = write(j->wfd, jv_string_value(j->in) + j->off, len - j->off);
		if (w > 0)
			j->off += w;
		if ((w < 0 && errno != EAGAIN && errno != EINTR) || j->off == len) {
			close(j->wfd);  /* EPIPE: the command does not read its prompt */
			j->wfd = -1;
		}
	}
	if (j->rfd >= 0 && pr) {
		char b[65536];
		ssize_t n = read(j->rfd, b, sizeof b);
		if (n > 0)
			got_text(j, b, n);
		else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
			close(j->rfd);
			j->rfd = -1;
		}
	}
}

/* Once the command has closed its stdout and exited, or its time is up:
 * its status, and the answer settled. 0 while it still runs. */
static int exec_reap(struct job *j, double now)
{
	int late = now >= j->deadline, st = 0;
	if (j->rfd >= 0 && !late)
		return 0;
	if (late)
		kill(j->pid, SIGKILL);
	pid_t r;
	while ((r = waitpid(j->pid, &st, late ? 0 : WNOHANG)) < 0 && errno == EINTR)
		;
	if (r == 0)
		return 0;  /* stdout closed, not gone yet */
	if (j->wfd >= 0)
		close(j->wfd);
	if (j->rfd >= 0)
		close(j->rfd);
	j->wfd = j->rfd = -1;
	if (late)
		fail(j, 0, "the command timed out after %gs", opt.timeout);
	else if (WIFSIGNALED(st))
		fail(j, 0, "the command was killed by signal %d", WTERMSIG(st));
	else if (WEXITSTATUS(st) != 0)
		fail(j, 0, "the command exited with status %d", WEXITSTATUS(st));
	settle(j);
	return 1;
}

/* ---- HTTP over one curl multi handle ---- */

static void stream_line(struct job *j, char *s, size_t n)
{
	if (n > 0 && s[n - 1] == '\r')
		s[--n] = 0;
	if (j->ended || j->err)
		return;
	if (!j->p->sse) {
		if (n > 0)
			j->p->data(j, s, n);
		return;
	}
	if (n == 0) {  /* a blank line ends an SSE event */
		if (j->sse.n > 0)
			j->p->data(j, j->sse.p, j->sse.n);
		buf_clear(&j->sse);
	} else if (n >= 5 && memcmp(s, "data:", 5) == 0) {
		size_t k = n > 5 && s[5] == ' ' ? 6 : 5;
		if (j->sse.n > 0)
			buf_add(&j->sse, "\n", 1);
		buf_add(&j->sse, s + k, n - k);
	}  /* "event:", "id:", ": comments": the data says it all */
}

static size_t on_body(char *p, size_t sz, size_t nm, void *ud)
{
	struct job *j = ud;
	size_t n = sz * nm;
	long st = 0;
	curl_easy_getinfo(j->h, CURLINFO_RESPONSE_CODE, &st);
	if (st != 200 || !opt.stream) {
		if (j->raw.n < (64 << 20))
			buf_add(&j->raw, p, n);
		return n;
	}
	buf_add(&j->line, p, n);
	size_t start = 0;
	for (size_t i = 0; i < j->line.n; i++)
		if (j->line.p[i] == '\n') {
			j->line.p[i] = 0;
			stream_line(j, j->line.p + start, i - start);
			start = i + 1;
		}
	memmove(j->line.p, j->line.p + start, j->line.n - start);
	j->line.n -= start;
	j->line.p[j->line.n] = 0;
	return j->err ? 0 : n;  /* an error inside the stream ends it */
}

static int secret_header(const char *h)
{
	return strncasecmp(h, "authorization:", 14) == 0 || strncasecmp(h, "x-api-key:", 10) == 0 ||
	       strncasecmp(h, "api-key:", 8) == 0;
}

static size_t on_header(char *p, size_t sz, size_t nm, void *ud)
{
	struct job *j = ud;
	size_t n = sz * nm;
	char h[512];
	size_t k = n < sizeof h - 1 ? n : sizeof h - 1;
	memcpy(h, p, k);
	while (k > 0 && (h[k - 1] == '\n' || h[k - 1] == '\r'))
		k--;
	h[k] = 0;
	if (opt.verbose && k > 0) {
		char *r = redact(secret_header(h) ? "(redacted)" : h);
		orch_err("< %s", r);
		free(r);
	}
	if (strncasecmp(h, "retry-after:", 12) == 0) {
		char *v = h + 12, *e;
		while (*v == ' ')
			v++;
		double s = strtod(v, &e);
		if (e == v) {  /* an HTTP date */
			time_t t = curl_getdate(v, NULL);
			s = t > 0 ? difftime(t, time(NULL)) : -1;
		}
		if (s >= 0 && j->retry_after < 0)
			j->retry_after = s;
	} else if (strncasecmp(h, "retry-after-ms:", 15) == 0) {
		double ms = strtod(h + 15, NULL);
		if (ms >= 0)
			j->retry_after = ms / 1000;
	}
	return n;
}

static void start_attempt(struct job *j)
{
	reset_answer(j);
	j->attempt++;
	j->t_att = orch_mono();
	emit_request(j);
	double left = j->deadline - j->t_att;
	if (opt.verbose) {
		orch_err("> POST %s (attempt %d)", j->url, j->attempt);
		for (struct curl_slist *l = j->hdrs; l; l = l->next) {
			if (secret_header(l->data))
				orch_err("> %.*s [REDACTED]", (int)(strchr(l->data, ':') - l->data + 1), l->data);
			else
				orch_err("> %s", l->data);
		}
	}
	CURL *h = j->h = curl_easy_init();
	if (!h)
		orch_die(EX_FAIL, "cannot initialise libcurl");
	curl_easy_setopt(h, CURLOPT_URL, j->url);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, j->body);
	curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(j->body));
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, j->hdrs);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "orch-call/" ORCH_VERSION);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, j);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, j);
	curl_easy_setopt(h, CURLOPT_PRIVATE, j);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, j->errbuf);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)(opt.connect_timeout * 1000));
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)fmax(1, left * 1000));
	curl_multi_add_handle(multi, h);
	j->state = J_RUN;
}

static int transient_curl(CURLcode rc)
{
	switch (rc) {
	case CURLE_COULDNT_RESOLVE_PROXY: case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_CONNECT: case CURLE_OPERATION_TIMEDOUT:
	case CURLE_SEND_ERROR: case CURLE_RECV_ERROR: case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE: case CURLE_SSL_CONNECT_ERROR: case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
		return 1;
	default:
		return 0;
	}
}

/* A non-200 answer: the provider's own message, and whether to retry. */
static void http_error(struct job *j)
{
	long s = j->status;
	int t = s == 429 || s == 500 || s == 502 || s == 503 || s == 504 || s == 529;
	jv b = orch_parse_line(j->raw.p, j->raw.n);
	if (is_kind(b, JV_KIND_OBJECT) && error_in(j, b, t)) {
		jv e = get(b, "error");
		const char *code = orch_jstr(e, "code"), *type = orch_jstr(e, "type");
		int quota = (code && strcmp(code, "insufficient_quota") == 0) ||
		            (type && strcmp(type, "insufficient_quota") == 0) ||
		            strcasestr(j->err, "spend limit") || strcasestr(j->err, "credit balance") ||
		            strcasestr(j->err, "usage limits") || strcasestr(j->err, "credits are required") ||
		            strcasestr(j->err, "extra usage is required");
		j->transient = t && !quota;
		jv_free(e);
	} else {
		size_t n = j->raw.n;
		while (n > 0 && (j->raw.p[n - 1] == '\n' || j->raw.p[n - 1] == ' '))
			n--;
		if (n > 200)
			n = 200;
		fail(j, t, "%.*s", (int)n, n ? j->raw.p : "(no message)");
	}
	jv_free(b);
}

static void finish_attempt(struct job *j, CURLcode rc)
{
	curl_easy_getinfo(j->h, CURLINFO_RESPONSE_CODE, &j->status);
	curl_multi_remove_handle(multi, j->h);
	curl_easy_cleanup(j->h);
	j->h = NULL;
	if (j->status == 200 && opt.stream) {  /* whatever came without a final newline */
		if (j->line.n > 0)
			stream_line(j, j->line.p, j->line.n);
		buf_clear(&j->line);
		stream_line(j, (char[]){0}, 0);
	}
	if (j->err) {
		/* said inside the stream */
	} else if (rc == CURLE_OPERATION_TIMEDOUT)
		fail(j, 1, "timed out (%s)", j->errbuf);
	else if (rc != CURLE_OK)
		fail(j, transient_curl(rc), "%s", j->errbuf[0] ? j->errbuf : curl_easy_strerror(rc));
	else if (j->status != 200)
		http_error(j);
	else if (!opt.stream) {
		jv v = orch_parse_line(j->raw.p, j->raw.n);
		if (is_kind(v, JV_KIND_OBJECT))
			j->p->whole(j, v);
		else {
			jv_free(v);
			fail(j, 0, "invalid JSON in the response");
		}
		if (!j->err && !j->ended)
			fail(j, 0, "the response is not a whole answer");
	} else if (!j->ended)
		fail(j, 1, "the stream ended before its end marker");
	settle(j);
}

/* ---- the queue ---- */

static void job_free(struct job *j)
{
	jv_free(j->req);
	jv_free(j->content);
	jv_free(j->finish);
	jv_free(j->out);
	jv_free(j->in);
	if (j->hdrs)
		curl_slist_free_all(j->hdrs);
	free(j->url);
	free(j->body);
	free(j->raw.p);
	free(j->line.p);
	free(j->sse.p);
	free(j->err);
	if (j->logfd >= 0)
		close(j->logfd);
	free(j);
}

static void flush_ready(void)
{
	while (qhead < qn && queue[qhead]->state == J_DONE) {
		struct job *j = queue[qhead];
		if (j->rc == 0 && orch_put(jv_copy(j->out)) < 0)
			orch_die_sys(EX_FAIL, "writing output failed");
		status_is(j->rc);
		job_free(j);
		queue[qhead++] = NULL;
	}
	if (qhead == qn)
		qhead = qn = 0;
}

/* Wait up to ms for the pipes in pf (and libcurl's sockets, once loaded). */
static void wait_fds(struct pollfd *pf, size_t n, long ms)
{
	if (!multi) {
		if (poll(pf, n, (int)ms) < 0 && errno != EINTR)
			orch_die_sys(EX_FAIL, "poll");
		return;
	}
	struct curl_waitfd *w = orch_xmalloc(n * sizeof *w + 1);
	for (size_t i = 0; i < n; i++)
		w[i] = (struct curl_waitfd){pf[i].fd, pf[i].events, 0};
	curl_multi_poll(multi, w, (unsigned)n, (int)ms, NULL);
	for (size_t i = 0; i < n; i++)
		pf[i].revents = w[i].revents;
	free(w);
}

static void pump(void)
{
	if (multi) {
		int still, left;
		curl_multi_perform(multi, &still);
		CURLMsg *m;
		while ((m = curl_multi_info_read(multi, &left)))
			if (m->msg == CURLMSG_DONE) {
				struct job *j;
				CURLcode rc = m->data.result;
				curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&j);
				finish_attempt(j, rc);
				if (j->state == J_DONE)
					active--;
			}
	}
	double now = orch_mono(), next = -1;
	static struct pollfd *pf;
	static size_t cap;
	size_t n = 0;
	for (size_t i = qhead; i < qn; i++) {
		struct job *j = queue[i];
		double at = -1;
		if (j->state == J_EXEC) {
			if (exec_reap(j, now)) {
				active--;
				continue;
			}
			if (n + 2 > cap)
				pf = orch_xrealloc(pf, (cap = 2 * cap + 16) * sizeof *pf);
			j->pw = j->pr = -1;
			if (j->wfd >= 0)
				pf[j->pw = n++] = (struct pollfd){j->wfd, POLLOUT, 0};
			if (j->rfd >= 0)
				pf[j->pr = n++] = (struct pollfd){j->rfd, POLLIN, 0};
			at = j->rfd >= 0 ? j->deadline : now + 0.01;  /* closed: see it exit */
		} else if (j->state == J_WAIT) {
			if (j->wake <= now)
				start_attempt(j);
			else
				at = j->wake;
		}
		if (at >= 0 && (next < 0 || at < next))
			next = at;
	}
	flush_ready();
	if (!active)
		return;
	long t = -1;
	if (multi)
		curl_multi_timeout(multi, &t);
	if (t < 0 || t > 1000)
		t = 1000;
	if (next >= 0 && (next - now) * 1000 < t)
		t = (long)((next - now) * 1000) + 1;
	wait_fds(pf, n, t);
	for (size_t i = qhead; i < qn; i++) {
		struct job *j = queue[i];
		if (j->state == J_EXEC)
			exec_io(j, j->pw >= 0 ? pf[j->pw].revents : 0, j->pr >= 0 ? pf[j->pr].revents : 0);
	}
}

static int open_log(const char *step)
{
	const char *run = orch_run_dir();
	if (!opt.stream || !run || !step)
		return -1;
	if (!orch_job_id_valid(step)) {
		orch_err("step %s: not a name for a log file; not logging the stream", step);
		return -1;
	}
	char *dir = orch_path(run, "logs"), *path = orch_fmt("%s/%s.log", dir, step);
	int fd = -1;
	if (orch_mkdir_p(dir, 0700) < 0 ||
	    (fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600)) < 0)
		orch_err_sys("cannot open %s", path);
	free(dir);
	free(path);
	return fd;
}

static void enqueue(jv req)
{
	struct job *j = orch_xmalloc(sizeof *j);
	memset(j, 0, sizeof *j);
	j->req = req;
	j->name = orch_jstr(req, "provider");
	j->model = orch_jstr(req, "model");
	j->step = orch_jstr(req, "step");
	for (size_t i = 0; i < sizeof provs / sizeof *provs; i++)
		if (strcmp(provs[i].name, j->name) == 0)
			j->p = &provs[i];
	j->content = jv_string("");
	j->finish = jv_null();
	j->out = jv_null();
	j->in = jv_null();
	j->wfd = j->rfd = -1;
	j->retry_after = -1;
	j->t0 = orch_mono();
	j->deadline = j->t0 + opt.timeout;
	size_t bytes = 0;
	jv msgs = get(req, "messages");
	jv_array_foreach(msgs, i, m) {
		bytes += strlen(orch_jstr(m, "content"));
		jv_free(m);
	}
	jv_free(msgs);
	j->prompt_est = estimate(bytes);
	j->logfd = open_log(j->step ? j->step : env("ORCH_STEP"));
	if (qn == qcap)
		queue = orch_xrealloc(queue, (qcap = qcap ? 2 * qcap : 64) * sizeof *queue);
	queue[qn++] = j;
	if (strcmp(j->name, "echo") == 0)
		run_echo(j);
	else if (strcmp(j->name, "exec") == 0) {
		active++;
		exec_start(j);
	}
	else {
		curl_up();
		j->hdrs = header(NULL, "Content-Type", "application/json");
		j->hdrs = curl_slist_append(j->hdrs, "Expect:");
		j->p->prepare(j);
		active++;
		start_attempt(j);
	}
	flush_ready();
}

static int on_record(jv rec, void *ctx)
{
	(void)ctx;
	jv req;
	if (!is_kind(rec, JV_KIND_OBJECT)) {
		orch_err("input: not a step input or request record (an object with spec or messages)");
		jv_free(rec);
		status_is(EX_USAGE);
		return 0;
	}
	jv msgs = get(rec, "messages"), spec = get(rec, "spec");
	int is_req = !is_kind(msgs, JV_KIND_NULL), is_step = is_kind(spec, JV_KIND_OBJECT);
	jv_free(msgs);
	jv_free(spec);
	if (is_req)
		req = rec;
	else if (is_step)
		req = render(rec);
	else {
		orch_err("input: not a step input or request record (an object with spec or messages)");
		jv_free(rec);
		status_is(EX_USAGE);
		return 0;
	}
	if (jv_is_valid(req))
		req = finalize(req);
	if (!jv_is_valid(req)) {
		jv_free(req);
		status_is(EX_USAGE);
		return 0;
	}
	if (opt.render) {
		if (orch_put(req) < 0)
			orch_die_sys(EX_FAIL, "writing output failed");
		return 0;
	}
	enqueue(req);
	while (active >= (size_t)opt.jobs)
		pump();
	return 0;
}

static double num_arg(const char *s, const char *what, double min)
{
	char *e;
	double v = strtod(s, &e);
	if (e == s || *e || !(v >= min) || v > 1e9)
		orch_die(EX_USAGE, "%s: not a number >= %g: %s", what, min, s);
	return v;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{"render", no_argument, 0, 'R'},
		{"stream", no_argument, 0, 's'},
		{"jobs", required_argument, 0, 'j'},
		{"provider", required_argument, 0, 'p'},
		{"model", required_argument, 0, 'm'},
		{"command", required_argument, 0, 'c'},
		{"retries", required_argument, 0, 'r'},
		{"timeout", required_argument, 0, 't'},
		{"connect-timeout", required_argument, 0, 'C'},
		{"backoff", required_argument, 0, 'B'},
		{"verbose", no_argument, 0, 'v'},
		ORCH_COMMON_LONGOPTS,
		{0, 0, 0, 0},
	};
	orch_init(argc, argv);
	int c;
	while ((c = getopt_long(argc, argv, "j:p:m:r:t:vh", lo, NULL)) != -1)
		switch (c) {
		case 'R': opt.render = 1; break;
		case 's': opt.stream = 1; break;
		case 'j': opt.jobs = (int)num_arg(optarg, "-j", 1); break;
		case 'p': opt.provider = optarg; break;
		case 'm': opt.model = optarg; break;
		case 'c': opt.command = optarg; break;
		case 'r': opt.retries = (int)num_arg(optarg, "--retries", 0); break;
		case 't': opt.timeout = num_arg(optarg, "--timeout", 0.001); break;
		case 'C': opt.connect_timeout = num_arg(optarg, "--connect-timeout", 0.001); break;
		case 'B': opt.backoff = num_arg(optarg, "--backoff", 0); break;
		case 'v': opt.verbose = 1; break;
		default:
			if (!orch_common(c, optarg, usage))
				orch_usage(usage);
		}
	if (opt.provider && !known_provider(opt.provider))
		orch_die(EX_USAGE, "unknown provider \"%s\" (ollama, openai, anthropic, exec, echo)",
		         opt.provider);
	signal(SIGPIPE, SIG_IGN);
	int rc = 0;
	if (optind == argc)
		rc = orch_records(stdin, "-", on_record, NULL);
	for (int i = optind; i < argc && rc == 0; i++) {
		FILE *f = strcmp(argv[i], "-") == 0 ? stdin : fopen(argv[i], "r");
		if (!f) {
			orch_err_sys("cannot open %s", argv[i]);
			status_is(EX_FAIL);
			continue;
		}
		rc = orch_records(f, argv[i], on_record, NULL);
		if (f != stdin)
			fclose(f);
	}
	while (active > 0)
		pump();
	flush_ready();
	status_is(rc);
	if (multi) {
		curl_multi_cleanup(multi);
		curl_global_cleanup();
	}
	orch_tmpl_free(tc.t);
	free(tc.sys);
	free(tc.prompt);
	free(queue);
	orch_exit(worst);
}
