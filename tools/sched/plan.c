/* plan.c: reading and checking the plan, before anything runs.
 *
 * orch_loop (lib/loop.c) hands add_line() one plan line (orch-plan(1))
 * at a time; each becomes a step. A problem with a line is reported at its
 * file and record number and counted, and reading goes on, so that one run
 * lists every problem. Then the whole plan is checked: needs name steps of
 * the plan, no cycle (lib/graph.c), pools named in the job's pools:, when:
 * conditions that compile (all as one jq program: libjq compiles slowly),
 * launchers and resources (launch.c).
 * Assumes nothing has run yet: at any problem the caller exits, with
 * nothing created.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "orch.h"
#include "sched.h"

struct plan plan;

static int bad_at(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int bad_at(const char *fmt, ...)
{
	char msg[512];
	long rec;
	const char *file = orch_loop_at(&rec);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	orch_err_at(file, rec, 0, "%s", msg);
	plan.bad++;
	return 0;
}

static jv str_array(jv v)
{
	if (jv_get_kind(v) != JV_KIND_ARRAY) {
		jv_free(v);
		return jv_invalid();
	}
	jv_array_foreach(v, i, x) {
		int ok = jv_get_kind(x) == JV_KIND_STRING;
		jv_free(x);
		(void)i;
		if (!ok) {
			jv_free(v);
			return jv_invalid();
		}
	}
	return v;
}

/* The line's spec: absent or null is {}; invalid unless an object. */
static jv line_spec(jv line)
{
	jv spec = orch_jget(line, "spec");
	if (jv_get_kind(spec) == JV_KIND_NULL) {
		jv_free(spec);
		return jv_object();
	}
	if (jv_get_kind(spec) != JV_KIND_OBJECT) {
		jv_free(spec);
		return jv_invalid();
	}
	return spec;
}

/* The line's needs, else its spec's, else []; invalid unless step ids. */
static jv line_needs(jv line, jv spec)
{
	jv needs = orch_jget(line, "needs");
	if (jv_get_kind(needs) == JV_KIND_NULL) {
		jv_free(needs);
		needs = orch_jget(spec, "needs");
	}
	if (jv_get_kind(needs) == JV_KIND_NULL) {
		jv_free(needs);
		needs = jv_array();
	}
	return str_array(needs);
}

/* needs (consumed), or the step before's array when equal: a fan-out's
 * instances need the same steps (one array, not 100,000 of 272 bytes). A
 * paired instance's own (review[k] needs summarize[k]) is made its size:
 * a parsed array holds 16 slots. */
static jv shared_needs(jv needs)
{
	if (plan.n > 0 && jv_equal(jv_copy(needs), jv_copy(plan.step[plan.n - 1].needs))) {
		jv_free(needs);
		return jv_copy(plan.step[plan.n - 1].needs);
	}
	int n = jv_array_length(jv_copy(needs));
	if (n >= 16)
		return needs;
	jv small = jv_array_sized(n);
	jv_array_foreach(needs, k, nm) {
		small = jv_array_append(small, nm);
		(void)k;
	}
	jv_free(needs);
	return small;
}

/* A new step at plan.step[plan.n]; it owns spec and needs. */
static struct step *new_step(const char *name, jv spec, jv needs, jv line)
{
	if (plan.n == plan.cap)
		plan.step = orch_xrealloc(plan.step, (plan.cap = plan.cap ? 2 * plan.cap : 256) *
		                          sizeof *plan.step);
	struct step *s = &plan.step[plan.n];
	memset(s, 0, sizeof *s);
	s->name = orch_xstrdup(name);
	s->spec = spec;
	s->needs = shared_needs(needs);
	s->result = jv_invalid();
	s->input = jv_invalid();
	s->inst = group_of_line(line);  /* group.c: a fan-out instance */
	s->expand = expand_of_line(line);  /* expand.c: one not yet expanded */
	s->item = jv_invalid();
	s->pool = s->cond = s->launcher = -1;
	s->outfd = -1;
	double d;
	if (orch_jnum(line, "priority", &d) || orch_jnum(spec, "priority", &d))
		s->prio = d;
	s->index = orch_jnum(line, "index", &d) ? (long)d : plan.n;
	if (orch_jnum(spec, "retries", &d) && d >= 0)
		s->retries = d > 1000 ? 1000 : (int)d;
	if (orch_jnum(spec, "timeout_s", &d) && d > 0)
		s->timeout = d;
	s->cmd = orch_jstr(spec, "run");  /* lives as long as spec */
	if (!s->cmd)
		s->cmd = opt.exec_cmd;
	return s;
}

