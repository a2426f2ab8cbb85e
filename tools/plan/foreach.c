/* foreach.c: fan-out (orch-plan(1) FOREACH, CONTRACT §9), and the files a
 * step names (prompt_file:, system_file:).
 *
 * A step with foreach: becomes one plan line per item, "<step>[<key>]".
 * Its items come from a list written in the spec, a jq expression over the job (.inputs.urls), a file
 * of JSON values one a line ({lines: FILE}), the files a pattern matches
 * ({glob: PATTERN}: {path, name, size}, their text read by orch-sched when
 * the instance starts), or a fanned-out step (foreach: .steps.X: one
 * instance per instance of X, the same keys, paired: review[k] needs
 * X[k] only, unless gather: true). A key is key:'s jq over the item when
 * that is a name, else a short hash of it (of its path for a glob item:
 * lib/fankey.c): the same item keeps its key when the list is reordered
 * or grows.
 * A foreach: that reads another step's answer (.steps.list.json, .steps.X
 * of a fan-out but not as a whole) is dynamic: its items are known only
 * once that step is done, so it is one plan line, "expand_after" the
 * needs its foreach: alone reads, and orch-sched expands it then
 * (tools/sched/expand.c), as Snakemake does a checkpoint's dependants; a
 * step paired with it is "expand_with" it, expanded alongside.
 * Assumptions: files are named relative to the spec's folder and must
 * resolve inside it (no ../, no symlink out); a file with a NUL byte in
 * its first 8 KiB is binary and refused; max_items: (default 100,000)
 * bounds every expansion before it is built whole.
 */
#include <errno.h>
#include <glob.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <jq.h>
#include "plan.h"

void check_foreach(const node *x)
{
	static const char *const text_keys[] = {"key", "prompt_file", "system_file"};
	for (int k = 0; k < 3; k++) {
		const node *v = get(x, text_keys[k]);
		if (v && (v->kind != N_SCALAR || scalar_kind(v) != JV_KIND_STRING))
			problem(v, "'%s' must be a string, not %s", text_keys[k], kind_name(v));
	}
	if (get(x, "prompt_file") && get(x, "prompt"))
		problem(get(x, "prompt_file"), "a step has both 'prompt' and 'prompt_file': choose one");
	if (get(x, "system_file") && get(x, "system"))
		problem(get(x, "system_file"), "a step has both 'system' and 'system_file': choose one");
	const node *f = get(x, "foreach");
	if (!f)
		return;
	if (f->kind == N_MAP && f->n == 2 && (get(f, "lines") || get(f, "glob")) &&
	    sval(f->u.kids[1]) && f->u.kids[1]->kind == N_SCALAR)
		return;
	if ((f->kind == N_SCALAR && scalar_kind(f) == JV_KIND_STRING) || f->kind == N_SEQ)
		return;
	problem(f, "'foreach' must be a list, a jq expression, {lines: FILE} or {glob: PATTERN}");
}

static long max_items(const node *x)
{
	const node *m = get(x, "max_items");
	if (!m)
		return ORCH_MAX_ITEMS;
	jv v = m->kind == N_SCALAR ? scalar_jv(m) : jv_null();
	double d = jv_get_kind(v) == JV_KIND_NUMBER ? jv_number_value(v) : -1;
	jv_free(v);
	if (d < 1 || d > 1e7 || d != (double)(long)d) {
		problem(m, "'max_items' must be a whole number from 1 to 10000000");
		return ORCH_MAX_ITEMS;
	}
	return (long)d;
}

/* dir/rel, if it resolves inside dir to a regular file; else NULL, and a
 * problem at `at`. */
static char *confined(const char *dir, const char *rel, const node *at, const char *what)
{
	char *path = orch_fmt("%s/%s", dir, rel), real[PATH_MAX], top[PATH_MAX];
	struct stat st;
	size_t n;
	if (rel[0] == '/')
		problem(at, "%s %s: name it relative to the spec's folder", what, rel);
	else if (!realpath(dir, top) || !realpath(path, real) || stat(real, &st) < 0)
		problem(at, "%s %s: %s", what, rel, strerror(errno));
	else if (strncmp(real, top, n = strlen(top)) || (real[n] != '/' && strcmp(top, "/")))
		problem(at, "%s %s is outside the spec's folder", what, rel);
	else if (!S_ISREG(st.st_mode))
		problem(at, "%s %s is not a regular file", what, rel);
	else
		return path;
	free(path);
	return NULL;
}

