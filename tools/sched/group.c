/* group.c: fan-out instances (CONTRACT §9, orch-plan(1) FOREACH).
 *
 * orch-plan writes one plan line per instance, "<step>[<key>]", with
 * "group" (the step), "key", "item_index", and its item: "item" as it is,
 * plus "item_file" for a glob item (its text is read into item.content
 * when the instance is ready, not before: 3,000 documents are not all held
 * at once), or "item_step" for a paired instance (its item is that
 * instance's result). The item, as loaded, is part of the instance's
 * spec_hash (resume.c), so an edited file reruns its instance. A
 * dependant's input record has .steps.<group> as the array of the results
 * of the instances it needs, in item order; an instance's own has .item
 * and .key. Assumes the plan is checked: item_step names a need.
 */
#include <stdlib.h>
#include <string.h>
#include "orch.h"
#include "sched.h"

/* The line's instance fields (consumed: line is borrowed), or invalid. */
jv group_of_line(jv line)
{
	jv g = orch_jget(line, "group");
	if (jv_get_kind(g) != JV_KIND_STRING) {
		jv_free(g);
		return jv_invalid();
	}
	static const char *const keys[] = {"key", "item_index", "item", "item_file", "item_step"};
	jv inst = jv_object_set(jv_object(), jv_string("group"), g);
	for (size_t k = 0; k < sizeof keys / sizeof *keys; k++) {
		jv v = orch_jget(line, keys[k]);
		if (jv_get_kind(v) == JV_KIND_NULL && k > 2)
			jv_free(v);
		else
			inst = jv_object_set(inst, jv_string(keys[k]), v);
	}
	return inst;
}

/* spec (consumed), or the same spec the instance before this one has
 * (shared, not held once per instance: 100,000 of them are read). */
jv group_spec_shared(jv spec, jv line)
{
	if (plan.n == 0 || !jv_is_valid(plan.step[plan.n - 1].inst))
		return spec;
	jv g = orch_jget(line, "group"), prev = plan.step[plan.n - 1].spec;
	int same = jv_get_kind(g) == JV_KIND_STRING &&
	           jv_equal(jv_copy(g), orch_jget(plan.step[plan.n - 1].inst, "group")) &&
	           jv_equal(jv_copy(prev), jv_copy(spec));
	jv_free(g);
	if (!same)
		return spec;
	jv_free(spec);
	return jv_copy(prev);
}

/* The need of s whose result is its item (item_step), or NULL. */
static struct step *item_step(const struct step *s)
{
	const char *name = orch_jstr(s->inst, "item_step");
	long j = name ? orch_map_get(plan.byname, name) : -1;
	return j < 0 ? NULL : &plan.step[j];
}

/* The item with its file's text as content (null if it cannot be read). */
static jv with_content(jv item, const char *file)
{
	size_t n;
	char *text = orch_slurp(file, &n);
	if (!text)
		orch_err_sys("cannot read %s", file);
	jv c = text && !memchr(text, 0, n) ? jv_string_sized(text, (int)n) : jv_null();
	free(text);
	if (jv_get_kind(item) != JV_KIND_OBJECT)
		item = (jv_free(item), jv_object());
	return jv_object_set(item, jv_string("content"), c);
}

/* s is ready: its item as it will see it, in s->item. */
void group_load_item(struct step *s)
{
	jv_free(s->item);
	s->item = jv_invalid();
	if (!jv_is_valid(s->inst))
		return;
	const struct step *d = item_step(s);
	const char *file = orch_jstr(s->inst, "item_file");
	if (d)
		s->item = d->st == ST_OK || d->st == ST_DONE ? jv_copy(d->result) : jv_null();
	else if (file)
		s->item = with_content(orch_jget(s->inst, "item"), file);
	else
		s->item = orch_jget(s->inst, "item");
}

/* s's spec (consumed) as its spec_hash has it: an instance is asked to do
 * its item, not to know the list (foreach:, max_items:, gather:, key: go,
 * the item is hashed instead), so a reordered or longer list reruns none. */
jv group_spec(const struct step *s, jv spec)
{
	static const char *const fan[] = {"foreach", "max_items", "gather", "key"};
	for (size_t k = 0; jv_is_valid(s->inst) && k < sizeof fan / sizeof *fan; k++)
		spec = jv_object_delete(spec, jv_string(fan[k]));
	return spec;
}

/* .item and .key into s's input record in. */
jv group_input(struct step *s, jv in)
{
	if (!jv_is_valid(s->inst))
		return in;
	in = jv_object_set(in, jv_string("item"), jv_is_valid(s->item) ? jv_copy(s->item) : jv_null());
	return jv_object_set(in, jv_string("key"), orch_jget(s->inst, "key"));
}

/* d's result r into steps: by d's name, or appended to its group's array
 * (a need's instances come in item order: orch-plan lists them so). */
jv group_put(jv steps, const struct step *d, jv r)
{
	const char *g = jv_is_valid(d->inst) ? orch_jstr(d->inst, "group") : NULL;
	if (!g)
		return jv_object_set(steps, jv_string(d->name), r);
	jv a = jv_object_get(jv_copy(steps), jv_string(g));
	steps = jv_object_set(steps, jv_string(g), jv_null());  /* a unshared: no O(n) copy */
	if (jv_get_kind(a) != JV_KIND_ARRAY)
		a = (jv_free(a), jv_array());
	return jv_object_set(steps, jv_string(g), jv_array_append(a, r));
}
