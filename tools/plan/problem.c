/* problem.c: orch-plan's problems with a spec, each at a position,
 * reported together sorted by position (ties in the order found) as
 * "file:line:col: message", so one run lists every problem. */
#include <stdarg.h>
#include <stdlib.h>
#include "plan.h"

struct problem { uint32_t line, col; size_t seq; char *msg; };
static struct problem *probs;
static size_t nprobs, capprobs;
static const char *fname;

void problem_file(const char *name)
{
	fname = name;
}

void problem(const node *at, const char *fmt, ...)
{
	if (nprobs == capprobs)
		probs = orch_xrealloc(probs, (capprobs = capprobs ? 2 * capprobs : 16) * sizeof *probs);
	va_list ap;
	va_start(ap, fmt);
	char *m;
	if (vasprintf(&m, fmt, ap) < 0)
		orch_die(EX_FAIL, "out of memory");
	va_end(ap);
	probs[nprobs] = (struct problem){at ? at->line : 0, at ? at->col : 0, nprobs, m};
	nprobs++;
}

static int probcmp(const void *a, const void *b)
{
	const struct problem *p = a, *q = b;
	if (p->line != q->line)
		return p->line < q->line ? -1 : 1;
	if (p->col != q->col)
		return p->col < q->col ? -1 : 1;
	return p->seq < q->seq ? -1 : p->seq > q->seq;
}

int report_problems(void)
{
	if (nprobs)
		qsort(probs, nprobs, sizeof *probs, probcmp);
	for (size_t i = 0; i < nprobs; i++) {
		orch_err_at(fname, probs[i].line, probs[i].col, "%s", probs[i].msg);
		free(probs[i].msg);
	}
	free(probs);
	int rc = nprobs ? EX_USAGE : EX_OK;
	probs = NULL;
	nprobs = capprobs = 0;
	return rc;
}

size_t problem_count(void)
{
	return nprobs;
}
