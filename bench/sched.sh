#!/bin/sh
# bench/sched.sh BINDIR: orch-sched against ninja, make and a bare
# posix_spawn loop (the floor), on N no-op steps (`true`), independent and
# chained, at -j2, all measured in the same run. Prints wall time, CPU per
# step (the runner and all it ran), own CPU per step (the runner alone,
# from a preloaded getrusage) and peak RSS. Never fails a build:
# read the numbers. SIZES overrides the step counts; a run over LIMIT
# seconds (default 40) is cut and printed as such (make's chain is
# quadratic).
set -u
bin=${1:-build/bin}
bin=$(cd "$bin" && pwd) || exit 2
SIZES=${SIZES:-2000 10000}
LIMIT=${LIMIT:-40}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/orch-bench-sched.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT INT TERM
shm=
if [ -d /dev/shm ] && [ -w /dev/shm ]; then
	shm=$(mktemp -d /dev/shm/orch-bench-sched.XXXXXX) || shm=
fi
trap 'rm -rf "$tmp" ${shm:+"$shm"}' EXIT INT TERM
cd "$tmp" || exit 2
export ORCH_RUNS="$tmp/runs"

# The floor: run N commands, at most J at once; chained: one after another.
cat > floor.c <<'EOF'
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
extern char **environ;
int main(int argc, char **argv)
{
	int n = atoi(argv[1]), j = strcmp(argv[2], "chain") == 0 ? 1 : 2, running = 0;
	char *av[] = {argv[3], NULL};
	for (int i = 0; i < n || running > 0; ) {
		while (i < n && running < j) {
			pid_t pid;
			if (posix_spawn(&pid, argv[3], NULL, NULL, av, environ) != 0)
				return 1;
			running++, i++;
		}
		int st;
		if (wait(&st) > 0)
			running--;
	}
	return 0;
}
EOF
cc -O2 -o floor floor.c || exit 2
tru=$(command -v true)
case $tru in /*) ;; *) tru=/bin/true ;; esac
mkrusage() {  # a tiny wait4 wrapper: wall, CPU of the tree, peak RSS
	cat > ru.c <<'EOF'
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
int main(int argc, char **argv)
{
	struct timespec a, b;
	struct rusage ru;
	int st;
	(void)argc;
	clock_gettime(CLOCK_MONOTONIC, &a);
	pid_t pid = fork();
	if (pid == 0) {
		const char *pre = getenv("RU_PRELOAD");  /* for the runner, not for us */
		if (pre && *pre)
			setenv("LD_PRELOAD", pre, 1);
		execvp(argv[1], argv + 1);
		_exit(127);
	}
	wait4(pid, &st, 0, &ru);
	clock_gettime(CLOCK_MONOTONIC, &b);
	fprintf(stderr, "%.3f %.3f %ld %d\n", b.tv_sec - a.tv_sec + (b.tv_nsec - a.tv_nsec) / 1e9,
	        ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6,
	        ru.ru_maxrss, WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
	return 0;
}
EOF
	cc -O2 -o ru ru.c
}
mkrusage || exit 2
# The runner's own CPU, apart from its children's: a preloaded destructor
# writes getrusage(RUSAGE_SELF); its constructor drops LD_PRELOAD from the
# environment, so the commands it runs do not load it.
cat > self.c <<'EOF'
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
static char path[4096];
__attribute__((constructor)) static void start(void)
{
	const char *p = getenv("SELF_CPU_FILE");
	if (p)
		snprintf(path, sizeof path, "%s", p);
	unsetenv("LD_PRELOAD");
	unsetenv("SELF_CPU_FILE");
}
__attribute__((destructor)) static void report(void)
{
	struct rusage ru;
	FILE *f;
	if (!*path || getrusage(RUSAGE_SELF, &ru) < 0 || !(f = fopen(path, "w")))
		return;
	fprintf(f, "%.6f\n", ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	        ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6);
	fclose(f);
}
EOF
selfso=
cc -O2 -shared -fPIC -o self.so self.c 2>/dev/null && selfso=$tmp/self.so

have() { command -v "$1" >/dev/null 2>&1; }

