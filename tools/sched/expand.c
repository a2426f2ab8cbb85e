/* expand.c: dynamic fan-out (orch-plan(1) FOREACH, orch-run(5)): the
 * instances of a step whose items are another step's answer, made once
 * that answer is known, as Snakemake re-reads its graph after a checkpoint.
 *
 * orch-plan writes such a step as one line, not expanded: "expand_after"
 * lists the needs that its foreach: alone reads (its instances do not
 * need them, so an answer that grows reruns only the new instances), or
 * "expand_with" names the dynamic step it is paired with. When an
 * expand_after step leaves the ready queue (its needs are done), its
 * foreach: is evaluated over its input record, as a template would be;
 * each item of the array it gives is an instance "<step>[<key>]", keyed
 * as orch-plan keys (lib/fankey.c), appended to plan.step and plan.graph
 * as a line of the plan would be, needing the step's other needs. The
 * steps paired with it are expanded at once over the same keys, instance
 * to instance (each needs all of them with gather: true). A dependant of
 * any of these steps waits for each instance too, and still needs the
 * step, whose result is []: .steps.<step> is the array of the instances'
 * results in item order, [] when there are none. The step itself is then
 * done, with no process and no artifact; a fanout.expanded event says how
 * many instances it has. An answer that is no array, more items than
 * max_items:, or two items with one key, fail the step (kind foreach) and
 * skip its dependants. On --resume the answer is the stored artifact of
 * the step skipped as completed, and each instance is skipped by its
 * fingerprint, as any step is; -n --resume expands it so too, when its
 * needs would be skipped, and dryrun.c decides each instance.
 * Assumes: start_step alone calls expand_step, and holds no pointer into
 * plan.step across it (plan.step is reallocated here); no step is
 * released but not yet settled then; plan.order is not extended (only
 * read before the run).
 */
#include <stdlib.h>
#include <string.h>
#include <jq.h>
#include "orch.h"
#include "sched.h"

struct keys { char **key; int n; };

jv expand_of_line(jv line)
{
	jv after = orch_jget(line, "expand_after"), with = orch_jget(line, "expand_with");
	if (jv_get_kind(with) == JV_KIND_STRING) {
		jv_free(after);
		return jv_object_set(jv_object(), jv_string("with"), with);
	}
	jv_free(with);
	if (jv_get_kind(after) != JV_KIND_NULL)
		return jv_object_set(jv_object(), jv_string("after"), after);
	jv_free(after);
	return jv_invalid();
}

static const char *with_of(const struct step *s)
{
	return jv_is_valid(s->expand) ? orch_jstr(s->expand, "with") : NULL;
}

/* The group of step d if it is an instance, else its name. */
static const char *group_name(const struct step *d)
{
	const char *g = jv_is_valid(d->inst) ? orch_jstr(d->inst, "group") : NULL;
	return g ? g : d->name;
}

/* Is s's expand_after a list of names, or its expand_with a dynamic
 * fan-out it needs? */
static int expand_valid(const struct step *s)
{
	const char *with = with_of(s);
	int ok = 0;
	for (size_t k = 0; with && k < s->ndep; k++)
		ok |= strcmp(plan.step[s->dep[k]].name, with) == 0 && jv_is_valid(plan.step[s->dep[k]].expand);
	if (with)
		return ok;
	jv after = orch_jget(s->expand, "after");
	ok = jv_get_kind(after) == JV_KIND_ARRAY;
	for (int k = 0; ok && k < jv_array_length(jv_copy(after)); k++) {
		jv nm = jv_array_get(jv_copy(after), k);
		ok = jv_get_kind(nm) == JV_KIND_STRING;
		jv_free(nm);
	}
	jv_free(after);
	return ok;
}

/* The plan's dynamic steps name what they wait for: problems found. */
int check_expand(void)
{
	int bad = 0;
	for (int i = 0; i < plan.n; i++) {
		const struct step *s = &plan.step[i];
		if (!jv_is_valid(s->expand) || expand_valid(s))
			continue;
		orch_err("step %s: %s", s->name, with_of(s) ? "expand_with: not a dynamic fan-out it needs" :
		         "expand_after: not a list of step names");
		bad++;
	}
	return bad;
}

/* The needs of p that its instances have: all but those its foreach:
 * alone reads (by name, or by their group's) and the step it pairs
 * with. A malloc'd list, *n long. */
