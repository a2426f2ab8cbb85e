/* limit.c: orch-call's side of the rate limits shared across runs
 * (lib/ratelimit.c; orch-call(1) RATE LIMITS). An HTTP request's account
 * is its provider, its URL and a hash of its URL and headers (which hold
 * the key: the key itself is never written). Its limits are --rpm and
 * --tpm, else the request's "limits": {rpm, tpm}.
 *
 * Before each attempt the request takes its share: one request, and its
 * estimated prompt tokens. When the share is not there yet the job waits
 * (J_WAIT: the queue's loop wakes it, and polls no longer than that), and
 * the wait does not count against --timeout. After the attempt the
 * answer's usage corrects the tokens taken.
 *
 * A 429 that says a daily quota is spent (its message says "per day" or
 * "daily", or its Retry-After is over an hour) is not retried: the job
 * fails at once (or falls back), and, when the account has limits, its
 * retry_at (Retry-After, else an hour on) is recorded, so no request goes
 * to the account before then from this process or any other sharing the
 * folder. Without limits nothing is read or written. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <curl/curl.h>
#include "call.h"

/* The account's limits: 1 if it has any. */
static int limits_of(const struct job *j, double *rpm, double *tpm)
{
	jv l = orch_jget(j->req, "limits");
	*rpm = *tpm = 0;
	orch_jnum(l, "rpm", rpm);
	orch_jnum(l, "tpm", tpm);
	jv_free(l);
	if (opt.rpm > 0)
		*rpm = opt.rpm;
	if (opt.tpm > 0)
		*tpm = opt.tpm;
	return *rpm > 0 || *tpm > 0;
}

/* The folder of the accounts' files (NULL, reported once, if none). */
static const char *rate_dir(void)
{
	static char *dir;
	static int looked;
	if (!looked++ && !(dir = orch_rate_dir()))
		orch_err("warning: no folder for the rate-limit files (set ORCH_CACHE_DIR); not limiting");
	return dir;
}

/* "openai http://host/v1/chat/completions 1a2b3c4d5e6f7a8b", the hash of
 * the URL and the headers; the URL without any user:password@. */
static char *account_of(const struct job *j, const struct http_req *r)
{
	struct orch_buf b = {0};
	orch_buf_add(&b, r->url, strlen(r->url));
	for (const struct curl_slist *l = r->hdrs; l; l = l->next)
		orch_buf_add(&b, l->data, strlen(l->data) + 1);
	char h[65], *url = redact(r->url);
	orch_sha256_hex(b.p, b.n, h);
	h[16] = 0;
	char *a = orch_fmt("%s %s %s", j->name, url, h);
	orch_buf_free(&b);
	free(url);
	return a;
}

/* The account is blocked: the attempt fails before it is sent. */
static void blocked(struct job *j, const char *acct, double until)
{
	char at[32], *file = orch_rate_file(rate_dir(), acct);
	orch_rate_iso(until, at);
	job_begin_attempt(j);
	job_fail(j, 0, "the daily quota is spent: no request before %s (retry_at in %s)", at, file);
	j->quota = 1;
	free(file);
	job_settle(j);
}

int limit_wait(struct job *j, const struct http_req *r)
{
	double rpm, tpm, until = 0, wait = 0;
	if (!limits_of(j, &rpm, &tpm) || !rate_dir())
		return 0;
	char *acct = account_of(j, r);
	wait = orch_rate_take(rate_dir(), acct, rpm, tpm, j->prompt_est, orch_wall(), &until);
	if (wait < 0)
		blocked(j, acct, until);
	else if (wait > 0) {
		j->wake = orch_mono() + wait;
		j->deadline += wait;  /* waiting for a share is not the provider's time */
		j->state = J_WAIT;
	}
	free(acct);
	return wait != 0;
}

static int daily_quota(const struct job *j)
{
	static const char *words[] = {"per day", "per_day", "perday", "daily"};
	if (j->status != 429 || !j->err)
		return 0;
	for (size_t i = 0; i < sizeof words / sizeof *words; i++)
		if (strcasestr(j->err, words[i]))
			return 1;
	return j->retry_after > 3600;
}

/* The tokens the answer counted, beyond (or short of) the estimate taken. */
static double tokens_unforeseen(const struct job *j)
{
	double p = (j->has_ptok ? j->ptok : j->prompt_est) + j->cache_read + j->cache_write;
	double c = j->has_ctok ? j->ctok : (jv_string_length_bytes(jv_copy(j->content)) + 3) / 4;
	return p + c - j->prompt_est;
}

/* Fail for good, and block the account (if it has limits) until then. */
static void spent(struct job *j, const struct http_req *r, int limited)
{
	double until = orch_wall() + (j->retry_after > 0 ? j->retry_after : 3600);
	char at[32], *acct = account_of(j, r), *file = NULL;
	orch_rate_iso(until, at);
	if (limited) {
		orch_rate_block(rate_dir(), acct, until);
		file = orch_rate_file(rate_dir(), acct);
	}
	char *e = orch_fmt("%s; the daily quota is spent: no request before %s%s%s%s", j->err,
	                   at, file ? " (retry_at in " : "", file ? file : "", file ? ")" : "");
	free(j->err);
	j->err = e;
	j->quota = 1;
	j->transient = 0;
	free(file);
	free(acct);
}

void limit_after(struct job *j, const struct http_req *r)
{
	double rpm, tpm;
	int limited = limits_of(j, &rpm, &tpm) && rate_dir();
	if (j->err && daily_quota(j))
		spent(j, r, limited);
	else if (!j->err && limited && tpm > 0) {
		char *acct = account_of(j, r);
		orch_rate_correct(rate_dir(), acct, tpm, tokens_unforeseen(j));
		free(acct);
	}
}
