/* sweep.c: temporary files a killed writer left in the run folder.
 *
 * orch's atomic writes (orch-write's, lib/file.c's for the cache and the
 * manifest) write ".<name>.<16 hex digits>.tmp" in the target's folder,
 * then rename it. A writer killed in between (kill -9) leaves it there.
 * At the start of a job, the lock held and any orphaned steps stopped
 * (orphan.c), no writer of this run is alive: such names are removed from
 * outputs/ (all its folders, never following a symlink), .cache/ and the
 * run folder itself. A cache shared through $ORCH_CACHE_DIR is left to
 * orch-cache prune. Assumes run.dir is open and locked.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "orch.h"
#include "sched.h"

/* ".<name>.<16 hex>.tmp", name not empty */
static int temp_name(const char *n)
{
	size_t l = strlen(n);
	if (l < 23 || n[0] != '.' || strcmp(n + l - 4, ".tmp") != 0 || n[l - 21] != '.')
		return 0;
	for (const char *h = n + l - 20; h < n + l - 4; h++)
		if (!strchr("0123456789abcdef", *h) || !*h)
			return 0;
	return 1;
}

static int is_dir(int dfd, struct dirent *de)
{
	struct stat st;
	if (de->d_type != DT_UNKNOWN)
		return de->d_type == DT_DIR;
	return fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
}

static int is_file(int dfd, struct dirent *de)
{
	struct stat st;
	if (de->d_type != DT_UNKNOWN)
		return de->d_type == DT_REG;
	return fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode);
}

/* Remove the temporary files in dfd (consumed), and in its folders when
 * depth > 0. */
static void sweep_dir(int dfd, int depth)
{
	DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
	if (!d) {
		if (dfd >= 0)
			close(dfd);
		return;
	}
	struct dirent *de;
	while ((de = readdir(d))) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (depth > 0 && is_dir(dirfd(d), de))
			sweep_dir(openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
			                 O_CLOEXEC), depth - 1);
		else if (temp_name(de->d_name) && is_file(dirfd(d), de) &&
		         unlinkat(dirfd(d), de->d_name, 0) < 0)
			orch_err_sys("cannot remove %s", de->d_name);
	}
	closedir(d);
}

static void sweep(const char *sub, int depth)
{
	char *path = orch_path(run.dir, sub);
	sweep_dir(open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC), depth);
	free(path);
}

void sweep_temps(void)
{
	sweep("outputs", 256);
	sweep(".cache", 0);
	sweep(".", 0);
}
