/* call.h: the parts of orch-call and what they share.
 *
 *   orch-call.c   options, the queue of jobs, settle and retry, main
 *   request.c     a record made into a request (templates, defaults)
 *   provider.c    the provider table: one row per provider
 *   wire.c        what the HTTP providers' wire formats have in common
 *   ollama.c, openai.c, anthropic.c   one wire format each
 *   http.c        libcurl (loaded on first use), one multi handle
 *   exec.c        the exec and echo providers
 *   config.c      the user's config: aliases, keys from their sources, --config
 *   schema.c      structured output: the schema sent, the answer checked
 *   limit.c       rate limits shared across runs (lib/ratelimit.c)
 *   budget.c      what the run spent (RUN/.spent), a call refused past budget
 *
 * A job is one request, from its record to its printed answer. Every part
 * runs in the one thread of the queue's loop; nothing here is locked.
 */
#ifndef CALL_H
#define CALL_H

#include <poll.h>
#include "orch.h"

static inline int is_kind(jv v, jv_kind k)
{
	return jv_get_kind(v) == k;
}

/* The command line (orch-call.c). */
struct call_opts {
	int render, failure_lines, stream, serve, verbose, jobs, retries;
	const char *provider, *model, *command;
	double timeout, connect_timeout, idle_timeout, backoff, backoff_cap;
	double rpm, tpm;  /* --rpm, --tpm: 0 when not given */
	double budget_usd, budget_tokens;  /* --budget, --budget-tokens (or env); 0: none */
};
extern struct call_opts opt;

enum job_state { J_RUN = 1, J_WAIT, J_EXEC, J_DONE };

struct job {
	jv req;                            /* the request, finalized */
	jv id;                             /* --serve: the request's "id", echoed; or null */
	const struct provider *p;
	const char *name, *model, *step;   /* point into req */
	int state, attempt, rc, logfd;     /* logfd: the step's log, or -1 */
	long prompt_est;                   /* prompt tokens, estimated */
	double t0, t_att, deadline, wake;  /* monotonic: call, attempt, end, retry */
	struct child *child;               /* exec.c's, for an exec job */
	struct http *http;                 /* http.c's, for an HTTP job */
	long status;                       /* the attempt's HTTP status, or 0 */
	double retry_after;                /* seconds the provider asked for, or -1 */
	int should_retry;                  /* x-should-retry: 1 true, 0 false, -1 absent */
	int whole;                         /* the answer comes whole, not streamed */
	/* the answer as it is parsed */
	jv content, finish, reasoning, refusal;  /* strings */
	double ptok, ctok, cache_read, cache_write;  /* cache_*: anthropic's */
	int has_ptok, has_ctok, has_cache, ended, transient;
	int quota;                         /* out of quota or money: never retried */
	char *err;                         /* the first problem, redacted */
	jv out;                            /* the response record, once done */
	/* structured output (a request with "schema") */
	orch_schema *schema;               /* compiled; NULL: any answer */
	int repairs, repair_max;           /* asked again so far; at most */
	jv json, errors;                   /* the answer's value; what is wrong with it */
};

/* What an HTTP provider's prepare() makes: where to POST what, with which
 * headers (Content-Type is there already). */
struct curl_slist;
struct http_req {
	char *url, *body;
	struct curl_slist *hdrs;
	const char *nokey;  /* the key's variable, when it is not set */
	const char *keyerr; /* why the configured key source gave none */
	int refuse;         /* no key for the provider's own host: never send */
	int foreign;        /* the request's base_url, on a host the key is not for */
};

/* A row of the provider table (provider.c). */
struct provider {
	const char *name;
	const char *model;  /* the model when none is given; NULL: one must be */
	int command;        /* needs a command, which is the model when none is given */
	void (*start)(struct job *);  /* begin an attempt: the first, or a retry */
	/* HTTP providers only: */
	void (*prepare)(const struct job *, struct http_req *);
	void (*stream)(struct job *, const char *, size_t);  /* a line, or an SSE event's data */
	void (*whole)(struct job *, jv);  /* a non-streamed answer (consumed) */
	/* A non-200 answer's object (not consumed): set the error and whether
	 * it is transient (the status says so); 0 if it holds no error. */
	int (*error)(struct job *, jv, int transient);
	int sse;            /* the stream is server-sent events, not lines */
};
const struct provider *provider_find(const char *name);  /* NULL if none */
const char *provider_names(void);  /* "ollama, openai, ..." */

/* orch-call.c: a job's answer and its end. */
void job_fail(struct job *j, int transient, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));  /* the first failure counts */
void job_text(struct job *j, const char *s, size_t n);  /* answer text, logged */
void job_begin_attempt(struct job *j);  /* fresh answer, attempt++, llm.request */
void job_settle(struct job *j);  /* the attempt is over: done, or retry later */
char *redact(const char *s);  /* s without API keys, on one line; malloc'd */

/* request.c */
/* A record (consumed) as a request: a request record as it is, a step
 * input record rendered; flags and defaults applied. Invalid (reported)
 * when it cannot be called. */
