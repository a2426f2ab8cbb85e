/* request.c: a record made into a request. A step input record (it has
 * "spec") is rendered: spec.system and spec.prompt are {{ jq }} templates
 * evaluated against the record. A request record (it has "messages") is
 * taken as it is. Either is then finalized: the flags, the environment
 * and the provider's defaults applied, the messages checked, into the
 * canonical {"provider","model","messages","opts"[,"limits"],"step"
 * [,"command"][,"base_url"][,"fallback"][,"schema","schema_name","repair"]
 * [,"budget"][,"prices"]} (schema.c checks a schema). A step input record's budget
 * and prices (the job's, orch-sched passes them on) go into its request:
 * budget {usd, tokens} (numbers > 0), prices a list of price rows
 * (lib/price.c); budget.c and the cost of its answer read them. A
 * provider may be a list (an array, or names joined by ',', each "name"
 * or "name:model"): the first is the
 * request's, the others go, resolved the same way, in "fallback" as
 * [{"provider","model","opts"[,"limits"][,"command"][,"base_url"]}...],
 * tried in turn when the one before fails (orch-call.c). "limits" ({rpm,
 * tpm}) are the provider's rates shared across runs (limit.c); "base_url"
 * is where an HTTP provider is called (wire.c), never part of a cache key.
 *
 * What is refused is reported ("step S: ...") and comes back invalid;
 * the caller counts it as bad input. */
#include <stdlib.h>
#include <string.h>
#include "call.h"

/* Templates of the last spec rendered: steps of one job rarely repeat,
 * but many records of one spec (a benchmark, a fan-out) compile once. */
static struct { char *sys, *prompt; orch_tmpl *t; } tc;

void request_end(void)
{
	orch_tmpl_free(tc.t);
	free(tc.sys);
	free(tc.prompt);
	tc.t = NULL;
	tc.sys = tc.prompt = NULL;
}

static orch_tmpl *compile(const char *sys, const char *prompt, const char *step)
{
	if (tc.t && strcmp(tc.sys, sys) == 0 && strcmp(tc.prompt, prompt) == 0)
		return tc.t;
	request_end();
	tc.sys = orch_xstrdup(sys);
	tc.prompt = orch_xstrdup(prompt);
	const char *texts[2] = {sys, prompt};
	char *errs[2];
	tc.t = orch_tmpl_compile(texts, 2, errs);
	for (int i = 0; i < 2; i++)
		if (errs[i]) {
			orch_err("step %s: %s: %s", step, i ? "prompt" : "system", errs[i]);
			free(errs[i]);
		}
	return tc.t;
}

/* text[0] the system prompt (NULL if none), text[1] the prompt, both
 * rendered against rec; malloc'd. 0, or -1 (reported). */
static int render_texts(jv rec, const char *sys, const char *prompt, const char *sp,
                        char *text[2])
{
	if (!orch_tmpl_has(sys) && !orch_tmpl_has(prompt)) {
		text[0] = sys ? orch_xstrdup(sys) : NULL;
		text[1] = orch_xstrdup(prompt);
		return 0;
	}
	orch_tmpl *t = compile(sys ? sys : "", prompt, sp);
	if (!t)
		return -1;
	for (int i = 0; i < 2; i++) {
		char *err = NULL;
		if (i == 0 && !sys)
			continue;
		if (!(text[i] = orch_tmpl_render(t, i, rec, &err))) {
			orch_err("step %s: %s: %s", sp, i ? "prompt" : "system", err);
			free(err);
			return -1;
		}
	}
	return 0;
}

static jv message(const char *role, const char *content)
{
	jv m = jv_object_set(jv_object(), jv_string("role"), jv_string(role));
	return jv_object_set(m, jv_string("content"), jv_string(content));
}

/* The request's provider fields from spec.provider: a name alone, an
 * object with name, model, command, opts, limits, or a list of those. */
static jv provider_fields(jv spec)
{
	static const char *f[][2] = {{"name", "provider"}, {"model", "model"},
	                             {"command", "command"}, {"opts", "opts"},
	                             {"limits", "limits"}, {"base_url", "base_url"}};
	jv prov = orch_jget(spec, "provider"), out = jv_object();
	if (is_kind(prov, JV_KIND_ARRAY))  /* a list: finalize reads it */
		return jv_object_set(out, jv_string("provider"), prov);
	if (is_kind(prov, JV_KIND_STRING))  /* provider: ollama */
		prov = jv_object_set(jv_object(), jv_string("name"), prov);
	if (is_kind(prov, JV_KIND_OBJECT))
		for (size_t i = 0; i < sizeof f / sizeof *f; i++) {
			jv v = orch_jget(prov, f[i][0]);
			if (is_kind(v, JV_KIND_NULL))
				jv_free(v);
			else
				out = jv_object_set(out, jv_string(f[i][1]), v);
		}
	jv_free(prov);
	return out;
}

