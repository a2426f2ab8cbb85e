/* schema.c: a step's schema: and repair: (orch-plan(1)). A schema is a
 * JSON Schema, written inline (a YAML or JSON mapping) or named as a file
 * (`schema: report.json`, JSON, relative to the spec's folder and confined
 * to it), compiled by lib/schema.c. An invalid inline schema is a problem
 * at the node its error's JSON Pointer names; a file's, at the schema:
 * key, with the pointer in the message.
 *
 * A file's schema is read once per name and kept, parsed, until
 * schema_end: write.c writes it inline (schema_inline), so a plan line
 * holds the whole step and needs no file beside it.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include "plan.h"

static struct {
	char *dir;     /* the spec's folder, resolved */
	orch_map *at;  /* a file's name (borrowed from the tree) -> index in v */
	jv *v;         /* its schema, or invalid when it could not be used */
	size_t n, cap;
} files;

void schema_begin(const char *spec_path)
{
	const char *slash = strrchr(spec_path, '/');
	char *dir = strcmp(spec_path, "-") == 0 || !slash ? orch_xstrdup(".")
	          : orch_fmt("%.*s", (int)(slash - spec_path + 1), spec_path);
	files.dir = realpath(dir, NULL);
	free(dir);
	files.at = orch_map_new(8);
}

void schema_end(void)
{
	for (size_t i = 0; i < files.n; i++)
		jv_free(files.v[i]);
	free(files.v);
	free(files.dir);
	orch_map_free(files.at);
	memset(&files, 0, sizeof files);
}

/* A JSON Pointer's token (malloc'd) as the key it names: ~1 is '/', ~0 '~'. */
static char *unescape(char *tok)
{
	char *o = tok;
	for (const char *s = tok; *s; s++, o++) {
		*o = *s;
		if (s[0] == '~' && (s[1] == '0' || s[1] == '1'))
			*o = *++s == '1' ? '/' : '~';
	}
	*o = 0;
	return tok;
}

/* The node a JSON Pointer names in tree x: a mapping's key node for its
 * last token, so an unknown keyword is shown where it is written; the
 * deepest node found when the pointer leaves the tree. */
static const node *node_at(const node *x, const char *ptr)
{
	while (*ptr == '/' && x) {
		size_t n = strcspn(++ptr, "/");
		char *tok = unescape(orch_fmt("%.*s", (int)n, ptr));
		const node *next = NULL, *key = NULL;
		if (x->kind == N_MAP)
			for (uint32_t i = 0; i + 1 < x->n && !next; i += 2)
				if (strcmp(x->u.kids[i]->u.str, tok) == 0)
					key = x->u.kids[i], next = x->u.kids[i + 1];
		if (x->kind == N_SEQ && strtoul(tok, NULL, 10) < x->n)
			next = x->u.kids[strtoul(tok, NULL, 10)];
		free(tok);
		ptr += n;
		if (!next)
			break;
		x = *ptr ? next : key ? key : next;
	}
	return x;
}

/* Compile v (consumed): NULL, or the error ("POINTER: message"). */
static char *compile_error(jv v)
{
	char *err = NULL;
	orch_schema_free(orch_schema_new(v, &err));
	return err;
}

static void check_inline(const node *x)
{
	char *err = compile_error(to_jv(x));
	if (!err)
		return;
	size_t n = strcspn(err, ":");
	char *ptr = orch_fmt("%.*s", (int)n, err);
	problem(node_at(x, strcmp(ptr, "(root)") ? ptr : ""), "schema: %s", err);
	free(ptr);
	free(err);
}

/* The schema in file name (beside the spec, confined to its folder):
 * valid, or invalid (a problem recorded at x). */
static jv read_file(const node *x, const char *name)
{
	char *path = orch_fmt("%s/%s", files.dir ? files.dir : ".", name);
	char *real = realpath(path, NULL), *err = NULL, *text = NULL;
	size_t dl = files.dir ? strlen(files.dir) : 0, len;
	jv v = jv_invalid();
	if (name[0] == '/' || !files.dir)
		problem(x, "schema: '%s': must be a file in the spec's folder", name);
	else if (!real)
		problem(x, "schema: cannot read %s", name);
	else if (strncmp(real, files.dir, dl) || (real[dl] != '/' && dl > 1))
		problem(x, "schema: '%s' is outside the spec's folder", name);
	else if (!(text = orch_slurp(real, &len)))
		problem(x, "schema: cannot read %s", name);
	else if (!jv_is_valid(v = jv_parse_sized(text, (int)len))) {
		jv msg = jv_invalid_get_msg(v);
		problem(x, "schema: %s: not JSON: %s", name, jv_string_value(msg));
		jv_free(msg);
		v = jv_invalid();
	} else if ((err = compile_error(jv_copy(v)))) {
		problem(x, "schema: %s: %s", name, err);
		jv_free(v);
		v = jv_invalid();
	}
	free(err);
	free(text);
	free(real);
	free(path);
	return v;
}

static void check_file(const node *x)
{
	const char *name = sval(x);
	if (orch_map_get(files.at, name) >= 0)
		return;  /* read, and reported if need be, once per name */
	if (files.n == files.cap)
		files.v = orch_xrealloc(files.v, (files.cap = 2 * files.cap + 4) * sizeof *files.v);
	files.v[files.n] = read_file(x, name);
	orch_map_put(files.at, name, files.n++);
}

void check_schema(const node *step)
{
	const node *s = get(step, "schema"), *r = get(step, "repair");
	if (s && !get(step, "prompt"))
		problem(s, "'schema' is for a step with 'prompt': an answer to check");
	if (r && !s)
		problem(r, "'repair' needs a 'schema'");
	if (!s)
		return;
	if (s->kind == N_MAP)
		check_inline(s);
	else if (s->kind == N_SCALAR && scalar_kind(s) == JV_KIND_STRING)
		check_file(s);
	else if (s->kind == N_SCALAR && scalar_kind(s) == JV_KIND_TRUE)
		;  /* true: any JSON value */
	else
		problem(s, "'schema' must be a mapping (a JSON Schema) or a file name, not %s",
		        kind_name(s));
}

jv schema_inline(const node *x)
{
	long i = x->kind == N_SCALAR ? orch_map_get(files.at, sval(x)) : -1;
	return i >= 0 ? jv_copy(files.v[i]) : to_jv(x);
}
