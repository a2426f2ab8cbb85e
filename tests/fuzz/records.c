/* libFuzzer harness for the shared record reader (lib/json.c) and the event
 * log reader (lib/event.c, lib/manifest.c) on arbitrary bytes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "orch.h"

/* Each record: orch_json_text must give jv_dump_string's bytes. */
static int drop(jv rec, void *ctx)
{
	(void)ctx;
	jv ref = jv_dump_string(jv_copy(rec), 0);
	size_t n;
	char *mine = orch_json_text(rec, &n);
	if (n != (size_t)jv_string_length_bytes(jv_copy(ref)) ||
	    memcmp(mine, jv_string_value(ref), n) != 0) {
		fprintf(stderr, "orch_json_text: %s\njv_dump_string: %s\n", mine, jv_string_value(ref));
		abort();
	}
	free(mine);
	jv_free(ref);
	return 0;
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	/* orch_json_valid is strict: what it accepts, libjq parses */
	if (orch_json_valid((const char *)data, size) && !memchr(data, 0, size)) {
		jv v = jv_parse_sized((const char *)data, (int)size);
		if (!jv_is_valid(v)) {
			fprintf(stderr, "orch_json_valid accepted what libjq refuses\n");
			abort();
		}
		jv_free(v);
	}
	FILE *f = fmemopen((void *)data, size, "r");
	if (f) {
		orch_records(f, "<fuzz>", drop, NULL);
		fclose(f);
	}
	char dir[] = "/tmp/orch-fuzz-XXXXXX";
	if (!mkdtemp(dir))
		return 0;
	char *log = orch_path(dir, "events.jsonl");
	FILE *w = fopen(log, "w");
	if (w) {
		fwrite(data, 1, size, w);
		fclose(w);
		orch_manifest *m = orch_manifest_new(dir);
		orch_manifest_update(m);
		jv_free(orch_manifest_get(m));
		orch_manifest_free(m);
		jv_free(orch_events_completed(log));
	}
	unlink(log);
	free(log);
	rmdir(dir);
	return 0;
}
