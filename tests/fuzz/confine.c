/* libFuzzer harness for orch-write's path check and walk (tools/write/
 * confine.c, linked as orch-write links it): each input is a path, split
 * and walked beneath an outputs folder that holds folders, a file and
 * symlinks pointing out of it. The walk must refuse or end inside the
 * folder, wherever the kernel says its descriptor is; a path split must
 * give components that are names, joined as its path.
 *
 * Byte 0: bit 0 creates missing folders (in a fresh subfolder, removed
 * after). The walk without openat2 is fuzzed (ORCH_NO_OPENAT2): it is
 * orch's own; openat2's is the kernel's. */
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "../../tools/write/write.h"

static char base[] = "/tmp/orch-fuzz-confine-XXXXXX";
static char root[PATH_MAX];  /* base/outputs, as the kernel names it */
static int outfd = -1;

static int remove_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	(void)st, (void)flag, (void)f;
	return remove(p);
}

static void remove_base(void)
{
	nftw(base, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc, (void)argv;
	if (!mkdtemp(base))
		abort();
	atexit(remove_base);
	char *out = orch_path(base, "outputs");
	if (mkdir(out, 0700) < 0 || !realpath(out, root) || (outfd = open(root, O_RDONLY | O_DIRECTORY)) < 0)
		abort();
	free(out);
	int fd;
	if (mkdirat(outfd, "a", 0700) < 0 || mkdirat(outfd, "a/b", 0700) < 0 ||
	    mkdirat(outfd, "../secret", 0700) < 0 || symlinkat("/", outfd, "ln") < 0 ||
	    symlinkat("..", outfd, "a/up") < 0 || symlinkat("../../../secret", outfd, "a/b/away") < 0 ||
	    (fd = openat(outfd, "f", O_CREAT | O_WRONLY, 0600)) < 0 || close(fd) < 0)
		abort();
	setenv("ORCH_NO_OPENAT2", "1", 1);
	return 0;
}

/* A split path: names (no '/', not "", "." or "..", no control
 * character), joined by '/' as its path. */
static void check_split(const struct rec *r)
{
	jv joined = jv_string("");
	if (r->ncomp == 0)
		abort();
	for (size_t i = 0; i < r->ncomp; i++) {
		const char *c = r->comp[i];
		if (!*c || strchr(c, '/') || strcmp(c, ".") == 0 || strcmp(c, "..") == 0)
			abort();
		for (const char *p = c; *p; p++)
			if ((unsigned char)*p < 0x20 || *p == 0x7f)
				abort();
		joined = jv_string_append_str(joined, i ? "/" : "");
		joined = jv_string_append_str(joined, c);
	}
	if (strcmp(jv_string_value(joined), r->path) != 0)
		abort();
	jv_free(joined);
}

/* fd is a folder at or beneath base, as /proc says. */
static void check_inside(int fd, const char *base)
{
	char link[64], at[PATH_MAX];
	snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
	ssize_t n = readlink(link, at, sizeof at - 1);
	if (n < 0)
		abort();
	at[n] = 0;
	size_t k = strlen(base);
	if (strncmp(at, base, k) != 0 || (at[k] != 0 && at[k] != '/')) {
		fprintf(stderr, "walked out of %s to %s\n", base, at);
		abort();
	}
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	if (size < 1)
		return 0;
	int mk = data[0] & 1;
	char *path = orch_xmalloc(size);  /* NUL-ended, NULs inside kept */
	memcpy(path, data + 1, size - 1);
	path[size - 1] = 0;
	struct rec r = {.content = jv_null()};
	enum refusal why = path_split(path, size - 1, &r);
	if (!why) {
		check_split(&r);
		int base = outfd;
		char fresh[PATH_MAX];
		snprintf(fresh, sizeof fresh, "%s/new", root);
		if (mk && (mkdir(fresh, 0700) < 0 || (base = open(fresh, O_RDONLY | O_DIRECTORY)) < 0))
			abort();
		int fd = open_parent(base, &r, mk, &why);
		if (fd >= 0) {
			check_inside(fd, mk ? fresh : root);
			close(fd);
		}
		if (mk) {
			close(base);
			nftw(fresh, remove_one, 16, FTW_DEPTH | FTW_PHYS);
		}
	}
	rec_free(&r);
	free(path);
	return 0;
}
