/* spawn.c: a step's process and the files it is given.
 *
 * No pipes: a step's stdin is its input record in a memfd; its stdout a
 * new file artifacts/.<step>.out, renamed to <step>.json when the step
 * succeeds (store_output) and removed when it does not (end_output); a
 * batched instance's answer, a file with no name until it is stored; its
 * stderr is appended to logs/<step>.log, truncated at the first attempt.
 * The command runs without a shell when it has nothing a shell would
 * interpret (as make decides), looked up in PATH once per name. It leads a
 * process group of its own, with an empty signal mask and default
 * dispositions whatever orch-sched blocks or ignores. Its environment is
 * orch-sched's with ORCH_RUN_DIR, ORCH_JOB_ID, ORCH_STEP and ORCH_ATTEMPT
 * set. A step with a launcher runs through it (launch.c). Assumes run.dir, run.job_id and the run's directory fds are set.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include "orch.h"
#include "sched.h"

extern char **environ;

/* Commands found in PATH, by name. */
static struct { orch_map *map; char **keys, **vals; int n; } paths;

void setup_env(void)
{
	size_t n = 0;
	for (char **e = environ; *e; e++)
		n++;
	char **env = run.envp = orch_xmalloc((n + 5) * sizeof *env);
	for (char **e = environ; *e; e++)
		if (strncmp(*e, "ORCH_RUN_DIR=", 13) && strncmp(*e, "ORCH_JOB_ID=", 12) &&
		    strncmp(*e, "ORCH_STEP=", 10) && strncmp(*e, "ORCH_ATTEMPT=", 13))
			env[run.nenv++] = *e;
	env[run.nenv] = orch_fmt("ORCH_RUN_DIR=%s", run.dir);
	env[run.nenv + 1] = orch_fmt("ORCH_JOB_ID=%s", run.job_id);
	env[run.nenv + 4] = NULL;
}

/* Has cmd anything a shell would interpret? (as make decides) */
static int needs_shell(const char *cmd)
{
	static const char *builtins[] = {".", ":", "alias", "break", "case", "cd",
		"continue", "eval", "exec", "exit", "export", "for", "if", "read",
		"readonly", "return", "set", "shift", "source", "trap", "ulimit",
		"umask", "unalias", "unset", "until", "wait", "while", "{", "!", 0};
	if (strpbrk(cmd, "#;\"'*?[]&|<>(){}$`^~!\\\n=%"))
		return 1;
	const char *b = cmd + strspn(cmd, " \t");
	size_t n = strcspn(b, " \t");
	for (int i = 0; builtins[i]; i++)
		if (strlen(builtins[i]) == n && strncmp(b, builtins[i], n) == 0)
			return 1;
	return 0;
}

/* argv of cmd: its words, or sh -c cmd. Free argv, and *words if set. */
static char **command_argv(const char *cmd, char **words)
{
	char **argv;
	*words = NULL;
	if (needs_shell(cmd)) {
		argv = orch_xmalloc(4 * sizeof *argv);
		argv[0] = "/bin/sh";
		argv[1] = "-c";
		argv[2] = (char *)cmd;
		argv[3] = NULL;
		return argv;
	}
	char *copy = *words = orch_xstrdup(cmd);
	size_t n = 0;
	for (char *p = copy; *p; p++)
		n += (p == copy || p[-1] == ' ' || p[-1] == '\t') && *p != ' ' && *p != '\t';
	argv = orch_xmalloc((n + 1) * sizeof *argv);
	n = 0;
	for (char *t = strtok(copy, " \t"); t; t = strtok(NULL, " \t"))
		argv[n++] = t;
	argv[n] = NULL;
	return argv;
}

