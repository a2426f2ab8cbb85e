/* http.c: the HTTP providers' transport: libcurl, one multi handle for
 * every request of the process, so -j N keeps N requests in flight from
 * one thread. The provider's row prepares the request and parses what
 * comes back (a stream line by line, or the whole body); this file moves
 * the bytes, reads Retry-After and x-should-retry, and maps curl's and
 * HTTP's failures to transient or not.
 *
 * libcurl negotiates and decodes the encodings it knows (gzip, ...). A
 * redirect is followed by hand, and only on the same origin (scheme, host
 * and port), so a key never goes to another host; another is named. A
 * whole JSON answer (Content-Type application/json) to a streamed request
 * is taken whole. An attempt with no byte from the server for
 * --idle-timeout seconds is cut, as transient: counted from the start for
 * a streamed request, from the answer's first byte for a whole one (a
 * model may think for minutes before it answers whole). Every URL shown
 * goes through redact(), which drops any user:password@.
 *
 * libcurl is loaded (dlopen) by the first HTTP request: relocating it and
 * the TLS libraries under it costs ~8 ms at every start, which --render,
 * echo and exec never need. API keys travel only in request headers;
 * --verbose shows them redacted. */
#include <ctype.h>
#include <dlfcn.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <curl/curl.h>
#include "call.h"

/* The curl_* names below are libcurl's functions, as loaded. */
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

static CURLM *multi;  /* made for the first HTTP request: see curl_up */

/* A job's HTTP call: the request, and the attempt under way. */
struct http {
	struct http_req req;
	CURL *h;
	char errbuf[CURL_ERROR_SIZE];
	struct orch_buf raw;   /* a whole body (not streamed, or not 200) */
	struct orch_buf line;  /* a stream's line so far */
	struct orch_buf sse;   /* an SSE event's data so far */
	char event[32];        /* the SSE event's name, if it has one */
	double last_byte;      /* monotonic; 0: the idle clock has not started */
	curl_off_t sent;       /* bytes of the request sent so far */
	int stalled, hops;     /* cut for --idle-timeout; redirects followed */
};

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

/* Only an HTTP request pays for libcurl, never --render, echo or exec. */
static void curl_up(void)
{
	if (multi)
		return;
	curl_load();
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0 || !(multi = curl_multi_init()))
		orch_die(EX_FAIL, "cannot initialise libcurl");
}

void http_header(struct http_req *r, const char *name, const char *val)
{
	char *h = orch_fmt("%s: %s", name, val);
	r->hdrs = curl_slist_append(r->hdrs, h);
	free(h);
}

static int secret_header(const char *h)
{
	return strncasecmp(h, "authorization:", 14) == 0 || strncasecmp(h, "x-api-key:", 10) == 0 ||
	       strncasecmp(h, "api-key:", 8) == 0;
}

/* ---- what comes back ---- */

/* One line of a 200 stream: a line for the row, or a line of an SSE
 * event, whose data goes to the row when a blank line ends it. */
static void stream_line(struct job *j, char *s, size_t n)
{
	struct orch_buf *sse = &j->http->sse;
	if (n > 0 && s[n - 1] == '\r')
		s[--n] = 0;
	if (j->ended || j->err)
		return;
	if (!j->p->sse) {
		if (n > 0)
			j->p->stream(j, s, n);
		return;
	}
	char *ev = j->http->event;
	if (n == 0) {  /* a blank line ends an SSE event */
		if (sse->n > 0 && strcmp(ev, "error") == 0)
			wire_event_error(j, sse->p, sse->n);
		else if (sse->n > 0)
			j->p->stream(j, sse->p, sse->n);
		sse->n = 0;
		ev[0] = 0;
	} else if (n >= 5 && memcmp(s, "data:", 5) == 0) {
		size_t k = n > 5 && s[5] == ' ' ? 6 : 5;
		if (sse->n > 0)
			orch_buf_add(sse, "\n", 1);
		orch_buf_add(sse, s + k, n - k);
	} else if (n >= 6 && memcmp(s, "event:", 6) == 0) {
		size_t k = n > 6 && s[6] == ' ' ? 7 : 6;
		snprintf(ev, sizeof j->http->event, "%.*s", (int)(n - k), s + k);
	}  /* "id:", ": comments": nothing to do */
}

