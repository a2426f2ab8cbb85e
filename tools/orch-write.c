/* orch-write: safe, atomic, confined writes into the run's outputs/.
 *
 *   orch-write [--outputs DIR] [--mode M] [--result] < write records
 *   orch-write --extract [--result] [--step S] < response (or markdown)
 *   orch-write --no-files --result [--step S] < response: the step result
 *                                of a step that writes no files
 *
 * Reads write records {"path","content","mode"} as ND-JSON (or, with
 * --extract, a response whose fenced code blocks name their files), writes
 * each file under OUT (RUN/outputs, or --outputs DIR), prints one write
 * result {"path","sha256","size_bytes","wrote","reason"} per file and emits
 * a file.written event for each.
 *
 * Confinement is a security boundary, enforced by the kernel, not by
 * string checks alone: after the syntactic checks (relative, no "..", no
 * control character, no empty or over-long component), every component is
 * opened relative to a descriptor of OUT, one at a time, with O_NOFOLLOW
 * (and openat2 RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS where the kernel has
 * it). A symlink anywhere on the path is refused, wherever it points; so is
 * a parent that is not a folder and a target that is not a regular file.
 *
 * A batch is all or nothing as far as it can be known beforehand: every
 * record is checked (syntax, the existing part of its path, create_new
 * conflicts) before the first file is written; any refusal exits 2 with
 * nothing written, a conflict exits 1 with nothing written.
 *
 * Modes (CONTRACT §7): create_new, overwrite (the default; --mode), append.
 * Identical content is "nochange" and the file is not touched. create_new
 * and overwrite write a temporary file in the target's folder, fsync it
 * and rename it into place (create_new with RENAME_NOREPLACE, so two
 * creators never both win). append writes in place on O_APPEND under an
 * exclusive flock on the file, then fsyncs: two appenders never
 * interleave; a crash mid-append may leave part of that one append.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#ifdef SYS_openat2
#include <linux/openat2.h>
#endif
#include "orch.h"

static const char usage[] =
	"usage: orch-write [--run DIR] [--outputs DIR] [--mode MODE] [--result] [--step S] < records\n"
	"       orch-write --extract [--run DIR] [--outputs DIR] [--mode MODE] [--result] [--step S] < response\n"
	"       orch-write --no-files --result [--step S] < response\n"
	"MODE: create_new, overwrite (default), append.\n";

enum { M_CREATE_NEW, M_OVERWRITE, M_APPEND };
static const char *mode_names[] = {"create_new", "overwrite", "append"};

/* Longest component: the temporary file ".NAME.<16 hex>.tmp" must fit. */
#define MAX_NAME (NAME_MAX - 24)

struct rec {
	char *path;      /* normalized: components joined by '/' */
	char **comp;     /* its components */
	size_t ncomp;
	jv content;      /* string */
	int mode;
};

struct batch {
	struct rec *r;
	size_t n, cap;
	long seen;       /* records read */
	int bad;         /* an invalid record was reported */
	int dflt_mode;
	jv skipped;      /* --extract: blocks not written */
};

/* ---- paths ---- */

static void rec_free(struct rec *r)
{
	free(r->path);
	for (size_t i = 0; i < r->ncomp; i++)
		free(r->comp[i]);
	free(r->comp);
	jv_free(r->content);
}

/* Check a path (len bytes, NULs included) and split it into r; NULL if
 * fine, else why it is refused. "." components are dropped. */
