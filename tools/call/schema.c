/* schema.c: structured output. A request with "schema" (a JSON Schema)
 * asks for one JSON value that satisfies it; each provider is asked its
 * own way (openai: response_format, ollama: format, anthropic: one forced
 * tool whose input is the answer, echo and exec: the schema appended to
 * the prompt), and every answer is parsed and checked here, whatever the
 * provider promised. An invalid answer is asked again (orch-call.c, up to
 * "repair" times) with the answer and the validator's messages appended.
 *
 * Choices:
 *  - OpenAI's strict mode is asked for (strict: true) only when the schema
 *    already keeps its rules: every object schema lists its properties,
 *    all of them required, and additionalProperties: false, and uses none
 *    of the keywords strict mode refuses. The schema is never rewritten:
 *    making optional properties required or closing an open object would
 *    change what is valid. Otherwise strict: false (best effort, checked).
 *  - An answer is the whole text when it parses as JSON, else the first
 *    fenced code block that does (models wrap JSON in ```json fences; the
 *    echo provider answers with a prompt that may carry such a block).
 */
#include <stdlib.h>
#include <string.h>
#include "call.h"

/* ---- the request ---- */

/* The schema's name for the providers that want one: the step's id in
 * [A-Za-z0-9_-] (others become '_'), at most 64 bytes, else "answer". */
static jv name_of(const char *step)
{
	if (!step || !*step)
		return jv_string("answer");
	char b[65];
	size_t n = 0;
	for (; step[n] && n < 64; n++)
		b[n] = strchr("-_", step[n]) || (step[n] >= '0' && step[n] <= '9') ||
		       ((step[n] | 32) >= 'a' && (step[n] | 32) <= 'z') ? step[n] : '_';
	b[n] = 0;
	return jv_string(b);
}

/* Is rep (borrowed) a repair count: absent, or a whole number 0 to 10? */
static int repair_ok(jv rep)
{
	double n = is_kind(rep, JV_KIND_NUMBER) ? jv_number_value(rep) : 0;
	return is_kind(rep, JV_KIND_NULL) || (is_kind(rep, JV_KIND_NUMBER) && n >= 0 &&
	                                      n <= 10 && n == (int)n);
}

jv schema_finalize(jv out, jv req, const char *sp)
{
	jv s = orch_jget(req, "schema");
	if (is_kind(s, JV_KIND_NULL))
		return (jv_free(s), out);
	jv name = orch_jget(req, "schema_name"), rep = orch_jget(req, "repair");
	char *err = NULL;
	if (!repair_ok(rep))
		orch_err("step %s: repair must be a whole number from 0 to 10", sp);
	else
		orch_schema_free(orch_schema_new(jv_copy(s), &err));
	if (err)
		orch_err("step %s: schema: %s", sp, err);
	if (err || !repair_ok(rep)) {
		jv_free(out);
		out = jv_invalid();
		jv_free(s);
		jv_free(name);
	} else {
		if (!is_kind(name, JV_KIND_STRING)) {
			jv_free(name);
			name = name_of(orch_jstr(out, "step"));
		}
		out = jv_object_set(out, jv_string("schema"), s);
		out = jv_object_set(out, jv_string("schema_name"), name);
		out = jv_object_set(out, jv_string("repair"),
		                    is_kind(rep, JV_KIND_NUMBER) ? jv_copy(rep) : jv_number(1));
	}
	free(err);
	jv_free(rep);
	return out;
}

/* ---- each provider's way ---- */

static int is_key(jv k, const char *const *list)
{
	for (; *list; list++)
		if (strcmp(jv_string_value(k), *list) == 0)
			return 1;
	return 0;
}

/* Is s (borrowed; an object schema) closed as strict mode wants: its
 * properties all required, and additionalProperties false? */
static int closed_object(jv s)
{
	jv props = orch_jget(s, "properties"), req = orch_jget(s, "required");
	jv addl = orch_jget(s, "additionalProperties");
	int ok = is_kind(addl, JV_KIND_FALSE) && is_kind(props, JV_KIND_OBJECT) &&
	         is_kind(req, JV_KIND_ARRAY) &&
	         jv_array_length(jv_copy(req)) == jv_object_length(jv_copy(props));
	if (ok)
		jv_array_foreach(req, i, r) {
			ok = ok && is_kind(r, JV_KIND_STRING) && jv_object_has(jv_copy(props), jv_copy(r));
			jv_free(r);
		}
	jv_free(props);
	jv_free(req);
	jv_free(addl);
	return ok;
}