/* A 200 answer to a streamed request that is one JSON value after all? */
static int json_answer(struct job *j)
{
	char *ct = NULL;
	curl_easy_getinfo(j->http->h, CURLINFO_CONTENT_TYPE, &ct);
	return ct && strncasecmp(ct, "application/json", 16) == 0;
}

static size_t on_body(char *p, size_t sz, size_t nm, void *ud)
{
	struct job *j = ud;
	struct orch_buf *line = &j->http->line;
	size_t n = sz * nm;
	long st = 0;
	curl_easy_getinfo(j->http->h, CURLINFO_RESPONSE_CODE, &st);
	j->http->last_byte = orch_mono();
	if (st == 200 && !j->whole && j->http->line.n == 0 && json_answer(j))
		j->whole = 1;
	if (st != 200 || j->whole) {
		if (j->http->raw.n < (64 << 20))
			orch_buf_add(&j->http->raw, p, n);
		return n;
	}
	orch_buf_add(line, p, n);
	size_t start = 0;
	for (size_t i = 0; i < line->n; i++)
		if (line->p[i] == '\n') {
			line->p[i] = 0;
			stream_line(j, line->p + start, i - start);
			start = i + 1;
		}
	if (start > 0) {  /* keep the unfinished line */
		memmove(line->p, line->p + start, line->n - start);
		line->n -= start;
	}
	return j->err ? 0 : n;  /* an error inside the stream ends it */
}

/* Retry-After (seconds or an HTTP date) and retry-after-ms. */
static void retry_after(struct job *j, const char *h)
{
	if (strncasecmp(h, "retry-after:", 12) == 0) {
		const char *v = h + 12;
		char *e;
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
	j->http->last_byte = orch_mono();
	if (strncasecmp(h, "x-should-retry:", 15) == 0)
		j->should_retry = strstr(h + 15, "true") != NULL;
	if (opt.verbose && k > 0) {
		char *r = redact(secret_header(h) ? "(redacted)" : h);
		orch_err("< %s", r);
		free(r);
	}
	retry_after(j, h);
	return n;
}

/* ---- an attempt ---- */

/* No byte for --idle-timeout seconds: cut the attempt (libcurl calls
 * this at least once a second). */
static int on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
	struct job *j = ud;
	struct http *x = j->http;
	(void)dltotal, (void)dlnow, (void)ultotal;
	double now = orch_mono();
	if (ulnow != x->sent)
		x->sent = ulnow, x->last_byte = x->last_byte ? now : 0;
	if (opt.idle_timeout > 0 && x->last_byte > 0 && now - x->last_byte > opt.idle_timeout)
		x->stalled = 1;
	return x->stalled;
}

static void show_request(const struct job *j)
{
	char *url = redact(j->http->req.url);
	orch_err("> POST %s (attempt %d)", url, j->attempt);
	free(url);
	for (struct curl_slist *l = j->http->req.hdrs; l; l = l->next) {
		if (secret_header(l->data))
			orch_err("> %.*s [REDACTED]", (int)(strchr(l->data, ':') - l->data + 1), l->data);
		else
			orch_err("> %s", l->data);
	}
}

/* One request of an attempt: the first, or one after a redirect. */
static void transfer(struct job *j)
{
	struct http *x = j->http;
	x->raw.n = x->line.n = x->sse.n = 0;
	x->errbuf[0] = x->event[0] = 0;
	x->sent = x->stalled = 0;
	j->whole = !opt.stream;
	j->status = 0;
	x->last_byte = j->whole ? 0 : orch_mono();
	double left = j->deadline - orch_mono();
	if (opt.verbose)
		show_request(j);
	CURL *h = x->h = curl_easy_init();
	if (!h)
		orch_die(EX_FAIL, "cannot initialise libcurl");
	curl_easy_setopt(h, CURLOPT_URL, x->req.url);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, x->req.body);
	curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(x->req.body));
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, x->req.hdrs);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "orch-call/" ORCH_VERSION);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, j);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, j);
	curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");
	curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(h, CURLOPT_XFERINFODATA, j);
	curl_easy_setopt(h, CURLOPT_PRIVATE, j);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, x->errbuf);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)(opt.connect_timeout * 1000));
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)fmax(1, left * 1000));
	curl_multi_add_handle(multi, h);
	j->state = J_RUN;
}