/* out (consumed) with from's budget and prices, if it has them. */
static jv spend_fields(jv out, jv from)
{
	static const char *const keys[] = {"budget", "prices"};
	for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
		jv v = orch_jget(from, keys[i]);
		out = is_kind(v, JV_KIND_NULL) ? (jv_free(v), out) : jv_object_set(out, jv_string(keys[i]), v);
	}
	return out;
}

/* What is wrong with a request's budget (borrowed; null: none), or NULL. */
static const char *budget_problem(jv b)
{
	if (is_kind(b, JV_KIND_NULL))
		return NULL;
	if (!is_kind(b, JV_KIND_OBJECT))
		return "must be an object {usd, tokens}";
	const char *why = NULL;
	jv_object_foreach(b, k, v) {
		const char *s = jv_string_value(k);
		if (!why && strcmp(s, "usd") != 0 && strcmp(s, "tokens") != 0)
			why = "unknown key (usd, tokens)";
		else if (!why && !(is_kind(v, JV_KIND_NUMBER) && jv_number_value(v) > 0))
			why = "usd and tokens must be numbers > 0";
		jv_free(k);
		jv_free(v);
	}
	return why;
}

/* What is wrong with a request's prices (borrowed; null: none), or NULL. */
static const char *prices_problem(jv p)
{
	if (is_kind(p, JV_KIND_NULL))
		return NULL;
	if (!is_kind(p, JV_KIND_ARRAY))
		return "must be a list of {provider, model, input, cached_input, output}";
	const char *why = NULL;
	jv_array_foreach(p, i, row) {
		if (!why && !is_kind(row, JV_KIND_OBJECT))
			why = "a row must be an object {provider, model, input, cached_input, output}";
		else if (!why && orch_price_row_missing(row))
			why = "a row needs provider, model, input and output";
		if (!why)
			jv_object_foreach(row, k, v) {
				why = why ? why : orch_price_field_problem(jv_string_value(k), v);
				jv_free(k);
				jv_free(v);
			}
		jv_free(row);
	}
	return why;
}

/* out (consumed) with req's budget and prices, checked; invalid
 * (reported) if they are wrong. */
static jv spend_finalize(jv out, jv req, const char *sp)
{
	jv b = orch_jget(req, "budget"), p = orch_jget(req, "prices");
	const char *bw = budget_problem(b), *pw = prices_problem(p);
	jv_free(b);
	jv_free(p);
	if (bw || pw) {
		orch_err("step %s: %s: %s", sp, bw ? "budget" : "prices", bw ? bw : pw);
		jv_free(out);
		return jv_invalid();
	}
	return spend_fields(out, req);
}

/* A step input record (consumed) rendered into a request (not finalized). */
static jv render(jv rec)
{
	jv spec = orch_jget(rec, "spec"), out = jv_invalid();
	const char *step = orch_jstr(rec, "step");
	const char *sys = orch_jstr(spec, "system"), *prompt = orch_jstr(spec, "prompt");
	const char *sp = step ? step : "-";
	char *text[2] = {NULL, NULL};
	if (!prompt)
		orch_err("step %s: spec.prompt: missing or not a string", sp);
	else if (render_texts(rec, sys, prompt, sp, text) == 0) {
		jv msgs = jv_array();
		if (text[0] && *text[0])
			msgs = jv_array_append(msgs, message("system", text[0]));
		msgs = jv_array_append(msgs, message("user", text[1]));
		out = jv_object_set(provider_fields(spec), jv_string("messages"), msgs);
		if (step)
			out = jv_object_set(out, jv_string("step"), jv_string(step));
		static const char *const structured[] = {"schema", "repair"};
		for (size_t i = 0; i < 2; i++) {
			jv v = orch_jget(spec, structured[i]);
			out = is_kind(v, JV_KIND_NULL) ? (jv_free(v), out)
			    : jv_object_set(out, jv_string(structured[i]), v);
		}
		out = spend_fields(out, rec);
	}
	free(text[0]);
	free(text[1]);
	jv_free(spec);
	jv_free(rec);
	return out;
}

/* req.messages, if a non-empty array of {role, content} strings. */
static jv messages_of(jv req, const char *sp)
{
	jv msgs = orch_jget(req, "messages");
	int ok = is_kind(msgs, JV_KIND_ARRAY) && jv_array_length(jv_copy(msgs)) > 0;
	jv_array_foreach(msgs, i, m) {
		ok = ok && orch_jstr(m, "role") && orch_jstr(m, "content");
		jv_free(m);
	}
	if (ok)
		return msgs;
	jv_free(msgs);
	orch_err("step %s: messages must be a non-empty array of {role, content} strings", sp);
	return jv_invalid();
}

