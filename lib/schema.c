/* schema.c: a JSON Schema validator over jv (Debian offers no C one).
 *
 * A schema is compiled once into a tree of nodes (one per subschema, each
 * keyword checked and its regular expression compiled), then validates any
 * number of values without allocating on the happy path. Keywords: draft
 * 2020-12's names and draft 7's spellings (definitions, array-form items
 * with additionalItems); the list is kw[] below and orch-check(1). Any
 * other keyword is refused when compiling, with its JSON Pointer: a typo
 * such as "requried" would otherwise check nothing, silently.
 *
 * Assumptions and choices:
 *  - $ref is local: "#" or "#/json/pointer" (with ~0 ~1 and %-escapes)
 *    into this document; its siblings apply too (2020-12, not draft 7).
 *    Refs are resolved after the whole tree is compiled, so cycles are
 *    fine; a chain of refs that never descends into the value (as
 *    {"$ref": "#"} at the root) is cut after REF_DEPTH with an error.
 *  - pattern is Oniguruma's Perl syntax over UTF-8 (what libjq links),
 *    unanchored as the spec says ($ also matches before a final newline,
 *    as in Perl and jq, not ECMAScript); format is an annotation only.
 *  - equality (enum, const, uniqueItems) is libjq's: 1 == 1.0, object key
 *    order irrelevant; lengths count code points.
 *  - an error names the value by JSON Pointer, built only when an error
 *    is reported; with errs NULL the check stops at the first error.
 */
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <oniguruma.h>
#include "orch.h"

#define REF_DEPTH 64

enum { T_NULL = 1, T_BOOLEAN = 2, T_OBJECT = 4, T_ARRAY = 8, T_NUMBER = 16,
       T_STRING = 32, T_INTEGER = 64 };
static const char *const type_names[] = {"null", "boolean", "object", "array",
                                         "number", "string", "integer"};
/* which numeric bounds a node has */
enum { H_MIN = 1, H_MAX = 2, H_XMIN = 4, H_XMAX = 8, H_MULT = 16 };

struct node;
struct list { struct node **v; int n; };
struct prop { char *name; struct node *schema; int required; };
struct pat { OnigRegex re; struct node *schema; };

struct node {
	int never;                 /* the schema false */
	unsigned types;            /* T_* bits; 0: any */
	jv enums, konst;           /* jv_invalid() when absent */
	struct prop *props;        /* properties, then required-only names */
	int nprops, nrequired;
	orch_map *names;           /* name -> index in props */
	struct pat *pats;          /* patternProperties */
	int npats;
	struct node *additional;   /* additionalProperties */
	struct node *names_schema; /* propertyNames */
	long min_props, max_props; /* -1: absent */
	struct list prefix;        /* prefixItems, or draft 7's items array */
	int tuple;                 /* items was an array: additionalItems follows */
	struct node *items, *more; /* items (schema form), additionalItems */
	struct node *contains;
	long min_items, max_items, min_len, max_len;  /* -1: absent */
	int unique;
	OnigRegex pattern;
	char *pattern_src;
	unsigned has;              /* H_* */
	double min, max, xmin, xmax, mult;
	struct list all, any, one;
	struct node *not, *if_, *then, *else_;
	char *ref;                 /* the JSON Pointer of $ref, until resolved */
	struct node *target;
};

struct orch_schema {
	jv root;
	struct node **nodes;       /* every node, in compile order */
	char **paths;              /* nodes[i]'s JSON Pointer (the map's keys) */
	size_t n, cap;
	orch_map *at;              /* JSON Pointer -> index in nodes */
};

/* ---- compiling ------------------------------------------------------- */

struct cc { orch_schema *s; jv path; char *err; };