jv request_from(jv rec);
void request_end(void);  /* free the template cache */

/* schema.c: structured output. */
/* out (consumed) with req's schema, schema_name and repair checked and
 * set, if req has a schema; invalid (reported) if they are wrong. */
jv schema_finalize(jv out, jv req, const char *sp);
jv schema_body(const struct job *j, jv body, const char *provider);  /* body consumed */
jv schema_messages(const struct job *j);  /* for echo and exec */
/* The answer in content (consumed) if it is JSON valid against s, else
 * invalid; *errs the errors ({"path","keyword","message"}), maybe none. */
jv schema_answer(orch_schema *s, jv content, jv *errs);
jv schema_error_line(jv err);  /* "POINTER: message" (err borrowed) */
jv schema_repair(jv msgs, jv answer, jv errs);  /* msgs, answer consumed */

/* wire.c: for the wire formats. */
int wire_error(struct job *j, jv obj, int transient);  /* obj.error, if any */
int wire_classify(struct job *j, jv obj, int transient);  /* the rows' error */
void wire_usage(struct job *j, jv usage, const char *prompt_key, const char *completion_key);
void wire_finish(struct job *j, jv reason);  /* reason consumed */
void wire_event_error(struct job *j, const char *s, size_t n);  /* SSE "event: error" */
void wire_object(struct job *j, const char *s, size_t n, void (*fn)(struct job *, jv));
jv wire_body(const struct job *j, int ollama);
void wire_url(const struct job *j, struct http_req *r, const char *var,
              const char *dflt, const char *path);
/* The key in $var, or NULL: noted in r when absent, and the request
 * refused when the URL's host is the provider's own (own_host). */
const char *wire_key(struct http_req *r, const char *var, const char *own_host);
/* A URL's host[:port], after any user:password@; *n its length. */
const char *url_authority(const char *url, size_t *n);
const char *nonempty_env(const char *name);  /* getenv, NULL when empty */

/* The wire formats: the functions of their rows. */
void ollama_prepare(const struct job *j, struct http_req *r);
void ollama_line(struct job *j, const char *s, size_t n);
void ollama_object(struct job *j, jv v);
void openai_prepare(const struct job *j, struct http_req *r);
void openai_data(struct job *j, const char *s, size_t n);
void openai_chunk(struct job *j, jv v);
void anthropic_prepare(const struct job *j, struct http_req *r);
void anthropic_data(struct job *j, const char *s, size_t n);
void anthropic_event(struct job *j, jv v);

/* http.c: HTTP over one curl multi handle. */
void http_start(struct job *j);  /* the row's start for HTTP providers */
void http_header(struct http_req *r, const char *name, const char *value);
void http_perform(void);  /* settle the attempts that are over */
long http_timeout(void);  /* ms until libcurl wants to run, or -1 */
/* Poll ps (and libcurl's sockets, once loaded) for up to ms. */
struct pollset { struct pollfd *fd; size_t n, cap; };
void http_wait(struct pollset *ps, long ms);
void http_free(struct job *j);
void http_end(void);

/* exec.c: the exec and echo providers. */
void echo_start(struct job *j);
void exec_start(struct job *j);
/* Settle j if its command is over (then -1), else add its pipes to ps and
 * return when to look again. */
double exec_watch(struct job *j, double now, struct pollset *ps);
void exec_io(struct job *j, const struct pollset *ps);  /* after the poll */
void exec_free(struct job *j);

/* config.c: the user's config (lib/config.c) as orch-call uses it. */
/* e (a provider entry, consumed) with *model's alias applied: an alias
 * "provider:model" names e's provider too. */
jv config_alias(jv e, const char **model);
/* The key of $var's provider from its configured source, read on first
 * use; NULL if none is configured, or (with *err) if it failed. */
const char *config_key(const char *var, const char **err);
const char *config_secret(int i);  /* the keys read so far, for redact() */
void config_end(void);  /* zero and free them */
int config_print(void);  /* --config: the effective settings, keys redacted */

/* limit.c: the shared rate limits of an HTTP request's account. */
/* Before an attempt: 1 when the job waits for its share (J_WAIT) or its
 * account is blocked (then it has failed); 0 to go. */
int limit_wait(struct job *j, const struct http_req *r);
/* After an attempt, before it settles: the tokens corrected; a spent
 * daily quota made permanent, and recorded. */
void limit_after(struct job *j, const struct http_req *r);

/* budget.c: the run's spending against the request's budget. */
/* Before an attempt: NULL to go, or why j may not start (malloc'd; the
 * budget.exceeded event is written). No budget, no run folder: NULL. */
char *budget_check(const struct job *j);
void budget_note(const struct job *j);  /* after an answer: RUN/.spent updated */

/* orch-call.c */
double ms3(double s);  /* seconds, rounded to the millisecond */

/* events.c */
double prompt_tokens(const struct job *j);  /* the provider's count, else the estimate */
void emit_request(struct job *j);
void emit_response(struct job *j, double dur, int will_retry, double delay, int last);

#endif
