/* budget.c: what the run has spent, and whether a call may start.
 *
 * What a run has spent is a fold of its events.jsonl: each successful
 * llm.response adds its cost_usd (nothing when it has none: an unpriced
 * model) and its tokens (prompt, cached ones included, and completion);
 * a job.started that is no resume begins the count again, so a run and
 * its resumes share one budget, and a fresh run in the same folder starts
 * at zero. RUN/.spent keeps the fold so far and where in the log it
 * stopped: {"usd","tokens","calls","offset","ino"}. Whoever reads it takes
 * flock on it, folds the whole lines appended since offset, and writes it
 * back before letting go, so a check reads only what is new and nothing
 * is counted twice, whichever process folds first. A missing or corrupt
 * file, or one about another log (another inode, a shorter file, an
 * offset that is no line's end), is folded again from the log's start.
 *
 * A request's budget is its "budget" ({usd, tokens}, from the spec's
 * job-level budget:), with --budget and --budget-tokens (or $ORCH_BUDGET,
 * $ORCH_BUDGET_TOKENS, which `orch run --budget` sets) over it. Before
 * each attempt, a request with a budget is refused when the run has
 * spent it already: a budget.exceeded event, and the job fails with kind
 * budget (orch-call.c). Calls in flight are not stopped, so a run may
 * end over its budget by what the calls that had started cost; without
 * a run folder there is nothing to count, and no budget is checked.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include "call.h"

struct spent {
	double usd, tokens, calls;
	double offset, ino;  /* where in the log the fold stopped; its inode */
};

static double nano(double usd)
{
	return round(usd * 1e9) / 1e9;
}

/* The state in fd, or all zero if it is missing or corrupt. */
static void spent_load(int fd, struct spent *s)
{
	char buf[512];
	ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
	memset(s, 0, sizeof *s);
	if (n <= 0)
		return;
	jv v = jv_parse_sized(buf, (int)n);
	int ok = orch_jnum(v, "usd", &s->usd) && orch_jnum(v, "tokens", &s->tokens) &&
	         orch_jnum(v, "calls", &s->calls) && orch_jnum(v, "offset", &s->offset) &&
	         orch_jnum(v, "ino", &s->ino) && s->offset >= 0;
	jv_free(v);
	if (!ok)
		memset(s, 0, sizeof *s);
}

static int spent_store(int fd, const struct spent *s)
{
	char buf[512];
	int n = snprintf(buf, sizeof buf,  /* USD to the nano-dollar, as cost_usd */
	                 "{\"usd\":%.15g,\"tokens\":%.0f,\"calls\":%.0f,\"offset\":%.0f,\"ino\":%.0f}\n",
	                 nano(s->usd), s->tokens, s->calls, s->offset, s->ino);
	if (pwrite(fd, buf, (size_t)n, 0) != n || ftruncate(fd, n) < 0)
		return -1;
	return 0;
}

/* One line of the log (with its newline) into s. */
static void fold_line(struct spent *s, const char *line, size_t n)
{
	int resp = memmem(line, n, "\"type\":\"llm.response\"", 21) != NULL;
	if (!resp && !memmem(line, n, "\"type\":\"job.started\"", 20))
		return;  /* most lines: not parsed at all */
	jv ev = jv_parse_sized(line, (int)n), d = orch_jget(ev, "data");
	const char *type = orch_jstr(ev, "type");
	if (type && strcmp(type, "job.started") == 0 && !orch_jbool(d, "resume", 0))
		s->usd = s->tokens = s->calls = 0;
	else if (type && strcmp(type, "llm.response") == 0 && orch_jbool(d, "success", 0)) {
		double usd = 0, p, c, out;
		jv tok = orch_jget(d, "tokens");
		orch_price_tokens(tok, &p, &c, &out);
		jv_free(tok);
		orch_jnum(d, "cost_usd", &usd);
		s->usd += usd;
		s->tokens += p + out;
		s->calls++;
	}
	jv_free(d);
	jv_free(ev);
}

/* Is s about the log open on fd (of st), up to a line's end? */
static int spent_fits(int fd, const struct stat *st, const struct spent *s)
{
	char c;
	if (s->ino != (double)st->st_ino || s->offset > (double)st->st_size)
		return 0;
	return s->offset == 0 || (pread(fd, &c, 1, (off_t)s->offset - 1) == 1 && c == '\n');
}

