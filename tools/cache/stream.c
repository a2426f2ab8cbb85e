/* stream.c: many requests, answers as they come.
 *
 * orch-cache stream -- CMD [ARG...]: request lines in, one line out per
 * request, in the order the answers come, each with the request's "step":
 * a hit at once (the entry's hit line, the step put in front), a miss
 * from CMD. One CMD serves every miss: it starts at the first, and again
 * at the next miss after it has ended. It speaks orch-call --serve's
 * protocol (orch-call(1), SERVE): each miss is written to its stdin as
 * it comes, the request line with "id":N put in front (N a number, one
 * per request of the stream); it prints one line per request, as each
 * is done, with the same "id": the answer, which is stored and printed
 * as -- CMD would, or {"id"?,"step","failed":{"kind"?,"message"},
 * "exit_code":N}, printed without the id. A line with no id of a
 * request that waits for one (a CMD that does not speak the protocol)
 * is said on stderr and dropped. Once stdin ends, CMD's stdin is closed
 * and the stream ends with CMD. When CMD ends with requests unanswered,
 * each is printed as {"step","failed":{"message"},"exit_code":N}, N
 * what -- CMD would have exited (never asked again: it may have been
 * called); a line with "failed" in (a step that never became a request)
 * is printed as it is. Exit 0 once stdin ends and every request is
 * answered; 2 if a line was no request (said on stderr, and answered as
 * failed when it names a step). */

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include "cache.h"

struct sreq { char key[65]; char *step; char *text; size_t len; };

static struct {
	char **argv;
	pid_t pid;                  /* CMD, or 0 */
	int to, from;               /* its stdin (a socket), its stdout */
	struct orch_buf out, ans;   /* for its stdin, not written yet; its answers' last part */
	struct sreq **sent;         /* by id; NULL once answered */
	size_t nsent, capsent, lo;  /* ids below lo are answered */
	int bad;
	int synced;                 /* no entry stored since the cache was synced */
} st = {.to = -1, .from = -1, .synced = 1};

static void buf_drop(struct orch_buf *b, size_t n)  /* the first n bytes */
{
	if (b->p)  /* the NUL after them too */
		memmove(b->p, b->p + n, b->n - n + 1);
	b->n -= n;
}

static void stream_emit(const char *type, const char *key, const char *step)
{
	orch_emit(orch_run_dir(), "INFO", type, step,
	          jv_object_set(jv_object(), jv_string("cache_key"), jv_string(key)));
}

/* Print v (consumed) with "step" first. */
static int put_tagged(jv v, const char *step)
{
	jv o = jv_object_set(jv_object(), jv_string("step"), step ? jv_string(step) : jv_null());
	jv_object_foreach(v, k, x)
		o = jv_object_set(o, k, x);
	jv_free(v);
	return orch_put(o);
}

/* The entry's hit line with "step" put in front: no parsing. */
static int put_hit(const char *line, size_t len, const char *step)
{
	jv s = jv_dump_string(step ? jv_string(step) : jv_null(), 0);
	int empty = len < 2 || line[1] == '}';
	int ok = len > 0 && line[0] == '{' &&
	         printf("{\"step\":%s%s%.*s\n", jv_string_value(s), empty ? "" : ",",
	                (int)(len - 1), line + 1) > 0 && fflush(stdout) == 0;
	jv_free(s);
	return ok ? 0 : -1;
}

static void put_failed(const struct sreq *r, jv failed, int code)
{
	jv o = jv_object_set(jv_object(), jv_string("step"), r->step ? jv_string(r->step) : jv_null());
	o = jv_object_set(o, jv_string("failed"), failed);
	o = jv_object_set(o, jv_string("exit_code"), jv_number(code));
	if (orch_put(o) < 0)
		orch_die_sys(EX_FAIL, "writing output failed");
}

static void sreq_free(struct sreq *r)
{
	free(r->step);
	free(r->text);
	free(r);
}

/* CMD begins, its stdin a socket (written without SIGPIPE), its stderr
 * ours: 0, or -1 (reported). */
static int cmd_start(void)
{
	int sv[2], p[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		orch_err_sys("socketpair");
		return -1;
	}
	if (pipe2(p, O_CLOEXEC) < 0) {
		orch_err_sys("pipe");
		close(sv[0]);
		close(sv[1]);
		return -1;
	}
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		dup2(sv[1], 0);
		dup2(p[1], 1);
		execvp(st.argv[0], st.argv);
		orch_err_sys("cannot run %s", st.argv[0]);
		_exit(errno == ENOENT ? 127 : 126);
	}
	close(sv[1]);
	close(p[1]);
	if (pid < 0) {
		orch_err_sys("cannot run %s", st.argv[0]);
		close(sv[0]);
		close(p[0]);
		return -1;
	}
	st.pid = pid;
	st.to = sv[0];
	st.from = p[0];
	return 0;
}

