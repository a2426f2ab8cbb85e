/* openai.c: OpenAI's chat completions, which every OpenAI-compatible
 * server speaks too. POST $OPENAI_BASE_URL/chat/completions with a Bearer
 * key when one is set (without one only to another host than OpenAI's: a
 * local server needs none); the stream is "data: {chunk}" events up to
 * "data: [DONE]"; a whole answer is one chunk with a message. A refusal
 * and reasoning_content (llama-server, DeepSeek, vLLM) are kept apart from
 * the content.
 *
 * The reasoning models (o1, o3, o4 and gpt-5 families) take
 * max_completion_tokens, not max_tokens: for a model whose name starts
 * with o1, o3 or o4 (then its end or '-') or gpt-5, a max_tokens in opts
 * is sent as max_completion_tokens. A schema goes in response_format
 * (schema.c says when it is strict). */
#include <stdlib.h>
#include <string.h>
#include <sodium.h>
#include "call.h"

/* Does the model take max_completion_tokens instead of max_tokens? */
static int completion_tokens_family(const char *model)
{
	static const char *fam[] = {"o1", "o3", "o4"};
	for (size_t i = 0; i < sizeof fam / sizeof *fam; i++)
		if (strncmp(model, fam[i], 2) == 0 && (model[2] == 0 || model[2] == '-'))
			return 1;
	return strncmp(model, "gpt-5", 5) == 0;
}

static jv completion_tokens(jv body, const char *model)
{
	jv mt = orch_jget(body, "max_tokens"), mct = orch_jget(body, "max_completion_tokens");
	if (completion_tokens_family(model) && !is_kind(mt, JV_KIND_NULL) &&
	    is_kind(mct, JV_KIND_NULL)) {
		body = jv_object_delete(body, jv_string("max_tokens"));
		body = jv_object_set(body, jv_string("max_completion_tokens"), jv_copy(mt));
	}
	jv_free(mt);
	jv_free(mct);
	return body;
}

void openai_prepare(const struct job *j, struct http_req *r)
{
	wire_url(j, r, "OPENAI_BASE_URL", "https://api.openai.com/v1", "/chat/completions");
	jv body = jv_object_set(wire_body(j, 0), jv_string("messages"),
	                        orch_jget(j->req, "messages"));
	if (opt.stream)
		body = jv_object_set(body, jv_string("stream_options"),
		                     jv_object_set(jv_object(), jv_string("include_usage"), jv_true()));
	body = schema_body(j, body, "openai");
	r->body = orch_dump(completion_tokens(body, j->model), 0);
	const char *key = wire_key(r, "OPENAI_API_KEY", "api.openai.com");
	if (key) {
		char *v = orch_fmt("Bearer %s", key);
		http_header(r, "Authorization", v);
		sodium_memzero(v, strlen(v));
		free(v);
	}
}

/* usage.prompt_tokens_details.cached_tokens: the part of prompt_tokens
 * read from OpenAI's prompt cache (priced as cached input). Kept apart,
 * as Anthropic's cache_read_input_tokens is: prompt_tokens counts them
 * again, so they come off it (the total, prompt_tokens(j), stays). */
static void cached_of(struct job *j, jv u)
{
	jv d = orch_jget(u, "prompt_tokens_details");
	double c;
	if (orch_jnum(d, "cached_tokens", &c) && c > 0 && j->has_ptok && c <= j->ptok) {
		j->ptok -= c;
		j->cache_read = c;
		j->cache_write = 0;
		j->has_cache = 1;
	}
	jv_free(d);
}

void openai_chunk(struct job *j, jv v)
{
	if (!wire_error(j, v, 0)) {
		jv ch = orch_jget(v, "choices");
		jv c0 = is_kind(ch, JV_KIND_ARRAY) && jv_array_length(jv_copy(ch)) > 0
		        ? jv_array_get(jv_copy(ch), 0) : jv_null();
		jv d = orch_jget(c0, "delta");
		if (is_kind(d, JV_KIND_NULL)) {  /* a whole (non-streamed) answer? */
			jv_free(d);
			d = orch_jget(c0, "message");
			j->ended |= j->whole && is_kind(d, JV_KIND_OBJECT);
		}
		const char *c = orch_jstr(d, "content");
		if (c)
			job_text(j, c, strlen(c));
		const char *rf = orch_jstr(d, "refusal"), *rs = orch_jstr(d, "reasoning_content");
		if (rf)
			j->refusal = jv_string_append_str(j->refusal, rf);
		if (rs)
			j->reasoning = jv_string_append_str(j->reasoning, rs);
		wire_finish(j, orch_jget(c0, "finish_reason"));
		jv u = orch_jget(v, "usage");
		wire_usage(j, u, "prompt_tokens", "completion_tokens");
		cached_of(j, u);
		jv_free(u);
		jv_free(d);
		jv_free(c0);
		jv_free(ch);
	}
	jv_free(v);
}

void openai_data(struct job *j, const char *s, size_t n)
{
	if (n == 6 && memcmp(s, "[DONE]", 6) == 0) {
		j->ended = 1;
		return;
	}
	wire_object(j, s, n, openai_chunk);
}