/* The whole lines of the log after s->offset folded into s. */
static int spent_fold(const char *log, struct spent *s)
{
	int fd = open(log, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 && errno == ENOENT) {  /* no log: nothing spent */
		memset(s, 0, sizeof *s);
		return 0;
	}
	if (fd < 0 || fstat(fd, &st) < 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if (!spent_fits(fd, &st, s))
		memset(s, 0, sizeof *s);
	s->ino = (double)st.st_ino;
	FILE *f = fdopen(fd, "r");
	if (!f || fseeko(f, (off_t)s->offset, SEEK_SET) < 0) {
		f ? fclose(f) : close(fd);
		return -1;
	}
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	while ((n = getline(&line, &cap, f)) > 0 && line[n - 1] == '\n') {
		fold_line(s, line, (size_t)n);
		s->offset += (double)n;
	}
	free(line);
	fclose(f);
	return 0;
}

/* What the run in dir has spent, RUN/.spent brought up to date; 0, or
 * -1 (errno) if it cannot be read. */
static int spent_sync(const char *dir, struct spent *s)
{
	char *path = orch_path(dir, ".spent"), *log = orch_path(dir, "events.jsonl");
	int fd = orch_mkdir_p(dir, 0700) < 0 ? -1 : open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	int rc = -1;
	if (fd >= 0 && flock(fd, LOCK_EX) == 0) {
		spent_load(fd, s);
		rc = spent_fold(log, s) == 0 && spent_store(fd, s) == 0 ? 0 : -1;
	}
	int e = errno;
	if (fd >= 0)
		close(fd);  /* and the lock goes */
	free(path);
	free(log);
	errno = e;
	return rc;
}

/* j's budget: the flags over its request's; 0 where none. */
static void budget_of(const struct job *j, double *usd, double *tokens)
{
	jv b = orch_jget(j->req, "budget");
	*usd = *tokens = 0;
	orch_jnum(b, "usd", usd);
	orch_jnum(b, "tokens", tokens);
	jv_free(b);
	if (opt.budget_usd > 0)
		*usd = opt.budget_usd;
	if (opt.budget_tokens > 0)
		*tokens = opt.budget_tokens;
}

/* Where the spending is counted, or NULL (said once) when j has no
 * budget or there is no run folder. */
static const char *counted_run(const struct job *j, double *usd, double *tokens)
{
	static int told;
	const char *run = orch_run_dir();
	budget_of(j, usd, tokens);
	if (!(*usd > 0 || *tokens > 0))
		return NULL;
	if (!run && !told++)
		orch_err("a budget needs a run folder (--run or ORCH_RUN_DIR) to count what was spent; "
		         "not checked");
	return run;
}

static jv number_or_null(double d)
{
	return d > 0 ? jv_number(d) : jv_null();
}

static void emit_exceeded(const struct job *j, const struct spent *s, double usd, double tokens)
{
	jv d = jv_object();
	d = jv_object_set(d, jv_string("provider"), jv_string(j->name));
	d = jv_object_set(d, jv_string("model"), jv_string(j->model));
	d = jv_object_set(d, jv_string("spent_usd"), jv_number(nano(s->usd)));
	d = jv_object_set(d, jv_string("budget_usd"), number_or_null(usd));
	d = jv_object_set(d, jv_string("spent_tokens"), jv_number(s->tokens));
	d = jv_object_set(d, jv_string("budget_tokens"), number_or_null(tokens));
	d = jv_object_set(d, jv_string("calls"), jv_number(s->calls));
	orch_emit(orch_run_dir(), "ERROR", "budget.exceeded", j->step, d);
}

char *budget_check(const struct job *j)
{
	double usd, tokens;
	struct spent s;
	const char *run = counted_run(j, &usd, &tokens);
	if (!run)
		return NULL;
	if (spent_sync(run, &s) < 0)
		return orch_fmt("budget: cannot count what the run spent (%s/.spent): %s",
		                run, strerror(errno));
	int over_usd = usd > 0 && s.usd >= usd, over_tok = tokens > 0 && s.tokens >= tokens;
	if (!over_usd && !over_tok)
		return NULL;
	emit_exceeded(j, &s, usd, tokens);
	if (over_usd)
		return orch_fmt("budget: the run has spent $%g of its $%g; not calling %s",
		                nano(s.usd), usd, j->name);
	return orch_fmt("budget: the run has spent %.0f of its %.0f tokens; not calling %s",
	                s.tokens, tokens, j->name);
}

void budget_note(const struct job *j)
{
	double usd, tokens;
	struct spent s;
	const char *run = counted_run(j, &usd, &tokens);
	if (run && spent_sync(run, &s) < 0)
		orch_err_sys("budget: cannot update %s/.spent", run);
}
