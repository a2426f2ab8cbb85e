/* events.c: orch-call's llm.request and llm.response events: the
 * request's estimated prompt tokens, the answer's tokens, cost (the
 * request's price rows first, then the table: lib/price.c), its schema
 * check, and whether it will be retried; an answered call is noted
 * against the run's budget (budget.c). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "call.h"

void emit_request(struct job *j)
{
	jv d = jv_object();
	d = jv_object_set(d, jv_string("provider"), jv_string(j->name));
	d = jv_object_set(d, jv_string("model"), jv_string(j->model));
	d = jv_object_set(d, jv_string("prompt_tokens"), jv_number(j->prompt_est));
	d = jv_object_set(d, jv_string("attempt"), jv_number(j->attempt));
	orch_emit(orch_run_dir(), "INFO", "llm.request", j->step, d);
}

/* What the provider counted (cached tokens included), else our estimate. */
double prompt_tokens(const struct job *j)
{
	return (j->has_ptok ? j->ptok : j->prompt_est) + j->cache_read + j->cache_write;
}

/* d (consumed) with what the check of a structured answer found: valid,
 * else the errors and whether it is asked again. */
static jv schema_data(const struct job *j, jv d, int again)
{
	d = jv_object_set(d, jv_string("valid"), jv_bool(jv_is_valid(j->json)));
	if (j->repairs)
		d = jv_object_set(d, jv_string("repair"), jv_number(j->repairs));
	if (jv_is_valid(j->json))
		return d;
	d = jv_object_set(d, jv_string("errors"), jv_copy(j->errors));
	return jv_object_set(d, jv_string("will_retry"), jv_bool(again));
}

/* The price rows over the table: the request's (its spec's prices:),
 * then the config file's. */
static jv price_rows(const struct job *j)
{
	jv mine = orch_jget(j->req, "prices");
	if (!is_kind(mine, JV_KIND_ARRAY)) {
		jv_free(mine);
		mine = jv_array();
	}
	return jv_array_concat(mine, jv_copy(orch_config()->prices));
}

/* INFO, or WARN for a failure to be retried (or to fall back from),
 * ERROR for the last one. */
void emit_response(struct job *j, double dur, int will_retry, double delay, int last)
{
	int ok = !j->err, valid = !j->schema || jv_is_valid(j->json);
	jv tok = jv_object();
	tok = jv_object_set(tok, jv_string("prompt"), jv_number(ok ? prompt_tokens(j) : 0));
	tok = jv_object_set(tok, jv_string("completion"), jv_number(ok ? j->ctok : 0));
	if (ok && j->has_cache) {
		tok = jv_object_set(tok, jv_string("cache_read"), jv_number(j->cache_read));
		tok = jv_object_set(tok, jv_string("cache_creation"), jv_number(j->cache_write));
	}
	jv d = jv_object();
	d = jv_object_set(d, jv_string("provider"), jv_string(j->name));
	d = jv_object_set(d, jv_string("model"), jv_string(j->model));
	d = jv_object_set(d, jv_string("duration_s"), jv_number(ms3(dur)));
	if (ok)  /* null when the model has no price: never a guess */
		d = jv_object_set(d, jv_string("cost_usd"),
		                  orch_price_cost_over(price_rows(j), j->name, j->model, jv_copy(tok)));
	d = jv_object_set(d, jv_string("tokens"), tok);
	d = jv_object_set(d, jv_string("success"), jv_bool(ok));
	d = jv_object_set(d, jv_string("attempt"), jv_number(j->attempt));
	if (ok && j->schema)
		d = schema_data(j, d, will_retry);
	if (!ok) {
		if (j->status)
			d = jv_object_set(d, jv_string("status"), jv_number(j->status));
		d = jv_object_set(d, jv_string("error"), jv_string(j->err));
		d = jv_object_set(d, jv_string("will_retry"), jv_bool(will_retry));
		if (will_retry)
			d = jv_object_set(d, jv_string("retry_in_s"), jv_number(ms3(delay)));
	}
	orch_emit(orch_run_dir(), ok && valid ? "INFO" : last ? "ERROR" : "WARN", "llm.response",
	          j->step, d);
	if (ok)
		budget_note(j);
}
