/* anthropic.c: Anthropic's messages API. POST
 * $ANTHROPIC_BASE_URL/v1/messages with x-api-key and anthropic-version;
 * system messages go to the top-level "system", max_tokens is always
 * sent. The stream is typed events (usage is cumulative, so the last one
 * counts); a whole answer is one object of type "message". Tokens read
 * from and written to the prompt cache are prompt tokens too, counted
 * apart from input_tokens (and reported apart). No key is sent to
 * Anthropic's own host: the request is refused first. A schema is a
 * single tool, forced (schema.c): the answer is its input, streamed as
 * input_json_delta events, or whole as the tool_use block; text beside it
 * is not the answer. */
#include <stdlib.h>
#include <string.h>
#include "call.h"

void anthropic_prepare(const struct job *j, struct http_req *r)
{
	wire_url(j, r, "ANTHROPIC_BASE_URL", "https://api.anthropic.com", "/v1/messages");
	jv body = wire_body(j, 0), msgs = orch_jget(j->req, "messages"), rest = jv_array();
	jv sys = jv_string("");
	jv_array_foreach(msgs, i, m) {
		if (strcmp(orch_jstr(m, "role"), "system") == 0) {
			if (jv_string_length_bytes(jv_copy(sys)) > 0)
				sys = jv_string_append_str(sys, "\n\n");
			sys = jv_string_append_str(sys, orch_jstr(m, "content"));
			jv_free(m);
		} else
			rest = jv_array_append(rest, m);
	}
	jv_free(msgs);
	if (jv_string_length_bytes(jv_copy(sys)) > 0)
		body = jv_object_set(body, jv_string("system"), sys);
	else
		jv_free(sys);
	body = jv_object_set(body, jv_string("messages"), rest);
	jv mt = orch_jget(body, "max_tokens");
	if (!is_kind(mt, JV_KIND_NUMBER))
		body = jv_object_set(body, jv_string("max_tokens"), jv_number(4096));
	jv_free(mt);
	r->body = orch_dump(schema_body(j, body, "anthropic"), 0);
	const char *key = wire_key(r, "ANTHROPIC_API_KEY", "api.anthropic.com");
	if (key)
		http_header(r, "x-api-key", key);
	http_header(r, "anthropic-version", "2023-06-01");
}

static void usage_of(struct job *j, jv obj)
{
	jv u = orch_jget(obj, "usage");
	wire_usage(j, u, "input_tokens", "output_tokens");
	double v;
	if (orch_jnum(u, "cache_read_input_tokens", &v))
		j->cache_read = v, j->has_cache = 1;
	if (orch_jnum(u, "cache_creation_input_tokens", &v))
		j->cache_write = v, j->has_cache = 1;
	jv_free(u);
}

/* A tool_use block's input, as JSON text: the answer to a schema. */
static void tool_input(struct job *j, jv b)
{
	jv in = orch_jget(b, "input");
	if (is_kind(in, JV_KIND_OBJECT)) {
		size_t n;
		char *s = orch_json_text(in, &n);
		job_text(j, s, n);
		free(s);
	} else
		jv_free(in);
}

/* A whole (non-streamed) answer: its text blocks, or with a schema its
 * tool_use block. */
static void whole_message(struct job *j, jv v)
{
	jv c = orch_jget(v, "content");
	if (is_kind(c, JV_KIND_ARRAY))
		jv_array_foreach(c, i, b) {
			const char *bt = orch_jstr(b, "type"), *t = orch_jstr(b, "text");
			if (!j->schema && bt && strcmp(bt, "text") == 0 && t)
				job_text(j, t, strlen(t));
			if (j->schema && bt && strcmp(bt, "tool_use") == 0)
				tool_input(j, b);
			jv_free(b);
		}
	wire_finish(j, orch_jget(v, "stop_reason"));
	usage_of(j, v);
	j->ended = 1;
	jv_free(c);
}

void anthropic_event(struct job *j, jv v)
{
	const char *type = orch_jstr(v, "type");
	if (!type)
		type = "";
	if (strcmp(type, "error") == 0)
		wire_error(j, v, 1);
	else if (strcmp(type, "message_start") == 0) {
		jv m = orch_jget(v, "message");
		usage_of(j, m);
		jv_free(m);
	} else if (strcmp(type, "content_block_delta") == 0) {
		jv d = orch_jget(v, "delta");
		const char *dt = orch_jstr(d, "type"), *t = orch_jstr(d, "text");
		const char *pj = orch_jstr(d, "partial_json");
		if (!j->schema && dt && strcmp(dt, "text_delta") == 0 && t)
			job_text(j, t, strlen(t));
		if (j->schema && dt && strcmp(dt, "input_json_delta") == 0 && pj)
			job_text(j, pj, strlen(pj));
		jv_free(d);
	} else if (strcmp(type, "message_delta") == 0) {
		jv d = orch_jget(v, "delta");
		wire_finish(j, orch_jget(d, "stop_reason"));
		usage_of(j, v);
		jv_free(d);
	} else if (strcmp(type, "message_stop") == 0)
		j->ended = 1;
	else if (strcmp(type, "message") == 0)
		whole_message(j, v);
	/* ping, content_block_start/stop and unknown events: nothing to do */
	jv_free(v);
}

void anthropic_data(struct job *j, const char *s, size_t n)
{
	wire_object(j, s, n, anthropic_event);
}