/* One provider of a list as {name[, model, command, opts, limits]}: a
 * string "name" or "name:model" (a model may hold ':' too), or an object
 * with name (or provider), model, command, opts, limits. */
static jv entry_of(jv v)
{
	if (is_kind(v, JV_KIND_STRING)) {
		const char *s = jv_string_value(v), *colon = strchr(s, ':');
		jv e = jv_object_set(jv_object(), jv_string("name"),
		                     colon ? jv_string_sized(s, colon - s) : jv_string(s));
		if (colon)
			e = jv_object_set(e, jv_string("model"), jv_string(colon + 1));
		jv_free(v);
		return e;
	}
	if (is_kind(v, JV_KIND_OBJECT) && !orch_jstr(v, "name") && orch_jstr(v, "provider"))
		v = jv_object_set(v, jv_string("name"), orch_jget(v, "provider"));
	return v;
}

/* A provider, or a list of them (an array, or names joined by ','),
 * consumed, as an array of entries. */
static jv entries_of(jv prov)
{
	jv list = jv_array();
	if (is_kind(prov, JV_KIND_STRING)) {
		jv parts = jv_string_split(prov, jv_string(","));
		jv_array_foreach(parts, i, p) {
			if (jv_string_length_bytes(jv_copy(p)) > 0)
				list = jv_array_append(list, entry_of(p));
			else
				jv_free(p);
		}
		jv_free(parts);
	} else if (is_kind(prov, JV_KIND_ARRAY)) {
		jv_array_foreach(prov, i, p)
			list = jv_array_append(list, entry_of(p));
		jv_free(prov);
	} else if (is_kind(prov, JV_KIND_OBJECT))
		list = jv_array_append(list, entry_of(prov));
	else
		jv_free(prov);
	return list;
}

/* e with the keys of from that it lacks (both objects; e consumed). */
static jv fill(jv e, jv from)
{
	static const char *keys[] = {"model", "command", "opts", "limits", "base_url"};
	for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
		jv v = orch_jget(from, keys[i]), have = orch_jget(e, keys[i]);
		if (is_kind(have, JV_KIND_NULL) && !is_kind(v, JV_KIND_NULL))
			e = jv_object_set(e, jv_string(keys[i]), jv_copy(v));
		jv_free(v);
		jv_free(have);
	}
	return e;
}

/* The providers to call, in order: --provider's (each taking the model,
 * command and opts of the request's entry of the same name), else the
 * request's (the first taking the request's model, command and opts,
 * then its "fallback" if it was rendered before),
 * else $ORCH_PROVIDER's, else the config's, else echo. */
static jv providers_of(jv req)
{
	jv mine = entries_of(orch_jget(req, "provider"));
	if (jv_array_length(jv_copy(mine)) > 0)
		mine = jv_array_set(mine, 0, fill(jv_array_get(jv_copy(mine), 0), req));
	jv fb = orch_jget(req, "fallback");  /* a request rendered before keeps it */
	if (is_kind(fb, JV_KIND_ARRAY) && jv_array_length(jv_copy(mine)) == 1)
		mine = jv_array_concat(mine, entries_of(jv_copy(fb)));
	jv_free(fb);
	if (!opt.provider && jv_array_length(jv_copy(mine)) > 0)
		return mine;
	const char *env = nonempty_env("ORCH_PROVIDER");
	const char *cfg = orch_config()->provider;
	jv list = entries_of(jv_string(opt.provider ? opt.provider : env ? env : cfg ? cfg : "echo"));
	jv out = jv_array();
	jv_array_foreach(list, i, e) {
		jv_array_foreach(mine, k, m) {
			const char *a = orch_jstr(e, "name"), *b = orch_jstr(m, "name");
			if (a && b && strcmp(a, b) == 0)
				e = fill(e, m);
			jv_free(m);
		}
		out = jv_array_append(out, e);
	}
	jv_free(list);
	jv_free(mine);
	return out;
}

/* e.limits, if there, is {rpm, tpm}: numbers >= 0 (none of them: no limit). */
static int limits_ok(jv e)
{
	jv lim = orch_jget(e, "limits");
	if (is_kind(lim, JV_KIND_NULL))
		return 1;
	int ok = is_kind(lim, JV_KIND_OBJECT);
	if (ok)
		jv_object_foreach(lim, k, v) {
			const char *s = jv_string_value(k);
			ok = ok && (strcmp(s, "rpm") == 0 || strcmp(s, "tpm") == 0) &&
			     is_kind(v, JV_KIND_NUMBER) && jv_number_value(v) >= 0;
			jv_free(k);
			jv_free(v);
		}
	jv_free(lim);
	return ok;
}

/* One provider entry resolved: {provider, model, opts[, limits][,
 * command]}, the flags applied (--model to the first only), then
 * $ORCH_MODEL, then the config's model for the config's provider, then a
 * model alias (which may name the provider too); invalid (reported). */