/* A file that holds a NUL byte in its first 8 KiB is binary. */
static int binary(const char *path)
{
	char buf[8192];
	FILE *f = fopen(path, "rb");
	size_t n = f ? fread(buf, 1, sizeof buf, f) : 0;
	if (f)
		fclose(f);
	return memchr(buf, 0, n) != NULL;
}

/* The text of a file named relative to the spec's folder, or NULL. */
static char *read_confined(const char *dir, const node *at, const char *what)
{
	char *path = confined(dir, sval(at), at, what);
	if (!path)
		return NULL;
	size_t len;
	char *text = binary(path) ? NULL : orch_slurp(path, &len);
	if (!text)
		problem(at, "%s %s: %s", what, sval(at), binary(path) ? "a binary file" : strerror(errno));
	else if (memchr(text, 0, len))
		problem(at, "%s %s: a binary file", what, sval(at)), free(text), text = NULL;
	free(path);
	return text;
}

const char *step_text(const struct step *s, int f, const node **at)
{
	*at = get(s->x, f ? "system" : "prompt");
	if (*at)
		return sval(*at);
	*at = get(s->x, f ? "system_file" : "prompt_file");
	return s->text[f];
}

size_t step_count(const struct step *s)
{
	return s->fan ? s->fan->n : 1;
}

/* The fanned-out step that foreach: .steps.X names, or -1. */
static long paired_with(const struct plan *p, const node *f)
{
	const char *e = sval(f);
	if (!e || f->kind != N_SCALAR || strncmp(e, ".steps.", 7) || !orch_job_id_valid(e + 7))
		return -1;
	long j = orch_map_get(p->byid, e + 7);
	return j >= 0 && get(p->steps[j].x, "foreach") ? j : -1;
}

int foreach_only_need(const struct step *s, size_t j)
{
	for (size_t k = 0; k < s->nafter; k++)
		if (s->after[k] == j)
			return 1;
	return 0;
}

/* foreach: reads the answers of other steps: step i is dynamic, and
 * needs them (for its foreach: alone, if not in its needs:). */
static void link_dynamic(struct plan *p, size_t i, const node *f)
{
	struct step *s = &p->steps[i];
	const char *e = sval(f);
	long whole = strncmp(e, ".steps.", 7) == 0 ? orch_map_get(p->byid, e + 7) : -1;
	if (whole >= 0) {  /* not fanned out (paired_with): a result record */
		problem(f, "foreach: %s is a result record, not a list: did you mean %s.json?", e, e);
		return;
	}
	struct step_read *r;
	size_t n = steps_read(e, 0, &r);
	for (size_t k = 0; k < n; k++) {
		char name[65];
		snprintf(name, sizeof name, "%.*s", r[k].n < 64 ? (int)r[k].n : 64, r[k].name);
		long j = r[k].n < sizeof name ? orch_map_get(p->byid, name) : -1;
		if (j < 0)
			problem(f, "foreach: %s reads .steps.%s, which is not a step", e, name);
		else if (j == (long)i)
			problem(f, "step '%s' cannot fan out over its own answer", s->id);
		else
			s->dynamic = DYN_AFTER;
		if (j < 0 || j == (long)i || needs_step(p, i, (size_t)j))
			continue;
		s->after = orch_xrealloc(s->after, (s->nafter + 1) * sizeof *s->after);
		s->after[s->nafter++] = (size_t)j;
		orch_graph_need(p->graph, i, (size_t)j);
	}
	free(r);
}

