/* loop.c: the record loop of every tool that reads ND-JSON from files or
 * stdin (orch-call, orch-sched, orch-write...): one place that decides
 * what "-", a missing operand and an unreadable file mean. */
#include <stdio.h>
#include <string.h>
#include "orch.h"

static const char *at_file;
static long at_rec;

struct counted { orch_record_fn fn; void *ctx; };

static int count(jv rec, void *ctx)
{
	struct counted *c = ctx;
	at_rec++;
	return c->fn(rec, c->ctx);
}

const char *orch_loop_at(long *rec)
{
	if (rec)
		*rec = at_rec;
	return at_file;
}

int orch_loop(char **files, int n, orch_record_fn fn, void *ctx)
{
	static char *dash[] = {"-"};
	struct counted c = {fn, ctx};
	int rc = 0, missing = 0;
	if (n == 0) {
		files = dash;
		n = 1;
	}
	for (int i = 0; i < n && rc == 0; i++) {
		int is_stdin = strcmp(files[i], "-") == 0;
		FILE *f = is_stdin ? stdin : fopen(files[i], "r");
		if (!f) {
			orch_err_sys("cannot open %s", files[i]);
			missing = 1;
			continue;
		}
		at_file = files[i];
		at_rec = 0;
		rc = orch_records(f, files[i], count, &c);
		if (!is_stdin)
			fclose(f);
	}
	at_file = NULL;
	return rc ? rc : missing ? EX_FAIL : 0;
}