static const char *resolve(const char *name)
{
	if (strchr(name, '/'))
		return name;
	if (!paths.map)
		paths.map = orch_map_new(16);
	long k = orch_map_get(paths.map, name);
	if (k >= 0)
		return paths.vals[k];
	const char *p = getenv("PATH");
	char *found = NULL;
	for (p = p ? p : "/usr/local/bin:/usr/bin:/bin"; !found; p++) {
		size_t n = strcspn(p, ":");
		char *cand = orch_fmt("%.*s%s%s", (int)n, p, n ? "/" : "", name);
		struct stat st;
		if (access(cand, X_OK) == 0 && stat(cand, &st) == 0 && S_ISREG(st.st_mode))
			found = cand;
		else
			free(cand);
		p += n;
		if (!*p)
			break;
	}
	if (!found)
		return name;  /* posix_spawnp will say what is wrong */
	paths.keys = orch_xrealloc(paths.keys, (paths.n + 1) * sizeof *paths.keys);
	paths.vals = orch_xrealloc(paths.vals, (paths.n + 1) * sizeof *paths.vals);
	paths.keys[paths.n] = orch_xstrdup(name);
	paths.vals[paths.n] = found;
	orch_map_put(paths.map, paths.keys[paths.n], paths.n);
	return paths.vals[paths.n++];
}

/* The attempt's input record, one line (not NUL-terminated): *n bytes. */
char *input_text(struct step *s, size_t *n)
{
	jv in = jv_object_set(jv_copy(s->input), jv_string("attempt"), jv_number(s->attempt));
	char *txt = orch_json_text(in, n);
	txt[(*n)++] = '\n';  /* over the NUL: the length is what counts */
	return txt;
}

static int input_fd(struct step *s)
{
	size_t n;
	char *txt = input_text(s, &n);
	int fd = memfd_create("orch-step-input", MFD_CLOEXEC);
	if (fd >= 0 && (orch_write_all(fd, txt, n) < 0 || lseek(fd, 0, SEEK_SET) < 0)) {
		int e = errno;
		close(fd);
		errno = e;
		fd = -1;
	}
	free(txt);
	return fd;
}

/* stdout goes to artifacts/.<step>.out, renamed to <step>.json on success:
 * one file created per step, and no copy of a JSON result. */
static char *out_name(struct step *s) { return orch_fmt(".%s.out", s->name); }

static void unlink_output(struct step *s)
{
	char *o = out_name(s);
	unlinkat(run.art_fd, o, 0);
	free(o);
}

/* A new file, never one that a process left over from a killed run may
 * still be writing to. */
static int create_new(int dirfd, const char *name, int flags)
{
	flags |= O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW;
	int fd = openat(dirfd, name, flags, 0644);
	if (fd < 0 && errno == EEXIST && unlinkat(dirfd, name, 0) == 0)
		fd = openat(dirfd, name, flags, 0644);
	return fd;
}

static int output_fd(struct step *s)
{
	char *name = out_name(s);
	int fd = create_new(run.art_fd, name, O_RDWR);
	free(name);
	return fd;
}

/* The attempt's stdin, stdout and stderr: 0, or errno (none left open). */
static int open_fds(struct step *s, int fd[3])
{
	char *lname = orch_fmt("%s.log", s->name);
	fd[0] = input_fd(s);
	fd[1] = fd[0] < 0 ? -1 : output_fd(s);
	fd[2] = fd[1] < 0 ? -1 : openat(run.log_fd, lname, O_WRONLY | O_CREAT | O_APPEND |
	                                O_CLOEXEC | (s->attempt == 1 ? O_TRUNC : 0), 0644);
	int err = fd[2] < 0 ? errno : 0;
	s->log_at = err ? 0 : lseek(fd[2], 0, SEEK_END);
	if (!err)  /* 4 KB kept for it: a step that fills the disk can still say so */
		(void)fallocate(fd[2], FALLOC_FL_KEEP_SIZE, s->log_at, 4096);
	free(lname);
	if (err) {
		if (fd[0] >= 0)
			close(fd[0]);
		if (fd[1] >= 0)
			close(fd[1]);
		unlink_output(s);
	}
	return err;
}

/* The signal mask empty and the signals a scheduler waits for or ignores
 * back to default; a new process group if pgroup. */
