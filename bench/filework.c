/* filework DIR N [link]: the file work a cached fan-out instance needs by
 * orch-run(5) and nothing else, N times over, in DIR (made): its cache
 * entry read (open, read, close), its artifact written atomically and
 * its three event lines (step.started, cache.hit, step.succeeded)
 * appended to events.jsonl, each with one write(2). The artifact is a
 * temporary file renamed into artifacts/, or with "link" a file with no
 * name (O_TMPFILE) linked in, as orch-sched stores a batched answer. No
 * JSON, no processes, no lock: what no orch could do with less, beside
 * which bench/fanout.sh shows orch's own cached re-run. The entries it
 * reads are made first, outside the time that counts (filework prints
 * the seconds the loop took). */
#define _GNU_SOURCE  /* O_TMPFILE */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static void die(const char *what)
{
	perror(what);
	exit(1);
}

static void put(int dir, const char *name, const char *text, size_t n)
{
	int fd = openat(dir, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, text, n) != (ssize_t)n || close(fd) < 0)
		die(name);
}

int main(int argc, char **argv)
{
	if (argc < 3 || argc > 4 || (argc == 4 && strcmp(argv[3], "link")))
		return fprintf(stderr, "usage: filework DIR N [link]\n"), 2;
	int n = atoi(argv[2]), link = argc == 4;
	if (mkdir(argv[1], 0700) < 0 || chdir(argv[1]) < 0 || mkdir("artifacts", 0700) < 0 ||
	    mkdir("cache", 0700) < 0)
		die(argv[1]);
	int art = open("artifacts", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int cache = open("cache", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int ev = open("events.jsonl", O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (art < 0 || cache < 0 || ev < 0)
		die("open");
	/* sizes as a 10,000-item echo fan-out's: entry 560 B, artifact 110 B,
	 * events 165, 185 and 320 B */
	char entry[560], result[110], e1[165], e2[185], e3[320], name[96], tmp[64], buf[4096];
	memset(entry, 'c', sizeof entry);
	memset(result, 'r', sizeof result);
	memset(e1, 'e', sizeof e1), e1[sizeof e1 - 1] = '\n';
	memset(e2, 'e', sizeof e2), e2[sizeof e2 - 1] = '\n';
	memset(e3, 'e', sizeof e3), e3[sizeof e3 - 1] = '\n';
	for (int i = 0; i < n; i++) {
		snprintf(name, sizeof name, "%064x.json", i);
		put(cache, name, entry, sizeof entry);
	}
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < n; i++) {
		if (write(ev, e1, sizeof e1) != sizeof e1)
			die("events.jsonl");
		snprintf(name, sizeof name, "%064x.json", i);
		int fd = openat(cache, name, O_RDONLY | O_CLOEXEC);
		if (fd < 0 || read(fd, buf, sizeof buf) != sizeof entry || close(fd) < 0)
			die(name);
		if (write(ev, e2, sizeof e2) != sizeof e2)
			die("events.jsonl");
		snprintf(tmp, sizeof tmp, ".s[%d].out", i);
		snprintf(name, sizeof name, "s[%d].json", i);
		if (link) {
			int fd = openat(art, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0644);
			snprintf(tmp, sizeof tmp, "/proc/self/fd/%d", fd);
			if (fd < 0 || write(fd, result, sizeof result) != sizeof result ||
			    linkat(AT_FDCWD, tmp, art, name, AT_SYMLINK_FOLLOW) < 0 || close(fd) < 0)
				die(name);
		} else {
			put(art, tmp, result, sizeof result);
			if (renameat(art, tmp, art, name) < 0)
				die(name);
		}
		if (write(ev, e3, sizeof e3) != sizeof e3)
			die("events.jsonl");
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("%.3f\n", (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	return 0;
}