static int is_object_schema(jv s)
{
	jv props = orch_jget(s, "properties"), type = orch_jget(s, "type");
	int yes = is_kind(props, JV_KIND_OBJECT) ||
	          (is_kind(type, JV_KIND_STRING) && strcmp(jv_string_value(type), "object") == 0);
	jv_free(props);
	jv_free(type);
	return yes;
}

/* Does schema s (borrowed) keep OpenAI's strict-mode rules, at every
 * depth? */
static int strict_ok(jv s)
{
	static const char *const refused[] = {"allOf", "not", "if", "then", "else",
		"patternProperties", "propertyNames", "dependentRequired", "dependentSchemas",
		"dependencies", "unevaluatedProperties", "contains", "uniqueItems", 0};
	static const char *const one[] = {"items", "additionalItems", 0};
	static const char *const many[] = {"anyOf", "oneOf", "prefixItems", "items", 0};
	static const char *const maps[] = {"properties", "$defs", "definitions", 0};
	if (!is_kind(s, JV_KIND_OBJECT))
		return 0;
	int ok = !is_object_schema(s) || closed_object(s);
	jv_object_foreach(s, k, v) {
		if (is_key(k, refused))
			ok = 0;
		else if (is_key(k, one) && is_kind(v, JV_KIND_OBJECT))
			ok = ok && strict_ok(v);
		else if (is_key(k, many) && is_kind(v, JV_KIND_ARRAY))
			jv_array_foreach(v, i, e) {
				ok = ok && strict_ok(e);
				jv_free(e);
			}
		else if (is_key(k, maps) && is_kind(v, JV_KIND_OBJECT))
			jv_object_foreach(v, pk, pv) {
				ok = ok && strict_ok(pv);
				jv_free(pk);
				jv_free(pv);
			}
		jv_free(k);
		jv_free(v);
	}
	return ok;
}

/* body (consumed) with the request's schema, if any, where provider p
 * (an HTTP one) wants it. */
jv schema_body(const struct job *j, jv body, const char *p)
{
	jv s = orch_jget(j->req, "schema"), name = orch_jget(j->req, "schema_name");
	if (is_kind(s, JV_KIND_NULL)) {
		jv_free(name);
		return (jv_free(s), body);
	}
	if (strcmp(p, "ollama") == 0) {
		jv_free(name);
		return jv_object_set(body, jv_string("format"), s);
	}
	if (strcmp(p, "openai") == 0) {
		jv js = jv_object_set(jv_object(), jv_string("name"), name);
		js = jv_object_set(js, jv_string("strict"), jv_bool(strict_ok(s)));
		js = jv_object_set(js, jv_string("schema"), s);
		jv rf = jv_object_set(jv_object(), jv_string("type"), jv_string("json_schema"));
		return jv_object_set(body, jv_string("response_format"),
		                     jv_object_set(rf, jv_string("json_schema"), js));
	}
	/* anthropic: one tool, forced; its input is the answer */
	jv tool = jv_object_set(jv_object(), jv_string("name"), jv_copy(name));
	tool = jv_object_set(tool, jv_string("description"),
	                     jv_string("Answer through this tool: its input is your answer."));
	tool = jv_object_set(tool, jv_string("input_schema"), s);
	jv choice = jv_object_set(jv_object(), jv_string("type"), jv_string("tool"));
	body = jv_object_set(body, jv_string("tools"), jv_array_append(jv_array(), tool));
	return jv_object_set(body, jv_string("tool_choice"),
	                     jv_object_set(choice, jv_string("name"), name));
}

/* The request's messages (for echo and exec): with a schema, the last
 * user message asks for JSON that satisfies it. */