/* A miss (taken) goes to CMD, started if it is not running. */
static void send_miss(struct sreq *r, const char *line, size_t len)
{
	if (!st.pid && cmd_start() < 0) {
		put_failed(r, jv_object_set(jv_object(), jv_string("message"),
		           jv_string_fmt("cannot run %s", st.argv[0])), EX_FAIL);
		sreq_free(r);
		return;
	}
	if (st.nsent == st.capsent)
		st.sent = orch_xrealloc(st.sent, (st.capsent = st.capsent ? 2 * st.capsent : 256) * sizeof *st.sent);
	char tag[48];
	line += strspn(line, " \t\r");  /* an object: request_key said so */
	len = strcspn(line, "\n");
	int n = snprintf(tag, sizeof tag, "{\"id\":%zu%s", st.nsent, len > 2 && line[1] != '}' ? "," : "");
	orch_buf_add(&st.out, tag, (size_t)n);
	orch_buf_add(&st.out, line + 1, len - 1);
	orch_buf_add(&st.out, "\n", 1);
	st.sent[st.nsent++] = r;
}

/* One request line: answered from the cache, or sent to CMD; a line
 * that says a step failed before it became a request passes on. */
static void stream_request(const char *line, size_t len)
{
	jv req = jv_parse_sized(line, (int)len);
	struct sreq *r = orch_xmalloc(sizeof *r);
	*r = (struct sreq){.step = NULL};
	if (jv_get_kind(req) == JV_KIND_OBJECT && jv_object_has(jv_copy(req), jv_string("failed"))) {
		jv_free(req);
		free(r);
		if (printf("%.*s\n", (int)len, line) < 0 || fflush(stdout) != 0)
			orch_die_sys(EX_FAIL, "writing output failed");
		return;
	}
	const char *step = jv_get_kind(req) == JV_KIND_OBJECT ? orch_jstr(req, "step") : NULL;
	r->step = step ? orch_xstrdup(step) : NULL;
	jv asked = jv_copy(req);  /* for the step index: what changed */
	if (!jv_is_valid(req) || request_key(req, r->key, "<stdin>") < 0) {
		jv_free(asked);
		if (!jv_is_valid(req))
			orch_err("<stdin>: a line that is no JSON request: %.80s", line);
		st.bad = 1;
		if (r->step)
			put_failed(r, jv_object_set(jv_object(), jv_string("message"),
			                            jv_string("no request")), EX_USAGE);
		sreq_free(r);
		return;
	}
	char *h;
	size_t hlen;
	char *e = entry_read(r->key, 1, &h, &hlen);
	if (e) {
		stream_emit("cache.hit", r->key, r->step);
		if (put_hit(h, hlen, r->step) < 0)
			orch_die_sys(EX_FAIL, "writing output failed");
		index_note(r->key, asked);  /* after the answer: it waits for none of this */
		free(e);
		sreq_free(r);
		return;
	}
	orch_emit(orch_run_dir(), "INFO", "cache.miss", r->step, miss_data(r->key, asked));
	r->text = orch_fmt("%.*s", (int)len, line);
	r->len = len;
	send_miss(r, line, len);
}

/* One line of CMD: the answer to the request of its id, stored and
 * printed, or its failure printed. */
static void stream_answer(const char *line, size_t len)
{
	jv v = jv_parse_sized(line, (int)len);
	double id = -1;
	if (jv_get_kind(v) != JV_KIND_OBJECT || !orch_jnum(v, "id", &id) || id < 0 ||
	    id >= st.nsent || id != floor(id) || !st.sent[(size_t)id]) {
		orch_err("%s: a line with no \"id\" of a request waiting for one (does it speak "
		         "orch-call --serve?): %.80s", st.argv[0], line);
		jv_free(v);
		return;
	}
	struct sreq *r = st.sent[(size_t)id];
	st.sent[(size_t)id] = NULL;
	v = jv_object_delete(v, jv_string("id"));
	if (jv_object_has(jv_copy(v), jv_string("failed"))) {
		double code = EX_FAIL;
		orch_jnum(v, "exit_code", &code);
		put_failed(r, orch_jget(v, "failed"), (int)code);
		jv_free(v);
	} else {  /* stored, then printed; then the step's last answered call */
		int stored = entry_write(r->key, jv_copy(v), 0) == 0;
		if (put_tagged(mark(v, "miss"), r->step) < 0)
			orch_die_sys(EX_FAIL, "writing output failed");
		if (stored) {
			index_note(r->key, jv_parse_sized(r->text, (int)r->len));
			st.synced = 0;
		}
	}
	sreq_free(r);
}

/* CMD has ended: each request it left unanswered failed, as -- CMD
 * would have exited. */
