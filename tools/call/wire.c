/* wire.c: what the HTTP providers' wire formats share: the body with the
 * request's opts, base URLs and keys from the environment, usage and
 * finish reasons, error objects and how they are classified.
 *
 * Assumes the request is finalized (request.c): messages, model and opts
 * are there and of the right kinds. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "call.h"

const char *nonempty_env(const char *name)
{
	const char *v = getenv(name);
	return v && *v ? v : NULL;
}

/* A base URL as given (a host without a scheme gets http://), without
 * its final '/'. */
static char *base_of(const char *b)
{
	char *s = strstr(b, "://") ? orch_xstrdup(b) : orch_fmt("http://%s", b);
	size_t n = strlen(s);
	while (n > 0 && s[n - 1] == '/')
		s[--n] = 0;
	return s;
}

static int same_host(const char *a, const char *b);

/* r->url: the request's base_url (the spec's provider.base_url), else
 * $var, else dflt; then path. A key from the environment or the config
 * goes only to the provider's own host (dflt's) or to $var's: a spec's
 * base_url on any other host is marked foreign and gets none, so a spec
 * from elsewhere cannot send the user's key where it likes. */
void wire_url(const struct job *j, struct http_req *r, const char *var,
              const char *dflt, const char *path)
{
	const char *mine = orch_jstr(j->req, "base_url"), *env = nonempty_env(var);
	char *s = base_of(mine ? mine : env ? env : dflt);
	r->url = orch_fmt("%s%s", s, path);
	if (mine) {
		char *e = env ? base_of(env) : NULL;
		r->foreign = !same_host(s, dflt) && !(e && same_host(s, e));
		free(e);
	}
	free(s);
}

const char *url_authority(const char *url, size_t *n)
{
	const char *s = strstr(url, "://"), *h = s ? s + 3 : url;
	size_t k = strcspn(h, "/?#");
	for (size_t i = k; i > 0; i--)
		if (h[i - 1] == '@') {  /* user:password@ */
			k -= i;
			h += i;
			break;
		}
	*n = k;
	return h;
}

/* The URL's host, without user or port: *n bytes at the result. */
static const char *host_of(const char *url, size_t *n)
{
	const char *h = url_authority(url, n), *colon = memchr(h, ':', *n);
	if (colon)
		*n = colon - h;
	return h;
}

/* Is the URL's host (without user or port) host? */
static int host_is(const char *url, const char *host)
{
	size_t n;
	const char *h = host_of(url, &n);
	return strlen(host) == n && strncasecmp(h, host, n) == 0;
}

static int same_host(const char *a, const char *b)
{
	size_t n;
	const char *h = host_of(b, &n);
	char *host = orch_fmt("%.*s", (int)n, h);
	int same = host_is(a, host);
	free(host);
	return same;
}

const char *wire_key(struct http_req *r, const char *var, const char *own_host)
{
	const char *key = r->foreign ? NULL : nonempty_env(var), *err = NULL;
	if (r->foreign)  /* a local server needs none; another never gets ours */
		r->nokey = var;
	else if (!key && (key = config_key(var, &err), err))
		r->keyerr = err, r->refuse = 1;
	else if (!key) {
		r->nokey = var;
		r->refuse = host_is(r->url, own_host);
	}
	return key;
}

/* The body of a request: opts merged in, ours set last so they win. For
 * ollama, opts go in "options" but for those it takes at the top. */
