/* libFuzzer harness for orch-plan's spec reader, checks and plan writer:
 * the whole of orch-plan.c, with main renamed, fed each input as a spec.
 * Plan lines are written from the tree, not built as jv; here each plan is
 * also built the plain way, as jv lines from to_jv and merge_provider
 * (jq's defaults + step), and printed by libjq's own jv_dump_string: the
 * two must be the same bytes. */
#define main orch_plan_main
#include "../../tools/orch-plan.c"
#undef main

static jv jv_spec(const struct step *s, jv job)
{
	jv spec = to_jv(s->x);
	spec = jv_object_set(spec, jv_string("id"), jv_string(s->id));
	jv needs = jv_array();
	for (size_t q = 0; q < nneeds(s); q++)
		needs = jv_array_append(needs, jv_string(steps[needs(s)[q]].id));
	spec = jv_object_set(spec, jv_string("needs"), needs);
	jv defaults = jv_object_get(jv_copy(job), jv_string("defaults"));
	if (jv_get_kind(defaults) == JV_KIND_OBJECT)
		spec = jv_object_merge(defaults, spec);
	else
		jv_free(defaults);
	jv prov = merge_provider(jv_object_get(jv_copy(job), jv_string("provider")),
	                         provider_jv(get(s->x, "provider")));
	if (jv_is_valid(prov))
		spec = jv_object_set(spec, jv_string("provider"), prov);
	else
		jv_free(prov);
	return spec;
}

static jv jv_line(const struct step *s, size_t index, jv job)
{
	jv spec = jv_spec(s, job);
	double given;
	long prio = orch_jnum(spec, "priority", &given) ? (long)given : s->prio;
	jv line = jv_object_set(jv_object(), jv_string("step"), jv_string(s->id));
	line = jv_object_set(line, jv_string("needs"), jv_object_get(jv_copy(spec), jv_string("needs")));
	line = jv_object_set(line, jv_string("wave"), jv_number(s->wave));
	line = jv_object_set(line, jv_string("priority"), jv_number(prio));
	line = jv_object_set(line, jv_string("index"), jv_number(index));
	line = jv_object_set(line, jv_string("job"), jv_copy(job));
	return jv_object_set(line, jv_string("spec"), spec);
}

static int print_both(const node *root, const size_t *order, jv job)
{
	char *out = NULL;
	size_t len = 0;
	FILE *mem = open_memstream(&out, &len), *real = stdout;
	if (!mem)
		abort();
	stdout = mem;
	int rc = print_plan(root, order, job);
	fclose(mem);
	stdout = real;
	size_t at = 0;
	for (size_t k = 0; k < nsteps; k++) {
		jv want = jv_dump_string(jv_line(&steps[order[k]], order[k], job), 0);
		const char *w = jv_string_value(want), *nl = memchr(out + at, '\n', len - at);
		size_t n = strlen(w), have = nl ? (size_t)(nl - (out + at)) : len - at;
		if (!nl || have != n || memcmp(out + at, w, n) != 0) {
			fprintf(stderr, "plan line: %.*s\njv's line: %s\n", (int)have, out + at, w);
			abort();
		}
		at += n + 1;
		jv_free(want);
	}
	if (at != len) {
		fprintf(stderr, "plan: %zu bytes after the last line\n", len - at);
		abort();
	}
	free(out);
	return rc;
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	char *text = orch_xmalloc(size + 1);
	memcpy(text, data, size);
	text[size] = 0;
	check_jq = size < 512;  /* jq's compiler is slow: fuzz it on small inputs */
	plan_printer = print_both;
	plan(text, size, "<fuzz>", 'p');
	free(text);
	return 0;
}
