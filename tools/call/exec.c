/* exec.c: the providers that are not HTTP. exec runs `sh -c COMMAND` with
 * the prompt on its stdin and takes its stdout as the answer, beside the
 * HTTP requests: the queue polls its pipes with libcurl's sockets. echo
 * answers at once, offline: the last user message. A schema is appended
 * to the last user message for both (schema.c).
 *
 * Assumes the request is finalized (request.c): an exec request has its
 * "command", every message a role and a content. A command's failure is
 * not transient: it is never retried. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "call.h"

extern char **environ;

/* An exec job's command: the pipes to it (-1 once closed), the prompt. */
struct child {
	pid_t pid;
	int wfd, rfd, pw, pr;  /* pw, pr: their places in the poll set */
	jv in;
	size_t off;            /* of in, written so far */
};

void echo_start(struct job *j)
{
	job_begin_attempt(j);
	jv msgs = schema_messages(j);
	const char *last = NULL;
	jv_array_foreach(msgs, i, m) {
		if (strcmp(orch_jstr(m, "role"), "user") == 0)
			last = orch_jstr(m, "content");  /* msgs holds it */
		jv_free(m);
	}
	if (last)
		job_text(j, last, strlen(last));
	jv_free(msgs);
	job_settle(j);
}

/* environ with ORCH_SYSTEM and ORCH_MODEL set, made before fork. */
static char **exec_env(const char *sys, const char *model)
{
	size_t n = 0;
	while (environ[n])
		n++;
	char **e = orch_xmalloc((n + 3) * sizeof *e);
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (strncmp(environ[i], "ORCH_SYSTEM=", 12) && strncmp(environ[i], "ORCH_MODEL=", 11))
			e[k++] = environ[i];
	e[k++] = orch_fmt("ORCH_SYSTEM=%s", sys);
	e[k++] = orch_fmt("ORCH_MODEL=%s", model);
	e[k] = NULL;
	return e;
}

static void exec_env_free(char **envp)
{
	size_t n = 0;
	while (envp[n])
		n++;
	free(envp[n - 1]);  /* the two exec_env made */
	free(envp[n - 2]);
	free(envp);
}

/* The prompt the command reads: every message's content, in order,
 * separated by a blank line; the system prompt also in $ORCH_SYSTEM. */
static jv exec_prompt(struct job *j, jv *sys)
{
	jv msgs = schema_messages(j), in = jv_string("");
	*sys = jv_string("");
	jv_array_foreach(msgs, i, m) {
		if (i > 0)
			in = jv_string_append_str(in, "\n\n");
		in = jv_string_append_str(in, orch_jstr(m, "content"));
		if (strcmp(orch_jstr(m, "role"), "system") == 0)
			*sys = jv_string_append_str(*sys, orch_jstr(m, "content"));
		jv_free(m);
	}
	jv_free(msgs);
	return jv_string_append_str(in, "\n");
}

/* sh -c cmd with pipes to its stdin (*wfd) and from its stdout (*rfd). */
static pid_t spawn(const char *cmd, char **envp, int *wfd, int *rfd)
{
	int pin[2], pout[2];
	if (pipe2(pin, O_CLOEXEC) < 0 || pipe2(pout, O_CLOEXEC) < 0)
		orch_die_sys(EX_FAIL, "pipe");
	pid_t pid = fork();
	if (pid < 0)
		orch_die_sys(EX_FAIL, "fork");
	if (pid == 0) {
		dup2(pin[0], 0);
		dup2(pout[1], 1);
		/* nothing else: libcurl's multi handle holds a socketpair that it
		 * does not mark close-on-exec */
		if (close_range(3, ~0U, 0) < 0)
			for (int fd = 3; fd < 1024; fd++)
				close(fd);
		signal(SIGPIPE, SIG_DFL);
		char *argv[] = {"sh", "-c", (char *)cmd, NULL};
		execve("/bin/sh", argv, envp);
		_exit(127);
	}
	close(pin[0]);
	close(pout[1]);
	fcntl(pin[1], F_SETFL, O_NONBLOCK);
	*wfd = pin[1];
	*rfd = pout[0];
	return pid;
}