static const char *path_split(const char *p, size_t len, struct rec *r)
{
	r->comp = NULL;
	r->ncomp = 0;
	r->path = NULL;
	if (len == 0)
		return "empty path";
	if (strlen(p) != len)
		return "NUL character in path";
	if (len >= PATH_MAX)
		return "path too long";
	if (p[0] == '/')
		return "absolute path";
	for (const char *s = p; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return "control character in path";
	jv norm = jv_string("");
	const char *why = NULL;
	for (const char *s = p; !why; ) {
		const char *e = strchr(s, '/');
		size_t n = e ? (size_t)(e - s) : strlen(s);
		if (n == 0)
			why = "empty path component";
		else if (n == 2 && s[0] == '.' && s[1] == '.')
			why = "\"..\" in path";
		else if (n > MAX_NAME)
			why = "file name too long";
		else if (!(n == 1 && s[0] == '.')) {
			r->comp = orch_xrealloc(r->comp, (r->ncomp + 1) * sizeof *r->comp);
			r->comp[r->ncomp++] = orch_fmt("%.*s", (int)n, s);
			if (jv_string_length_bytes(jv_copy(norm)) > 0)
				norm = jv_string_append_str(norm, "/");
			norm = jv_string_append_buf(norm, s, (int)n);
		}
		if (!e)
			break;
		s = e + 1;
	}
	if (!why && r->ncomp == 0)
		why = "empty path";
	r->path = orch_xstrdup(jv_string_value(norm));
	jv_free(norm);
	return why;
}

/* Open folder name beneath dfd, never through a symlink. */
static int open_dir_beneath(int dfd, const char *name)
{
#ifdef SYS_openat2
	static int no_openat2 = -1;
	if (no_openat2 < 0) {  /* the tests check the fallback walk too */
		const char *e = getenv("ORCH_NO_OPENAT2");
		no_openat2 = e && *e;
	}
	if (!no_openat2) {
		struct open_how how = {
			.flags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC,
			.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
		};
		int fd = (int)syscall(SYS_openat2, dfd, name, &how, sizeof how);
		if (fd >= 0 || (errno != ENOSYS && errno != EPERM))
			return fd;
		no_openat2 = 1;  /* an old kernel, or a seccomp filter that forbids it */
	}
#endif
	return openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

/* Why name in dfd cannot be walked into (after a failed open). */
static const char *dir_refusal(int dfd, const char *name)
{
	struct stat st;
	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0)
		return S_ISLNK(st.st_mode) ? "a symlink on the path" : "a parent is not a folder";
	return NULL;
}

/* The folder holding r's last component, beneath outfd, creating missing
 * folders (0755) when mk. Returns a descriptor; or -1 with *why set (a
 * refusal), or -1 with *why NULL and errno (an error; ENOENT when !mk and
 * a folder does not exist yet). */
static int open_parent(int outfd, struct rec *r, int mk, const char **why)
{
	*why = NULL;
	int fd = dup(outfd);
	for (size_t i = 0; fd >= 0 && i + 1 < r->ncomp; i++) {
		int nfd = open_dir_beneath(fd, r->comp[i]);
		if (nfd < 0 && errno == ENOENT && mk) {
			if (mkdirat(fd, r->comp[i], 0755) < 0 && errno != EEXIST) {
				close(fd);
				return -1;
			}
			nfd = open_dir_beneath(fd, r->comp[i]);
		}
		if (nfd < 0) {
			int e = errno;
			if (e != ENOENT && e != EACCES)
				*why = dir_refusal(fd, r->comp[i]);
			if (!*why && (e == ELOOP || e == EXDEV || e == ENOTDIR))
				*why = "a symlink on the path";
			close(fd);
			errno = e;
			return -1;
		}
		close(fd);
		fd = nfd;
	}
	return fd;
}

/* ---- files ---- */

/* The target as it is: 0 absent, 1 a regular file (its content in *old,
 * mode in *perm; without old, 2 if it has other hard links), -1 refused
 * (*why) or error (errno). */
static int look(int pfd, const char *name, char **old, size_t *olen, mode_t *perm, const char **why)
{
	struct stat st;
	*why = NULL;
	if (fstatat(pfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : -1;
	if (S_ISLNK(st.st_mode)) {
		*why = "the target is a symlink";
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		*why = "the target is not a regular file";
		return -1;
	}
	if (!old)
		return st.st_nlink > 1 ? 2 : 1;
	int fd = openat(pfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		if (errno == ELOOP)
			*why = "the target is a symlink";
		return -1;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		*why = "the target is not a regular file";
		close(fd);
		return -1;
	}
	*perm = st.st_mode & 0777;  /* never carry set-id bits over */
	*old = orch_read_fd(fd, olen);
	int e = errno;
	close(fd);
	errno = e;
	return *old ? 1 : -1;
}

/* Write a new file atomically, never replacing one: 0, or -1 with errno
 * (EEXIST: someone else created it first). */
static int create_excl(int pfd, const char *name, const char *buf, size_t len)
{
	char tmp[NAME_MAX + 1], rnd[17];
	orch_random_hex(rnd, 8);
	snprintf(tmp, sizeof tmp, ".%s.%s.tmp", name, rnd);
	int fd = openat(pfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0)
		return -1;
	int rc = orch_write_all(fd, buf, len) < 0 || fsync(fd) < 0 ? -1 : 0;  /* 0644 less the umask */
	if (close(fd) < 0)
		rc = -1;
	if (rc == 0) {
		rc = renameat2(pfd, tmp, pfd, name, RENAME_NOREPLACE);
		if (rc < 0 && (errno == EINVAL || errno == ENOSYS))
			rc = linkat(pfd, tmp, pfd, name, 0);  /* a file system without it */
	}
	int e = errno;
	unlinkat(pfd, tmp, 0);
	if (rc == 0)
		fsync(pfd);
	errno = e;
	return rc;
}

static jv result(const char *path, const char *buf, size_t len, int wrote, const char *reason)
{
	char sum[65];
	orch_sha256_hex(buf, len, sum);
	jv r = jv_object();
	r = jv_object_set(r, jv_string("path"), jv_string(path));
	r = jv_object_set(r, jv_string("sha256"), jv_string(sum));
	r = jv_object_set(r, jv_string("size_bytes"), jv_number((double)len));
	r = jv_object_set(r, jv_string("wrote"), jv_bool(wrote));
	r = jv_object_set(r, jv_string("reason"), jv_string(reason));
	return r;
}

/* Append under an exclusive flock; the result covers the whole file. */
static jv do_append(int pfd, struct rec *r, const char *name, const char *buf, size_t len)
{
	const char *reason = "appended";
	int fd = openat(pfd, name, O_RDWR | O_APPEND | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd >= 0)
		reason = "created";
	else if (errno == EEXIST)
		fd = openat(pfd, name, O_RDWR | O_APPEND | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_nlink > 1) {
		const char *why = fd >= 0 && S_ISREG(st.st_mode) ? "the target has other hard links"
			: fd >= 0 ? "the target is not a regular file"
			: errno == ELOOP ? "the target is a symlink" : NULL;
		int e = errno;
		if (fd >= 0)
			close(fd);
		return jv_invalid_with_msg(why ? jv_string_fmt("%s: refused: %s", r->path, why)
		                               : jv_string_fmt("%s: %s", r->path, strerror(e)));
	}
	while (flock(fd, LOCK_EX) < 0 && errno == EINTR)
		;
	int rc = len == 0 ? 0 : orch_write_all(fd, buf, len) < 0 || fsync(fd) < 0 ? -1 : 0;
	int e = errno;
	size_t n = 0;
	char *all = rc == 0 ? orch_read_fd(fd, &n) : NULL;
	flock(fd, LOCK_UN);
	close(fd);
	if (rc < 0 || !all) {
		free(all);
		return jv_invalid_with_msg(jv_string_fmt("cannot append to %s: %s", r->path, strerror(e)));
	}
	if (len == 0 && strcmp(reason, "appended") == 0)
		reason = "nochange";
	jv res = result(r->path, all, n, strcmp(reason, "nochange") != 0, reason);
	free(all);
	return res;
}

/* Write one record; its write result, or invalid with a message. */
static jv do_write(int outfd, struct rec *r)
{
	const char *why, *name = r->comp[r->ncomp - 1];
	const char *buf = jv_string_value(r->content);
	size_t len = (size_t)jv_string_length_bytes(jv_copy(r->content));
	int pfd = open_parent(outfd, r, 1, &why);
	if (pfd < 0)
		return jv_invalid_with_msg(why ? jv_string_fmt("%s: refused: %s", r->path, why)
		                               : jv_string_fmt("%s: %s", r->path, strerror(errno)));
	if (r->mode == M_APPEND) {
		jv res = do_append(pfd, r, name, buf, len);
		close(pfd);
		return res;
	}
	char *old = NULL;
	size_t olen = 0;
	mode_t perm = 0644;
	jv res;
	int st = look(pfd, name, &old, &olen, &perm, &why);
	for (int tries = 0; ; tries++) {
		if (st < 0) {
			res = jv_invalid_with_msg(why ? jv_string_fmt("%s: refused: %s", r->path, why)
			                              : jv_string_fmt("%s: %s", r->path, strerror(errno)));
		} else if (st == 1 && olen == len && memcmp(old, buf, len) == 0) {
			res = result(r->path, buf, len, 0, "nochange");
		} else if (st == 1 && r->mode == M_CREATE_NEW) {
			res = jv_invalid_with_msg(jv_string_fmt("%s: exists with other content (create_new)", r->path));
		} else if (st == 0 && r->mode == M_CREATE_NEW) {
			if (create_excl(pfd, name, buf, len) == 0)
				res = result(r->path, buf, len, 1, "created");
			else if (errno == EEXIST && tries == 0) {  /* lost a race: look again */
				st = look(pfd, name, &old, &olen, &perm, &why);
				continue;
			} else
				res = jv_invalid_with_msg(jv_string_fmt("%s: %s", r->path, strerror(errno)));
		} else if (orch_atomic_write_at(pfd, name, buf, len, perm, 1) == 0) {
			res = result(r->path, buf, len, 1, st == 1 ? "overwritten" : "created");
		} else {
			res = jv_invalid_with_msg(jv_string_fmt("%s: %s", r->path, strerror(errno)));
		}
		break;
	}
	free(old);
	close(pfd);
	return res;
}

/* Before any write: refusals (2) and create_new conflicts (1) that can be
 * seen now. 0 if the record may go ahead. */
static int precheck(int outfd, struct rec *r)
{
	const char *why;
	int pfd = open_parent(outfd, r, 0, &why);
	if (pfd < 0) {
		if (why) {
			orch_err("%s: refused: %s", r->path, why);
			return EX_USAGE;
		}
		return 0;  /* a folder still to be made: nothing there to check */
	}
	char *old = NULL;
	size_t olen = 0;
	mode_t perm;
	const char *buf = jv_string_value(r->content);
	size_t len = (size_t)jv_string_length_bytes(jv_copy(r->content));
	int st = look(pfd, r->comp[r->ncomp - 1], r->mode == M_CREATE_NEW ? &old : NULL,
	              &olen, &perm, &why);
	close(pfd);
	int rc = 0;
	if (st == 2 && r->mode == M_APPEND)  /* appending in place would reach the other names */
		why = "the target has other hard links", st = -1;
	if (st < 0 && why) {
		orch_err("%s: refused: %s", r->path, why);
		rc = EX_USAGE;
	} else if (st == 1 && old && (olen != len || memcmp(old, buf, len) != 0)) {
		orch_err("%s: exists with other content (create_new)", r->path);
		rc = EX_FAIL;
	}
	free(old);
	return rc;
}

/* ---- reading records ---- */

static int mode_parse(const char *s)
{
	for (int i = 0; i < 3; i++)
		if (strcmp(s, mode_names[i]) == 0)
			return i;
	return -1;
}

/* Add a record; 0, or -1 (reported) if its path is refused. */
static int add(struct batch *b, jv path, jv content, int mode, const char *where)
{
	struct rec r = {.content = content, .mode = mode};
	const char *why = path_split(jv_string_value(path), (size_t)jv_string_length_bytes(jv_copy(path)), &r);
	if (why) {
		jv shown = jv_dump_string(path, 0);  /* quoted and escaped: safe to print */
		orch_err("%s: %s: refused: %s", where, jv_string_value(shown), why);
		jv_free(shown);
		rec_free(&r);
		return -1;
	}
	jv_free(path);
	if (b->n == b->cap)
		b->r = orch_xrealloc(b->r, (b->cap = b->cap ? 2 * b->cap : 16) * sizeof *b->r);
	b->r[b->n++] = r;
	return 0;
}

static int take_record(jv v, void *ctx)
{
	struct batch *b = ctx;
	char where[64];
	snprintf(where, sizeof where, "<stdin>: record %ld", ++b->seen);
	if (jv_get_kind(v) != JV_KIND_OBJECT) {
		orch_err("%s: not a write record (an object)", where);
		jv_free(v);
		b->bad = 1;
		return 0;
	}
	jv path = jv_object_get(jv_copy(v), jv_string("path"));
	jv content = jv_object_get(jv_copy(v), jv_string("content"));
	jv m = jv_object_get(v, jv_string("mode"));
	int mode = jv_get_kind(m) == JV_KIND_STRING ? mode_parse(jv_string_value(m))
		: jv_is_valid(m) ? -1 : b->dflt_mode;
	jv_free(m);
	const char *bad = jv_get_kind(path) != JV_KIND_STRING ? "\"path\" must be a string"
		: jv_get_kind(content) != JV_KIND_STRING ? "\"content\" must be a string"
		: mode < 0 ? "\"mode\" must be create_new, overwrite or append" : NULL;
	if (bad) {
		orch_err("%s: %s", where, bad);
		jv_free(path);
		jv_free(content);
		b->bad = 1;
		return 0;
	}
	if (add(b, path, content, mode, where) < 0)
		b->bad = 1;
	return 0;
}

/* ---- --extract: fenced code blocks that name their files ----
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
 * Blocks with no name, blocks never closed (a cut-off answer) and blocks
 * whose name a later block reuses are not written: they are listed under
 * "skipped" in the --result record and noted on stderr. */

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

/* An opening fence: its char, length, indentation and info string. */
static int fence_open(const char *s, size_t n, char *ch, size_t *len, size_t *ind, const char **info, size_t *ilen)
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
	*ch = s[i];
	*len = j - i;
	*ind = i;
	*info = b;
	*ilen = (size_t)(e - b);
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

static jv skip_note(long line, const char *info, size_t ilen, const char *reason, const char *name)
{
	jv s = jv_object();
	s = jv_object_set(s, jv_string("line"), jv_number((double)line));
	s = jv_object_set(s, jv_string("info"), jv_string_sized(info, (int)ilen));
	if (name)
		s = jv_object_set(s, jv_string("path"), jv_string(name));
	s = jv_object_set(s, jv_string("reason"), jv_string(reason));
	return s;
}

/* Scan text into b's records (and b->skipped). */
static void extract(struct batch *b, const char *text, size_t tlen)
{
	jv names = jv_array(), contents = jv_array(), lines = jv_array(), infos = jv_array();
	char *label = NULL;
	int blanks = 0, in = 0;
	char ch = 0;
	size_t flen = 0, ind = 0;
	const char *info = NULL;
	size_t ilen = 0;
	long lineno = 0, start = 0;
	char *name = NULL;
	jv body = jv_invalid();
	for (const char *p = text; p < text + tlen; ) {
		const char *nl = memchr(p, '\n', (size_t)(text + tlen - p));
		const char *e = nl ? nl : text + tlen;
		size_t n = (size_t)(e - p);
		if (n && p[n - 1] == '\r')
			n--;
		lineno++;
		if (in) {
			if (fence_close(p, n, ch, flen)) {
				in = 0;
				names = jv_array_append(names, name ? jv_string(name) : jv_null());
				contents = jv_array_append(contents, body);
				lines = jv_array_append(lines, jv_number((double)start));
				infos = jv_array_append(infos, jv_string_sized(info, (int)ilen));
				free(name);
				name = NULL;
				body = jv_invalid();
			} else {
				size_t k = 0;
				while (k < ind && k < n && p[k] == ' ')
					k++;
				body = jv_string_append_buf(body, p + k, (int)(n - k));
				body = jv_string_append_str(body, "\n");
			}
		} else if (fence_open(p, n, &ch, &flen, &ind, &info, &ilen)) {
			char *is = orch_fmt("%.*s", (int)ilen, info);
			name = name_from_info(is);
			free(is);
			if (!name && label && blanks <= 1)
				name = label, label = NULL;
			free(label);
			label = NULL;
			in = 1;
			start = lineno;
			body = jv_string("");
		} else {
			size_t k = 0;
			while (k < n && is_space(p[k]))
				k++;
			if (k == n)
				blanks++;
			else {
				free(label);
				label = name_from_label(p, n);
				blanks = 0;
			}
		}
		p = nl ? nl + 1 : text + tlen;
	}
	free(label);
	int nb = jv_array_length(jv_copy(names));
	for (int i = 0; i < nb; i++) {
		jv nm = jv_array_get(jv_copy(names), i);
		jv inf = jv_array_get(jv_copy(infos), i);
		long line = (long)jv_number_value(jv_array_get(jv_copy(lines), i));
		const char *reason = NULL;
		if (jv_get_kind(nm) != JV_KIND_STRING)
			reason = "unnamed";
		else
			for (int j = i + 1; j < nb && !reason; j++) {
				jv other = jv_array_get(jv_copy(names), j);
				if (jv_equal(jv_copy(nm), other))
					reason = "superseded";
			}
		if (reason) {
			b->skipped = jv_array_append(b->skipped, skip_note(line, jv_string_value(inf),
				jv_string_length_bytes(jv_copy(inf)),
				reason, jv_get_kind(nm) == JV_KIND_STRING ? jv_string_value(nm) : NULL));
			if (strcmp(reason, "unnamed") == 0)
				orch_err("<stdin>:%ld: code block names no file; not written", line);
			jv_free(nm);
		} else {
			char where[64];
			snprintf(where, sizeof where, "<stdin>:%ld: code block", line);
			if (add(b, nm, jv_array_get(jv_copy(contents), i), b->dflt_mode, where) < 0)
				b->bad = 1;
		}
		jv_free(inf);
	}
	if (in) {
		b->skipped = jv_array_append(b->skipped, skip_note(start, info, ilen, "unclosed", name));
		orch_err("<stdin>:%ld: code block never closed; not written", start);
		jv_free(body);
	}
	free(name);
	jv_free(names);
	jv_free(contents);
	jv_free(lines);
	jv_free(infos);
}

/* ---- main ---- */

static int open_outputs(const char *opt)
{
	char *dir;
	int fl = O_RDONLY | O_DIRECTORY | O_CLOEXEC;
	if (opt)
		dir = orch_xstrdup(opt);
	else if (orch_run_dir()) {
		dir = orch_path(orch_run_dir(), "outputs");
		fl |= O_NOFOLLOW;  /* RUN/outputs itself may not be a planted symlink */
	} else
		orch_die(EX_USAGE, "no outputs folder: give --outputs DIR, --run DIR or ORCH_RUN_DIR");
	int fd = open(dir, fl);
	if (fd < 0 && errno == ENOENT && (opt ? orch_mkdir_p(dir, 0755) : mkdir(dir, 0755)) == 0)
		fd = open(dir, fl);
	if (fd < 0)
		orch_die_sys(errno == ELOOP || errno == ENOTDIR ? EX_USAGE : EX_FAIL,
		             "cannot open outputs folder %s", dir);
	free(dir);
	return fd;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{"extract", no_argument, 0, 'x'},
		{"no-files", no_argument, 0, 'N'},
		{"result", no_argument, 0, 'R'},
		{"step", required_argument, 0, 's'},
		{"mode", required_argument, 0, 'm'},
		{"outputs", required_argument, 0, 'o'},
		ORCH_COMMON_LONGOPTS,
		{0, 0, 0, 0},
	};
	orch_init(argc, argv);
	int c, xtract = 0, want_result = 0, nofiles = 0;
	const char *step = getenv("ORCH_STEP"), *outputs = NULL;
	struct batch b = {.dflt_mode = M_OVERWRITE, .skipped = jv_array()};
	while ((c = getopt_long(argc, argv, "xRs:m:o:h", lo, NULL)) != -1)
		switch (c) {
		case 'x': xtract = 1; break;
		case 'N': xtract = nofiles = 1; break;
		case 'R': want_result = 1; break;
		case 's': step = optarg; break;
		case 'o': outputs = optarg; break;
		case 'm':
			if ((b.dflt_mode = mode_parse(optarg)) < 0)
				orch_die(EX_USAGE, "bad --mode %s (create_new, overwrite or append)", optarg);
			break;
		default:
			if (!orch_common(c, optarg, usage))
				orch_usage(usage);
		}
	if (optind != argc)
		orch_usage(usage);

	jv output = jv_null(), resp = jv_null();
	if (xtract) {
		size_t len;
		char *in = orch_slurp_fp(stdin, &len);
		if (!in)
			orch_die_sys(EX_FAIL, "reading stdin");
		const char *p = in;
		while (p < in + len && strchr(" \t\r\n", *p))
			p++;
		jv v = p < in + len && *p == '{' ? jv_parse_sized(in, (int)len) : jv_invalid();
		if (jv_get_kind(v) == JV_KIND_OBJECT) {
			jv content = jv_object_get(jv_copy(v), jv_string("content"));
			if (jv_get_kind(content) != JV_KIND_STRING)
				orch_die(EX_USAGE, "<stdin>: a response needs a \"content\" string");
			output = content;
			resp = v;
		} else {
			jv_free(v);  /* not JSON: plain markdown */
			output = jv_string_sized(in, (int)len);
		}
		free(in);
		if (!nofiles)
			extract(&b, jv_string_value(output), (size_t)jv_string_length_bytes(jv_copy(output)));
	} else {
		int rc = orch_records(stdin, "<stdin>", take_record, &b);
		if (rc)
			orch_exit(rc);
	}
	if (b.bad)
		orch_exit(EX_USAGE);

	int outfd = b.n ? open_outputs(outputs) : -1, rc = 0;
	for (size_t i = 0; i < b.n; i++) {
		int r = precheck(outfd, &b.r[i]);
		if (r > rc)
			rc = r;
	}
	if (rc)
		orch_exit(rc);

	jv files = jv_array();
	for (size_t i = 0; i < b.n; i++) {
		jv res = do_write(outfd, &b.r[i]);
		if (!jv_is_valid(res)) {
			jv msg = jv_invalid_get_msg(res);
			orch_err("%s", jv_string_value(msg));
			int refused = strstr(jv_string_value(msg), ": refused: ") != NULL;
			if (rc != EX_USAGE)
				rc = refused ? EX_USAGE : EX_FAIL;
			jv_free(msg);
			continue;
		}
		orch_emit(orch_run_dir(), "INFO", "file.written", NULL, jv_copy(res));
		if (!want_result && orch_put(jv_copy(res)) < 0)
			rc = EX_FAIL;
		files = jv_array_append(files, res);
	}
	if (want_result && rc == 0) {
		jv r = jv_object();
		r = jv_object_set(r, jv_string("step"), step ? jv_string(step) : jv_null());
		r = jv_object_set(r, jv_string("output"), output);
		r = jv_object_set(r, jv_string("files"), files);
		jv cache = jv_get_kind(resp) == JV_KIND_OBJECT ?
			jv_object_get(jv_copy(resp), jv_string("cache")) : jv_invalid();
		jv usage_ = jv_get_kind(resp) == JV_KIND_OBJECT ?
			jv_object_get(jv_copy(resp), jv_string("usage")) : jv_invalid();
		if (jv_is_valid(cache))
			r = jv_object_set(r, jv_string("cache"), cache);
		else
			jv_free(cache);
		if (jv_is_valid(usage_))
			r = jv_object_set(r, jv_string("usage"), usage_);
		else
			jv_free(usage_);
		if (jv_array_length(jv_copy(b.skipped)) > 0)
			r = jv_object_set(r, jv_string("skipped"), jv_copy(b.skipped));
		if (orch_put(r) < 0)
			rc = EX_FAIL;
	} else {
		jv_free(output);
		jv_free(files);
	}
	jv_free(resp);
	jv_free(b.skipped);
	for (size_t i = 0; i < b.n; i++)
		rec_free(&b.r[i]);
	free(b.r);
	if (outfd >= 0)
		close(outfd);
	orch_exit(rc);
}