jv schema_messages(const struct job *j)
{
	jv msgs = orch_jget(j->req, "messages"), s = orch_jget(j->req, "schema");
	int last = -1;
	jv_array_foreach(msgs, i, m) {
		if (strcmp(orch_jstr(m, "role"), "user") == 0)
			last = i;
		jv_free(m);
	}
	if (is_kind(s, JV_KIND_NULL) || last < 0)
		return (jv_free(s), msgs);
	jv m = jv_array_get(jv_copy(msgs), last);
	jv text = jv_dump_string(s, 0);
	jv c = jv_string_fmt("%s\n\nAnswer with one JSON value, and nothing else, that "
	                     "satisfies this JSON Schema:\n%s\n", orch_jstr(m, "content"),
	                     jv_string_value(text));
	jv_free(text);
	return jv_array_set(msgs, last, jv_object_set(m, jv_string("content"), c));
}

/* ---- the answer ---- */

/* The length of the backtick fence opening the line at p (up to three
 * spaces in), or 0. */
static size_t fence_at(const char *p)
{
	size_t sp = 0, n = 0;
	while (sp < 3 && p[sp] == ' ')
		sp++;
	while (p[sp + n] == '`')
		n++;
	return n >= 3 ? n : 0;
}

/* The first fenced block of text whose content parses as JSON, or
 * invalid. */
static jv fenced_json(const char *text)
{
	const char *body = NULL;
	size_t open = 0;
	for (const char *p = text; *p; p += strcspn(p, "\n"), p += *p == '\n') {
		size_t f = fence_at(p);
		if (!open && f) {
			open = f;
			body = p + strcspn(p, "\n") + (p[strcspn(p, "\n")] == '\n');
		} else if (open && f >= open) {
			jv v = jv_parse_sized(body, (int)(p - body));
			if (jv_is_valid(v))
				return v;
			jv_free(v);
			open = 0;
		}
	}
	return jv_invalid();
}

/* One error as the validator words them: {"path","keyword","message"}. */
static jv error_of(const char *path, const char *kw, const char *msg)
{
	jv e = jv_object_set(jv_object(), jv_string("path"), jv_string(path));
	e = jv_object_set(e, jv_string("keyword"), jv_string(kw));
	return jv_object_set(e, jv_string("message"), jv_string(msg));
}

jv schema_answer(orch_schema *s, jv content, jv *errs)
{
	*errs = jv_array();
	jv v = jv_parse_sized(jv_string_value(content), jv_string_length_bytes(jv_copy(content)));
	if (!jv_is_valid(v)) {
		jv msg = jv_invalid_get_msg(v);
		v = fenced_json(jv_string_value(content));
		if (!jv_is_valid(v)) {
			const char *why = is_kind(msg, JV_KIND_STRING) ? jv_string_value(msg) : "no value";
			const char *cut = strstr(why, " (while parsing");  /* it quotes the text */
			jv m = jv_string_fmt("the answer is not JSON: %.*s",
			                     (int)(cut ? (size_t)(cut - why) : strlen(why)), why);
			*errs = jv_array_append(*errs, error_of("", "json", jv_string_value(m)));
			jv_free(m);
		}
		jv_free(msg);
	}
	jv_free(content);
	if (jv_is_valid(v) && orch_schema_check(s, v, errs) > 0) {
		jv_free(v);
		v = jv_invalid();
	}
	return v;
}

/* err (borrowed) as one line: "POINTER: message", the root "(root)". */
jv schema_error_line(jv err)
{
	const char *path = orch_jstr(err, "path");
	return jv_string_fmt("%s: %s", path && *path ? path : "(root)", orch_jstr(err, "message"));
}

/* The request's messages (consumed) with the invalid answer and what is
 * wrong with it (errs, borrowed) appended, to ask again. */
jv schema_repair(jv msgs, jv answer, jv errs)
{
	jv m = jv_object_set(jv_object(), jv_string("role"), jv_string("assistant"));
	msgs = jv_array_append(msgs, jv_object_set(m, jv_string("content"), answer));
	jv text = jv_string("Your answer does not satisfy the JSON Schema:\n");
	jv_array_foreach(errs, i, e) {
		jv line = schema_error_line(e);
		text = jv_string_append_str(text, "- ");
		text = jv_string_append_str(text, jv_string_value(line));
		text = jv_string_append_str(text, "\n");
		jv_free(line);
		jv_free(e);
	}
	text = jv_string_append_str(text, "Answer again with the corrected JSON value only.");
	m = jv_object_set(jv_object(), jv_string("role"), jv_string("user"));
	return jv_array_append(msgs, jv_object_set(m, jv_string("content"), text));
}