void child_signals(posix_spawnattr_t *at, int pgroup)
{
	static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE, SIGCHLD,
	                           SIGTTOU, SIGTTIN, SIGUSR1, SIGUSR2};
	sigset_t none, dfl;
	sigemptyset(&none);
	sigemptyset(&dfl);
	for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++)
		sigaddset(&dfl, sigs[i]);
	posix_spawnattr_init(at);
	posix_spawnattr_setflags(at, (pgroup ? POSIX_SPAWN_SETPGROUP : 0) |
	                         POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	posix_spawnattr_setpgroup(at, 0);
	posix_spawnattr_setsigmask(at, &none);
	posix_spawnattr_setsigdefault(at, &dfl);
}

/* fd[0..3) as stdin, stdout, stderr; a new process group; the signals
 * as child_signals sets them. */
static void spawn_attrs(posix_spawn_file_actions_t *fa, posix_spawnattr_t *at, const int fd[3])
{
	posix_spawn_file_actions_init(fa);
	for (int i = 0; i < 3; i++)
		posix_spawn_file_actions_adddup2(fa, fd[i], i);
	child_signals(at, 1);
}

int spawn(struct step *s)
{
	if (batch_serves(s))  /* batch.c: its step's worker serves it */
		return batch_hand(s);
	int fd[3], err = open_fds(s, fd);
	if (err)
		return err;
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	spawn_attrs(&fa, &at, fd);
	if (plan.workdir && orch_jstr(s->spec, "run"))  /* prompt steps need none */
		posix_spawn_file_actions_addchdir_np(&fa, plan.workdir);
	char **envp = run.envp, *words;
	envp[run.nenv + 2] = orch_fmt("ORCH_STEP=%s", s->name);
	envp[run.nenv + 3] = orch_fmt("ORCH_ATTEMPT=%d", s->attempt);
	char **argv = command_argv(s->cmd, &words), **cmd = argv;
	int owned = 0;
	if (s->launcher >= 0)  /* the launcher leads the group, and runs cmd */
		argv = launch_argv(s, cmd, &owned);
	const char *file = resolve(argv[0]);
	err = file == argv[0] ? posix_spawnp(&s->pid, file, &fa, &at, argv, envp)
	                      : posix_spawn(&s->pid, file, &fa, &at, argv, envp);
	if (argv != cmd)
		launch_argv_free(argv, owned);
	free(cmd);
	free(words);
	free(envp[run.nenv + 2]);
	free(envp[run.nenv + 3]);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	close(fd[0]);
	close(fd[2]);
	if (err) {
		close(fd[1]);
		unlink_output(s);
		s->pid = 0;
		return err;
	}
	s->outfd = fd[1];
	return 0;
}

/* A --batch-exec worker (batch.c) for group: fd[0] and fd[1] its stdin
 * and stdout, its stderr appended to logs/<group>.log; no ORCH_STEP or
 * ORCH_ATTEMPT. 0 and *pid, or errno. */
