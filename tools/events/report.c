/* report.c: the reports' own command line, apart from orch-events' other
 * commands (which keep theirs in tools/orch-events.c):
 *
 *   cost [--by step|model|provider|day|job] [--json] [RUN...]
 *   metrics [RUN...]
 *   timeline [--svg] [RUN]
 *
 * RUN operands are run folders; without them, the one --run or
 * $ORCH_RUN_DIR names. */
#include <getopt.h>
#include <string.h>
#include "events.h"

enum { R_COST, R_METRICS, R_TIMELINE, R_NONE };
static const char *const reports[] = {"cost", "metrics", "timeline"};

int events_command_at(int argc, char **argv)
{
	static const char *const with_arg[] = {"--run", "--step", "--level", "--data", "--type",
	                                        "--since", "--jq", "--by", "--sqlite", NULL};
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			return i + 1 < argc ? i + 1 : -1;
		if (argv[i][0] != '-' || !argv[i][1])
			return i;
		for (const char *const *w = with_arg; *w; w++)
			if (strcmp(argv[i], *w) == 0) {
				i++;
				break;
			}
	}
	return -1;
}

static int which_report(int argc, char **argv)
{
	int at = events_command_at(argc, argv);
	for (int r = 0; at > 0 && r < R_NONE; r++)
		if (strcmp(argv[at], reports[r]) == 0)
			return r;
	return R_NONE;
}

static void parse_opts(int argc, char **argv, int r, struct report_opts *o, const char *usage)
{
	static const struct option longopts[] = {
		{"by", required_argument, 0, 'b'},
		{"json", no_argument, 0, 'j'},
		{"svg", no_argument, 0, 's'},
		ORCH_COMMON_LONGOPTS,
		{0, 0, 0, 0},
	};
	int c;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		if (c == 'b' && r == R_COST)
			o->by = optarg;
		else if (c == 'j' && r == R_COST)
			o->json = 1;
		else if (c == 's' && r == R_TIMELINE)
			o->svg = 1;
		else if (c == 'b' || c == 'j' || c == 's')
			orch_die(EX_USAGE, "%s takes no %s", reports[r], argv[optind - 1]);
		else
			orch_common(c, optarg, usage);
	}
}

char **events_runs(int argc, char **argv, int *n)
{
	static char *one[1];
	*n = argc - optind - 1;
	if (*n > 0)
		return argv + optind + 1;  /* after the command word */
	if (!(one[0] = (char *)orch_run_dir()))
		orch_die(EX_USAGE, "no run folder: give RUN, --run DIR or set ORCH_RUN_DIR");
	*n = 1;
	return one;
}

int events_report(int argc, char **argv, const char *usage)
{
	int r = which_report(argc, argv);
	if (r == R_NONE)
		return -1;
	struct report_opts o = {0};
	parse_opts(argc, argv, r, &o, usage);
	int n;
	char **runs = events_runs(argc, argv, &n);
	if (r == R_COST)
		return cmd_cost(&o, runs, n);
	if (r == R_METRICS)
		return cmd_metrics(runs, n);
	if (n > 1)
		orch_die(EX_USAGE, "timeline draws one run, not %d", n);
	return cmd_timeline(&o, runs[0]);
}