/* The row's start: the request made once, then an attempt (a retry
 * comes here again). */
void http_start(struct job *j)
{
	if (!j->http) {
		curl_up();
		j->http = orch_xmalloc(sizeof *j->http);
		memset(j->http, 0, sizeof *j->http);
		http_header(&j->http->req, "Content-Type", "application/json");
		j->http->req.hdrs = curl_slist_append(j->http->req.hdrs, "Expect:");
		j->p->prepare(j, &j->http->req);
	}
	if (!j->http->req.refuse && limit_wait(j, &j->http->req))
		return;
	job_begin_attempt(j);
	if (j->http->req.keyerr)  /* the configured key source failed */
		job_fail(j, 0, "%s", j->http->req.keyerr);
	if (j->http->req.refuse) {  /* no key for the provider's own host */
		job_fail(j, 0, "%s is not set", j->http->req.nokey);
		job_settle(j);
		return;
	}
	j->http->hops = 0;
	transfer(j);
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

/* The statuses the providers' own SDKs retry. */
static int transient_status(long s)
{
	return s == 408 || s == 409 || s == 429 || (s >= 500 && s <= 504 && s != 501) ||
	       (s >= 520 && s <= 524) || s == 529;
}

/* A 3xx or 4xx error (but 429, which is not about the address) says
 * where the request went (no user:password), and
 * a 401 or 403 which key variable is not set (or not sent). */
static void name_the_url(struct job *j)
{
	struct http_req *r = &j->http->req;
	char *url = redact(r->url);
	int auth = (j->status == 401 || j->status == 403) && r->nokey;
	const char *why = r->foreign ? " is not sent to a spec's base_url on another host"
	                : " is not set";
	char *e = orch_fmt("%s (POST %s%s%s%s)", j->err, url, auth ? "; " : "",
	                   auth ? r->nokey : "", auth ? why : "");
	free(j->err);
	free(url);
	j->err = e;
}

/* A non-200 answer: the provider's own message (as its row reads it, or
 * the body's start), and whether to retry: as the status says, or as
 * x-should-retry says, but never when out of quota. */
static void http_error(struct job *j)
{
	struct orch_buf *raw = &j->http->raw;
	long s = j->status;
	int t = transient_status(s);
	jv b = orch_parse_line(raw->p, raw->n);
	if (!is_kind(b, JV_KIND_OBJECT) || !j->p->error(j, b, t)) {
		size_t n = raw->n;
		while (n > 0 && (raw->p[n - 1] == '\n' || raw->p[n - 1] == ' '))
			n--;
		if (n > 200)
			n = 200;
		if (n)
			job_fail(j, t, "%.*s", (int)n, raw->p);
		else
			job_fail(j, t, "no message");
	}
	jv_free(b);
	if (j->should_retry >= 0 && !j->quota)
		j->transient = j->should_retry;
	if (s >= 300 && s < 500 && s != 429)
		name_the_url(j);
}

/* A whole (non-streamed) 200 answer, to the row's parser. */
static void whole_answer(struct job *j)
{
	jv v = orch_parse_line(j->http->raw.p, j->http->raw.n);
	if (is_kind(v, JV_KIND_OBJECT))
		j->p->whole(j, v);
	else {
		jv_free(v);
		job_fail(j, 0, "invalid JSON in the response");
	}
	if (!j->err && !j->ended)
		job_fail(j, 0, "the response is not a whole answer");
}

/* A URL's origin: scheme://host:port in lower case, without user and
 * password, with the scheme's port when none is given. */
static char *origin(const char *url)
{
	const char *s = strstr(url, "://");
	size_t n, sl = s ? (size_t)(s - url) : 0;
	const char *h = url_authority(url, &n), *br = memchr(h, ']', n);
	const char *after = br ? br : h;  /* an IPv6 host's colons are not a port */
	int port = memchr(after, ':', n - (after - h)) != NULL;
	int tls = sl == 5 && strncasecmp(url, "https", 5) == 0;
	char *o = orch_fmt("%.*s://%.*s%s", (int)sl, url, (int)n, h,
	                   port ? "" : tls ? ":443" : ":80");
	for (char *p = o; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	return o;
}

static int same_origin(const char *a, const char *b)
{
	char *oa = origin(a), *ob = origin(b);
	int same = strcmp(oa, ob) == 0;
	free(oa);
	free(ob);
	return same;
}

/* A 3xx to the same origin is followed (1); to another, it is the
 * attempt's error, naming where (0, as with no Location). */
static int redirect(struct job *j, char *loc)
{
	struct http *x = j->http;
	if (!loc || j->status < 300 || j->status > 399)
		return 0;
	if (same_origin(x->req.url, loc) && x->hops < 10) {
		free(x->req.url);
		x->req.url = orch_xstrdup(loc);
		x->hops++;
		transfer(j);
		return 1;
	}
	job_fail(j, 0, "redirected to %s, not followed: %s",
	         x->hops < 10 ? "another origin" : "the same origin once more", loc);
	return 0;
}

static void finish_attempt(struct job *j, CURLcode rc)
{
	struct http *x = j->http;
	char *loc = NULL;
	curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &j->status);
	curl_easy_getinfo(x->h, CURLINFO_REDIRECT_URL, &loc);
	loc = loc ? orch_xstrdup(loc) : NULL;  /* the handle owns it */
	curl_multi_remove_handle(multi, x->h);
	curl_easy_cleanup(x->h);
	x->h = NULL;
	int moved = rc == CURLE_OK && redirect(j, loc);
	free(loc);
	if (moved)
		return;
	if (j->status == 200 && !j->whole) {  /* whatever came without a final newline */
		if (x->line.n > 0)
			stream_line(j, x->line.p, x->line.n);
		x->line.n = 0;
		stream_line(j, (char[]){0}, 0);
	}
	if (j->err && j->status >= 300 && j->status < 400)
		name_the_url(j);
	else if (j->err) {
		/* said inside the stream */
	} else if (x->stalled)
		job_fail(j, 1, "no byte for %gs (--idle-timeout)", opt.idle_timeout);
	else if (rc == CURLE_OPERATION_TIMEDOUT)
		job_fail(j, 1, "timed out (%s)", x->errbuf);
	else if (rc != CURLE_OK)
		job_fail(j, transient_curl(rc), "%s", x->errbuf[0] ? x->errbuf : curl_easy_strerror(rc));
	else if (j->status != 200)
		http_error(j);
	else if (j->whole)
		whole_answer(j);
	else if (!j->ended)
		job_fail(j, 1, "the stream ended before its end marker");
	limit_after(j, &x->req);
	job_settle(j);
}

/* ---- the multi handle ---- */

void http_perform(void)
{
	if (!multi)
		return;
	int still, left;
	curl_multi_perform(multi, &still);
	CURLMsg *m;
	while ((m = curl_multi_info_read(multi, &left)))
		if (m->msg == CURLMSG_DONE) {
			struct job *j;
			CURLcode rc = m->data.result;
			curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&j);
			finish_attempt(j, rc);
		}
}