int spawn_worker(const char *cmd, const char *group, int fd[3], pid_t *pid)
{
	char *lname = orch_fmt("%s.log", group);
	fd[2] = openat(run.log_fd, lname, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	free(lname);
	if (fd[2] < 0)
		return errno;
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	spawn_attrs(&fa, &at, fd);
	char **envp = run.envp, *words;
	envp[run.nenv + 2] = NULL;  /* the environment ends before them */
	char **argv = command_argv(cmd, &words);
	const char *file = resolve(argv[0]);
	int err = file == argv[0] ? posix_spawnp(pid, file, &fa, &at, argv, envp)
	                          : posix_spawn(pid, file, &fa, &at, argv, envp);
	free(argv);
	free(words);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	close(fd[2]);
	if (err)
		*pid = 0;
	return err;
}

/* Can a file made by O_TMPFILE be given a name? By linkat of its
 * /proc/self/fd path (AT_EMPTY_PATH would need CAP_DAC_READ_SEARCH). */
static int proc_fds(void)
{
	static int ok = -1;
	if (ok < 0)
		ok = access("/proc/self/fd", X_OK) == 0;
	return ok;
}

/* A batched instance's answer, line[0..n) with its newline, as the
 * stdout file its own process would have left: 0, or errno. It has no
 * process to watch it, and is stored at once: where the file system
 * can, the file is made without a name (O_TMPFILE) and store_output
 * links it in as <step>.json, a quarter less file work per instance
 * than a .<step>.out created and renamed (bench/filework.c); a crash
 * before leaves nothing behind. */
int batch_output(struct step *s, const char *line, size_t n)
{
	int fd = proc_fds() ? openat(run.art_fd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0644) : -1;
	s->anon = fd >= 0;
	if (fd < 0)
		fd = output_fd(s);
	if (fd < 0)
		return errno;
	if (orch_write_all(fd, line, n) < 0) {
		int e = errno;
		close(fd);
		unlink_output(s);
		return e;
	}
	s->outfd = fd;
	return 0;
}

/* The anonymous s->outfd in as artifacts/name: linked, or where name is
 * there already (an earlier run's), linked as .<step>.out and renamed
 * over it, as a named stdout is. 0, or errno. */
static int link_output(struct step *s, const char *name)
{
	char path[32];
	snprintf(path, sizeof path, "/proc/self/fd/%d", s->outfd);
	if (linkat(AT_FDCWD, path, run.art_fd, name, AT_SYMLINK_FOLLOW) == 0)
		return 0;
	if (errno != EEXIST)
		return errno;
	char *out = out_name(s);
	unlinkat(run.art_fd, out, 0);
	int err = linkat(AT_FDCWD, path, run.art_fd, out, AT_SYMLINK_FOLLOW) < 0 ||
	          renameat(run.art_fd, out, run.art_fd, name) < 0 ? errno : 0;
	free(out);
	return err;
}

/* The whole of the step's stdout, NUL-terminated; NULL and *err. */
static char *read_stdout(struct step *s, size_t *len, int *err)
{
	struct stat st;
	*err = errno = 0;
	if (fstat(s->outfd, &st) < 0) {
		*err = errno;
		return NULL;
	}
	char *buf = orch_xmalloc((size_t)st.st_size + 1);
	size_t n = 0;
	while (n < (size_t)st.st_size) {
		ssize_t r = pread(s->outfd, buf + n, (size_t)st.st_size - n, (off_t)n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			if (r < 0)
				*err = errno;
			break;
		}
		n += (size_t)r;
	}
	buf[n] = 0;
	*len = n;
	return buf;
}

/* The result of a step from its stdout (orch-run(5)): a run: step's is
 * always {"step","output","exit_code"}, plus "json" when its stdout is
 * one JSON value; a prompt step's command prints its result record, one
 * JSON object, stored as it is (*wrapped 0); any other stdout is wrapped
 * as a run: step's would be. */
static jv step_result(struct step *s, const char *buf, size_t n, int *wrapped)
{
	jv v = n > 0 && n < (size_t)INT32_MAX ? jv_parse_sized(buf, (int)n) : jv_invalid();
	int is_run = orch_jstr(s->spec, "run") != NULL;
	*wrapped = is_run || jv_get_kind(v) != JV_KIND_OBJECT;
	if (!*wrapped)
		return v;
	jv r = jv_object_set(jv_object(), jv_string("step"), jv_string(s->name));
	r = jv_object_set(r, jv_string("output"), jv_string_sized(buf, n > INT32_MAX ? INT32_MAX : (int)n));
	r = jv_object_set(r, jv_string("exit_code"), jv_number(0));  /* it succeeded */
	if (is_run && jv_is_valid(v))
		return jv_object_set(r, jv_string("json"), v);
	jv_free(v);
	return r;
}

/* Store a succeeded step's result as artifacts/<step>.json (no fsync:
 * see orch-sched.c), and its sha256 in s->art. 0 and *result, or errno. */
int store_output(struct step *s, jv *result)
{
	int err, wrapped = 0;
	size_t n = 0;
	char *buf = read_stdout(s, &n, &err);
	jv r = buf ? step_result(s, buf, n, &wrapped) : jv_invalid();
	if (buf && !wrapped)
		orch_sha256_hex(buf, n, s->art);
	free(buf);
	char *out = out_name(s), *name = orch_fmt("%s.json", s->name);
	if (!err && wrapped) {  /* the wrapped record replaces what it wraps */
		char *txt = orch_json_text(jv_copy(r), &n);
		txt[n++] = '\n';
		if (ftruncate(s->outfd, 0) < 0 || lseek(s->outfd, 0, SEEK_SET) < 0 ||
		    orch_write_all(s->outfd, txt, n) < 0)  /* a short write: on, to hear why */
			err = errno ? errno : EIO;
		orch_sha256_hex(txt, n, s->art);
		free(txt);
	}
	if (!err && s->anon)
		err = link_output(s, name);
	else if (!err && renameat(run.art_fd, out, run.art_fd, name) < 0)
		err = errno;
	free(out);
	free(name);
	if (err) {
		jv_free(r);
		r = jv_invalid();
		*s->art = 0;
	}
	*result = r;
	return err;
}

/* orch-cache's "CMD exited N; nothing stored": the step's own line is
 * the one before; and orch-call's "[orch-call: ...]" notes in the stream
 * it logs, which repeat what it said on stderr. */
static int noise(const char *line, size_t n)
{
	static const char tail[] = "; nothing stored";
	size_t t = sizeof tail - 1;
	if (n > 7 && strncmp(line, "[orch-", 6) == 0 && line[n - 1] == ']')
		return 1;
	return n > 12 + t && strncmp(line, "orch-cache: ", 12) == 0 &&
	       memcmp(line + n - t, tail, t) == 0 &&
	       (memmem(line, n, " exited ", 8) || memmem(line, n, " killed by signal ", 18));
}

/* The last line of buf[0..n) with text that is not noise: *len, or NULL. */
static const char *last_line(const char *buf, size_t n, size_t *len)
{
	while (n > 0) {
		size_t end = n;
		while (end > 0 && strchr("\n\r \t", buf[end - 1]))
			end--;
		size_t start = end;
		while (start > 0 && buf[start - 1] != '\n')
			start--;
		if (end > start && !noise(buf + start, end - start)) {
			*len = end - start;
			return buf + start;
		}
		n = start;
	}
	return NULL;
}

/* The last line the attempt wrote on stderr (at most its last 4 KB are
 * read; the line cut to 300 bytes), with the log's path. */
char *last_stderr(struct step *s)
{
	char *lname = orch_fmt("%s.log", s->name), *msg = NULL;
	int fd = openat(run.log_fd, lname, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd >= 0 && fstat(fd, &st) == 0 && st.st_size > s->log_at) {
		off_t from = st.st_size - s->log_at > 4096 ? st.st_size - 4096 : s->log_at;
		char buf[4096];
		ssize_t n = pread(fd, buf, (size_t)(st.st_size - from), from);
		size_t len = 0;
		const char *line = n > 0 ? last_line(buf, (size_t)n, &len) : NULL;
		if (len > 300)  /* cut short, not in the middle of a character */
			for (len = 300; len > 0 && (line[len] & 0xC0) == 0x80; len--)
				;
		if (line)
			msg = orch_fmt("%.*s (logs/%s)", (int)len, line, lname);
	}
	if (fd >= 0)
		close(fd);
	free(lname);
	return msg;
}

/* The attempt has ended: its stdout is closed, and removed unless stored. */
void end_output(struct step *s)
{
	if (s->outfd >= 0) {
		close(s->outfd);
		s->outfd = -1;
	}
	if (s->st != ST_OK && !s->anon)  /* failed: its stdout is not a result */
		unlink_output(s);
	s->anon = 0;
}

void spawn_free(void)
{
	orch_map_free(paths.map);
	for (int i = 0; i < paths.n; i++) {
		free(paths.keys[i]);
		free(paths.vals[i]);
	}
	free(paths.keys);
	free(paths.vals);
	if (run.envp) {
		free(run.envp[run.nenv]);
		free(run.envp[run.nenv + 1]);
		free(run.envp);
	}
}