static void cmd_end(void)
{
	int status = 0;
	while (waitpid(st.pid, &status, 0) < 0 && errno == EINTR)
		;
	close(st.from);
	if (st.to >= 0)
		close(st.to);
	st.pid = 0;
	st.to = st.from = -1;
	st.out.n = st.ans.n = 0;
	int code = WIFSIGNALED(status) ? EX_SIGNAL + WTERMSIG(status) :
	           WEXITSTATUS(status) ? WEXITSTATUS(status) : EX_FAIL;
	for (; st.lo < st.nsent; st.lo++) {
		struct sreq *r = st.sent[st.lo];
		if (!r)
			continue;
		st.sent[st.lo] = NULL;
		put_failed(r, jv_object_set(jv_object(), jv_string("message"), WIFSIGNALED(status)
		           ? jv_string_fmt("%s killed by signal %d before it answered", st.argv[0], WTERMSIG(status))
		           : jv_string_fmt("%s exited %d before it answered", st.argv[0], WEXITSTATUS(status))),
		           code);
		sreq_free(r);
	}
}

/* Read CMD's answers; at its end, settle it. */
static void cmd_read(void)
{
	char buf[65536];
	ssize_t n = read(st.from, buf, sizeof buf);
	if (n < 0 && errno == EINTR)
		return;
	if (n <= 0) {
		cmd_end();
		return;
	}
	orch_buf_add(&st.ans, buf, (size_t)n);
	char *p = st.ans.p, *end = p + st.ans.n, *nl;
	while ((nl = memchr(p, '\n', (size_t)(end - p)))) {
		if (nl > p)
			stream_answer(p, (size_t)(nl - p));
		p = nl + 1;
	}
	buf_drop(&st.ans, (size_t)(p - st.ans.p));
	while (st.lo < st.nsent && !st.sent[st.lo])
		st.lo++;
}

/* Write what waits for CMD's stdin, as much as it takes now. */
static void cmd_write(void)
{
	if (!st.pid || st.to < 0 || st.out.n == 0)
		return;
	ssize_t n = send(st.to, st.out.p, st.out.n, MSG_DONTWAIT | MSG_NOSIGNAL);
	if (n > 0)
		buf_drop(&st.out, (size_t)n);
	else if (n < 0 && errno != EAGAIN && errno != EINTR) {
		st.out.n = 0;  /* it has gone: its end says what it left */
		close(st.to);
		st.to = -1;
	}
}

/* The whole request lines read so far, taken; the rest kept. */
static void take_lines(struct orch_buf *in)
{
	if (in->n == 0)
		return;
	char *p = in->p, *end = p + in->n, *nl;
	while (p < end && (nl = memchr(p, '\n', (size_t)(end - p)))) {
		if (nl > p)
			stream_request(p, (size_t)(nl - p));
		p = nl + 1;
	}
	buf_drop(in, (size_t)(p - in->p));
}

/* Wait for stdin, CMD's answers or room in its stdin; stdin read while
 * it has more now. 0 once stdin has ended. */
static int stream_turn(struct orch_buf *in, int open)
{
	struct pollfd fds[3] = {
		{.fd = open ? 0 : -1, .events = POLLIN},
		{.fd = st.from, .events = POLLIN},
		{.fd = st.out.n ? st.to : -1, .events = POLLOUT},
	};
	if (poll(fds, 3, -1) < 0 && errno != EINTR)
		orch_die_sys(EX_FAIL, "poll");
	if (fds[2].revents)
		cmd_write();
	if (fds[1].revents)
		cmd_read();
	char buf[65536];
	while (open && fds[0].revents) {
		ssize_t n = read(0, buf, sizeof buf);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			open = 0;
			if (in->n > 0)
				orch_buf_add(in, "\n", 1);
		} else
			orch_buf_add(in, buf, (size_t)n);
		take_lines(in);
		struct pollfd more = {.fd = 0, .events = POLLIN};
		fds[0].revents = open && poll(&more, 1, 0) > 0 ? more.revents : 0;
	}
	cmd_write();
	if (!open && st.pid && st.to >= 0 && st.out.n == 0) {  /* all sent: CMD may end */
		close(st.to);
		st.to = -1;
	}
	return open;
}

/* The entries stored are on disk before the stream ends: one syncfs for
 * them all, not an fsync each on the way (a fsync costs a miss its
 * answer's latency). Until then a crash of the machine may lose one; a
 * killed process loses none (the crash model of orch-sched(1)), and a
 * torn entry is a miss, never a wrong answer. */
static void sync_entries(void)
{
	int fd = st.synced ? -1 : open(cache_dir(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0 && syncfs(fd) < 0)
		orch_err_sys("cannot sync %s", cache_dir());
	if (fd >= 0)
		close(fd);
	st.synced = 1;
}

int cmd_stream(char **argv)
{
	st.argv = argv;
	signal(SIGPIPE, SIG_DFL);
	struct orch_buf in = {0};
	int open = 1;
	while (open || st.pid)
		open = stream_turn(&in, open);
	sync_entries();
	free(in.p);
	free(st.out.p);
	free(st.ans.p);
	free(st.sent);
	return st.bad ? EX_USAGE : EX_OK;
}