jv wire_body(const struct job *j, int ollama)
{
	static const char *top[] = {"format", "keep_alive", "think", "tools", "truncate",
	                            "shift", "logprobs", "top_logprobs"};
	jv b = jv_object(), opts = orch_jget(j->req, "opts"), options = jv_object();
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

void wire_usage(struct job *j, jv u, const char *pk, const char *ck)
{
	double v;
	if (orch_jnum(u, pk, &v))
		j->ptok = v, j->has_ptok = 1;
	if (orch_jnum(u, ck, &v))
		j->ctok = v, j->has_ctok = 1;
}

/* Anthropic's reasons in OpenAI's words: stop, length. */
void wire_finish(struct job *j, jv reason)
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

/* One item of a stream: a JSON object for fn (which takes it), or a
 * failure of the attempt. */
void wire_object(struct job *j, const char *s, size_t n, void (*fn)(struct job *, jv))
{
	jv v = orch_parse_line(s, n);
	if (!is_kind(v, JV_KIND_OBJECT)) {
		jv_free(v);
		job_fail(j, 0, "invalid JSON in the stream");
		return;
	}
	fn(j, v);
}

/* Is the error one of running out of money (OpenAI's insufficient_quota,
 * Anthropic's spend limits and credits)? No retry will mend it. */
static int out_of_quota(jv e, const char *msg)
{
	const char *code = orch_jstr(e, "code"), *type = orch_jstr(e, "type");
	jv d = orch_jget(e, "details");
	const char *ecode = orch_jstr(d, "error_code");
	int spend = ecode && strcmp(ecode, "enforced_spend_limit_reached") == 0;
	jv_free(d);
	return spend || (code && strcmp(code, "insufficient_quota") == 0) ||
	       (type && strcmp(type, "insufficient_quota") == 0) ||
	       strcasestr(msg, "spend limit") || strcasestr(msg, "credit balance") ||
	       strcasestr(msg, "usage limits") || strcasestr(msg, "credits are required") ||
	       strcasestr(msg, "extra usage is required");
}

static int transient_type(const char *type)
{
	static const char *t[] = {"overloaded_error", "api_error", "server_error",
	                          "rate_limit_error", "unavailable_error"};
	for (size_t i = 0; type && i < sizeof t / sizeof *t; i++)
		if (strcmp(type, t[i]) == 0)
			return 1;
	return 0;
}

/* An {"error": ...} object from any of the three providers: its message;
 * a string error is transient if the caller says so, a typed one if its
 * type says so; running out of quota never is. */
int wire_error(struct job *j, jv obj, int transient)
{
	jv e = orch_jget(obj, "error");
	if (is_kind(e, JV_KIND_NULL)) {
		jv_free(e);
		return 0;
	}
	if (is_kind(e, JV_KIND_STRING))
		job_fail(j, transient, "%s", jv_string_value(e));
	else {
		const char *type = orch_jstr(e, "type"), *msg = orch_jstr(e, "message");
		job_fail(j, transient_type(type), "%s%s%s", type ? type : "", type ? ": " : "",
		         msg ? msg : "error");
	}
	if (out_of_quota(e, j->err))
		j->quota = 1, j->transient = 0;
	jv_free(e);
	return 1;
}

/* The error classifier of the three HTTP rows: the error object of a
 * non-200 answer, transient as its status says unless out of quota. */
int wire_classify(struct job *j, jv obj, int transient)
{
	if (!wire_error(j, obj, transient))
		return 0;
	j->transient = transient && !j->quota;
	return 1;
}

/* The data of an SSE "event: error": an {"error": ...} object, or the
 * error itself, {code, message, type} (llama-server's form), transient
 * by its type or its code (429, 5xx). */
void wire_event_error(struct job *j, const char *s, size_t n)
{
	jv v = orch_parse_line(s, n);
	if (!is_kind(v, JV_KIND_OBJECT)) {
		jv_free(v);
		job_fail(j, 0, "%.*s", (int)(n > 200 ? 200 : n), s);
		return;
	}
	jv e = orch_jget(v, "error");
	int bare = is_kind(e, JV_KIND_NULL);
	jv_free(e);
	if (bare)
		v = jv_object_set(jv_object(), jv_string("error"), v);
	double code = 0;
	e = orch_jget(v, "error");
	orch_jnum(e, "code", &code);
	jv_free(e);
	wire_error(j, v, 0);
	if ((code == 429 || code >= 500) && !j->quota)
		j->transient = 1;
	jv_free(v);
}