static int bad(struct cc *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int bad(struct cc *c, const char *fmt, ...)
{
	char *msg;
	va_list ap;
	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		orch_die(EX_FAIL, "out of memory");
	va_end(ap);
	const char *p = jv_string_value(c->path);
	free(c->err);
	c->err = orch_fmt("%s: %s", *p ? p : "(root)", msg);
	free(msg);
	return -1;
}

/* Append one reference token to a JSON Pointer (consumed), escaped. */
static jv pointer_push(jv path, const char *tok, size_t len)
{
	path = jv_string_append_str(path, "/");
	for (size_t i = 0; i < len; i++) {
		const char *e = tok[i] == '~' ? "~0" : tok[i] == '/' ? "~1" : NULL;
		path = e ? jv_string_append_str(path, e) : jv_string_append_buf(path, tok + i, 1);
	}
	return path;
}

static struct node *new_node(struct cc *c)
{
	orch_schema *s = c->s;
	if (s->n == s->cap) {
		s->cap = s->cap ? 2 * s->cap : 16;
		s->nodes = orch_xrealloc(s->nodes, s->cap * sizeof *s->nodes);
		s->paths = orch_xrealloc(s->paths, s->cap * sizeof *s->paths);
	}
	struct node *n = calloc(1, sizeof *n);
	if (!n)
		orch_die(EX_FAIL, "out of memory");
	n->enums = n->konst = jv_invalid();
	n->min_items = n->max_items = n->min_len = n->max_len = -1;
	n->min_props = n->max_props = -1;
	s->paths[s->n] = orch_xstrdup(jv_string_value(c->path));
	orch_map_put(s->at, s->paths[s->n], (long)s->n);
	s->nodes[s->n++] = n;
	return n;
}

static struct node *compile(struct cc *c, jv sch);

/* The subschema sch (borrowed) at the path's token tok. */
static struct node *compile_sub(struct cc *c, jv sch, const char *tok, size_t len)
{
	jv up = jv_copy(c->path);
	c->path = pointer_push(c->path, tok, len);
	struct node *n = compile(c, jv_copy(sch));
	jv_free(c->path);
	c->path = up;
	return n;
}

static struct node *compile_at(struct cc *c, jv sch, long i)
{
	char tok[24];
	int len = snprintf(tok, sizeof tok, "%ld", i);
	return compile_sub(c, sch, tok, len);
}

/* A non-empty array of schemas (allOf, anyOf, oneOf, prefixItems). */
static int compile_list(struct cc *c, jv v, struct list *l)
{
	if (jv_get_kind(v) != JV_KIND_ARRAY || jv_array_length(jv_copy(v)) == 0)
		return bad(c, "must be a non-empty array of schemas");
	l->n = jv_array_length(jv_copy(v));
	l->v = orch_xmalloc(l->n * sizeof *l->v);
	int rc = 0;
	jv_array_foreach(v, i, e) {
		l->v[i] = rc ? NULL : compile_at(c, e, i);
		rc = rc || !l->v[i] ? -1 : 0;
		jv_free(e);
	}
	return rc;
}

/* A count (minItems...): a non-negative integer. */
static int count_of(struct cc *c, jv v, long *out)
{
	double d = jv_get_kind(v) == JV_KIND_NUMBER ? jv_number_value(v) : -1;
	if (d < 0 || d != floor(d) || d > 1e15)
		return bad(c, "must be a non-negative integer");
	*out = (long)d;
	return 0;
}

static int number_of(struct cc *c, jv v, double *out, unsigned *has, unsigned bit)
{
	if (jv_get_kind(v) != JV_KIND_NUMBER)
		return bad(c, "must be a number");
	*out = jv_number_value(v);
	*has |= bit;
	return 0;
}

static int compile_re(struct cc *c, jv v, OnigRegex *re)
{
	if (jv_get_kind(v) != JV_KIND_STRING)
		return bad(c, "must be a regular expression (a string)");
	const UChar *p = (const UChar *)jv_string_value(v);
	OnigErrorInfo info;
	int r = onig_new(re, p, p + jv_string_length_bytes(jv_copy(v)), ONIG_OPTION_CAPTURE_GROUP,
	                 ONIG_ENCODING_UTF8, ONIG_SYNTAX_PERL_NG, &info);
	if (r == ONIG_NORMAL)
		return 0;
	*re = NULL;
	UChar msg[ONIG_MAX_ERROR_MESSAGE_LEN];
	onig_error_code_to_str(msg, r, &info);
	return bad(c, "invalid regular expression: %s", (char *)msg);
}

/* a keyword whose value is one schema */
static int sub_schema(struct cc *c, jv v, struct node **out)
{
	return (*out = compile(c, jv_copy(v))) ? 0 : -1;
}

/* ---- one function per keyword (val borrowed; path ends at the keyword) */

static int add_type(struct cc *c, struct node *n, jv name)
{
	for (unsigned i = 0; i < sizeof type_names / sizeof *type_names; i++)
		if (jv_get_kind(name) == JV_KIND_STRING && !strcmp(jv_string_value(name), type_names[i])) {
			if (n->types & 1u << i)
				return bad(c, "type \"%s\" given twice", type_names[i]);
			n->types |= 1u << i;
			return 0;
		}
	if (jv_get_kind(name) != JV_KIND_STRING)
		return bad(c, "must be a type name or an array of them");
	return bad(c, "\"%s\" is not a type (null, boolean, object, array, number, string, integer)",
	           jv_string_value(name));
}

static int kw_type(struct cc *c, struct node *n, jv v)
{
	if (jv_get_kind(v) != JV_KIND_ARRAY)
		return add_type(c, n, v);
	int rc = 0;
	jv_array_foreach(v, i, t) {
		rc = rc ? rc : add_type(c, n, t);
		jv_free(t);
	}
	return rc;
}

static int kw_enum(struct cc *c, struct node *n, jv v)
{
	if (jv_get_kind(v) != JV_KIND_ARRAY)
		return bad(c, "must be an array");
	n->enums = jv_copy(v);
	return 0;
}

static int kw_const(struct cc *c, struct node *n, jv v)
{
	(void)c;
	n->konst = jv_copy(v);
	return 0;
}

/* properties and required share one table: each name once, in the map. */
static struct prop *prop_of(struct node *n, const char *name)
{
	if (!n->names)
		n->names = orch_map_new(8);
	long i = orch_map_get(n->names, name);
	if (i >= 0)
		return &n->props[i];
	n->props = orch_xrealloc(n->props, (n->nprops + 1) * sizeof *n->props);
	struct prop *p = &n->props[n->nprops];
	*p = (struct prop){orch_xstrdup(name), NULL, 0};
	orch_map_put(n->names, p->name, n->nprops++);
	return p;
}

/* An object of schemas (properties, $defs): each compiled; with props,
 * each is the schema of that property of props. */
static int compile_members(struct cc *c, jv v, struct node *props)
{
	if (jv_get_kind(v) != JV_KIND_OBJECT)
		return bad(c, "must be an object of schemas");
	int rc = 0;
	jv_object_foreach(v, k, sch) {
		const char *name = jv_string_value(k);
		if (!rc && strlen(name) != (size_t)jv_string_length_bytes(jv_copy(k)))
			rc = bad(c, "a property name holds a NUL byte");
		struct node *sub = rc ? NULL : compile_sub(c, sch, name, strlen(name));
		if (sub && props)
			prop_of(props, name)->schema = sub;
		rc = sub ? rc : -1;
		jv_free(k);
		jv_free(sch);
	}
	return rc;
}

static int kw_required(struct cc *c, struct node *n, jv v)
{
	if (jv_get_kind(v) != JV_KIND_ARRAY)
		return bad(c, "must be an array of property names");
	int rc = 0;
	jv_array_foreach(v, i, k) {
		if (rc || jv_get_kind(k) != JV_KIND_STRING)
			rc = rc ? rc : bad(c, "item %d is not a string", i);
		else if (prop_of(n, jv_string_value(k))->required++)
			rc = bad(c, "\"%s\" is listed twice", jv_string_value(k));
		else
			n->nrequired++;
		jv_free(k);
	}
	return rc;
}

static int kw_pattern_properties(struct cc *c, struct node *n, jv v)
{
	if (jv_get_kind(v) != JV_KIND_OBJECT)
		return bad(c, "must be an object of schemas");
	n->pats = orch_xmalloc(jv_object_length(jv_copy(v)) * sizeof *n->pats);
	int rc = 0;
	jv_object_foreach(v, k, sch) {
		const char *src = jv_string_value(k);
		struct pat *p = &n->pats[n->npats];
		if (!rc) {
			jv up = jv_copy(c->path);
			c->path = pointer_push(c->path, src, strlen(src));
			rc = compile_re(c, k, &p->re);
			jv_free(c->path);
			c->path = up;
		}
		if (!rc) {
			n->npats++;
			p->schema = compile_sub(c, sch, src, strlen(src));
			rc = p->schema ? 0 : -1;
		}
		jv_free(k);
		jv_free(sch);
	}
	return rc;
}

static int kw_additional_properties(struct cc *c, struct node *n, jv v)
{
	return sub_schema(c, v, &n->additional);
}

static int kw_property_names(struct cc *c, struct node *n, jv v) { return sub_schema(c, v, &n->names_schema); }
static int kw_min_props(struct cc *c, struct node *n, jv v) { return count_of(c, v, &n->min_props); }
static int kw_max_props(struct cc *c, struct node *n, jv v) { return count_of(c, v, &n->max_props); }
static int kw_contains(struct cc *c, struct node *n, jv v) { return sub_schema(c, v, &n->contains); }
static int kw_if(struct cc *c, struct node *n, jv v) { return sub_schema(c, v, &n->if_); }
static int kw_then(struct cc *c, struct node *n, jv v) { return sub_schema(c, v, &n->then); }
static int kw_else(struct cc *c, struct node *n, jv v) { return sub_schema(c, v, &n->else_); }

static int kw_items(struct cc *c, struct node *n, jv v)
{
	if (jv_get_kind(v) != JV_KIND_ARRAY)
		return sub_schema(c, v, &n->items);
	if (n->prefix.v)
		return bad(c, "an array of items with prefixItems: use items for the rest");
	n->tuple = 1;
	return compile_list(c, v, &n->prefix);
}

static int kw_prefix_items(struct cc *c, struct node *n, jv v)
{
	if (n->tuple)
		return bad(c, "prefixItems with an array of items: use items for the rest");
	return compile_list(c, v, &n->prefix);
}

static int kw_additional_items(struct cc *c, struct node *n, jv v)
{
	return sub_schema(c, v, &n->more);
}

static int kw_min_items(struct cc *c, struct node *n, jv v) { return count_of(c, v, &n->min_items); }
static int kw_max_items(struct cc *c, struct node *n, jv v) { return count_of(c, v, &n->max_items); }
static int kw_min_length(struct cc *c, struct node *n, jv v) { return count_of(c, v, &n->min_len); }
static int kw_max_length(struct cc *c, struct node *n, jv v) { return count_of(c, v, &n->max_len); }

static int kw_unique_items(struct cc *c, struct node *n, jv v)
{
	jv_kind k = jv_get_kind(v);
	if (k != JV_KIND_TRUE && k != JV_KIND_FALSE)
		return bad(c, "must be true or false");
	n->unique = k == JV_KIND_TRUE;
	return 0;
}

static int kw_pattern(struct cc *c, struct node *n, jv v)
{
	if (compile_re(c, v, &n->pattern) < 0)
		return -1;
	n->pattern_src = orch_xstrdup(jv_string_value(v));
	return 0;
}

static int kw_minimum(struct cc *c, struct node *n, jv v) { return number_of(c, v, &n->min, &n->has, H_MIN); }
static int kw_maximum(struct cc *c, struct node *n, jv v) { return number_of(c, v, &n->max, &n->has, H_MAX); }
static int kw_xminimum(struct cc *c, struct node *n, jv v) { return number_of(c, v, &n->xmin, &n->has, H_XMIN); }
static int kw_xmaximum(struct cc *c, struct node *n, jv v) { return number_of(c, v, &n->xmax, &n->has, H_XMAX); }

static int kw_multiple_of(struct cc *c, struct node *n, jv v)
{
	if (number_of(c, v, &n->mult, &n->has, H_MULT) < 0)
		return -1;
	return n->mult > 0 ? 0 : bad(c, "must be greater than 0");
}

static int kw_all_of(struct cc *c, struct node *n, jv v) { return compile_list(c, v, &n->all); }
static int kw_any_of(struct cc *c, struct node *n, jv v) { return compile_list(c, v, &n->any); }
static int kw_one_of(struct cc *c, struct node *n, jv v) { return compile_list(c, v, &n->one); }

static int kw_not(struct cc *c, struct node *n, jv v)
{
	return sub_schema(c, v, &n->not);
}

static int hexval(char h)
{
	return h >= '0' && h <= '9' ? h - '0' : h >= 'a' && h <= 'f' ? h - 'a' + 10 :
	       h >= 'A' && h <= 'F' ? h - 'A' + 10 : -1;
}

static int kw_ref(struct cc *c, struct node *n, jv v)
{
	const char *r = jv_get_kind(v) == JV_KIND_STRING ? jv_string_value(v) : NULL;
	if (!r || r[0] != '#' || (r[1] && r[1] != '/'))
		return bad(c, "only local references are supported: \"#\" or \"#/json/pointer\"");
	char *p = n->ref = orch_xstrdup(r + 1);  /* the fragment, %-decoded */
	for (const char *q = r + 1; *q; q++) {
		if (*q == '%' && hexval(q[1]) >= 0 && hexval(q[2]) >= 0) {
			*p++ = (char)(hexval(q[1]) * 16 + hexval(q[2]));
			q += 2;
		} else
			*p++ = *q;
	}
	*p = 0;
	return 0;
}

static int kw_properties(struct cc *c, struct node *n, jv v) { return compile_members(c, v, n); }
static int kw_defs(struct cc *c, struct node *n, jv v) { (void)n; return compile_members(c, v, NULL); }

static int kw_string(struct cc *c, struct node *n, jv v)
{
	(void)n;
	return jv_get_kind(v) == JV_KIND_STRING ? 0 : bad(c, "must be a string");
}

static int kw_root_only(struct cc *c, struct node *n, jv v)
{
	if (strchr(jv_string_value(c->path) + 1, '/'))  /* not "/$id" */
		return bad(c, "only supported at the root of the schema");
	return kw_string(c, n, v);
}

static int kw_annotation(struct cc *c, struct node *n, jv v)
{
	(void)c, (void)n, (void)v;
	return 0;
}

static const struct kw {
	const char *name;
	int (*fn)(struct cc *, struct node *, jv);
} kws[] = {
	{"type", kw_type}, {"enum", kw_enum}, {"const", kw_const},
	{"properties", kw_properties}, {"required", kw_required},
	{"patternProperties", kw_pattern_properties},
	{"additionalProperties", kw_additional_properties},
	{"propertyNames", kw_property_names},
	{"minProperties", kw_min_props}, {"maxProperties", kw_max_props},
	{"items", kw_items}, {"prefixItems", kw_prefix_items},
	{"additionalItems", kw_additional_items},
	{"minItems", kw_min_items}, {"maxItems", kw_max_items},
	{"uniqueItems", kw_unique_items}, {"contains", kw_contains},
	{"minLength", kw_min_length}, {"maxLength", kw_max_length},
	{"pattern", kw_pattern},
	{"minimum", kw_minimum}, {"maximum", kw_maximum},
	{"exclusiveMinimum", kw_xminimum}, {"exclusiveMaximum", kw_xmaximum},
	{"multipleOf", kw_multiple_of},
	{"allOf", kw_all_of}, {"anyOf", kw_any_of}, {"oneOf", kw_one_of},
	{"not", kw_not}, {"if", kw_if}, {"then", kw_then}, {"else", kw_else},
	{"$ref", kw_ref},
	{"$defs", kw_defs}, {"definitions", kw_defs},
	{"format", kw_string}, {"title", kw_string}, {"description", kw_string},
	{"$comment", kw_string}, {"$schema", kw_root_only}, {"$id", kw_root_only},
	{"default", kw_annotation}, {"examples", kw_annotation},
};

static int keyword(struct cc *c, struct node *n, jv k, jv v)
{
	const char *name = jv_string_value(k);
	size_t i = 0;
	while (i < sizeof kws / sizeof *kws && strcmp(name, kws[i].name))
		i++;
	jv up = jv_copy(c->path);
	c->path = pointer_push(c->path, name, strlen(name));
	int rc = i < sizeof kws / sizeof *kws ? kws[i].fn(c, n, v) :
	         bad(c, "unknown keyword \"%s\"", name);
	jv_free(c->path);
	c->path = up;
	return rc;
}

/* Compile sch (consumed) at c->path; NULL with c->err set if invalid. */
static struct node *compile(struct cc *c, jv sch)
{
	jv_kind kind = jv_get_kind(sch);
	if (kind != JV_KIND_OBJECT && kind != JV_KIND_TRUE && kind != JV_KIND_FALSE) {
		jv_free(sch);
		bad(c, "a schema must be an object, true or false");
		return NULL;
	}
	struct node *n = new_node(c);
	n->never = kind == JV_KIND_FALSE;
	int rc = 0;
	if (kind == JV_KIND_OBJECT)
		jv_object_foreach(sch, k, v) {
			rc = rc ? rc : keyword(c, n, k, v);
			jv_free(k);
			jv_free(v);
		}
	jv_free(sch);
	return rc ? NULL : n;
}

/* The value at a JSON Pointer (already %-decoded) into root (borrowed). */
static jv resolve(jv root, const char *ptr)
{
	jv v = jv_copy(root);
	while (*ptr == '/' && jv_is_valid(v)) {
		size_t len = strcspn(++ptr, "/");
		jv tok = jv_string("");
		for (size_t i = 0; i < len; i++) {
			const char *ch = ptr + i;
			if (ptr[i] == '~' && (ptr[i + 1] == '0' || ptr[i + 1] == '1'))
				ch = ptr[++i] == '0' ? "~" : "/";
			tok = jv_string_append_buf(tok, ch, 1);
		}
		ptr += len;
		const char *t = jv_string_value(tok);
		char *end;
		long i = strtol(t, &end, 10);
		if (jv_get_kind(v) == JV_KIND_ARRAY && *t && !*end && i >= 0)
			v = jv_array_get(v, (int)i);
		else if (jv_get_kind(v) == JV_KIND_OBJECT &&
		         jv_object_has(jv_copy(v), jv_copy(tok)))
			v = jv_object_get(v, jv_copy(tok));
		else
			v = (jv_free(v), jv_invalid());
		jv_free(tok);
	}
	return *ptr ? (jv_free(v), jv_invalid()) : v;
}

/* Point every $ref at its node, compiling targets that no keyword
 * reached (a ref into an unusual place). New nodes join the walk. */
static int resolve_refs(struct cc *c)
{
	orch_schema *s = c->s;
	for (size_t i = 0; i < s->n; i++) {
		struct node *n = s->nodes[i];
		if (!n->ref)
			continue;
		long at = orch_map_get(s->at, n->ref);
		if (at < 0) {
			jv target = resolve(s->root, n->ref);
			jv_free(c->path);
			c->path = jv_string(s->paths[i]);
			if (!jv_is_valid(target)) {
				jv_free(target);
				return bad(c, "$ref \"#%s\" points to nothing", n->ref);
			}
			jv_free(c->path);
			c->path = jv_string(n->ref);
			if (!compile(c, target))
				return -1;
			at = orch_map_get(s->at, n->ref);
		}
		n->target = s->nodes[at];
		free(n->ref);
		n->ref = NULL;
	}
	return 0;
}

orch_schema *orch_schema_new(jv schema, char **err)
{
	orch_schema *s = calloc(1, sizeof *s);
	if (!s)
		orch_die(EX_FAIL, "out of memory");
	s->root = schema;
	s->at = orch_map_new(64);
	struct cc c = {s, jv_string(""), NULL};
	if (!compile(&c, jv_copy(schema)) || resolve_refs(&c) < 0) {
		orch_schema_free(s);
		s = NULL;
	}
	jv_free(c.path);
	if (err)
		*err = c.err;
	else
		free(c.err);
	return s;
}

static void free_node(struct node *n)
{
	jv_free(n->enums);
	jv_free(n->konst);
	for (int i = 0; i < n->nprops; i++)
		free(n->props[i].name);
	free(n->props);
	orch_map_free(n->names);
	for (int i = 0; i < n->npats; i++)
		onig_free(n->pats[i].re);
	free(n->pats);
	free(n->prefix.v);
	if (n->pattern)
		onig_free(n->pattern);
	free(n->pattern_src);
	free(n->all.v);
	free(n->any.v);
	free(n->one.v);
	free(n->ref);
	free(n);
}

void orch_schema_free(orch_schema *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++) {
		free_node(s->nodes[i]);
		free(s->paths[i]);
	}
	free(s->nodes);
	free(s->paths);
	orch_map_free(s->at);
	jv_free(s->root);
	free(s);
}