/* Each step's files read; a paired step needs the step it pairs with. */
void link_foreach(struct plan *p)
{
	for (size_t i = 0; i < p->nsteps; i++) {
		struct step *s = &p->steps[i];
		const node *pf = get(s->x, "prompt_file"), *sf = get(s->x, "system_file");
		if (sval(pf))
			s->text[0] = read_confined(p->dir, pf, "prompt_file");
		if (sval(sf))
			s->text[1] = read_confined(p->dir, sf, "system_file");
		const node *f = get(s->x, "foreach");
		if (!f)
			continue;
		long j = paired_with(p, f);
		if (j == (long)i)
			problem(f, "step '%s' cannot fan out over itself", s->id);
		else if (j >= 0)
			orch_graph_need(p->graph, i, (size_t)j);
		else if (f->kind == N_SCALAR && sval(f))
			link_dynamic(p, i, f);
	}
}

/* ---- the items ---- */

static jv items_from_jq(const node *f, jv job)
{
	char *err = NULL;
	struct jq_state *jq = orch_jq_compile(sval(f), &err);
	if (!jq) {
		problem(f, "foreach: %s", err ? err : "cannot compile");
		free(err);
		return jv_invalid();
	}
	jv r = orch_jq_first(jq, jv_copy(job));
	jq_teardown(&jq);
	if (!jv_is_valid(r)) {
		jv msg = jv_invalid_get_msg(r);
		problem(f, "foreach: %s", jv_get_kind(msg) == JV_KIND_STRING ?
		        jv_string_value(msg) : "no value");
		jv_free(msg);
		return jv_invalid();
	}
	if (jv_get_kind(r) != JV_KIND_ARRAY) {
		problem(f, "foreach: %s gives %s, not an array", sval(f),
		        jv_kind_name(jv_get_kind(r)));
		jv_free(r);
		return jv_invalid();
	}
	return r;
}

/* {lines: FILE}: one JSON value a line; blank lines are skipped. */
static jv items_from_lines(const struct plan *p, const node *at, long max)
{
	char *text = read_confined(p->dir, at, "lines:");
	if (!text)
		return jv_invalid();
	jv items = jv_array();
	long line = 0;
	for (char *s = text, *e; *s && jv_is_valid(items); s = *e ? e + 1 : e) {
		e = s + strcspn(s, "\n");
		line++;
		if (s + strspn(s, " \t\r") == e)
			continue;
		jv v = jv_parse_sized(s, (int)(e - s));
		if (!jv_is_valid(v)) {
			jv msg = jv_invalid_get_msg(v);
			problem(at, "%s:%ld: not JSON: %s", sval(at), line, jv_string_value(msg));
			jv_free(msg);
			jv_free(items);
			items = jv_invalid();
		} else if (jv_array_length(jv_copy(items)) >= max) {
			problem(at, "%s: more than max_items (%ld) items", sval(at), max);
			jv_free(v);
			jv_free(items);
			items = jv_invalid();
		} else
			items = jv_array_append(items, v);
	}
	free(text);
	return items;
}

/* {glob: PATTERN}: {path, name, size} of each file it matches, in name
 * order; each file kept in fan->files. */
static jv items_from_glob(const struct plan *p, const node *at, long max, struct fan *fan)
{
	char *pat = orch_fmt("%s/%s", p->dir, sval(at));
	glob_t g;
	int rc = glob(pat, 0, NULL, &g);
	free(pat);
	if (rc != 0 || g.gl_pathc > (size_t)max) {
		if (rc == 0)
			problem(at, "glob %s: %zu files, more than max_items (%ld)", sval(at), g.gl_pathc, max);
		else
			problem(at, "glob %s %s", sval(at), rc == GLOB_NOMATCH ? "matches no file" :
			        "cannot be read (a folder it crosses is unreadable)");
		globfree(&g);
		return jv_invalid();
	}
	jv items = jv_array();
	fan->files = orch_xmalloc((g.gl_pathc + 1) * sizeof *fan->files);
	size_t skip = strlen(p->dir) + 1, n = 0;
	for (size_t k = 0; k < g.gl_pathc; k++) {
		const char *rel = g.gl_pathv[k] + skip;
		char *path = confined(p->dir, rel, at, "glob: file");
		struct stat st;
		if (!path || stat(path, &st) < 0 || binary(path)) {
			if (path)
				problem(at, "glob: file %s is binary", rel);
			free(path);
			continue;
		}
		jv it = jv_object_set(jv_object(), jv_string("path"), jv_string(rel));
		it = jv_object_set(it, jv_string("name"), jv_string(strrchr(g.gl_pathv[k], '/') + 1));
		items = jv_array_append(items, jv_object_set(it, jv_string("size"), jv_number(st.st_size)));
		fan->files[n++] = path;
	}
	globfree(&g);
	return items;
}