void exec_start(struct job *j)
{
	struct child *c = j->child = orch_xmalloc(sizeof *c);
	memset(c, 0, sizeof *c);
	c->pw = c->pr = -1;
	job_begin_attempt(j);
	jv sys;
	c->in = exec_prompt(j, &sys);
	char **envp = exec_env(jv_string_value(sys), j->model);
	c->pid = spawn(orch_jstr(j->req, "command"), envp, &c->wfd, &c->rfd);
	exec_env_free(envp);
	jv_free(sys);
	j->state = J_EXEC;
}

/* Poll said the pipes are ready: feed the prompt, read the answer. */
void exec_io(struct job *j, const struct pollset *ps)
{
	struct child *c = j->child;
	short pw = c->pw >= 0 ? ps->fd[c->pw].revents : 0;
	short pr = c->pr >= 0 ? ps->fd[c->pr].revents : 0;
	if (c->wfd >= 0 && pw) {
		size_t len = jv_string_length_bytes(jv_copy(c->in));
		ssize_t w = write(c->wfd, jv_string_value(c->in) + c->off, len - c->off);
		if (w > 0)
			c->off += w;
		if ((w < 0 && errno != EAGAIN && errno != EINTR) || c->off == len) {
			close(c->wfd);  /* EPIPE: the command does not read its prompt */
			c->wfd = -1;
		}
	}
	if (c->rfd >= 0 && pr) {
		char b[65536];
		ssize_t n = read(c->rfd, b, sizeof b);
		if (n > 0)
			job_text(j, b, n);
		else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
			close(c->rfd);
			c->rfd = -1;
		}
	}
}

/* Once the command has closed its stdout and exited, or its time is up:
 * its status, and the answer settled. 0 while it still runs. */
static int exec_reap(struct job *j, double now)
{
	struct child *c = j->child;
	int late = now >= j->deadline, st = 0;
	if (c->rfd >= 0 && !late)
		return 0;
	if (late)
		kill(c->pid, SIGKILL);
	pid_t r;
	while ((r = waitpid(c->pid, &st, late ? 0 : WNOHANG)) < 0 && errno == EINTR)
		;
	if (r == 0)
		return 0;  /* stdout closed, not gone yet */
	if (c->wfd >= 0)
		close(c->wfd);
	if (c->rfd >= 0)
		close(c->rfd);
	c->wfd = c->rfd = -1;
	if (late)
		job_fail(j, 0, "the command timed out after %gs", opt.timeout);
	else if (WIFSIGNALED(st))
		job_fail(j, 0, "the command was killed by signal %d", WTERMSIG(st));
	else if (WEXITSTATUS(st) != 0)
		job_fail(j, 0, "the command exited with status %d", WEXITSTATUS(st));
	job_settle(j);
	return 1;
}

double exec_watch(struct job *j, double now, struct pollset *ps)
{
	struct child *c = j->child;
	if (exec_reap(j, now))
		return -1;
	if (ps->n + 2 > ps->cap)
		ps->fd = orch_xrealloc(ps->fd, (ps->cap = 2 * ps->cap + 16) * sizeof *ps->fd);
	c->pw = c->pr = -1;
	if (c->wfd >= 0)
		ps->fd[c->pw = ps->n++] = (struct pollfd){c->wfd, POLLOUT, 0};
	if (c->rfd >= 0)
		ps->fd[c->pr = ps->n++] = (struct pollfd){c->rfd, POLLIN, 0};
	return c->rfd >= 0 ? j->deadline : now + 0.01;  /* closed: see it exit */
}

void exec_free(struct job *j)
{
	if (!j->child)
		return;
	jv_free(j->child->in);
	free(j->child);
	j->child = NULL;
}
