/* file.c: reading whole files, atomic replacement, mkdir -p. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "orch.h"

char *orch_slurp_fp(FILE *f, size_t *len)
{
	size_t cap = 65536, n = 0, r;
	char *buf = orch_xmalloc(cap);
	while ((r = fread(buf + n, 1, cap - n - 1, f)) > 0) {
		n += r;
		if (cap - n - 1 == 0)
			buf = orch_xrealloc(buf, cap *= 2);
	}
	if (ferror(f)) {
		int e = errno;
		free(buf);
		errno = e ? e : EIO;
		return NULL;
	}
	buf[n] = 0;
	if (len)
		*len = n;
	return buf;
}

char *orch_slurp(const char *path, size_t *len)
{
	if (strcmp(path, "-") == 0)
		return orch_slurp_fp(stdin, len);
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	char *s = orch_slurp_fp(f, len);
	int e = errno;
	fclose(f);
	errno = e;
	return s;
}

int orch_write_all(int fd, const void *buf, size_t n)
{
	const char *p = buf;
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= w;
	}
	return 0;
}

/* The whole of an open file from its start, in one read when it holds
 * still (sized by fstat); NUL-terminated; NULL on error. */
char *orch_read_fd(int fd, size_t *len)
{
	struct stat st;
	size_t cap = fstat(fd, &st) == 0 && st.st_size > 0 ? (size_t)st.st_size + 2 : 65536, n = 0;
	char *buf = orch_xmalloc(cap);
	for (;;) {
		if (n + 1 == cap)
			buf = orch_xrealloc(buf, cap *= 2);
		ssize_t r = pread(fd, buf + n, cap - n - 1, (off_t)n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = errno;
			free(buf);
			errno = e;
			return NULL;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	buf[n] = 0;
	*len = n;
	return buf;
}

int orch_atomic_write_at(int dirfd, const char *name, const void *buf, size_t len,
                         mode_t mode, int sync)
{
	char tmp[4096], rnd[17];
	orch_random_hex(rnd, 8);
	if (snprintf(tmp, sizeof tmp, ".%s.%s.tmp", name, rnd) >= (int)sizeof tmp) {
		errno = ENAMETOOLONG;
		return -1;
	}
	int fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
	if (fd < 0)
		return -1;
	/* a new file: mode less the umask (open did that); a replaced one
	 * keeps its permission bits, never set-id ones */
	struct stat st;
	int keep = fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode);
	if ((keep && fchmod(fd, st.st_mode & 0777) < 0) ||
	    orch_write_all(fd, buf, len) < 0 || (sync && fsync(fd) < 0)) {
		int e = errno;
		close(fd);
		unlinkat(dirfd, tmp, 0);
		errno = e;
		return -1;
	}
	if (close(fd) < 0 || renameat(dirfd, tmp, dirfd, name) < 0) {
		int e = errno;
		unlinkat(dirfd, tmp, 0);
		errno = e;
		return -1;
	}
	return sync && fsync(dirfd) < 0 && errno != EINVAL ? -1 : 0;
}

int orch_atomic_write(const char *path, const void *buf, size_t len, mode_t mode, int sync)
{
	char *d = orch_xstrdup(path), *b = orch_xstrdup(path);
	int dfd = open(dirname(d), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc = -1;
	if (dfd >= 0) {
		rc = orch_atomic_write_at(dfd, basename(b), buf, len, mode, sync);
		int e = errno;
		close(dfd);
		errno = e;
	}
	free(d);
	free(b);
	return rc;
}

int orch_atomic_json(const char *path, jv v, int sync)
{
	jv s = jv_string_append_str(jv_dump_string(v, 0), "\n");
	int rc = orch_atomic_write(path, jv_string_value(s),
	                           jv_string_length_bytes(jv_copy(s)), 0644, sync);
	jv_free(s);
	return rc;
}

int orch_mkdir_p(const char *path, mode_t mode)
{
	char *p = orch_xstrdup(path);
	int rc = 0;
	for (char *s = p + 1; ; s++) {
		if (*s == '/' || *s == 0) {
			char c = *s;
			*s = 0;
			if (mkdir(p, mode) < 0 && errno != EEXIST) {
				rc = -1;
				break;
			}
			*s = c;
			if (!c)
				break;
		}
	}
	if (rc == 0) {
		struct stat st;
		if (stat(path, &st) < 0)
			rc = -1;
		else if (!S_ISDIR(st.st_mode)) {
			errno = ENOTDIR;
			rc = -1;
		}
	}
	int e = errno;
	free(p);
	errno = e;
	return rc;
}

int orch_lines(FILE *f, orch_line_fn fn, void *ctx)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	long lineno = 0;
	int rc = 0;
	while (rc == 0 && (n = getline(&line, &cap, f)) >= 0) {
		if (n > 0 && line[n - 1] == '\n')
			line[--n] = 0;
		rc = fn(line, (size_t)n, ++lineno, ctx);
	}
	free(line);
	return rc;
}