static jv resolve(jv e, int first, const char *sp)
{
	const char *model = first && opt.model ? opt.model : orch_jstr(e, "model");
	if (!model && first)
		model = nonempty_env("ORCH_MODEL");
	if (!model && orch_jstr(e, "name"))
		model = orch_config_model(orch_jstr(e, "name"));
	e = config_alias(e, &model);
	const char *name = orch_jstr(e, "name");
	const char *command = opt.command ? opt.command : orch_jstr(e, "command");
	const struct provider *p = name ? provider_find(name) : NULL;
	jv out = jv_invalid();
	if (!p)
		orch_err("step %s: unknown provider \"%s\" (%s)", sp, name ? name : "", provider_names());
	else if (p->command && !command)
		orch_err("step %s: provider %s needs a command (provider.command or --command)", sp, name);
	else if (!(model = model ? model : p->command ? command : p->model))
		orch_err("step %s: provider %s needs a model (provider.model, --model or ORCH_MODEL)", sp, name);
	else if (!limits_ok(e))
		orch_err("step %s: provider %s: limits must be {rpm: N, tpm: N}, numbers >= 0", sp, name);
	else {
		jv opts = orch_jget(e, "opts");
		out = jv_object_set(jv_object(), jv_string("provider"), jv_string(name));
		out = jv_object_set(out, jv_string("model"), jv_string(model));
		out = jv_object_set(out, jv_string("opts"),
		                    is_kind(opts, JV_KIND_OBJECT) ? opts : (jv_free(opts), jv_object()));
		jv lim = orch_jget(e, "limits");
		if (is_kind(lim, JV_KIND_OBJECT))
			out = jv_object_set(out, jv_string("limits"), lim);
		else
			jv_free(lim);
		if (p->command)
			out = jv_object_set(out, jv_string("command"), jv_string(command));
		if (orch_jstr(e, "base_url") && !p->command)
			out = jv_object_set(out, jv_string("base_url"), orch_jget(e, "base_url"));
	}
	jv_free(e);
	return out;
}

/* The request in its canonical shape, flags and environment applied: the
 * first provider's fields, and the others (if any) in "fallback".
 * Consumes req; invalid (reported) when it cannot be called. */
static jv finalize(jv req)
{
	const char *step = orch_jstr(req, "step");
	const char *sp = step ? step : "-";
	jv list = providers_of(req), out = jv_invalid(), rest = jv_array();
	jv msgs = messages_of(req, sp);
	int ok = jv_is_valid(msgs);
	jv_array_foreach(list, i, e) {
		jv r = ok ? resolve(e, i == 0, sp) : (jv_free(e), jv_invalid());
		ok = ok && jv_is_valid(r);
		if (!ok)
			jv_free(r);
		else if (i == 0)
			out = r;
		else
			rest = jv_array_append(rest, r);
	}
	jv_free(list);
	if (ok) {  /* in the canonical order */
		jv r = out;
		out = jv_object_set(jv_object(), jv_string("provider"), orch_jget(r, "provider"));
		out = jv_object_set(out, jv_string("model"), orch_jget(r, "model"));
		out = jv_object_set(out, jv_string("messages"), msgs);
		out = jv_object_set(out, jv_string("opts"), orch_jget(r, "opts"));
		if (jv_object_has(jv_copy(r), jv_string("limits")))
			out = jv_object_set(out, jv_string("limits"), orch_jget(r, "limits"));
		if (step)
			out = jv_object_set(out, jv_string("step"), jv_string(step));
		if (orch_jstr(r, "command"))
			out = jv_object_set(out, jv_string("command"), orch_jget(r, "command"));
		if (orch_jstr(r, "base_url"))
			out = jv_object_set(out, jv_string("base_url"), orch_jget(r, "base_url"));
		if (jv_array_length(jv_copy(rest)) > 0)
			out = jv_object_set(out, jv_string("fallback"), jv_copy(rest));
		out = schema_finalize(out, req, sp);
		if (jv_is_valid(out))
			out = spend_finalize(out, req, sp);
		jv_free(r);
	} else {
		jv_free(out);
		jv_free(msgs);
		out = jv_invalid();
	}
	jv_free(rest);
	jv_free(req);
	return out;
}

jv request_from(jv rec)
{
	jv msgs = orch_jget(rec, "messages"), spec = orch_jget(rec, "spec");
	int is_req = !is_kind(msgs, JV_KIND_NULL), is_step = is_kind(spec, JV_KIND_OBJECT);
	jv_free(msgs);
	jv_free(spec);
	if (is_req)
		return finalize(rec);
	if (is_step) {
		jv req = render(rec);
		return jv_is_valid(req) ? finalize(req) : req;
	}
	orch_err("input: not a step input or request record (an object with spec or messages)");
	jv_free(rec);
	return jv_invalid();
}
