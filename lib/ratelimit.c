/* ratelimit.c: request and token rates shared by every process that
 * calls one account (a provider, its URL and a hash of its key: the
 * caller makes the account's text, and never puts a key in it).
 *
 * An account is a file, DIR/<sha256 of the account>.json, of one line:
 *   {"account":"...","rpm":600,"tpm":200000,"requests_until":1764500000.1,
 *    "tokens_until":1764500000.3,"retry_at":"2026-11-30T12:00:00.000Z"}
 * read and rewritten in place under flock(2), so two cron jobs on one key
 * take their shares from one bucket. The bucket is told as times (GCRA):
 * requests_until is the time up to which the account's requests are
 * spent, each request adding 60/rpm seconds; a request may go when that
 * is at most one interval ahead of now (so at most two go at once).
 * tokens_until likewise, each token adding 60/tpm seconds, with one
 * second of tokens ahead allowed: a request larger than that goes alone,
 * and those after it wait for its tokens. retry_at, when present, blocks
 * the account until then (a daily quota ran out).
 *
 * Assumes the processes sharing DIR share a clock (epoch seconds) and
 * that flock works there (a local file system). A line that cannot be
 * read (a crash mid-write) is begun afresh; a file that cannot be opened
 * is reported once, and then nothing is limited: the limits spare the
 * provider's 429s, they are not what keeps the account safe. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>
#include "orch.h"

/* An account's line. */
struct rate {
	double rpm, tpm;             /* the limits last asked for (0: none) */
	double req_until, tok_until; /* epoch s up to which the shares are spent */
	double retry_at;             /* epoch s; 0: not blocked */
};

char *orch_rate_dir(void)
{
	const char *c = getenv("ORCH_CACHE_DIR"), *run = orch_run_dir();
	const char *x = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
	if (c && *c)
		return orch_path(c, "ratelimit");
	if (run)
		return orch_path(run, ".cache/ratelimit");
	if (x && *x == '/')
		return orch_path(x, "orch/ratelimit");
	if (home && *home)
		return orch_path(home, ".cache/orch/ratelimit");
	return NULL;
}

char *orch_rate_file(const char *dir, const char *account)
{
	char h[65];
	orch_sha256_hex(account, strlen(account), h);
	return orch_fmt("%s/%s.json", dir, h);
}

/* The account's file, open and locked; -1 (reported once) if it cannot be. */
static int rate_open(const char *dir, const char *account)
{
	static int warned;
	char *path = orch_rate_file(dir, account);
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0 && errno == ENOENT && orch_mkdir_p(dir, 0700) == 0)
		fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	while (fd >= 0 && flock(fd, LOCK_EX) < 0)
		if (errno != EINTR) {
			close(fd);
			fd = -1;
		}
	if (fd < 0 && !warned++)
		orch_err_sys("warning: cannot use the rate-limit file %s; not limiting", path);
	free(path);
	return fd;
}

static double iso_epoch(const char *s)
{
	double t;
	return s && orch_parse_iso(s, &t) == 0 ? t : 0;
}

/* The first line of the file (a crash between the write and the
 * truncation may leave the end of a longer line after it). */
static struct rate rate_read(int fd)
{
	struct rate r = {0, 0, 0, 0, 0};
	size_t n;
	char *text = orch_read_fd(fd, &n);
	if (!text)
		return r;
	jv v = orch_parse_line(text, strcspn(text, "\n"));
	if (jv_get_kind(v) == JV_KIND_OBJECT) {
		orch_jnum(v, "rpm", &r.rpm);
		orch_jnum(v, "tpm", &r.tpm);
		orch_jnum(v, "requests_until", &r.req_until);
		orch_jnum(v, "tokens_until", &r.tok_until);
		r.retry_at = iso_epoch(orch_jstr(v, "retry_at"));
	}
	jv_free(v);
	free(text);
	return r;
}

static jv ms(double t)
{
	return jv_number(round(t * 1000) / 1000);
}

void orch_rate_iso(double t, char buf[32])
{
	long long ms = llround(t * 1000);  /* rounded: what is read back prints the same */
	time_t s = (time_t)(ms / 1000);
	struct tm tm;
	gmtime_r(&s, &tm);
	size_t n = strftime(buf, 32, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, 32 - n, ".%03dZ", (int)(ms % 1000));
}

/* The line rewritten in place, and the file unlocked and closed. */
static void rate_write(int fd, const char *account, const struct rate *r)
{
	jv v = jv_object_set(jv_object(), jv_string("account"), jv_string(account));
	v = jv_object_set(v, jv_string("rpm"), jv_number(r->rpm));
	v = jv_object_set(v, jv_string("tpm"), jv_number(r->tpm));
	v = jv_object_set(v, jv_string("requests_until"), ms(r->req_until));
	v = jv_object_set(v, jv_string("tokens_until"), ms(r->tok_until));
	if (r->retry_at > 0) {
		char at[32];
		orch_rate_iso(r->retry_at, at);
		v = jv_object_set(v, jv_string("retry_at"), jv_string(at));
	}
	size_t n;
	char *line = orch_json_text(v, &n);
	line = orch_xrealloc(line, n + 2);
	line[n++] = '\n';
	if (pwrite(fd, line, n, 0) != (ssize_t)n || ftruncate(fd, (off_t)n) < 0) {
		/* the next reader begins afresh from what is there */
	}
	free(line);
	close(fd);
}

/* How long until a share spent up to `until` lets `ahead` more go. */
static double wait_for(double until, double ahead, double now)
{
	return fmax(0, until - ahead - now);
}

double orch_rate_take(const char *dir, const char *account, double rpm, double tpm,
                      double tokens, double now, double *retry_at)
{
	int fd = rate_open(dir, account);
	if (fd < 0)
		return 0;
	struct rate r = rate_read(fd);
	if (r.retry_at > now) {
		close(fd);
		*retry_at = r.retry_at;
		return -1;
	}
	double every = rpm > 0 ? 60 / rpm : 0, per_token = tpm > 0 ? 60 / tpm : 0;
	double wait = fmax(rpm > 0 ? wait_for(r.req_until, every, now) : 0,
	                   tpm > 0 ? wait_for(r.tok_until, 1, now) : 0);
	if (wait > 0) {
		close(fd);
		return wait;
	}
	r.rpm = rpm;
	r.tpm = tpm;
	r.retry_at = 0;
	if (rpm > 0)
		r.req_until = fmax(r.req_until, now) + every;
	if (tpm > 0)
		r.tok_until = fmax(r.tok_until, now) + fmax(0, tokens) * per_token;
	rate_write(fd, account, &r);
	return 0;
}

void orch_rate_correct(const char *dir, const char *account, double tpm, double tokens)
{
	int fd = tpm > 0 && tokens != 0 ? rate_open(dir, account) : -1;
	if (fd < 0)
		return;
	struct rate r = rate_read(fd);
	r.tok_until += tokens * 60 / tpm;
	rate_write(fd, account, &r);
}

void orch_rate_block(const char *dir, const char *account, double retry_at)
{
	int fd = rate_open(dir, account);
	if (fd < 0)
		return;
	struct rate r = rate_read(fd);
	r.retry_at = fmax(r.retry_at, retry_at);
	rate_write(fd, account, &r);
}