/* ---- the keys ---- */

/* fan's keys: one per item, no two alike. */
static void make_keys(const node *x, struct fan *fan, int glob)
{
	const node *k = get(x, "key");
	char *err = NULL;
	struct jq_state *keyq = sval(k) ? orch_jq_compile(sval(k), &err) : NULL;
	if (sval(k) && !keyq) {
		problem(k, "key: %s", err ? err : "cannot compile");
		free(err);
	}
	fan->keys = orch_xmalloc((fan->n + 1) * sizeof *fan->keys);
	orch_map *seen = orch_map_new(fan->n);
	for (size_t i = 0; i < fan->n; i++) {
		fan->keys[i] = orch_item_key(keyq, jv_array_get(jv_copy(fan->items), (int)i), glob);
		long prev = orch_map_get(seen, fan->keys[i]);
		if (prev >= 0)
			problem(k ? k : get(x, "foreach"), "items %ld and %zu have the same key '%s'%s",
			        prev + 1, i + 1, fan->keys[i], k ? "" : ": give key:");
		else
			orch_map_put(seen, fan->keys[i], (long)i);
	}
	orch_map_free(seen);
	if (keyq)
		jq_teardown(&keyq);
}

/* ---- expansion ---- */

/* Step s over the instances of step x (paired): x's keys, no items. */
static void pair(struct step *s, const struct step *x, long j)
{
	struct fan *fan = s->fan = orch_xmalloc(sizeof *fan);
	*fan = (struct fan){.items = jv_invalid(), .n = x->fan->n, .pair = j,
	                    .gather = get(s->x, "gather") && scalar_kind(get(s->x, "gather")) == JV_KIND_TRUE};
	fan->keys = orch_xmalloc((fan->n + 1) * sizeof *fan->keys);
	for (size_t k = 0; k < fan->n; k++)
		fan->keys[k] = orch_xstrdup(x->fan->keys[k]);
}

/* A dynamic foreach: and its key: compile; its max_items: is a number. */
static void check_dynamic(const node *x, const node *f)
{
	const node *k = get(x, "key");
	max_items(x);
	for (int q = 0; q < 2; q++) {
		const node *at = q ? k : f;
		char *err = NULL;
		struct jq_state *jq = sval(at) ? orch_jq_compile(sval(at), &err) : NULL;
		if (sval(at) && !jq)
			problem(at, "%s: %s", q ? "key" : "foreach", err ? err : "cannot compile");
		free(err);
		if (jq)
			jq_teardown(&jq);
	}
}

static void expand(struct plan *p, struct step *s, jv job)
{
	const node *f = get(s->x, "foreach"), *src = f->kind == N_MAP ? f->u.kids[1] : f;
	long max = max_items(s->x), j = paired_with(p, f);
	if (j >= 0) {  /* linked: a fanned-out step, expanded before s */
		if (p->steps[j].fan)
			pair(s, &p->steps[j], j);
		else if (p->steps[j].dynamic)
			s->dynamic = DYN_WITH, s->with = j;
		return;
	}
	if (s->dynamic) {  /* orch-sched expands it: only check it here */
		check_dynamic(s->x, f);
		return;
	}
	struct fan *fan = orch_xmalloc(sizeof *fan);
	*fan = (struct fan){.pair = -1};
	int glob = f->kind == N_MAP && get(f, "glob");
	fan->items = f->kind == N_SEQ ? to_jv(f) : glob ? items_from_glob(p, src, max, fan) :
	             f->kind == N_MAP ? items_from_lines(p, src, max) : items_from_jq(f, job);
	if (!jv_is_valid(fan->items)) {
		free(fan->files);
		free(fan);
		return;
	}
	fan->n = (size_t)jv_array_length(jv_copy(fan->items));
	if (fan->n > (size_t)max)
		problem(f, "foreach gives %zu items, more than max_items (%ld)", fan->n, max);
	s->fan = fan;
	make_keys(s->x, fan, glob);
}

