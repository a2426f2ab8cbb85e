/* config.c: orch-call's side of the user's config (lib/config.c): model
 * aliases, a provider's key from its configured source, and --config.
 *
 * A key comes from $VAR (OPENAI_API_KEY...) when set, else from the
 * provider's api_key_file (its first line; the file must be open to its
 * owner only) or api_key_cmd (`/bin/sh -c CMD`, stdin /dev/null, the
 * first line of its stdout, within 10 s). It is read when the first
 * request to that provider is prepared, kept in this process's memory
 * only (for the requests that follow, and for redact()), and zeroed at
 * exit; no event, log, cache entry or message ever holds it. A source
 * that fails is a clear error, without the key, and no request is sent.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <sodium.h>
#include "call.h"

#define KEY_CMD_TIMEOUT 10.0  /* seconds */
#define KEY_MAX 65536         /* bytes of a key source read */

/* Per provider: the key read, or why none could be. */
static struct { int tried; char *key, *err; } got[ORCH_NKEYS];

jv config_alias(jv e, const char **model)
{
	const char *a = *model ? orch_config_alias(*model) : NULL, *colon;
	if (!a)
		return e;
	if ((colon = strchr(a, ':'))) {
		e = jv_object_set(e, jv_string("name"), jv_string_sized(a, (int)(colon - a)));
		a = colon + 1;
	}
	*model = a;
	return e;
}

/* The first line of buf[0..n) (zeroed after), trimmed; NULL if empty. */
static char *first_line(char *buf, size_t n)
{
	size_t k = strcspn(buf, "\n");
	while (k > 0 && (buf[k - 1] == '\r' || buf[k - 1] == ' ' || buf[k - 1] == '\t'))
		k--;
	char *key = k ? orch_fmt("%.*s", (int)k, buf) : NULL;
	sodium_memzero(buf, n);
	return key;
}

static char *key_from_file(const char *path, char **err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	struct stat st;
	char *key = NULL, *buf = NULL;
	size_t n = 0;
	if (fd < 0 || fstat(fd, &st) < 0)
		*err = orch_fmt("api_key_file %s: %s", path, strerror(errno));
	else if (!S_ISREG(st.st_mode))
		*err = orch_fmt("api_key_file %s: not a regular file", path);
	else if (st.st_mode & 077)
		*err = orch_fmt("api_key_file %s: open to group or others (mode %04o); "
		                "chmod 600 it", path, (unsigned)(st.st_mode & 07777));
	else if (!(buf = orch_read_fd(fd, &n)))
		*err = orch_fmt("api_key_file %s: %s", path, strerror(errno));
	else if (!(key = first_line(buf, n)))
		*err = orch_fmt("api_key_file %s: no key on its first line", path);
	if (fd >= 0)
		close(fd);
	free(buf);
	return key;
}

/* Read fd into buf (up to KEY_MAX - 1 bytes) until EOF or the deadline;
 * the bytes read, or -1 on a timeout. */
static ssize_t read_until(int fd, char *buf, double deadline)
{
	size_t n = 0;
	for (;;) {
		double left = deadline - orch_mono();
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (left <= 0)
			return -1;
		if (poll(&p, 1, (int)(left * 1000) + 1) <= 0)
			continue;  /* EINTR, or time to look at the clock */
		ssize_t r = read(fd, buf + n, KEY_MAX - 1 - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0 || (n += r) == KEY_MAX - 1)
			return (ssize_t)n;
	}
}

/* The child: sh -c cmd, stdin /dev/null, stdout the pipe, its own group. */
static _Noreturn void key_child(const char *cmd, int out)
{
	int nul = open("/dev/null", O_RDONLY);
	setpgid(0, 0);
	signal(SIGPIPE, SIG_DFL);
	if (nul < 0 || dup2(nul, 0) < 0 || dup2(out, 1) < 0)
		_exit(127);
	execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
	_exit(127);
}

static char *key_from_cmd(const char *cmd, char **err)
{
	int fd[2], st = 0;
	char *buf = orch_xmalloc(KEY_MAX), *key = NULL;
	if (pipe2(fd, O_CLOEXEC) < 0)
		orch_die_sys(EX_FAIL, "pipe");
	pid_t pid = fork();
	if (pid < 0)
		orch_die_sys(EX_FAIL, "fork");
	if (pid == 0)
		key_child(cmd, fd[1]);
	close(fd[1]);
	ssize_t n = read_until(fd[0], buf, orch_mono() + KEY_CMD_TIMEOUT);
	close(fd[0]);
	if (n < 0)
		kill(-pid, SIGKILL), kill(pid, SIGKILL);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	buf[n < 0 ? 0 : n] = 0;
	if (n < 0)
		*err = orch_fmt("api_key_cmd '%s': no answer in %g s", cmd, KEY_CMD_TIMEOUT);
	else if (WIFSIGNALED(st))
		*err = orch_fmt("api_key_cmd '%s': killed by signal %d", cmd, WTERMSIG(st));
	else if (WEXITSTATUS(st))
		*err = orch_fmt("api_key_cmd '%s': exited with %d", cmd, WEXITSTATUS(st));
	else if (!(key = first_line(buf, n)))
		*err = orch_fmt("api_key_cmd '%s': printed no key", cmd);
	sodium_memzero(buf, KEY_MAX);
	free(buf);
	return key;
}