static size_t *inherited(int p, size_t *n)
{
	const struct step *s = &plan.step[p];
	jv after = orch_jget(s->expand, "after");  /* an array of names (checked), or null */
	orch_map *skip = orch_map_new(16);
	if (with_of(s))
		orch_map_put(skip, with_of(s), 0);
	if (jv_get_kind(after) != JV_KIND_ARRAY)
		after = (jv_free(after), jv_array());
	jv_array_foreach(after, k, nm) {
		orch_map_put(skip, jv_string_value(nm), 0);  /* lives in after */
		jv_free(nm);
		(void)k;
	}
	size_t *keep = orch_xmalloc((s->ndep + 1) * sizeof *keep);
	*n = 0;
	for (size_t k = 0; k < s->ndep; k++) {
		const struct step *d = &plan.step[s->dep[k]];
		if (orch_map_get(skip, d->name) < 0 && orch_map_get(skip, group_name(d)) < 0)
			keep[(*n)++] = s->dep[k];
	}
	orch_map_free(skip);
	jv_free(after);
	return keep;
}

/* ---- the answer ---- */

static void let_go(int i)  /* i took its needs' results */
{
	const size_t *dep = orch_graph_deps(plan.graph, (size_t)i);
	for (size_t k = 0; k < orch_graph_ndeps(plan.graph, (size_t)i); k++) {
		struct step *d = &plan.step[dep[k]];
		if (--d->users == 0) {
			jv_free(d->result);
			d->result = jv_invalid();
		}
	}
}

/* v (consumed) as a short text for a message. */
static char *preview(jv v)
{
	char *text = orch_dump(v, 0);
	if (strlen(text) > 60)
		strcpy(text + 57, "...");
	return text;
}

/* The items of step i: its foreach: over its input record (its needs'
 * results kept for its instances); invalid and *msg if not an array. */
static jv answer(int i, char **msg)
{
	struct step *s = &plan.step[i];
	for (size_t k = 0; k < s->ndep; k++)
		plan.step[s->dep[k]].users++;  /* its instances take them too */
	jv in = input_record(s);
	const char *expr = orch_jstr(s->spec, "foreach");
	char *err = NULL;
	struct jq_state *jq = expr ? orch_jq_compile(expr, &err) : NULL;
	jv v = jq ? orch_jq_first(jq, in) : (jv_free(in), jv_invalid_with_msg(jv_string(err ? err : "no foreach:")));
	double max = ORCH_MAX_ITEMS;
	orch_jnum(s->spec, "max_items", &max);
	if (jq)
		jq_teardown(&jq);
	free(err);
	if (!jv_is_valid(v)) {
		jv m = jv_invalid_get_msg(v);
		*msg = orch_fmt("foreach: %s: %s", expr ? expr : "(none)",
		                jv_get_kind(m) == JV_KIND_STRING ? jv_string_value(m) : "gives no value");
		jv_free(m);
		return jv_invalid();
	}
	if (jv_get_kind(v) != JV_KIND_ARRAY) {
		const char *kind = jv_kind_name(jv_get_kind(v));
		int null = jv_get_kind(v) == JV_KIND_NULL;
		char *text = preview(v);
		*msg = orch_fmt("foreach: %s gives %s%s%s, not an array", expr, kind, null ? "" : " ",
		                null ? "" : text);
		free(text);
		return jv_invalid();
	}
	int n = jv_array_length(jv_copy(v));
	if (n > max) {
		*msg = orch_fmt("foreach: %s gives %d items, more than max_items (%.0f)", expr, n, max);
		jv_free(v);
		return jv_invalid();
	}
	return v;
}

static void keys_free(struct keys *ks)
{
	for (int k = 0; k < ks->n; k++)
		free(ks->key[k]);
	free(ks->key);
}

/* The items' keys, as orch-plan makes them; 0, or -1 and *msg (two alike). */
static int item_keys(const struct step *s, jv items, struct keys *ks, char **msg)
{
	const char *kx = orch_jstr(s->spec, "key");
	char *err = NULL;
	struct jq_state *kq = kx ? orch_jq_compile(kx, &err) : NULL;
	ks->n = 0;
	ks->key = orch_xmalloc((jv_array_length(jv_copy(items)) + 1) * sizeof *ks->key);
	if (kx && !kq)
		*msg = orch_fmt("key: %s", err ? err : "cannot compile");
	free(err);
	orch_map *seen = orch_map_new((size_t)jv_array_length(jv_copy(items)));
	for (int k = 0; !*msg && k < jv_array_length(jv_copy(items)); k++) {
		ks->key[ks->n++] = orch_item_key(kq, jv_array_get(jv_copy(items), k), 0);
		long prev = orch_map_get(seen, ks->key[k]);
		char *name = orch_fmt("%s[%s]", s->name, ks->key[k]);
		if (prev >= 0)
			*msg = orch_fmt("foreach: items %ld and %d have the same key '%s'%s", prev + 1,
			                k + 1, ks->key[k], kx ? "" : ": give key:");
		else if (orch_map_get(plan.byname, name) >= 0)  /* a plan line written by hand */
			*msg = orch_fmt("foreach: item %d is %s, already a step of the plan", k + 1, name);
		else
			orch_map_put(seen, ks->key[k], k);
		free(name);
	}
	orch_map_free(seen);
	if (kq)
		jq_teardown(&kq);
	return *msg ? -1 : 0;
}

