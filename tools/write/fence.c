/* fence.c: the fenced code blocks of a markdown answer, and the file each
 * names. It knows nothing of writing: fence_scan hands each block to a
 * callback (orch-write decides which are written), so it can be tested
 * and fuzzed alone. Assumes nothing of the text: any bytes, NULs too.
 *
 * A fence is a line of 3 or more '`' or '~' (any indentation); the rest of
 * the line is the info string. The block ends at a line of the same
 * character, at least as long, with nothing else on it; so a longer fence
 * holds shorter ones, and a "```python" line never closes a block.
 * Content lines lose the opening fence's indentation; CRLF line ends
 * become LF; the last line gets a newline.
 *
 * The file name comes from the info string:
 *   ```python title="app/main.py"   (also filename=, file=, path=; quotes optional)
 *   ```app/main.py                  (one word that looks like a path)
 *   ```python app/main.py           (a second word that looks like a path)
 *   ```python:app/main.py
 * else from the last non-blank line before the fence (at most one blank
 * line between) when that line is only a name:
 *   ### app/main.py     **app/main.py**     `app/main.py`:     File: app/main.py
 * (headings of any level, a list bullet or "1." before, '*' and '`' around,
 * a ':' after; "File:", "Filename:", "Path:" labels, any case).
 * "Looks like a path": has a '/' or a '.' followed by letters or digits,
 * or is one of Makefile, Dockerfile, ... (a label line only); never a URL.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "orch.h"
#include "write.h"

static const char *dotless[] = {"Makefile", "makefile", "GNUmakefile", "Dockerfile",
	"Containerfile", "Procfile", "Gemfile", "Rakefile", "Jenkinsfile", "Vagrantfile",
	"LICENSE", "README", "CHANGELOG", "COPYING", "AUTHORS", "NOTICE", NULL};

static int looks_like_path(const char *s, size_t n, int label)
{
	if (n == 0 || n > PATH_MAX || memmem(s, n, "://", 3))
		return 0;  /* a URL names no file here */
	int slash = 0;
	const char *dot = NULL;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == ' ' || s[i] == '\t' || s[i] == '=' || s[i] == '"' || s[i] == '\'')
			return 0;
		if (s[i] == '/')
			slash = 1;
		if (s[i] == '.')
			dot = s + i;
	}
	if (slash)
		return 1;
	if (dot && dot < s + n - 1) {
		for (const char *p = dot + 1; p < s + n; p++)
			if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			      (*p >= '0' && *p <= '9') || *p == '_' || *p == '-'))
				return 0;
		return 1;
	}
	if (label)
		for (const char **d = dotless; *d; d++)
			if (strlen(*d) == n && memcmp(*d, s, n) == 0)
				return 1;
	return 0;
}

static int is_space(char c) { return c == ' ' || c == '\t'; }

/* title="x" / filename=x ... in an info string; malloc'd or NULL. */
static char *info_attr(const char *info)
{
	static const char *keys[] = {"title=", "filename=", "file=", "path=", "name=", NULL};
	for (const char **k = keys; *k; k++) {
		size_t kl = strlen(*k);
		for (const char *p = info; (p = strstr(p, *k)); p++) {
			if (p != info && !is_space(p[-1]) && p[-1] != '{' && p[-1] != ',')
				continue;
			const char *v = p + kl, *e;
			if (*v == '"' || *v == '\'') {
				e = strchr(v + 1, *v);
				if (!e)
					continue;
				v++;
			} else
				for (e = v; *e && !is_space(*e) && *e != '}' && *e != ','; e++)
					;
			if (e > v)
				return orch_fmt("%.*s", (int)(e - v), v);
		}
	}
	return NULL;
}

static char *name_from_info(const char *info)
{
	char *a = info_attr(info);
	if (a)
		return a;
	const char *w1 = info, *e1 = w1;
	while (*e1 && !is_space(*e1))
		e1++;
	const char *w2 = e1;
	while (is_space(*w2))
		w2++;
	const char *e2 = w2;
	while (*e2 && !is_space(*e2))
		e2++;
	const char *colon = memchr(w1, ':', (size_t)(e1 - w1));
	if (colon && looks_like_path(colon + 1, (size_t)(e1 - colon - 1), 0))
		return orch_fmt("%.*s", (int)(e1 - colon - 1), colon + 1);
	if (e2 > w2 && looks_like_path(w2, (size_t)(e2 - w2), 0))
		return orch_fmt("%.*s", (int)(e2 - w2), w2);
	if (e2 == w2 && looks_like_path(w1, (size_t)(e1 - w1), 0))
		return orch_fmt("%.*s", (int)(e1 - w1), w1);
	return NULL;
}

