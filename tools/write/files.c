/* files.c: one record written into its folder, or checked before any is.
 *
 * Modes (CONTRACT §7): create_new, overwrite, append. Identical content is
 * "nochange" and the file is not touched. create_new and overwrite write a
 * temporary file in the target's folder, fsync it and rename it into
 * place (create_new with RENAME_NOREPLACE, so two creators never both
 * win). append writes in place on O_APPEND under an exclusive flock on the
 * file, then fsyncs: two appenders never interleave; a crash mid-append
 * may leave part of that one append.
 *
 * What became of a record is a value (struct outcome): a refusal (an enum
 * of reasons), a failure (a message), or the write result. Nothing here
 * prints or emits; orch-write.c reports.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include "orch.h"
#include "write.h"

static struct outcome refused(enum refusal why)
{
	return (struct outcome){.refused = why, .result = jv_invalid()};
}

/* Failed with errno e (already saved by the caller). */
static struct outcome failed(const char *path, int e)
{
	return (struct outcome){.failed = orch_fmt("%s: %s", path, strerror(e)), .result = jv_invalid()};
}

static struct outcome written(const char *path, const char *buf, size_t len, int wrote, const char *reason)
{
	char sum[65];
	orch_sha256_hex(buf, len, sum);
	jv r = jv_object();
	r = jv_object_set(r, jv_string("path"), jv_string(path));
	r = jv_object_set(r, jv_string("sha256"), jv_string(sum));
	r = jv_object_set(r, jv_string("size_bytes"), jv_number((double)len));
	r = jv_object_set(r, jv_string("wrote"), jv_bool(wrote));
	r = jv_object_set(r, jv_string("reason"), jv_string(reason));
	return (struct outcome){.result = r};
}

/* The target as it is: 0 absent, 1 a regular file (its content in *old,
 * mode in *perm; without old, 2 if it has other hard links), -1 refused
 * (*why) or error (errno). */
static int look(int pfd, const char *name, char **old, size_t *olen, mode_t *perm, enum refusal *why)
{
	struct stat st;
	*why = R_NONE;
	if (fstatat(pfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : -1;
	if (!S_ISREG(st.st_mode)) {
		*why = S_ISLNK(st.st_mode) ? R_TARGET_SYMLINK : R_TARGET_NOT_FILE;
		return -1;
	}
	if (!old)
		return st.st_nlink > 1 ? 2 : 1;
	int fd = openat(pfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		if (errno == ELOOP)
			*why = R_TARGET_SYMLINK;
		return -1;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		*why = R_TARGET_NOT_FILE;
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

/* Open name for appending: a descriptor of a regular file with one link
 * (*created if it is new), or -1 with *out set. */
static int open_append(int pfd, const struct rec *r, const char *name, int *created, struct outcome *out)
{
	int fd = openat(pfd, name, O_RDWR | O_APPEND | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	*created = fd >= 0;
	if (fd < 0 && errno == EEXIST)
		fd = openat(pfd, name, O_RDWR | O_APPEND | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	struct stat st;
	int seen = fd >= 0 && fstat(fd, &st) == 0;
	if (seen && S_ISREG(st.st_mode) && st.st_nlink == 1)
		return fd;
	int e = errno;
	*out = seen ? refused(S_ISREG(st.st_mode) ? R_HARD_LINKS : R_TARGET_NOT_FILE)
		: e == ELOOP ? refused(R_TARGET_SYMLINK) : failed(r->path, e);
	if (fd >= 0)
		close(fd);
	return -1;
}

/* Append under an exclusive flock; the result covers the whole file. */
static struct outcome do_append(int pfd, const struct rec *r, const char *name, const char *buf, size_t len)
{
	struct outcome out;
	int created, fd = open_append(pfd, r, name, &created, &out);
	if (fd < 0)
		return out;
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
		return (struct outcome){.failed = orch_fmt("cannot append to %s: %s", r->path, strerror(e)),
		                        .result = jv_invalid()};
	}
	const char *reason = created ? "created" : len == 0 ? "nochange" : "appended";
	out = written(r->path, all, n, strcmp(reason, "nochange") != 0, reason);
	free(all);
	return out;
}

/* create_new or overwrite, the target seen by look() as st. */
static struct outcome replace(int pfd, const struct rec *r, const char *name, const char *buf, size_t len)
{
	char *old = NULL;
	size_t olen = 0;
	mode_t perm = 0644;
	enum refusal why;
	struct outcome out;
	int st = look(pfd, name, &old, &olen, &perm, &why);
	for (int tries = 0; ; tries++) {
		if (st < 0)
			out = why ? refused(why) : failed(r->path, errno);
		else if (st == 1 && olen == len && memcmp(old, buf, len) == 0)
			out = written(r->path, buf, len, 0, "nochange");
		else if (st == 1 && r->mode == M_CREATE_NEW)
			out = (struct outcome){.failed = orch_fmt("%s: exists with other content (create_new)", r->path),
			                       .result = jv_invalid()};
		else if (st == 0 && r->mode == M_CREATE_NEW) {
			if (create_excl(pfd, name, buf, len) == 0)
				out = written(r->path, buf, len, 1, "created");
			else if (errno == EEXIST && tries == 0) {  /* lost a race: look again */
				st = look(pfd, name, &old, &olen, &perm, &why);
				continue;
			} else
				out = failed(r->path, errno);
		} else if (orch_atomic_write_at(pfd, name, buf, len, perm, 1) == 0)
			out = written(r->path, buf, len, 1, st == 1 ? "overwritten" : "created");
		else
			out = failed(r->path, errno);
		break;
	}
	free(old);
	return out;
}

struct outcome write_rec(int outfd, const struct rec *r)
{
	const char *name = r->comp[r->ncomp - 1];
	const char *buf = jv_string_value(r->content);
	size_t len = (size_t)jv_string_length_bytes(jv_copy(r->content));
	enum refusal why;
	int pfd = open_parent(outfd, r, 1, &why);
	if (pfd < 0)
		return why ? refused(why) : failed(r->path, errno);
	struct outcome out = r->mode == M_APPEND ? do_append(pfd, r, name, buf, len)
		: replace(pfd, r, name, buf, len);
	close(pfd);
	return out;
}

struct outcome precheck(int outfd, const struct rec *r)
{
	enum refusal why;
	int pfd = open_parent(outfd, r, 0, &why);
	if (pfd < 0)  /* else a folder still to be made: nothing there to check */
		return refused(why);
	char *old = NULL;
	size_t olen = 0;
	mode_t perm;
	const char *buf = jv_string_value(r->content);
	size_t len = (size_t)jv_string_length_bytes(jv_copy(r->content));
	int st = look(pfd, r->comp[r->ncomp - 1], r->mode == M_CREATE_NEW ? &old : NULL,
	              &olen, &perm, &why);
	close(pfd);
	struct outcome out = refused(R_NONE);
	if (st == 2 && r->mode == M_APPEND)  /* appending in place would reach the other names */
		out = refused(R_HARD_LINKS);
	else if (st < 0 && why)
		out = refused(why);
	else if (st == 1 && old && (olen != len || memcmp(old, buf, len) != 0))
		out.failed = orch_fmt("%s: exists with other content (create_new)", r->path);
	free(old);
	return out;
}
