/* openai.c: OpenAI's chat completions, which every OpenAI-compatible
 * server speaks too. POST $OPENAI_BASE_URL/chat/completions with a Bearer
 * key when one is set; the stream is "data: {chunk}" events up to
 * "data: [DONE]"; a whole answer is one chunk with a message. */
#include <stdlib.h>
#include <string.h>
#include <sodium.h>
#include "call.h"

void openai_prepare(const struct job *j, struct http_req *r)
{
	r->url = wire_url("OPENAI_BASE_URL", "https://api.openai.com/v1", "/chat/completions");
	jv body = jv_object_set(wire_body(j, 0), jv_string("messages"),
	                        orch_jget(j->req, "messages"));
	if (opt.stream)
		body = jv_object_set(body, jv_string("stream_options"),
		                     jv_object_set(jv_object(), jv_string("include_usage"), jv_true()));
	r->body = orch_dump(body, 0);
	const char *key = nonempty_env("OPENAI_API_KEY");
	if (key) {
		char *v = orch_fmt("Bearer %s", key);
		http_header(r, "Authorization", v);
		sodium_memzero(v, strlen(v));
		free(v);
	}
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
			j->ended |= !opt.stream && is_kind(d, JV_KIND_OBJECT);
		}
		const char *c = orch_jstr(d, "content");
		if (c)
			job_text(j, c, strlen(c));
		wire_finish(j, orch_jget(c0, "finish_reason"));
		jv u = orch_jget(v, "usage");
		wire_usage(j, u, "prompt_tokens", "completion_tokens");
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
