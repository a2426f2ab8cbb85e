/* diag.c: one way to say what went wrong, one exit-code table (orch.h). */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>
#include "orch.h"

const char *orch_prog = "orch";
const char *orch_run_opt;

void orch_init(int argc, char **argv)
{
	(void)argc;
	if (argv && argv[0]) {
		const char *s = strrchr(argv[0], '/');
		orch_prog = s ? s + 1 : argv[0];
		argv[0] = (char *)orch_prog;  /* getopt's messages say orch-x: too */
	}
	if (sodium_init() < 0)
		orch_die(EX_FAIL, "libsodium failed to initialise");
}

static char said[4096];  /* the last message, without its newline */

const char *orch_take_said(void)
{
	static char taken[sizeof said];
	memcpy(taken, said, sizeof said);
	said[0] = 0;
	return taken;
}

static void vsay(const char *pre, int err, const char *fmt, va_list ap)
{
	char buf[4096];
	int n = snprintf(buf, sizeof buf, "%s: %s", orch_prog, pre ? pre : "");
	if (n < 0 || (size_t)n >= sizeof buf)
		n = 0;
	int m = vsnprintf(buf + n, sizeof buf - n, fmt, ap);
	if (m > 0)
		n += m;
	if ((size_t)n >= sizeof buf - 1)
		n = sizeof buf - 2;
	if (err)
		n += snprintf(buf + n, sizeof buf - n, ": %s", strerror(err));
	if ((size_t)n >= sizeof buf - 1)
		n = sizeof buf - 2;
	memcpy(said, buf, (size_t)n);
	said[n] = 0;
	buf[n++] = '\n';
	fwrite(buf, 1, n, stderr);  /* one write: lines from parallel tools stay whole */
}

void orch_err(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsay(0, 0, fmt, ap);
	va_end(ap);
}

void orch_err_sys(const char *fmt, ...)
{
	int e = errno;
	va_list ap;
	va_start(ap, fmt);
	vsay(0, e, fmt, ap);
	va_end(ap);
}

void orch_err_at(const char *file, long line, long col, const char *fmt, ...)
{
	char pre[1024];
	if (col > 0)
		snprintf(pre, sizeof pre, "%s:%ld:%ld: ", file, line, col);
	else if (line > 0)
		snprintf(pre, sizeof pre, "%s:%ld: ", file, line);
	else
		snprintf(pre, sizeof pre, "%s: ", file);
	va_list ap;
	va_start(ap, fmt);
	vsay(pre, 0, fmt, ap);
	va_end(ap);
}

void orch_die(int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsay(0, 0, fmt, ap);
	va_end(ap);
	exit(code);
}

void orch_die_sys(int code, const char *fmt, ...)
{
	int e = errno;
	va_list ap;
	va_start(ap, fmt);
	vsay(0, e, fmt, ap);
	va_end(ap);
	exit(code);
}

void *orch_xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		orch_die(EX_FAIL, "out of memory");
	return p;
}

void *orch_xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (!p)
		orch_die(EX_FAIL, "out of memory");
	return p;
}

char *orch_xstrdup(const char *s)
{
	char *p = strdup(s);
	if (!p)
		orch_die(EX_FAIL, "out of memory");
	return p;
}

char *orch_fmt(const char *fmt, ...)
{
	va_list ap;
	char *s;
	va_start(ap, fmt);
	int n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0)
		orch_die(EX_FAIL, "out of memory");
	return s;
}

void orch_usage(const char *usage)
{
	fprintf(stderr, "%s", usage);
	exit(EX_USAGE);
}

int orch_common(int opt, const char *arg, const char *usage)
{
	switch (opt) {
	case ORCH_OPT_HELP:
		fputs(usage, stdout);
		orch_exit(EX_OK);
	case ORCH_OPT_VERSION:
		printf("%s %s\n", orch_prog, ORCH_VERSION);
		orch_exit(EX_OK);
	case ORCH_OPT_RUN:
		orch_run_opt = arg;
		return 1;
	}
	orch_usage(usage);
}

void orch_exit(int code)
{
	if (fflush(stdout) != 0 || ferror(stdout)) {
		orch_err_sys("writing output failed");
		if (code == EX_OK)
			code = EX_FAIL;
	}
	exit(code);
}