/* ---- the instances ---- */

static int released(const struct step *s)
{
	return s->st == ST_OK || s->st == ST_DONE || s->st == ST_COND;
}

/* a needs b from now on; one of them is new (from base on), so a did
 * not yet. A step before base counts a dependant more. */
static void link_need(int a, int b, int base)
{
	orch_graph_need_new(plan.graph, (size_t)a, (size_t)b);
	if (b < base)
		plan.step[b].users++;
	if (!released(&plan.step[b]))
		plan.step[a].pending++;
}

/* Step p's k-th instance, as the plan line orch-plan would write: its
 * item from items, or (items invalid) the result of plan.step[with + k]. */
static int make_instance(int p, const char *key, int k, jv items, int with)
{
	const struct step *s = &plan.step[p];
	char *name = orch_fmt("%s[%s]", s->name, key);
	jv line = jv_object_set(jv_object(), jv_string("priority"), jv_number(s->prio));
	line = jv_object_set(line, jv_string("index"), jv_number(s->index));
	line = jv_object_set(line, jv_string("group"), jv_string(s->name));
	line = jv_object_set(line, jv_string("key"), jv_string(key));
	line = jv_object_set(line, jv_string("item_index"), jv_number(k));
	line = jv_is_valid(items) ? jv_object_set(line, jv_string("item"), jv_array_get(jv_copy(items), k)) :
	       jv_object_set(line, jv_string("item_step"), jv_string(plan.step[with + k].name));
	int i = add_step(name, jv_copy(s->spec), jv_array(), line);
	struct step *t = &plan.step[i], *from = &plan.step[p];  /* moved: plan.step grew */
	t->pool = from->pool;  /* what read_plan linked, as for the step */
	t->cond = from->cond;
	t->launcher = from->launcher;
	t->cpus = from->cpus;
	t->gpus = from->gpus;
	t->mem_mb = from->mem_mb;
	t->time_s = from->time_s;
	jv_free(line);
	free(name);
	return i;
}

/* Instance i, the k-th of step p, needs what p's instances inherit
 * (keep, n of them), and of the step p pairs with the instance of its
 * key (with + k), or all of them (gather: true, nwith). */
static void link_instance(int p, int i, int k, const size_t *keep, size_t n, int with, int nwith,
                          int base)
{
	for (size_t q = 0; q < n; q++)
		link_need(i, (int)keep[q], base);
	int gather = orch_jbool(plan.step[p].spec, "gather", 0);
	for (int m = gather ? 0 : k; with >= 0 && m < (gather ? nwith : k + 1); m++)
		link_need(i, with + m, base);
}

/* p is done: its instances stand for it; released once they are made. */
static void retire(int p, int n, jv *retired)
{
	struct step *s = &plan.step[p];
	s->st = ST_OK;
	jv_free(s->result);
	s->result = jv_array();
	tally.ndone++;
	tally.nretired++;
	let_go(p);
	if (!opt.dry_run)
		emit("INFO", "fanout.expanded", s->name, jv_object_set(jv_object(), jv_string("items"), jv_number(n)));
	run.manifest_dirty = 1;
	*retired = jv_array_append(*retired, jv_number(p));
}

/* The instances of step p over ks (items, or paired with the instances
 * from plan.step[with] on), those of the steps paired with p, and the
 * dependants' needs of them. */
static void expand_into(int p, const struct keys *ks, jv items, int with, int base, jv *retired)
{
	int first = plan.n;
	size_t n, *keep = inherited(p, &n);
	for (int k = 0; k < ks->n; k++)
		make_instance(p, ks->key[k], k, items, with);
	orch_graph_grow(plan.graph, (size_t)plan.n);
	for (int k = 0; k < ks->n; k++)
		link_instance(p, first + k, k, keep, n, with, ks->n, base);
	free(keep);
	retire(p, ks->n, retired);
	for (size_t r = 0; r < orch_graph_nrdeps(plan.graph, (size_t)p); r++) {
		int q = (int)orch_graph_rdeps(plan.graph, (size_t)p)[r];
		const char *w = with_of(&plan.step[q]);
		if (plan.step[q].st != ST_WAIT)
			continue;
		if (w && strcmp(w, plan.step[p].name) == 0)
			expand_into(q, ks, jv_invalid(), first, base, retired);
		else
			for (int k = 0; k < ks->n; k++)
				link_need(q, first + k, base);
	}
}