/* ---- validating ------------------------------------------------------
 * check() returns the number of errors found in v (borrowed) against n.
 * Where the value is, is a chain of struct at on the C stack, turned into
 * a JSON Pointer only for an error. refs counts the $refs followed since
 * the check last descended into the value. */

struct at { const struct at *up; const char *key; size_t klen; long idx; };
struct vc { jv *errs; };  /* errs NULL: stop at the first error */

#define STOP(c, e) ((e) && !(c)->errs)

static jv pointer_of(jv p, const struct at *at)
{
	if (!at)
		return p;
	p = pointer_of(p, at->up);
	if (at->key)
		return pointer_push(p, at->key, at->klen);
	char tok[24];
	return pointer_push(p, tok, snprintf(tok, sizeof tok, "%ld", at->idx));
}

static int fail(struct vc *c, const struct at *at, const char *kw, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int fail(struct vc *c, const struct at *at, const char *kw, const char *fmt, ...)
{
	if (!c->errs)
		return 1;
	char *msg;
	va_list ap;
	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		orch_die(EX_FAIL, "out of memory");
	va_end(ap);
	jv e = jv_object();
	e = jv_object_set(e, jv_string("path"), pointer_of(jv_string(""), at));
	e = jv_object_set(e, jv_string("keyword"), jv_string(kw));
	e = jv_object_set(e, jv_string("message"), jv_string(msg));
	*c->errs = jv_array_append(*c->errs, e);
	free(msg);
	return 1;
}

/* v (borrowed) as compact JSON, cut short for a message; malloc'd */
static char *shown(jv v)
{
	size_t len;
	char *s = orch_json_text(jv_copy(v), &len);
	if (len > 120)
		strcpy(s + 100, "...");
	return s;
}

static int check(struct vc *c, const struct node *n, jv v, const struct at *at, int refs);

static int type_matches(unsigned types, jv v)
{
	switch (jv_get_kind(v)) {
	case JV_KIND_NULL: return types & T_NULL;
	case JV_KIND_TRUE: case JV_KIND_FALSE: return types & T_BOOLEAN;
	case JV_KIND_OBJECT: return types & T_OBJECT;
	case JV_KIND_ARRAY: return types & T_ARRAY;
	case JV_KIND_STRING: return types & T_STRING;
	case JV_KIND_NUMBER: {
		double d = jv_number_value(v);
		return (types & T_NUMBER) || ((types & T_INTEGER) && isfinite(d) && d == floor(d));
	}
	default: return 0;
	}
}

/* minItems, maxLength...: len against bounds (-1: none) */
static int check_count(struct vc *c, const struct at *at, long len, long min, long max,
                       const char *what, const char *kw_min, const char *kw_max)
{
	if (min >= 0 && len < min)
		return fail(c, at, kw_min, "must have at least %ld %s, has %ld", min, what, len);
	if (max >= 0 && len > max)
		return fail(c, at, kw_max, "must have at most %ld %s, has %ld", max, what, len);
	return 0;
}

static int check_type(struct vc *c, const struct node *n, jv v, const struct at *at)
{
	if (type_matches(n->types, v) || !c->errs)
		return !type_matches(n->types, v);
	char want[80] = "";
	for (unsigned i = 0; i < sizeof type_names / sizeof *type_names; i++)
		if (n->types & 1u << i)
			snprintf(want + strlen(want), sizeof want - strlen(want), "%s%s",
			         *want ? " or " : "", type_names[i]);
	jv_kind k = jv_get_kind(v);
	return fail(c, at, "type", "must be %s, not %s", want,
	            k == JV_KIND_TRUE || k == JV_KIND_FALSE ? "boolean" : jv_kind_name(k));
}

/* type, enum, const: any kind of value */
static int check_any(struct vc *c, const struct node *n, jv v, const struct at *at)
{
	int e = n->types ? check_type(c, n, v, at) : 0;
	if (STOP(c, e))
		return e;
	if (jv_is_valid(n->enums)) {
		int found = 0;
		jv_array_foreach(n->enums, i, x) {
			found = found || jv_equal(jv_copy(v), jv_copy(x));
			jv_free(x);
		}
		if (!found) {
			char *s = shown(n->enums);
			e += fail(c, at, "enum", "must be one of %s", s);
			free(s);
		}
	}
	if (jv_is_valid(n->konst) && !jv_equal(jv_copy(v), jv_copy(n->konst))) {
		char *s = shown(n->konst);
		e += fail(c, at, "const", "must be %s", s);
		free(s);
	}
	return e;
}

/* One property k: val of an object: properties, patternProperties,
 * additionalProperties. seen[i] is set for props[i]. */
static int check_property(struct vc *c, const struct node *n, jv k, jv val,
                          const struct at *at, unsigned char *seen)
{
	const char *name = jv_string_value(k);
	size_t len = jv_string_length_bytes(jv_copy(k));
	struct at here = {at, name, len, 0};
	int e = 0, matched = 0;
	if (n->names_schema)
		e += check(c, n->names_schema, k, &here, 0);
	long i = n->names && strlen(name) == len ? orch_map_get(n->names, name) : -1;
	if (i >= 0) {
		seen[i] = 1;
		if (n->props[i].schema) {
			matched = 1;
			e += check(c, n->props[i].schema, val, &here, 0);
		}
	}
	for (int p = 0; p < n->npats && !STOP(c, e); p++) {
		const UChar *s = (const UChar *)name;
		if (onig_search(n->pats[p].re, s, s + len, s, s + len, NULL, ONIG_OPTION_NONE) >= 0) {
			matched = 1;
			e += check(c, n->pats[p].schema, val, &here, 0);
		}
	}
	if (matched || !n->additional || STOP(c, e))
		return e;
	if (n->additional->never)
		return e + fail(c, &here, "additionalProperties",
		                "is not allowed (not one of the properties)");
	return e + check(c, n->additional, val, &here, 0);
}

static int check_object(struct vc *c, const struct node *n, jv v, const struct at *at)
{
	int e = 0;
	if (n->min_props >= 0 || n->max_props >= 0)
		e += check_count(c, at, jv_object_length(jv_copy(v)), n->min_props, n->max_props,
		                 "properties", "minProperties", "maxProperties");
	if (STOP(c, e) || (!n->nprops && !n->npats && !n->additional && !n->names_schema))
		return e;
	unsigned char few[64], *seen = few;
	if (n->nprops > 64)
		seen = orch_xmalloc(n->nprops);
	memset(seen, 0, n->nprops);
	for (int it = jv_object_iter(v); jv_object_iter_valid(v, it) && !STOP(c, e);
	     it = jv_object_iter_next(v, it)) {
		jv k = jv_object_iter_key(v, it), val = jv_object_iter_value(v, it);
		e += check_property(c, n, k, val, at, seen);
		jv_free(k);
		jv_free(val);
	}
	for (int i = 0; i < n->nprops && n->nrequired && !STOP(c, e); i++)
		if (n->props[i].required && !seen[i])
			e += fail(c, at, "required", "\"%s\" is required", n->props[i].name);
	if (seen != few)
		free(seen);
	return e;
}

/* uniqueItems: pairwise for short arrays (naming the two), sorted else */
static int check_unique(struct vc *c, jv v, int len, const struct at *at)
{
	if (len > 64) {
		jv sorted = jv_sort(jv_copy(v), jv_copy(v));
		int dup = 0;
		for (int i = 1; i < len && !dup; i++)
			dup = jv_equal(jv_array_get(jv_copy(sorted), i - 1), jv_array_get(jv_copy(sorted), i));
		jv_free(sorted);
		return dup ? fail(c, at, "uniqueItems", "must not hold equal items") : 0;
	}
	for (int i = 0; i < len; i++)
		for (int j = i + 1; j < len; j++)
			if (jv_equal(jv_array_get(jv_copy(v), i), jv_array_get(jv_copy(v), j)))
				return fail(c, at, "uniqueItems", "must not hold equal items (%d and %d are)", i, j);
	return 0;
}

static int check_contains(struct vc *c, const struct node *n, jv v, int len,
                          const struct at *at)
{
	struct vc quick = {NULL};
	for (int i = 0; i < len; i++) {
		struct at here = {at, NULL, 0, i};
		jv item = jv_array_get(jv_copy(v), i);
		int bad = check(&quick, n->contains, item, &here, 0);
		jv_free(item);
		if (!bad)
			return 0;
	}
	return fail(c, at, "contains", "must hold an item that matches the schema of contains");
}

static int check_array(struct vc *c, const struct node *n, jv v, const struct at *at)
{
	int len = jv_array_length(jv_copy(v));
	int e = check_count(c, at, len, n->min_items, n->max_items, "items", "minItems", "maxItems");
	if (n->unique && !STOP(c, e))
		e += check_unique(c, v, len, at);
	if (n->contains && !STOP(c, e))
		e += check_contains(c, n, v, len, at);
	for (int i = 0; i < len && !STOP(c, e); i++) {
		const struct node *sub = i < n->prefix.n ? n->prefix.v[i] : n->tuple ? n->more : n->items;
		if (!sub)
			break;
		struct at here = {at, NULL, 0, i};
		jv item = jv_array_get(jv_copy(v), i);
		if (sub->never && sub == n->more)
			e += fail(c, &here, "additionalItems", "is not allowed (only %d items are)", n->prefix.n);
		else
			e += check(c, sub, item, &here, 0);
		jv_free(item);
	}
	return e;
}

static int check_string(struct vc *c, const struct node *n, jv v, const struct at *at)
{
	int e = 0;
	if (n->min_len >= 0 || n->max_len >= 0)
		e += check_count(c, at, jv_string_length_codepoints(jv_copy(v)), n->min_len,
		                 n->max_len, "characters", "minLength", "maxLength");
	if (n->pattern && !STOP(c, e)) {
		const UChar *s = (const UChar *)jv_string_value(v);
		const UChar *end = s + jv_string_length_bytes(jv_copy(v));
		if (onig_search(n->pattern, s, end, s, end, NULL, ONIG_OPTION_NONE) < 0)
			e += fail(c, at, "pattern", "must match the pattern %s", n->pattern_src);
	}
	return e;
}

static int check_number(struct vc *c, const struct node *n, jv v, const struct at *at)
{
	double d = jv_number_value(v);
	int e = 0;
	if ((n->has & H_MIN) && d < n->min)
		e += fail(c, at, "minimum", "must be >= %.15g", n->min);
	if ((n->has & H_MAX) && d > n->max)
		e += fail(c, at, "maximum", "must be <= %.15g", n->max);
	if ((n->has & H_XMIN) && d <= n->xmin)
		e += fail(c, at, "exclusiveMinimum", "must be > %.15g", n->xmin);
	if ((n->has & H_XMAX) && d >= n->xmax)
		e += fail(c, at, "exclusiveMaximum", "must be < %.15g", n->xmax);
	if (n->has & H_MULT) {
		double q = d / n->mult;  /* 0.0075 / 0.0001 is 74.99999999999999 */
		if (!isfinite(q) || fabs(q - nearbyint(q)) > 1e-9 * fmax(1, fabs(q)))
			e += fail(c, at, "multipleOf", "must be a multiple of %.15g", n->mult);
	}
	return e;
}

/* allOf, anyOf, oneOf, not: the same value against subschemas; only
 * allOf's errors are the subschemas' own. */
static int check_logic(struct vc *c, const struct node *n, jv v, const struct at *at, int refs)
{
	struct vc quick = {NULL};
	int e = 0;
	for (int i = 0; i < n->all.n && !STOP(c, e); i++)
		e += check(c, n->all.v[i], v, at, refs);
	if (n->any.n && !STOP(c, e)) {
		int i = 0;
		while (i < n->any.n && check(&quick, n->any.v[i], v, at, refs))
			i++;
		if (i == n->any.n)
			e += fail(c, at, "anyOf", "must match at least one of the %d schemas of anyOf", i);
	}
	if (n->one.n && !STOP(c, e)) {
		int first = -1, second = -1;
		for (int i = 0; i < n->one.n && second < 0; i++)
			if (!check(&quick, n->one.v[i], v, at, refs))
				*(first < 0 ? &first : &second) = i;
		if (first < 0)
			e += fail(c, at, "oneOf", "must match one of the %d schemas of oneOf, matches none",
			          n->one.n);
		else if (second >= 0)
			e += fail(c, at, "oneOf", "must match only one schema of oneOf, matches %d and %d",
			          first, second);
	}
	if (n->not && !STOP(c, e) && !check(&quick, n->not, v, at, refs))
		e += fail(c, at, "not", "must not match the schema of not");
	if (n->if_ && (n->then || n->else_) && !STOP(c, e)) {
		const struct node *branch = check(&quick, n->if_, v, at, refs) ? n->else_ : n->then;
		if (branch)
			e += check(c, branch, v, at, refs);
	}
	return e;
}

static int check(struct vc *c, const struct node *n, jv v, const struct at *at, int refs)
{
	if (n->never)
		return fail(c, at, "false", "no value is allowed here (the schema is false)");
	int e = 0;
	if (n->target) {
		if (refs >= REF_DEPTH)
			return fail(c, at, "$ref", "more than %d $refs in a row without reaching a value",
			            REF_DEPTH);
		e += check(c, n->target, v, at, refs + 1);
	}
	if (!STOP(c, e))
		e += check_any(c, n, v, at);
	if (!STOP(c, e)) {
		switch (jv_get_kind(v)) {
		case JV_KIND_OBJECT: e += check_object(c, n, v, at); break;
		case JV_KIND_ARRAY: e += check_array(c, n, v, at); break;
		case JV_KIND_STRING: e += check_string(c, n, v, at); break;
		case JV_KIND_NUMBER: e += check_number(c, n, v, at); break;
		default: break;
		}
	}
	if (!STOP(c, e))
		e += check_logic(c, n, v, at, refs);
	return e;
}

int orch_schema_check(orch_schema *s, jv v, jv *errs)
{
	struct vc c = {errs};
	return check(&c, s->nodes[0], v, NULL, 0);
}
