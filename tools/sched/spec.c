/* spec.c: --spec FILE, the job spec kept in the run folder as
 * inputs/spec.yaml (orch-run(5)).
 *
 * The file is read when orch-sched starts (the driver may remove a
 * temporary copy of a spec given on stdin once we have ended, never
 * before) and written only once the run's lock is held, so a refused or
 * waiting second run of the same job never replaces the spec of the one
 * that is running. The write is atomic; an unchanged spec is not
 * rewritten (its mtime stays, for make).
 */
#include <stdlib.h>
#include <string.h>
#include "orch.h"
#include "sched.h"

static char *text;
static size_t len;

void spec_read(const char *file)
{
	text = orch_slurp(file, &len);
	if (!text)
		orch_die_sys(EX_USAGE, "--spec: cannot read %s", file);
}

void spec_save(void)
{
	if (!text)
		return;
	char *path = orch_path(run.dir, "inputs/spec.yaml");
	size_t have_len;
	char *have = orch_slurp(path, &have_len);
	if (!have || have_len != len || memcmp(have, text, len) != 0)
		if (orch_atomic_write(path, text, len, 0600, 0) < 0)
			orch_die_sys(EX_FAIL, "cannot write %s", path);
	free(have);
	free(path);
	free(text);
	text = NULL;
}