# measure NAME N SHAPE CMD...: one line; remembers the floor's CPU
measure() {
	name=$1 n=$2 shape=$3
	shift 3
	rm -f self.cpu
	r=$(SELF_CPU_FILE=$tmp/self.cpu RU_PRELOAD=$selfso timeout "$LIMIT" ./ru "$@" 2>&1 >/dev/null | tail -n 1)
	own=$(cat self.cpu 2>/dev/null) || own=-1
	set -- $r
	if [ $# -ne 4 ] || [ "$4" -ne 0 ]; then
		printf '%-11s %6s %-6s  %s\n' "$name" "$n" "$shape" "did not finish in ${LIMIT}s (or failed: $r)"
		return
	fi
	[ "$name" = floor ] && floor_wall=$1
	awk -v name="$name" -v n="$n" -v shape="$shape" -v w="$1" -v c="$2" -v rss="$3" -v own="$own" \
		-v fw="$floor_wall" 'BEGIN {
		printf "%-11s %6d %-6s %8.2f s %6.2fx %8.0f us %11s %8.1f MB\n",
		       name, n, shape, w, (fw > 0 ? w / fw : 0), c / n * 1e6,
		       own < 0 ? "?" : sprintf("%.0f us", own / n * 1e6), rss / 1024 }'
}

printf '%-11s %6s %-6s %10s %7s %11s %11s %11s\n' runner steps shape wall "/floor" "cpu/step" "own/step" "peak RSS"
first=${SIZES%% *}
for n in $SIZES; do
	for shape in indep chain; do
		rm -f build.ninja .ninja_log Makefile
		# the same graph for everyone
		awk -v n="$n" -v shape="$shape" 'BEGIN {
			for (i = 0; i < n; i++)
				printf "{\"step\":\"s%d\",\"needs\":[%s],\"spec\":{\"run\":\"true\"},\"job\":{\"job_id\":\"b\",\"concurrency\":2}}\n",
				       i, (shape == "chain" && i > 0) ? "\"s" i - 1 "\"" : "" }' > plan
		awk -v n="$n" -v shape="$shape" 'BEGIN {
			print "rule t\n  command = true"
			for (i = 0; i < n; i++) {
				printf "build s%d: t", i
				if (shape == "chain" && i > 0) printf " s%d", i - 1
				printf "\n"; all = all " s" i
			}
			print "default" all }' > build.ninja
		awk -v n="$n" -v shape="$shape" 'BEGIN {
			printf "all:"; for (i = 0; i < n; i++) printf " s%d", i; printf "\n"
			for (i = 0; i < n; i++) {
				printf "s%d:", i
				if (shape == "chain" && i > 0) printf " s%d", i - 1
				printf "\n\t@true\n"
			}
			print ".PHONY: all" }' > Makefile
		floor_wall=0
		measure floor "$n" "$shape" ./floor "$n" "$shape" "$tru"
		# on tmpfs: what the scheduler costs apart from the disk (its own
		# CPU per step should stay flat as N grows)
		[ -n "$shm" ] &&
			ORCH_RUN_DIR=$shm/$n-$shape measure sched/tmpfs "$n" "$shape" "$bin/orch-sched" -q -j2 plan
		# on disk, as runs are: each step creates a log and an artifact
		# (at the first size only, to keep the script within two minutes;
		# run folders are kept until the end: deleting thousands of files
		# just before a run makes creating files slower on some file systems)
		[ -z "$shm" ] || [ "$n" = "$first" ] &&
			ORCH_RUN_DIR=$tmp/runs/$n-$shape measure sched/disk "$n" "$shape" "$bin/orch-sched" -q -j2 plan
		have ninja && measure ninja "$n" "$shape" ninja -j2
		have make && measure make "$n" "$shape" make -s -j2
	done
done
echo "(/floor: 1.00 is the bare posix_spawn loop; cpu/step: the runner and all it ran;"
echo " own/step: the runner alone (its getrusage(RUSAGE_SELF) at exit);"
echo " orch-sched writes a log and an artifact per step, ninja and make nothing:"
echo " sched/tmpfs keeps its run folder on tmpfs, sched/disk in \$TMPDIR)"
