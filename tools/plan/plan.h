/* plan.h: orch-plan's parts, shared by tools/orch-plan.c and the spec
 * fuzzer (tests/fuzz/spec.c), which links them as orch-plan does.
 *
 *   yaml.c     YAML (and JSON) text -> a node tree with positions
 *   problem.c  problems found, reported sorted by position
 *   check.c    the schema: keys, kinds, ranges, names, templates
 *   schema.c   a step's JSON Schema (schema:), inline or from a file
 *   steps.c    the steps, their graph, order, waves and priorities
 *   reads.c    the steps a template or when: reads: only its needs
 *   write.c    the plan lines, --dot, --waves, --id
 *   select.c   what orch run chooses: --input, --target, --until, --runnable
 *   foreach.c  fan-out: a step's items and keys; prompt_file, system_file
 */
#ifndef ORCH_PLAN_H
#define ORCH_PLAN_H

#include <stdint.h>
#include "orch.h"

/* ---- yaml.c: the node tree ---- */
enum { N_SCALAR, N_SEQ, N_MAP };

typedef struct node node;
struct node {
	uint8_t kind, quoted;  /* quoted: a scalar that is always a string */
	uint32_t line, col;    /* 1-based */
	uint32_t n, cap;       /* kids (maps: key, value, key, value ...) */
	union { node **kids; char *str; } u;
	uint64_t size;         /* nodes once aliases are expanded */
	uint32_t depth;        /* nesting once aliases are expanded */
};

/* text (JSON or YAML 1.1, one document) as a tree; NULL with problems
 * recorded if it is invalid, NULL alone if it is empty. JSON's tabs
 * between tokens become spaces in text. Every tree lives until tree_free. */
node *read_yaml(char *text, size_t len);
void tree_free(void);
const char *sval(const node *x);             /* a scalar's text, else NULL */
node *get(const node *x, const char *key);  /* key's value in map x, or NULL */
int one_of(const char *s, const char *const *list);
jv_kind scalar_kind(const node *x);          /* YAML 1.1 resolution */
jv scalar_as(const node *x, jv_kind k);
jv scalar_jv(const node *x);                 /* scalar_as(x, scalar_kind(x)) */
jv to_jv(const node *x);
const char *kind_name(const node *x);        /* "a mapping", "null" ... */

/* ---- problem.c ---- */
void problem_file(const char *name);  /* the file problems are about */
void problem(const node *at, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
size_t problem_count(void);
/* Print them, sorted by position, and forget them: EX_USAGE if any. */
int report_problems(void);

/* ---- steps.c: a spec read and checked ---- */
struct fan;
struct step {
	const node *x;
	const char *id;
	long wave, prio;  /* longest path from a source, to a sink */
	struct fan *fan;  /* foreach: its instances (foreach.c); NULL if none */
	int dynamic;      /* foreach: an upstream answer: expanded by orch-sched,
	                   * DYN_AFTER its needs, or DYN_WITH the step it pairs with */
	long with;        /* DYN_WITH: that step's index */
	size_t *after, nafter;  /* needs that its foreach: alone reads (not its instances') */
	char *text[2];    /* prompt_file's, system_file's text (foreach.c) */
};
struct plan {
	node *root;
	char *dir;          /* the spec's folder: files it names are in it */
	struct step *steps;
	size_t nsteps;
	orch_map *byid;
	orch_graph *graph;  /* steps by index: what each needs, what needs it */
	size_t *order;      /* Kahn's, ties in spec order: nsteps long if acyclic */
};
/* Read and check text, the spec named path, into p: problems recorded
 * (report_problems), except in templates (check_templates: slow). */
void plan_read(struct plan *p, char *text, size_t len, const char *path);
void plan_free(struct plan *p);

/* ---- check.c ---- */
void check_spec(const node *root);
void check_step(const node *root, const node *x);
void check_templates(const struct plan *p);  /* prompt, system, when */
/* The nearest of the candidates, if near enough to be a typo. */
const char *nearest(const char *s, const char *const *cands, size_t ncands);

/* ---- schema.c: a step's schema: and repair: ---- */
void schema_begin(const char *spec_path);  /* files are beside the spec */
void check_schema(const node *step);
jv schema_inline(const node *x);  /* the schema: value, a file's read */
void schema_end(void);

/* ---- reads.c: the steps a template or when: reads (.steps.X) ---- */
struct step_read { const char *name; size_t n; };  /* into the text */
/* The reads found in text (a template, or a when: condition if not
 * template), in order, as a malloc'd array (free it); how many. */
size_t steps_read(const char *text, int template, struct step_read **reads);
int needs_step(const struct plan *p, size_t i, size_t j);  /* step i needs j */
/* A problem for each step read that is not a step this step needs. */
void check_reads(const struct plan *p);

/* ---- write.c ---- */
jv job_jv(const node *root, const char *spec_file);
jv provider_jv(const node *p);  /* a name alone as {name: ...} */
jv merge_provider(jv job, jv step);
int print_plan(const struct plan *p, jv job);
int print_dot(const struct plan *p, jv job);
int print_waves(const struct plan *p);
int print_id(jv job);

/* ---- foreach.c: fan-out (orch-plan(1) FOREACH) ---- */
struct fan {
	jv items;          /* the items, in item order (unused when paired) */
	char **keys;       /* n keys, [A-Za-z0-9._-]{1,64} */
	char **files;      /* {glob:}: each item's file, read when it starts */
	size_t n;
	long pair;         /* foreach: .steps.X, X fanned out: X's index; else -1 */
	int gather;        /* paired, but each instance needs all of X's */
};
enum { DYN_NONE, DYN_AFTER, DYN_WITH };
void check_foreach(const node *x);         /* the keys' kinds (check_step) */
void link_foreach(struct plan *p);         /* pairing edges, files read */
/* Expand every step with foreach: over job: EX_OK, or EX_USAGE (reported). */
int expand_foreach(struct plan *p, jv job);
/* Step s's prompt (f 0) or system (f 1): its text and the node it is at. */
const char *step_text(const struct step *s, int f, const node **at);
size_t step_count(const struct step *s);  /* its instances, or 1 */
/* Plan lines: inst is the instance's index, -1 for a step that has none. */
void put_step_name(orch_jw *w, const struct step *s, long inst);
void put_need_names(orch_jw *w, const struct step *s, long inst, const struct step *d, size_t j);
void put_instance_head(orch_jw *w, const struct step *s, long inst);
void put_instance_item(orch_jw *w, const struct plan *p, const struct step *s, long inst);
/* A dynamic fan-out's line: expand_after or expand_with (before "job"). */
void put_dynamic_head(orch_jw *w, const struct plan *p, const struct step *s);
/* Is step j a need of s that only its foreach: reads (not its templates)? */
int foreach_only_need(const struct step *s, size_t j);
void foreach_free(struct plan *p);

/* ---- select.c: what orch run's command line chooses ---- */
struct choice {
	jv inputs;                /* --input: an object, or invalid for none */
	const char **targets;     /* --target, ntargets of them */
	size_t ntargets;
	const char *until;        /* --until */
	const char *provider, *model;
	int runnable;             /* --runnable, --provider or --model */
};
void choose_input(struct choice *c, const char *arg);  /* exit 2 if bad */
jv apply_inputs(jv job, const struct choice *c);
/* Shorten p->order to the chosen steps: EX_OK, or EX_USAGE (reported). */
int select_steps(struct plan *p, const struct choice *c);
/* Every prompt step in p->order can be called: EX_OK, or EX_USAGE. */
int check_runnable(const struct plan *p, const struct choice *c);

#endif