long http_timeout(void)
{
	long t = -1;
	if (multi)
		curl_multi_timeout(multi, &t);
	return t;
}

void http_wait(struct pollset *ps, long ms)
{
	if (!multi) {
		if (poll(ps->fd, ps->n, (int)ms) < 0 && errno != EINTR)
			orch_die_sys(EX_FAIL, "poll");
		return;
	}
	struct curl_waitfd *w = orch_xmalloc(ps->n * sizeof *w + 1);
	for (size_t i = 0; i < ps->n; i++)
		w[i] = (struct curl_waitfd){ps->fd[i].fd, ps->fd[i].events, 0};
	curl_multi_poll(multi, w, (unsigned)ps->n, (int)ms, NULL);
	for (size_t i = 0; i < ps->n; i++)
		ps->fd[i].revents = w[i].revents;
	free(w);
}

void http_free(struct job *j)
{
	struct http *x = j->http;
	if (!x)
		return;
	if (x->req.hdrs)
		curl_slist_free_all(x->req.hdrs);
	free(x->req.url);
	free(x->req.body);
	orch_buf_free(&x->raw);
	orch_buf_free(&x->line);
	orch_buf_free(&x->sse);
	free(x);
	j->http = NULL;
}

void http_end(void)
{
	if (multi) {
		curl_multi_cleanup(multi);
		curl_global_cleanup();
	}
}
