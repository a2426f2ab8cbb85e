/* ollama.c: Ollama's wire format. POST $OLLAMA_HOST/api/chat; the
 * stream is one JSON object per line, the last with done:true and the
 * token counts; a whole answer is that last object alone. A schema goes
 * in "format" (schema.c). */
#include <string.h>
#include "call.h"

void ollama_prepare(const struct job *j, struct http_req *r)
{
	wire_url(j, r, "OLLAMA_HOST", "http://127.0.0.1:11434", "/api/chat");
	jv body = jv_object_set(wire_body(j, 1), jv_string("messages"),
	                        orch_jget(j->req, "messages"));
	r->body = orch_dump(schema_body(j, body, "ollama"), 0);
}

void ollama_object(struct job *j, jv v)
{
	if (!wire_error(j, v, 0)) {
		jv m = orch_jget(v, "message");
		const char *c = orch_jstr(m, "content");
		if (c)
			job_text(j, c, strlen(c));
		jv_free(m);
		if (orch_jbool(v, "done", 0)) {
			j->ended = 1;
			wire_finish(j, orch_jget(v, "done_reason"));
			wire_usage(j, v, "prompt_eval_count", "eval_count");
		}
	}
	jv_free(v);
}

void ollama_line(struct job *j, const char *s, size_t n)
{
	wire_object(j, s, n, ollama_object);
}
