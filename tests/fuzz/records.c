/* libFuzzer harness for the shared record reader (lib/json.c) and the event
 * log reader (lib/event.c, lib/manifest.c) on arbitrary bytes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "orch.h"

static int drop(jv rec, void *ctx)
{
	(void)ctx;
	jv_free(rec);
	return 0;
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
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