const char *config_key(const char *var, const char **err)
{
	const struct orch_config *c = orch_config();
	for (int i = 0; i < ORCH_NKEYS; i++) {
		const struct orch_keysrc *k = &c->keys[i];
		if (strcmp(k->var, var) != 0 || (!k->file && !k->cmd))
			continue;
		if (!got[i].tried) {
			got[i].tried = 1;
			got[i].key = k->file ? key_from_file(k->file, &got[i].err)
			                     : key_from_cmd(k->cmd, &got[i].err);
		}
		if (got[i].err)
			*err = got[i].err;
		return got[i].key;
	}
	return NULL;
}

const char *config_secret(int i)
{
	return i >= 0 && i < ORCH_NKEYS ? got[i].key : NULL;
}

void config_end(void)
{
	for (int i = 0; i < ORCH_NKEYS; i++) {
		if (got[i].key)
			sodium_memzero(got[i].key, strlen(got[i].key));
		free(got[i].key);
		free(got[i].err);
		got[i].key = got[i].err = NULL;
	}
}

/* ---- --config: the effective settings, keys never shown ---- */

static void put(const char *name, const char *value, const char *from)
{
	printf("%s\t%s%s%s%s\n", name, value, from ? " (" : "", from ? from : "", from ? ")" : "");
}

static void print_keys(const struct orch_config *c)
{
	for (int i = 0; i < ORCH_NKEYS; i++) {
		const struct orch_keysrc *k = &c->keys[i];
		char *name = orch_fmt("key.%s", k->provider), *v;
		if (nonempty_env(k->var))
			v = orch_fmt("%s (env, set)", k->var);
		else if (k->file)
			v = orch_fmt("api_key_file %s (config)", k->file);
		else if (k->cmd)
			v = orch_fmt("api_key_cmd %s (config)", k->cmd);
		else
			v = orch_fmt("none (%s is not set)", k->var);
		put(name, v, NULL);
		free(name);
		free(v);
	}
}

/* One line per price row of the config: what it overrides. */
static void print_prices(const struct orch_config *c)
{
	jv_array_foreach(c->prices, i, r) {
		double in = 0, cached, out = 0;
		orch_jnum(r, "input", &in);
		orch_jnum(r, "output", &out);
		if (!orch_jnum(r, "cached_input", &cached))
			cached = in;
		char *name = orch_fmt("price.%s.%s", orch_jstr(r, "provider"), orch_jstr(r, "model"));
		char *v = orch_fmt("input %g cached %g output %g USD/M", in, cached, out);
		put(name, v, "config");
		free(name);
		free(v);
		jv_free(r);
	}
}

int config_print(void)
{
	const struct orch_config *c = orch_config();
	const char *env = nonempty_env("ORCH_PROVIDER"), *menv = nonempty_env("ORCH_MODEL");
	const char *prov = env ? env : c->provider ? c->provider : "echo";
	const struct provider *p = provider_find(prov);
	const char *model = menv ? menv : orch_config_model(prov);
	const char *from = menv ? "ORCH_MODEL" : model ? "config" : "built-in";
	put("config", c->path, c->found ? NULL : "none");
	put("provider", prov, env ? "ORCH_PROVIDER" : c->provider ? "config" : "built-in");
	put("model", model ? model : p && p->model ? p->model : "none", from);
	jv names = jv_keys(jv_copy(c->aliases));
	jv_array_foreach(names, i, k) {
		char *name = orch_fmt("alias.%s", jv_string_value(k));
		put(name, orch_config_alias(jv_string_value(k)), NULL);
		free(name);
		jv_free(k);
	}
	jv_free(names);
	print_keys(c);
	const char *cenv = nonempty_env("ORCH_CACHE_DIR");
	put("cache", cenv ? cenv : c->cache ? c->cache : "RUN/.cache",
	    cenv ? "ORCH_CACHE_DIR" : c->cache ? "config" : "built-in");
	print_prices(c);
	return EX_OK;
}