static void keep_step(const char *name, jv spec, jv needs, jv line)
{
	if (!jv_is_valid(plan.job)) {
		jv j = orch_jget(line, "job");
		if (jv_get_kind(j) == JV_KIND_OBJECT)
			plan.job = j;
		else
			jv_free(j);
	}
	struct step *s = new_step(name, group_spec_shared(spec, line), needs, line);
	if (!s->cmd)
		bad_at("step %s has no run: and no --exec CMD was given", name);
	else if (!s->cmd[strspn(s->cmd, " \t\n")])
		bad_at("step %s: empty command", name);
	if (orch_map_put(plan.byname, s->name, plan.n)) {
		bad_at("duplicate step id %s", name);
		free(s->name);
		jv_free(s->spec);
		jv_free(s->needs);
		jv_free(s->inst);
		jv_free(s->expand);
		return;
	}
	plan.n++;
}

/* A step added while the plan runs (expand.c): it owns spec and needs. */
int add_step(const char *name, jv spec, jv needs, jv line)
{
	struct step *s = new_step(name, spec, needs, line);
	orch_map_put(plan.byname, s->name, plan.n);
	return plan.n++;
}

/* orch_loop's callback: one plan line (consumed). */
static int add_line(jv line, void *ctx)
{
	const char *name = orch_jstr(line, "step");
	jv spec = jv_invalid(), needs = jv_invalid();
	(void)ctx;
	if (jv_get_kind(line) != JV_KIND_OBJECT || !name)
		bad_at("not a plan line (no \"step\")");
	else if (!orch_step_name_valid(name))
		bad_at("step id \"%s\": use 1 to 64 of [A-Za-z0-9._-], or step[key]", name);
	else if (!jv_is_valid(spec = line_spec(line)))
		bad_at("step %s: \"spec\" is not an object", name);
	else if (!jv_is_valid(needs = line_needs(line, spec)))
		bad_at("step %s: \"needs\" is not an array of step ids", name);
	else {
		keep_step(name, spec, needs, line);
		spec = needs = jv_invalid();
	}
	jv_free(spec);
	jv_free(needs);
	jv_free(line);
	return 0;
}

static int find_pool(const char *name)
{
	for (int i = 0; i < plan.npools; i++)
		if (strcmp(plan.pool[i].name, name) == 0)
			return i;
	return -1;
}

/* A pool is a limit, or {limit: N, launcher: CMD}. */
static struct pool new_pool(const char *name, jv v)
{
	struct pool p = {.name = orch_xstrdup(name)};
	double d;
	if (jv_get_kind(v) == JV_KIND_OBJECT) {
		p.launcher = orch_jstr(v, "launcher");  /* lives as long as plan.job */
		p.limit = orch_jnum(v, "limit", &d) ? (int)d : 0;
	} else
		p.limit = jv_get_kind(v) == JV_KIND_NUMBER ? (int)jv_number_value(v) : 0;
	if (p.limit < 1) {
		orch_err("pool %s: the limit must be a positive number", name);
		p.limit = 1;
	}
	jv_free(v);
	return p;
}

static void load_pools(void)
{
	jv p = orch_jget(plan.job, "pools");
	if (jv_get_kind(p) == JV_KIND_OBJECT) {
		plan.pool = orch_xmalloc(jv_object_length(jv_copy(p)) * sizeof *plan.pool);
		jv_object_foreach(p, k, v) {
			plan.pool[plan.npools++] = new_pool(jv_string_value(k), v);
			jv_free(k);
		}
	}
	jv_free(p);
}

/* The step's pool: 0, or 1 (reported) if the job has no such pool. */
static int link_pool(struct step *s)
{
	const char *pool = orch_jstr(s->spec, "pool");
	if (pool && (s->pool = find_pool(pool)) < 0) {
		orch_err("step %s: pool %s is not in the job's pools", s->name, pool);
		return 1;
	}
	return 0;
}

/* Needs as edges of plan.graph, and each step's pool. Returns the
 * problems found. */
static int link_needs(void)
{
	int bad = 0;
	plan.graph = orch_graph_new(plan.n);
	for (int i = 0; i < plan.n; i++) {
		struct step *s = &plan.step[i];
		jv_array_foreach(s->needs, k, nm) {
			long j = orch_map_get(plan.byname, jv_string_value(nm));
			if (j < 0) {
				orch_err("step %s needs %s, which is not in the plan",
				         s->name, jv_string_value(nm));
				bad++;
			} else if (j == i) {
				orch_err("step %s needs itself", s->name);
				bad++;
			} else
				orch_graph_need(plan.graph, (size_t)i, (size_t)j);
			jv_free(nm);
			(void)k;
		}
		bad += link_pool(s);
	}
	for (int i = 0; i < plan.n; i++) {  /* the lists are complete: point into them */
		struct step *s = &plan.step[i];
		s->dep = orch_graph_deps(plan.graph, (size_t)i);
		s->ndep = orch_graph_ndeps(plan.graph, (size_t)i);
		s->rdep = orch_graph_rdeps(plan.graph, (size_t)i);
		s->users = s->nrdep = orch_graph_nrdeps(plan.graph, (size_t)i);
	}
	return bad;
}

static int before(size_t a, size_t b, void *ctx)
{
	(void)ctx;
	return step_before((int)a, (int)b);
}

static const char *step_name(size_t i, void *ctx)
{
	(void)ctx;
	return plan.step[i].name;
}