/* The graph has grown: every step's lists, the new ones' dependants. */
static void relink(int base, int nbefore)
{
	for (int i = 0; i < plan.n; i++) {
		struct step *s = &plan.step[i];
		s->dep = orch_graph_deps(plan.graph, (size_t)i);
		s->ndep = orch_graph_ndeps(plan.graph, (size_t)i);
		s->rdep = orch_graph_rdeps(plan.graph, (size_t)i);
		s->nrdep = orch_graph_nrdeps(plan.graph, (size_t)i);
		if (i < base)
			continue;
		s->users = s->nrdep;
		jv_free(s->needs);
		s->needs = jv_array();
		for (size_t k = 0; k < s->ndep; k++)
			s->needs = jv_array_append(s->needs, jv_string(plan.step[s->dep[k]].name));
	}
	if (nbefore < opt.jobs)  /* queue.active holds min(-j, steps) */
		queue.active = orch_xrealloc(queue.active, ((opt.jobs < plan.n ? opt.jobs : plan.n) + 1) *
		                             sizeof *queue.active);
}

/* The new instances whose needs are done are ready; the steps they stand
 * for are released. */
static void start_instances(int base, jv retired)
{
	for (int i = base; i < plan.n; i++)
		if (plan.step[i].pending == 0)
			ready_step(i);
	jv_array_foreach(retired, k, p) {
		release((int)jv_number_value(p));
		(void)k;
	}
	jv_free(retired);
}

static void fail(int i, char *msg)
{
	add_active(i);
	plan.step[i].attempt = 1;
	attempt_failed(i, "foreach", msg, 0, NULL, 0);
	free(msg);
}

int expand_step(int i)
{
	if (!jv_is_valid(plan.step[i].expand))
		return 0;
	char *msg = with_of(&plan.step[i]) ? orch_fmt("foreach: %s was not expanded",
	                                              with_of(&plan.step[i])) : NULL;
	jv items = msg ? jv_invalid() : answer(i, &msg);
	struct keys ks = {0};
	if (!msg)
		item_keys(&plan.step[i], items, &ks, &msg);
	if (msg) {
		if (!with_of(&plan.step[i]))
			let_go(i);
		fail(i, msg);
	} else {
		int base = plan.n;
		jv retired = jv_array();
		expand_into(i, &ks, items, -1, base, &retired);
		relink(base, base);
		start_instances(base, retired);
	}
	keys_free(&ks);
	jv_free(items);
	return 1;
}

/* -n --resume: step i's needs would all be skipped as completed, so
 * their stored answers are known: i is expanded as it would be (1), and
 * the caller decides each instance; or it would fail, and says why. */
static int dry_expand(int i)
{
	struct step *s = &plan.step[i];
	for (size_t k = 0; k < s->ndep; k++)  /* skipped, or a dynamic step expanded so */
		if (!released(&plan.step[s->dep[k]]))
			return 0;
	char *msg = NULL;
	jv items = answer(i, &msg);
	struct keys ks = {0};
	if (!msg)
		item_keys(s, items, &ks, &msg);
	if (msg) {
		printf("%s[*]\tfail (%s)\n", s->name, msg);
		s->st = ST_FAIL;
		free(msg);
	} else {
		int base = plan.n;
		jv retired = jv_array();
		expand_into(i, &ks, items, -1, base, &retired);
		relink(base, base);
		jv_free(retired);
	}
	keys_free(&ks);
	jv_free(items);
	return 1;
}

/* -n: the step expands once its needs are done (with --resume, from their
 * stored answers if they would be skipped); its dependants wait. */
int expand_dry_run(int i)
{
	struct step *s = &plan.step[i];
	if (!jv_is_valid(s->expand))
		return 0;
	if (s->st == ST_OK || (opt.resume && !with_of(s) && dry_expand(i)))
		return 1;  /* expanded now, or with the step it pairs with */
	size_t n, *keep = with_of(s) ? NULL : inherited(i, &n);
	jv from = jv_string("");
	const char *last = "";
	for (size_t k = 0, q = 0; keep && k < s->ndep; k++) {  /* the needs not kept, by group */
		const char *g = group_name(&plan.step[s->dep[k]]);
		if (q < n && keep[q] == s->dep[k])
			q++;
		else if (strcmp(g, last) != 0) {
			from = jv_string_append_str(jv_string_append_str(from, *last ? ", " : ""), g);
			last = g;
		}
	}
	if (keep && !*jv_string_value(from))
		from = jv_string_append_str(from, "its needs");
	printf("%s[*]\texpand (%s%s%s)\n", s->name, keep ? "items from the answer of " : "with ",
	       keep ? jv_string_value(from) : with_of(s), keep ? "" : "[*]");
	jv_free(from);
	free(keep);
	s->st = ST_READY;
	return 1;
}
