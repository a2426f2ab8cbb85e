/* fankey.c: a fan-out item's key (CONTRACT §9), made the same way by
 * orch-plan (items known when it plans) and orch-sched (items from an
 * upstream step's answer), so an instance keeps its name, its artifact
 * and its place in the events whichever of them expanded it.
 */
#include <stdlib.h>
#include <string.h>
#include <jq.h>
#include "orch.h"

char *orch_item_key(struct jq_state *keyq, jv item, int by_path)
{
	jv v = keyq ? orch_jq_first(keyq, jv_copy(item)) :
	       by_path ? jv_object_get(jv_copy(item), jv_string("path")) : jv_copy(item);
	if (jv_get_kind(v) == JV_KIND_NUMBER)
		v = jv_dump_string(v, 0);
	if (jv_get_kind(v) == JV_KIND_STRING && orch_job_id_valid(jv_string_value(v))) {
		char *k = orch_xstrdup(jv_string_value(v));
		jv_free(v);
		jv_free(item);
		return k;
	}
	if (!jv_is_valid(v))
		jv_free(v), v = jv_copy(item);
	char *text = jv_get_kind(v) == JV_KIND_STRING ? orch_xstrdup(jv_string_value(v)) :
	             orch_dump(jv_copy(v), 1);
	char hex[65];
	orch_sha256_hex(text, strlen(text), hex);
	hex[12] = 0;
	free(text);
	jv_free(v);
	jv_free(item);
	return orch_xstrdup(hex);
}