/* Kahn's order leaves out what lies on or behind a cycle: print one. */
static int check_cycles(void)
{
	plan.order = orch_xmalloc((plan.n + 1) * sizeof *plan.order);
	size_t n = orch_graph_order(plan.graph, before, NULL, plan.order);
	if (n == (size_t)plan.n)
		return 0;
	char *text = orch_graph_cycle(plan.graph, step_name, NULL);
	orch_err("the plan has a cycle: %s", text ? text : "(not found)");
	free(text);
	return 1;
}

/* when: conditions, all compiled as one jq program; one condition for
 * every step with the same text (a fan-out's instances share theirs:
 * 20,000 copies would pass libjq's limit on a program's size). */
static int compile_conds(void)
{
	int n = 0, bad = 0;
	orch_map *seen = orch_map_new(16);
	for (int i = 0; i < plan.n; i++) {
		const char *w = orch_jstr(plan.step[i].spec, "when");
		if (w && orch_map_get(seen, w) < 0)
			orch_map_put(seen, w, n++);
		if (w)
			plan.step[i].cond = (int)orch_map_get(seen, w);
	}
	if (n == 0) {
		orch_map_free(seen);
		return 0;
	}
	char **texts = plan.cond_texts = orch_xmalloc(n * sizeof *texts);
	char **errs = orch_xmalloc(n * sizeof *errs);
	memset(texts, 0, n * sizeof *texts);
	memset(errs, 0, n * sizeof *errs);
	plan.nconds = n;
	int *who = orch_xmalloc(n * sizeof *who);  /* the first step of each */
	for (int i = 0; i < plan.n; i++) {
		int k = plan.step[i].cond;
		if (k < 0 || texts[k])
			continue;
		who[k] = i;
		texts[k] = orch_fmt("{{ [(%s\n) | if . then 1 else 0 end] | .[0] // 0 }}",
		                    orch_jstr(plan.step[i].spec, "when"));
	}
	orch_map_free(seen);
	plan.conds = orch_tmpl_compile((const char **)texts, n, errs);
	for (int k = 0; k < n; k++) {
		if (errs[k]) {
			orch_err("step %s: when: %s", plan.step[who[k]].name, errs[k]);
			bad++;
		}
		free(errs[k]);
	}
	if (!plan.conds && !bad) {
		orch_err("cannot compile the when: conditions");
		bad++;
	}
	free(errs);
	free(who);
	return bad;
}

/* The job's workdir: (orch-plan(1)), relative to the spec's folder, where
 * run: steps run; it must be a folder. 0, or -1 (reported). */
static int find_workdir(void)
{
	const char *w = orch_jstr(plan.job, "workdir"), *spec = orch_jstr(plan.job, "spec_file");
	if (!w)
		return 0;
	const char *slash = spec && w[0] != '/' ? strrchr(spec, '/') : NULL;
	plan.workdir = slash ? orch_fmt("%.*s/%s", (int)(slash - spec), spec, w) : orch_xstrdup(w);
	struct stat st;
	if (stat(plan.workdir, &st) == 0 && S_ISDIR(st.st_mode))
		return 0;
	orch_err("workdir %s: not a folder", plan.workdir);
	return -1;
}

int read_plan(char **files, int n)
{
	plan.job = jv_invalid();
	plan.byname = orch_map_new(1024);
	int rc = orch_loop(files, n, add_line, NULL);
	if (rc)  /* an unreadable file, or invalid JSON: nothing runs */
		return plan.bad ? EX_USAGE : rc;
	if (plan.n == 0 && !plan.bad) {
		orch_err("no plan lines: nothing to run");
		return EX_USAGE;
	}
	load_pools();
	if (plan.bad || link_needs() || check_expand() || check_cycles() || compile_conds() ||
	    link_launchers() || find_workdir())
		return EX_USAGE;
	return 0;
}

int step_before(int a, int b)
{
	const struct step *x = &plan.step[a], *y = &plan.step[b];
	if (x->prio != y->prio)
		return x->prio > y->prio;
	if (x->index != y->index)
		return x->index < y->index;
	return a < b;  /* a fan-out's instances: in item order */
}

void plan_free(void)
{
	for (int i = 0; i < plan.n; i++) {
		struct step *s = &plan.step[i];
		free(s->name);
		jv_free(s->spec);
		jv_free(s->needs);
		jv_free(s->result);
		jv_free(s->input);
		jv_free(s->inst);
		jv_free(s->item);
		jv_free(s->expand);
	}
	free(plan.step);
	free(plan.order);
	orch_graph_free(plan.graph);
	for (int i = 0; i < plan.npools; i++) {
		free(plan.pool[i].name);
		free(plan.pool[i].wait.a);
	}
	free(plan.pool);
	orch_map_free(plan.byname);
	orch_tmpl_free(plan.conds);
	for (int k = 0; k < plan.nconds; k++)
		free(plan.cond_texts[k]);
	free(plan.cond_texts);
	jv_free(plan.job);
	free(plan.workdir);
}
