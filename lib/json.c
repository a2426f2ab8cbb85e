/* json.c: ND-JSON records in and out, through jv only. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include "orch.h"

/* jq 1.6 says "msg at line L, column C"; split that into our format. */
static void report_parse_error(const char *name, jv msg)
{
	const char *m = jv_string_value(msg);
	const char *at = strstr(m, " at line ");
	long line = 0, col = 0;
	if (at && sscanf(at, " at line %ld, column %ld", &line, &col) == 2) {
		if (col == 0 && line > 1)  /* jq saw it at the newline: the line before */
			line--;
		orch_err_at(name, line, col, "%.*s", (int)(at - m), m);
	}
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
	if (!line || n == 0)
		return jv_invalid_with_msg(jv_string("an empty line"));
	if (memchr(line, 0, n))
		return jv_invalid_with_msg(jv_string("a NUL byte in a line"));
	return jv_parse_sized(line, (int)n);
}

/* ---- validation ----------------------------------------------------------
 * Is s[0..n) one JSON value (RFC 8259), with nothing after it? No
 * allocation, a few instructions a byte: a gate for readers that print a
 * line as it is (libjq would build, then free, the whole value). Strict:
 * whatever it accepts, libjq parses (make fuzz checks this). */
static const char *ws(const char *p, const char *e)
{
	while (p < e && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
		p++;
	return p;
}

static const char *v_string(const char *p, const char *e)
{
	for (p++; p < e; p++) {
		unsigned char c = *p;
		if (c == '"')
			return p + 1;
		if (c < 0x20)
			return NULL;
		if (c == '\\') {
			if (++p >= e)
				return NULL;
			if (*p == 'u') {
				for (int k = 0; k < 4; k++)
					if (++p >= e || !isxdigit((unsigned char)*p))
						return NULL;
			} else if (!strchr("\"\\/bfnrt", *p) || !*p)
				return NULL;
		} else if (c >= 0x80) {  /* well-formed UTF-8 only */
			int k = c >= 0xf0 && c <= 0xf4 ? 3 : c >= 0xe0 ? 2 : c >= 0xc2 && c < 0xe0 ? 1 : -1;
			if (k < 0)
				return NULL;
			for (; k > 0; k--)
				if (++p >= e || ((unsigned char)*p & 0xc0) != 0x80)
					return NULL;
		}
	}
	return NULL;
}

static const char *v_number(const char *p, const char *e)
{
	if (p < e && *p == '-')
		p++;
	if (p < e && *p == '0')
		p++;
	else if (p < e && *p >= '1' && *p <= '9')
		while (p < e && isdigit((unsigned char)*p))
			p++;
	else
		return NULL;
	if (p < e && *p == '.') {
		if (++p >= e || !isdigit((unsigned char)*p))
			return NULL;
		while (p < e && isdigit((unsigned char)*p))
			p++;
	}
	if (p < e && (*p == 'e' || *p == 'E')) {
		if (++p < e && (*p == '+' || *p == '-'))
			p++;
		if (p >= e || !isdigit((unsigned char)*p))
			return NULL;
		while (p < e && isdigit((unsigned char)*p))
			p++;
	}
	return p;
}

static const char *v_value(const char *p, const char *e, int depth)
{
	p = ws(p, e);
	if (p >= e || depth > 256)
		return NULL;
	switch (*p) {
	case '"':
		return v_string(p, e);
	case 't':
		return e - p >= 4 && !memcmp(p, "true", 4) ? p + 4 : NULL;
	case 'f':
		return e - p >= 5 && !memcmp(p, "false", 5) ? p + 5 : NULL;
	case 'n':
		return e - p >= 4 && !memcmp(p, "null", 4) ? p + 4 : NULL;
	case '[':
	case '{': {
		char close = *p == '[' ? ']' : '}';
		int obj = *p == '{';
		p = ws(p + 1, e);
		if (p < e && *p == close)
			return p + 1;
		for (;;) {
			if (obj) {
				p = ws(p, e);
				if (p >= e || *p != '"' || !(p = v_string(p, e)))
					return NULL;
				p = ws(p, e);
				if (p >= e || *p++ != ':')
					return NULL;
			}
			if (!(p = v_value(p, e, depth + 1)))
				return NULL;
			p = ws(p, e);
			if (p < e && *p == ',') {
				p++;
				continue;
			}
			return p < e && *p == close ? p + 1 : NULL;
		}
	}
	default:
		return v_number(p, e);
	}
}

int orch_json_valid(const char *s, size_t n)
{
	const char *p = v_value(s, s + n, 0);
	return p && ws(p, s + n) == s + n;
}

/* ---- compact output ----------------------------------------------------
 * libjq 1.6's jv_dump_string spends ~200 instructions a byte (it appends
 * to a jv string piece by piece). orch_json_append writes the same bytes
 * (tests/fuzz/records.c checks it against jv_dump_string) into a
 * plain buffer: objects in jv_object_iter order, as jv_dump does; strings
 * escaped as jq does; integers printed here, other numbers by libjq. */

static void buf_need(struct orch_buf *b, size_t more)
{
	if (b->n + more > b->cap) {
		while (b->n + more > b->cap)
			b->cap = b->cap ? 2 * b->cap : 4096;
		b->p = orch_xrealloc(b->p, b->cap);
	}
}

static void buf_add(struct orch_buf *b, const char *s, size_t n)
{
	buf_need(b, n);
	memcpy(b->p + b->n, s, n);
	b->n += n;
}

void orch_buf_add(struct orch_buf *b, const void *s, size_t n)
{
	buf_need(b, n + 1);
	if (n)  /* memcpy may not take the NULL of an empty buffer */
		memcpy(b->p + b->n, s, n);
	b->n += n;
	b->p[b->n] = 0;
}

void orch_buf_free(struct orch_buf *b)
{
	free(b->p);
	*b = (struct orch_buf){0};
}

static int plain(unsigned char c)
{
	return c >= 0x20 && c != '"' && c != '\\' && c != 0x7f;
}

static void add_string(struct orch_buf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	buf_need(b, n + 2);
	b->p[b->n++] = '"';
	size_t i = 0;
	while (i < n && plain(s[i]))
		i++;
	memcpy(b->p + b->n, s, i);  /* most strings are all of this */
	b->n += i;
	size_t run = 0;  /* bytes that need no escape, copied at once */
	for (; i < n; i++) {
		unsigned char c = s[i];
		if (plain(c)) {
			run++;
			continue;
		}
		buf_add(b, s + i - run, run);
		run = 0;
		char e[7] = {'\\', 0};
		size_t k = 2;
		switch (c) {
		case '"': e[1] = '"'; break;
		case '\\': e[1] = '\\'; break;
		case '\b': e[1] = 'b'; break;
		case '\f': e[1] = 'f'; break;
		case '\n': e[1] = 'n'; break;
		case '\r': e[1] = 'r'; break;
		case '\t': e[1] = 't'; break;
		default:
			e[1] = 'u', e[2] = '0', e[3] = '0', e[4] = hex[c >> 4], e[5] = hex[c & 15];
			k = 6;
		}
		buf_add(b, e, k);
	}
	buf_need(b, run + 1);
	memcpy(b->p + b->n, s + n - run, run);
	b->p[b->n + run] = '"';
	b->n += run + 1;
}

static void add_number(struct orch_buf *b, jv v)
{
	double d = jv_number_value(v);
	if (d > -1e15 && d < 1e15 && d == (double)(long long)d && !(d == 0 && signbit(d))) {
		char t[24], *e = t + sizeof t, *p = e;
		long long i = (long long)d;
		unsigned long long u = i < 0 ? -(unsigned long long)i : (unsigned long long)i;
		do
			*--p = '0' + u % 10;
		while (u /= 10);
		if (i < 0)
			*--p = '-';
		buf_add(b, p, e - p);
		jv_free(v);
		return;
	}
	jv t = jv_dump_string(v, 0);  /* jq's own shortest form */
	buf_add(b, jv_string_value(t), jv_string_length_bytes(jv_copy(t)));
	jv_free(t);
}

/* v is consumed. */
static void add_value(struct orch_buf *b, jv v)
{
	switch (jv_get_kind(v)) {
	case JV_KIND_NULL: buf_add(b, "null", 4); break;
	case JV_KIND_TRUE: buf_add(b, "true", 4); break;
	case JV_KIND_FALSE: buf_add(b, "false", 5); break;
	case JV_KIND_NUMBER: add_number(b, v); return;
	case JV_KIND_STRING:
		add_string(b, jv_string_value(v), jv_string_length_bytes(jv_copy(v)));
		break;
	case JV_KIND_ARRAY:
		buf_add(b, "[", 1);
		jv_array_foreach(v, i, x) {
			if (i)
				buf_add(b, ",", 1);
			add_value(b, x);
		}
		buf_add(b, "]", 1);
		break;
	case JV_KIND_OBJECT: {
		buf_add(b, "{", 1);
		int first = 1;
		jv_object_foreach(v, k, x) {
			if (!first)
				buf_add(b, ",", 1);
			first = 0;
			add_string(b, jv_string_value(k), jv_string_length_bytes(jv_copy(k)));
			jv_free(k);
			buf_add(b, ":", 1);
			add_value(b, x);
		}
		buf_add(b, "}", 1);
		break;
	}
	default:  /* invalid: what jv_dump_string prints for it */
		buf_add(b, "<invalid>", 9);
	}
	jv_free(v);
}

/* ---- a writer for records not built as jv ------------------------------ */
enum { JW_MORE = 1, JW_OBJECT = 2 };

static void jw_sep(orch_jw *w)
{
	if (w->keyed)
		w->keyed = 0;
	else if (w->depth && w->at[w->depth - 1] & JW_MORE)
		buf_add(&w->b, ",", 1);
	if (w->depth)
		w->at[w->depth - 1] |= JW_MORE;
}

void orch_jw_open(orch_jw *w, char c)
{
	jw_sep(w);
	if (w->depth == ORCH_JW_DEPTH)
		orch_die(EX_FAIL, "JSON writer: nested too deep");
	w->at[w->depth++] = c == '{' ? JW_OBJECT : 0;
	buf_add(&w->b, c == '{' ? "{" : "[", 1);
}

void orch_jw_close(orch_jw *w)
{
	buf_add(&w->b, w->at[--w->depth] & JW_OBJECT ? "}" : "]", 1);
}

void orch_jw_key(orch_jw *w, const char *k)
{
	jw_sep(w);
	add_string(&w->b, k, strlen(k));
	buf_add(&w->b, ":", 1);
	w->keyed = 1;
}

void orch_jw_str(orch_jw *w, const char *s)
{
	jw_sep(w);
	add_string(&w->b, s, strlen(s));
}

void orch_jw_jv(orch_jw *w, jv v)
{
	jw_sep(w);
	add_value(&w->b, v);
}

void orch_jw_text(orch_jw *w, const char *json, size_t n)
{
	jw_sep(w);
	buf_add(&w->b, json, n);
}

int orch_jw_put(orch_jw *w)
{
	if (w->depth || w->keyed)
		orch_die(EX_FAIL, "JSON writer: a record put before its end");
	buf_add(&w->b, "\n", 1);
	size_t n = w->b.n;
	w->b.n = 0;
	return fwrite(w->b.p, 1, n, stdout) == n ? 0 : -1;
}

void orch_jw_free(orch_jw *w)
{
	free(w->b.p);
	memset(w, 0, sizeof *w);
}

char *orch_json_text(jv v, size_t *len)
{
	struct orch_buf b = {0};
	add_value(&b, v);
	buf_need(&b, 1);
	b.p[b.n] = 0;
	if (len)
		*len = b.n;
	return b.p;
}

char *orch_dump(jv v, int sorted)
{
	if (!sorted)
		return orch_json_text(v, NULL);
	jv s = jv_dump_string(v, JV_PRINT_SORTED);  /* canonical: libjq's own */
	char *r = orch_xstrdup(jv_string_value(s));
	jv_free(s);
	return r;
}

/* Is stdout /dev/null? Then a record is not even written out: orch run
 * sends orch-sched's 10,000 result lines there. */
static int out_is_null(void)
{
	static int null = -1;
	struct stat st;
	if (null < 0)
		null = fstat(STDOUT_FILENO, &st) == 0 && S_ISCHR(st.st_mode) &&
		       st.st_rdev == makedev(1, 3);
	return null;
}

int orch_put(jv v)
{
	static struct orch_buf b;  /* reused: one allocation for a whole stream */
	if (out_is_null()) {
		jv_free(v);
		return 0;
	}
	b.n = 0;
	add_value(&b, v);
	buf_add(&b, "\n", 1);
	return fwrite(b.p, 1, b.n, stdout) == b.n && fflush(stdout) == 0 ? 0 : -1;
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

jv orch_jget(jv obj, const char *key)
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
