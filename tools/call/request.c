/* request.c: a record made into a request. A step input record (it has
 * "spec") is rendered: spec.system and spec.prompt are {{ jq }} templates
 * evaluated against the record. A request record (it has "messages") is
 * taken as it is. Either is then finalized: the flags, the environment
 * and the provider's defaults applied, the messages checked, into the
 * canonical {"provider","model","messages","opts","step"[,"command"]}.
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

/* The request's provider fields from spec.provider: a name alone, or an
 * object with name, model, command, opts. */
static jv provider_fields(jv spec)
{
	static const char *f[][2] = {{"name", "provider"}, {"model", "model"},
	                             {"command", "command"}, {"opts", "opts"}};
	jv prov = orch_jget(spec, "provider"), out = jv_object();
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

/* The request in its canonical shape, flags and environment applied.
 * Consumes req; invalid (reported) when it cannot be called. */
static jv finalize(jv req)
{
	const char *rp = orch_jstr(req, "provider"), *step = orch_jstr(req, "step");
	const char *name = opt.provider ? opt.provider : rp ? rp : nonempty_env("ORCH_PROVIDER");
	if (!name)
		name = "echo";
	int same = !opt.provider || (rp && strcmp(rp, opt.provider) == 0);
	const char *model = opt.model ? opt.model : same ? orch_jstr(req, "model") : NULL;
	const char *command = opt.command ? opt.command : same ? orch_jstr(req, "command") : NULL;
	const char *sp = step ? step : "-";
	const struct provider *p = provider_find(name);
	jv out = jv_invalid();
	if (!model)
		model = nonempty_env("ORCH_MODEL");
	if (!p) {
		orch_err("step %s: unknown provider \"%s\" (%s)", sp, name, provider_names());
		goto done;
	}
	if (p->command && !command) {
		orch_err("step %s: provider %s needs a command (provider.command or --command)", sp, name);
		goto done;
	}
	if (!model)
		model = p->command ? command : p->model;
	if (!model) {
		orch_err("step %s: provider %s needs a model (provider.model, --model or ORCH_MODEL)", sp, name);
		goto done;
	}
	jv msgs = messages_of(req, sp);
	if (!jv_is_valid(msgs))
		goto done;
	jv opts = same ? orch_jget(req, "opts") : jv_null();
	if (!is_kind(opts, JV_KIND_OBJECT)) {
		jv_free(opts);
		opts = jv_object();
	}
	out = jv_object();
	out = jv_object_set(out, jv_string("provider"), jv_string(name));
	out = jv_object_set(out, jv_string("model"), jv_string(model));
	out = jv_object_set(out, jv_string("messages"), msgs);
	out = jv_object_set(out, jv_string("opts"), opts);
	if (step)
		out = jv_object_set(out, jv_string("step"), jv_string(step));
	if (p->command)
		out = jv_object_set(out, jv_string("command"), jv_string(command));
done:
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