/* A line that is only a file name (see above); malloc'd or NULL. */
static char *name_from_label(const char *s, size_t n)
{
	char *t = orch_xmalloc(n + 1), *p;
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (s[i] != '*' && s[i] != '`')
			t[k++] = s[i];
	t[k] = 0;
	p = t;
	while (is_space(*p))
		p++;
	int hashes = 0;
	while (*p == '#')
		p++, hashes++;
	if (hashes > 6 || (hashes && !is_space(*p))) {
		free(t);
		return NULL;
	}
	while (is_space(*p))
		p++;
	if ((*p == '-' || *p == '+') && is_space(p[1]))
		p += 2;
	else if (*p >= '0' && *p <= '9') {
		char *q = p;
		while (*q >= '0' && *q <= '9')
			q++;
		if ((*q == '.' || *q == ')') && is_space(q[1]))
			p = q + 2;
	}
	while (is_space(*p))
		p++;
	static const char *labels[] = {"file name:", "filename:", "file path:", "file:", "path:", NULL};
	for (const char **l = labels; *l; l++)
		if (strncasecmp(p, *l, strlen(*l)) == 0) {
			p += strlen(*l);
			while (is_space(*p))
				p++;
			break;
		}
	size_t m = strlen(p);
	while (m && (is_space(p[m - 1]) || p[m - 1] == '#'))
		m--;
	if (m && p[m - 1] == ':')
		m--;
	char *r = looks_like_path(p, m, 1) ? orch_fmt("%.*s", (int)m, p) : NULL;
	free(t);
	return r;
}

/* The scan between lines. */
struct scan {
	fence_fn fn;
	void *ctx;
	char *label;           /* outside a block: the last non-blank line's name */
	int blanks;            /* blank lines since that line */
	int in;                /* inside a block */
	char ch;               /* its fence's character, length and indentation */
	size_t flen, ind;
	struct fence_block b;  /* the block so far; its name and body are ours */
	char *name, *body;
	size_t cap;            /* of body */
};

/* An opening fence: its char, length, indentation and info string into sc. */
static int fence_open(const char *s, size_t n, struct scan *sc)
{
	size_t i = 0;
	while (i < n && s[i] == ' ')
		i++;
	if (i >= n || (s[i] != '`' && s[i] != '~'))
		return 0;
	size_t j = i;
	while (j < n && s[j] == s[i])
		j++;
	if (j - i < 3)
		return 0;
	const char *b = s + j, *e = s + n;
	while (b < e && is_space(*b))
		b++;
	while (e > b && is_space(e[-1]))
		e--;
	if (s[i] == '`' && memchr(b, '`', (size_t)(e - b)))
		return 0;  /* ```inline``` code, not a fence */
	sc->ch = s[i];
	sc->flen = j - i;
	sc->ind = i;
	sc->b.info = b;
	sc->b.info_len = (size_t)(e - b);
	return 1;
}

static int fence_close(const char *s, size_t n, char ch, size_t len)
{
	size_t i = 0;
	while (i < n && s[i] == ' ')
		i++;
	size_t j = i;
	while (j < n && s[j] == ch)
		j++;
	if (j - i < len)
		return 0;
	while (j < n && is_space(s[j]))
		j++;
	return j == n;
}


static void body_add(struct scan *sc, const char *s, size_t n)
{
	if (sc->b.len + n + 1 > sc->cap) {
		sc->cap = 2 * sc->cap > sc->b.len + n + 1 ? 2 * sc->cap : sc->b.len + n + 256;
		sc->body = orch_xrealloc(sc->body, sc->cap);
	}
	memcpy(sc->body + sc->b.len, s, n);
	sc->b.len += n;
	sc->body[sc->b.len] = 0;
}

/* A fence opened on line lineno: name the block and start its body. */
static void block_start(struct scan *sc, long lineno)
{
	char *info = orch_fmt("%.*s", (int)sc->b.info_len, sc->b.info);
	sc->name = name_from_info(info);
	free(info);
	if (!sc->name && sc->label && sc->blanks <= 1)
		sc->name = sc->label, sc->label = NULL;
	free(sc->label);
	sc->label = NULL;
	sc->in = 1;
	sc->b.line = lineno;
	sc->b.len = 0;
	body_add(sc, "", 0);
}

/* Hand the block over (closed or not) and forget it. */
static int block_end(struct scan *sc, int closed)
{
	sc->in = 0;
	sc->b.closed = closed;
	sc->b.name = sc->name;
	sc->b.content = sc->body;
	int rc = sc->fn(&sc->b, sc->ctx);
	free(sc->name);
	sc->name = NULL;
	return rc;
}

/* One line s[0..n), without its line end. */
static int scan_line(struct scan *sc, const char *s, size_t n, long lineno)
{
	if (sc->in && fence_close(s, n, sc->ch, sc->flen))
		return block_end(sc, 1);
	if (sc->in) {
		size_t k = 0;
		while (k < sc->ind && k < n && s[k] == ' ')
			k++;
		body_add(sc, s + k, n - k);
		body_add(sc, "\n", 1);
	} else if (fence_open(s, n, sc))
		block_start(sc, lineno);
	else {
		size_t k = 0;
		while (k < n && is_space(s[k]))
			k++;
		if (k == n)
			sc->blanks++;
		else {
			free(sc->label);
			sc->label = name_from_label(s, n);
			sc->blanks = 0;
		}
	}
	return 0;
}

int fence_scan(const char *text, size_t len, fence_fn fn, void *ctx)
{
	struct scan sc = {.fn = fn, .ctx = ctx};
	const char *end = text + len;
	long lineno = 0;
	int rc = 0;
	for (const char *p = text; p < end && !rc; ) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = (size_t)((nl ? nl : end) - p);
		if (n && p[n - 1] == '\r')
			n--;
		rc = scan_line(&sc, p, n, ++lineno);
		p = nl ? nl + 1 : end;
	}
	if (!rc && sc.in)
		rc = block_end(&sc, 0);
	free(sc.label);
	free(sc.name);
	free(sc.body);
	return rc;
}
