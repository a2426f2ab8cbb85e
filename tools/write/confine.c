/* confine.c: orch-write's confinement, a security boundary enforced by the
 * kernel, not by string checks alone.
 *
 * After the syntactic checks (relative, no "..", no control character, no
 * empty or over-long component), every component is opened relative to a
 * descriptor of the outputs folder, one at a time, with O_NOFOLLOW (and
 * openat2 RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS where the kernel has it). A
 * symlink anywhere on the path is refused, wherever it points; so is a
 * parent that is not a folder. (files.c refuses a target that is not a
 * regular file.)
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#ifdef SYS_openat2
#include <linux/openat2.h>
#endif
#include "orch.h"
#include "write.h"

const char *const refusal_text[] = {
	[R_NONE] = "not refused",
	[R_EMPTY_PATH] = "empty path",
	[R_NUL] = "NUL character in path",
	[R_PATH_TOO_LONG] = "path too long",
	[R_ABSOLUTE] = "absolute path",
	[R_CONTROL_CHAR] = "control character in path",
	[R_EMPTY_COMPONENT] = "empty path component",
	[R_DOTDOT] = "\"..\" in path",
	[R_NAME_TOO_LONG] = "file name too long",
	[R_SYMLINK_ON_PATH] = "a symlink on the path",
	[R_PARENT_NOT_FOLDER] = "a parent is not a folder",
	[R_TARGET_SYMLINK] = "the target is a symlink",
	[R_TARGET_NOT_FILE] = "the target is not a regular file",
	[R_HARD_LINKS] = "the target has other hard links",
};

/* Longest component: the temporary file ".NAME.<16 hex>.tmp" must fit. */
#define MAX_NAME (NAME_MAX - 24)

void rec_free(struct rec *r)
{
	free(r->path);
	for (size_t i = 0; i < r->ncomp; i++)
		free(r->comp[i]);
	free(r->comp);
	jv_free(r->content);
}

/* The refusals a whole path can earn before it is split. */
static enum refusal path_refusal(const char *p, size_t len)
{
	if (len == 0)
		return R_EMPTY_PATH;
	if (strlen(p) != len)
		return R_NUL;
	if (len >= PATH_MAX)
		return R_PATH_TOO_LONG;
	if (p[0] == '/')
		return R_ABSOLUTE;
	for (const char *s = p; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return R_CONTROL_CHAR;
	return R_NONE;
}

/* The refusal a component s[0..n) earns, if any. */
static enum refusal component_refusal(const char *s, size_t n)
{
	if (n == 0)
		return R_EMPTY_COMPONENT;
	if (n == 2 && s[0] == '.' && s[1] == '.')
		return R_DOTDOT;
	if (n > MAX_NAME)
		return R_NAME_TOO_LONG;
	return R_NONE;
}

enum refusal path_split(const char *p, size_t len, struct rec *r)
{
	r->comp = NULL;
	r->ncomp = 0;
	r->path = NULL;
	enum refusal why = path_refusal(p, len);
	if (why)
		return why;
	jv norm = jv_string("");
	for (const char *s = p; !why; ) {
		const char *e = strchr(s, '/');
		size_t n = e ? (size_t)(e - s) : strlen(s);
		why = component_refusal(s, n);
		if (!why && !(n == 1 && s[0] == '.')) {
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
		why = R_EMPTY_PATH;
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

/* Why name in dfd cannot be walked into, after an open that failed with
 * errno e; R_NONE when that is an error, not a refusal. */
static enum refusal dir_refusal(int dfd, const char *name, int e)
{
	struct stat st;
	if (e == ENOENT || e == EACCES)
		return R_NONE;
	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0)
		return S_ISLNK(st.st_mode) ? R_SYMLINK_ON_PATH : R_PARENT_NOT_FOLDER;
	return e == ELOOP || e == EXDEV || e == ENOTDIR ? R_SYMLINK_ON_PATH : R_NONE;
}

int open_parent(int outfd, const struct rec *r, int mk, enum refusal *why)
{
	*why = R_NONE;
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
			*why = dir_refusal(fd, r->comp[i], e);
			close(fd);
			errno = e;
			return -1;
		}
		close(fd);
		fd = nfd;
	}
	return fd;
}
