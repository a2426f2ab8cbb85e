/* orch-plan: job spec (YAML 1.1 or JSON) -> validated, ordered plan.
 *
 * Reads a spec (orch-plan(1), CONTRACT §4), lists every problem in it as
 * "file:line:col: message" and exits 2, or prints the plan: one JSON line
 * per step in a topological order (ties keep spec order), each carrying
 * its wave (longest path from a source) and priority (longest path to a
 * sink), so a scheduler starts long chains first.
 *
 * The parts are in tools/plan/ (plan.h names them): the YAML reader, the
 * problems, the schema checks, the steps and their graph, the writers.
 * Assumptions and limits, by design:
 *  - Every message has a position: YAML is read into a node tree of our
 *    own, and JSON goes through the same reader.
 *  - An alias bomb or deep nesting is refused in bounded time and memory.
 *  - All {{ }} templates and when: conditions are compiled by libjq, 500
 *    to a program (libjq 1.6 spends ~20 ms per compile).
 *  - Linear in the size of the spec: steps by name through a hash table,
 *    Kahn's algorithm with a heap keyed on spec order (lib/graph.c).
 *  - Plan lines are written from the tree by lib's JSON writer, not built
 *    as jv first: jv would cost twice what reading and checking the spec
 *    does. They hold what the jv would have, in the same order (tests and
 *    the fuzzer check it).
 */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include "plan/plan.h"

static const char usage[] =
	"usage: orch-plan [--check | --dot | --waves | --id] [--input K=V]... [--target STEP]...\n"
	"                 [--until STEP] [--runnable] [--provider P] [--model M] [SPEC | -]\n"
	"  Validate a job spec and print its plan, one JSON line per step.\n"
	"  --check           validate only, print nothing\n"
	"  --dot             print a Graphviz digraph, one rank per wave\n"
	"  --waves           print a readable table of waves\n"
	"  --id              print the job id alone (job=$(orch-plan --id SPEC));\n"
	"                    the templates' jq is left to the plan's own check\n"
	"  --input K=V       set inputs.K to the string V (K:=JSON: to a JSON value)\n"
	"  --target STEP     plan only STEP and what it needs (repeatable)\n"
	"  --until STEP      plan every step up to and including STEP's wave\n"
	"  --runnable        check that every prompt step can be called: a known\n"
	"                    provider, and a model where it needs one\n"
	"  --provider P, --model M  the override orch-call will get (implies --runnable)\n"
	"  --help, --version, --run DIR (accepted, unused)\n";

/* Check text (the spec named path) and print it as mode asks: 'p' the plan,
 * 'd' dot, 'w' waves, 'i' the job id, 'c' nothing; the steps and inputs
 * as c chooses (select.c). Leaves no state behind. */
static int plan(char *text, size_t len, const char *path, int mode, const struct choice *c)
{
	struct plan p;
	plan_read(&p, text, len, path);
	if (mode != 'i')  /* --id leaves jq to the plan that follows: ~20 ms */
		check_templates(&p);
	int rc = report_problems();
	if (rc == EX_OK)
		rc = select_steps(&p, c);
	if (rc == EX_OK && c->runnable)
		rc = check_runnable(&p, c);
	if (rc == EX_OK) {
		jv job = apply_inputs(job_jv(p.root, path), c);
		rc = mode == 'p' ? print_plan(&p, job) : mode == 'd' ? print_dot(&p, job) :
		     mode == 'w' ? print_waves(&p) : mode == 'i' ? print_id(job) : EX_OK;
		jv_free(job);
	}
	plan_free(&p);
	return rc;
}

/* An option of what to choose (select.c), else a common one. */
static void choose(struct choice *ch, int c, const char *arg)
{
	switch (c) {
	case 'I': choose_input(ch, arg); break;
	case 'T': ch->targets[ch->ntargets++] = arg; break;
	case 'U': ch->until = arg; break;
	case 'R': ch->runnable = 1; break;
	case 'P': ch->provider = arg; ch->runnable = 1; break;
	case 'M': ch->model = arg; ch->runnable = 1; break;
	default: orch_common(c, arg, usage);
	}
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"check", no_argument, 0, 'c'},
		{"dot", no_argument, 0, 'd'},
		{"id", no_argument, 0, 'i'},
		{"waves", no_argument, 0, 'w'},
		{"input", required_argument, 0, 'I'},
		{"target", required_argument, 0, 'T'},
		{"until", required_argument, 0, 'U'},
		{"runnable", no_argument, 0, 'R'},
		{"provider", required_argument, 0, 'P'},
		{"model", required_argument, 0, 'M'},
		ORCH_COMMON_LONGOPTS,
		{0, 0, 0, 0},
	};
	int c, mode = 'p';
	struct choice ch = {.inputs = jv_invalid()};
	orch_init(argc, argv);
	ch.targets = orch_xmalloc(argc * sizeof *ch.targets);
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1)
		if (c == 'c' || c == 'd' || c == 'w' || c == 'i')
			mode = c;
		else
			choose(&ch, c, optarg);
	if (argc - optind > 1)
		orch_usage(usage);
	const char *path = optind < argc ? argv[optind] : "-";
	size_t len;
	char *text = orch_slurp(path, &len);
	if (!text)
		orch_die_sys(EX_USAGE, "cannot read %s",
		             strcmp(path, "-") == 0 ? "<stdin>" : path);
	int rc = plan(text, len, path, mode, &ch);
	free(text);
	free(ch.targets);
	jv_free(ch.inputs);
	orch_exit(rc);
}
