/* planread PLAN: the plan lines orch-plan writes for a fan-out, each
 * parsed by libjq (jv_parse_sized) and freed, and nothing else: the least
 * JSON work orch-sched must do per instance before it runs anything,
 * beside which bench/fanout.sh shows the floor. The lines are read into
 * memory first, outside the time that counts (planread prints the
 * seconds the loop took). */
#include <jq.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int main(int argc, char **argv)
{
	FILE *f = argc == 2 ? fopen(argv[1], "r") : NULL;
	if (!f)
		return fprintf(stderr, "usage: planread PLAN\n"), 2;
	struct { char *p; size_t n; } *line = NULL;
	size_t n = 0, cap = 0, bufcap = 0;
	char *buf = NULL;
	ssize_t len;
	while ((len = getline(&buf, &bufcap, f)) > 0) {
		if (n == cap && !(line = realloc(line, (cap = cap ? 2 * cap : 1024) * sizeof *line)))
			return perror("planread"), 1;
		if (!(line[n].p = malloc((size_t)len)))
			return perror("planread"), 1;
		memcpy(line[n].p, buf, (size_t)len);
		line[n++].n = (size_t)len;
	}
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (size_t i = 0; i < n; i++) {
		jv v = jv_parse_sized(line[i].p, (int)line[i].n);
		if (!jv_is_valid(v))
			return fprintf(stderr, "planread: line %zu: not JSON\n", i + 1), 1;
		jv_free(v);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("%.3f\n", (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	return 0;
}
