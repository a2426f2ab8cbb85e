/* json.c: ND-JSON records in and out, through jv only. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "orch.h"

/* jq 1.6 says "msg at line L, column C"; split that into our format. */
static void report_parse_error(const char *name, jv msg)
{
	const char *m = jv_string_value(msg);
	const char *at = strstr(m, " at line ");
	long line = 0, col = 0;
	if (at && sscanf(at, " at line %ld, column %ld", &line, &col) == 2)
		orch_err_at(name, line, col, "%.*s", (int)(at - m), m);
	else
		orch_err_at(name, 0, 0, "%s", m);
	jv_free(msg);
}

/* What is there now: read(2) on the descriptor, so a record on a pipe is
 * handled as soon as it arrives (fread would wait for a full buffer);
 * fread for a stream with no descriptor (fmemopen). */
static ssize_t read_some(FILE *f, char *buf, size_t cap)
{
	int fd = fileno(f);
	if (fd < 0) {
		size_t n = fread(buf, 1, cap, f);
		return n == 0 && ferror(f) ? -1 : (ssize_t)n;
	}
	ssize_t n;
	do
		n = read(fd, buf, cap);
	while (n < 0 && errno == EINTR);
	return n;
}

int orch_records(FILE *f, const char *name, orch_record_fn fn, void *ctx)
{
	jv_parser *p = jv_parser_new(0);
	char buf[65536];
	int rc = 0;
	long line = 1;
	ssize_t n;
	do {
		if ((n = read_some(f, buf, sizeof buf)) < 0) {
			orch_err_sys("%s: read error", name);
			rc = EX_FAIL;
			break;
		}
		const char *nul = memchr(buf, 0, n);
		if (nul) {  /* never valid JSON; and libjq 1.6 leaks on some */
			for (const char *q = buf; q < nul; q++)
				line += *q == '\n';
			orch_err_at(name, line, 0, "a NUL byte in the input");
			rc = EX_USAGE;
			break;
		}
		for (const char *q = buf; q < buf + n; q++)
			line += *q == '\n';
		jv_parser_set_buf(p, buf, (int)n, n > 0);  /* is_partial while data comes */
		for (;;) {
			jv v = jv_parser_next(p);
			if (jv_is_valid(v)) {
				if ((rc = fn(v, ctx)) != 0)
					break;
			} else if (jv_invalid_has_msg(jv_copy(v))) {
				report_parse_error(name, jv_invalid_get_msg(v));
				rc = EX_USAGE;
				break;
			} else {
				jv_free(v);
				/* libjq 1.6 gives "nothing yet" mid-buffer after an RS
				 * (0x1e) byte: go on until the buffer is used up */
				if (jv_parser_remaining(p) == 0)
					break;
			}
		}
	} while (rc == 0 && n > 0);
	jv_parser_free(p);
	return rc;
}

static int take_one(jv rec, void *ctx)
{
	jv *out = ctx;
	if (jv_is_valid(*out)) {
		jv_free(rec);
		return 1;
	}
	*out = rec;
	return 0;
}

jv orch_read_one(FILE *f, const char *name)
{
	jv out = jv_invalid();
	int rc = orch_records(f, name, take_one, &out);
	if (rc == EX_USAGE || rc == EX_FAIL) {
		jv_free(out);
		return jv_invalid_with_msg(jv_string("unreadable input"));
	}
	if (rc == 1) {
		orch_err_at(name, 0, 0, "expected one JSON value, found more");
		jv_free(out);
		return jv_invalid_with_msg(jv_string("more than one value"));
	}
	if (!jv_is_valid(out)) {
		orch_err_at(name, 0, 0, "expected a JSON value, found none");
		return jv_invalid_with_msg(jv_string("no input"));
	}
	return out;
}

jv orch_parse_line(const char *line, size_t n)
{
	if (memchr(line, 0, n))
		return jv_invalid_with_msg(jv_string("a NUL byte in a line"));
	return jv_parse_sized(line, (int)n);
}

char *orch_dump(jv v, int sorted)
{
	jv s = jv_dump_string(v, sorted ? JV_PRINT_SORTED : 0);
	char *r = orch_xstrdup(jv_string_value(s));
	jv_free(s);
	return r;
}

int orch_put(jv v)
{
	jv s = jv_dump_string(v, 0);
	int len = jv_string_length_bytes(jv_copy(s));
	int ok = fwrite(jv_string_value(s), 1, len, stdout) == (size_t)len &&
	         putchar('\n') != EOF && fflush(stdout) == 0;
	jv_free(s);
	return ok ? 0 : -1;
}

const char *orch_jstr(jv obj, const char *key)
{
	if (jv_get_kind(obj) != JV_KIND_OBJECT)
		return NULL;
	jv v = jv_object_get(jv_copy(obj), jv_string(key));
	const char *s = NULL;
	if (jv_get_kind(v) == JV_KIND_STRING)
		s = jv_string_value(v);  /* obj still holds a reference */
	jv_free(v);
	return s;
}

int orch_jnum(jv obj, const char *key, double *out)
{
	if (jv_get_kind(obj) != JV_KIND_OBJECT)
		return 0;
	jv v = jv_object_get(jv_copy(obj), jv_string(key));
	int ok = jv_get_kind(v) == JV_KIND_NUMBER;
	if (ok)
		*out = jv_number_value(v);
	jv_free(v);
	return ok;
}

int orch_jbool(jv obj, const char *key, int dflt)
{
	if (jv_get_kind(obj) != JV_KIND_OBJECT)
		return dflt;
	jv v = jv_object_get(jv_copy(obj), jv_string(key));
	jv_kind k = jv_get_kind(v);
	jv_free(v);
	return k == JV_KIND_TRUE ? 1 : k == JV_KIND_FALSE ? 0 : dflt;
}