int expand_foreach(struct plan *p, jv job)
{
	for (size_t k = 0; k < p->nsteps; k++) {
		struct step *s = &p->steps[p->order[k]];
		if (get(s->x, "foreach"))
			expand(p, s, job);
	}
	return report_problems();
}

void foreach_free(struct plan *p)
{
	for (size_t i = 0; i < p->nsteps; i++) {
		struct step *s = &p->steps[i];
		free(s->text[0]);
		free(s->text[1]);
		free(s->after);
		if (!s->fan)
			continue;
		for (size_t k = 0; k < s->fan->n; k++) {
			free(s->fan->keys[k]);
			if (s->fan->files)
				free(s->fan->files[k]);
		}
		free(s->fan->keys);
		free(s->fan->files);
		jv_free(s->fan->items);
		free(s->fan);
	}
}

/* ---- the plan lines (write.c) ---- */

/* "<id>[<key>]" of s's k-th instance into buf (at least 132 bytes). */
static const char *instance_name(const struct step *s, size_t k, char *buf)
{
	snprintf(buf, 132, "%s[%s]", s->id, s->fan->keys[k]);
	return buf;
}

void put_step_name(orch_jw *w, const struct step *s, long inst)
{
	char buf[132];
	orch_jw_str(w, inst < 0 ? s->id : instance_name(s, (size_t)inst, buf));
}

/* What instance inst of s (-1: s is no fan-out) needs of step d, index j:
 * d itself, every instance of d, or its pair alone. */
void put_need_names(orch_jw *w, const struct step *s, long inst, const struct step *d, size_t j)
{
	if (!d->fan) {
		orch_jw_str(w, d->id);
		return;
	}
	if (inst >= 0 && s->fan->pair == (long)j && !s->fan->gather) {
		put_step_name(w, d, inst);
		return;
	}
	for (size_t k = 0; k < d->fan->n; k++)
		put_step_name(w, d, (long)k);
}

/* The instance's fields before "job" (names and numbers only). */
void put_instance_head(orch_jw *w, const struct step *s, long inst)
{
	orch_jw_key(w, "group");
	orch_jw_str(w, s->id);
	orch_jw_key(w, "key");
	orch_jw_str(w, s->fan->keys[inst]);
	orch_jw_key(w, "item_index");
	orch_jw_jv(w, jv_number(inst));
}

/* Its item after "spec": the item, the file to read into its content, or
 * the paired instance whose result is its item. */
void put_instance_item(orch_jw *w, const struct plan *p, const struct step *s, long inst)
{
	const struct fan *fan = s->fan;
	if (fan->pair >= 0) {
		orch_jw_key(w, "item_step");
		put_step_name(w, &p->steps[fan->pair], inst);
		return;
	}
	orch_jw_key(w, "item");
	orch_jw_jv(w, jv_array_get(jv_copy(fan->items), (int)inst));
	if (fan->files) {
		orch_jw_key(w, "item_file");
		orch_jw_str(w, fan->files[inst]);
	}
}

void put_dynamic_head(orch_jw *w, const struct plan *p, const struct step *s)
{
	if (s->dynamic == DYN_WITH) {
		orch_jw_key(w, "expand_with");
		orch_jw_str(w, p->steps[s->with].id);
		return;
	}
	orch_jw_key(w, "expand_after");
	orch_jw_open(w, '[');
	for (size_t k = 0; k < s->nafter; k++)
		put_need_names(w, s, -1, &p->steps[s->after[k]], s->after[k]);
	orch_jw_close(w);
}
