/* orch-cache: a content-addressed store of provider responses, and a
 * ccache-style wrapper that runs a command only when its answer is not
 * stored yet.
 *
 *   orch-cache key              request lines on stdin -> one key per line
 *   orch-cache get KEY          the stored response, or exit 1 (a miss)
 *   orch-cache put KEY          store the one JSON value on stdin
 *   orch-cache -- CMD [ARG...]  request on stdin; hit: print it; miss: run
 *                               CMD on the request, store and print its answer
 *   orch-cache stream -- CMD... request lines; each answered as it comes,
 *                               with its "step"; every miss goes to one
 *                               CMD speaking orch-call --serve's protocol
 *   orch-cache stats            {"dir","entries","bytes","oldest"}
 *   orch-cache prune [--max-size SIZE] [--older-than AGE]
 *
 * The key (CONTRACT §6) is the sha256 of the canonical JSON (keys sorted at
 * every depth, compact: what `jq -S -c` prints, from the same libjq) of
 *   {"provider":{"name","model","opts"},"step","inputs":<messages>,"code_version"}
 * plus, for a request with a structured answer (orch-call(1)), its
 * "schema" and "schema_name" (a request without keeps the key it had),
 * and nothing else: no base URL, no credential, no "command" except through
 * "model" (orch-call sets model to the command for provider exec; when a
 * request has a command and no model, the command is the model here too).
 * A request with fallback providers has the first one's key: the answer
 * stands for the request, whoever gave it (a provider list: its first).
 *
 * An entry is DIR/<key>.json, three compact JSON lines: a header
 *   {"orch_cache":2,"key":KEY,"size_bytes":<of the rest>,"blake2b":[S1,S2]}
 * then the response as stored (get prints it), then the same response with
 * "cache":"hit" (the wrapper prints it on a hit); S1 and S2 are the
 * BLAKE2b-256 of those two lines. A hit checks and prints one line and
 * parses no JSON but the header. It is written to a temporary file in DIR and
 * renamed, so readers see a whole entry or none, and two processes filling
 * one key both succeed (the last rename wins; both hold the same answer).
 * A reader checks the header against the key and the checksum against the
 * body: a truncated, corrupt or foreign entry is a miss and a WARN event
 * (cache.corrupt), never a wrong answer. A hit refreshes the entry's mtime,
 * so prune --max-size drops the least recently used entries first.
 *
 * DIR/steps/ keeps, per step, the key and request of its last answered
 * call; a miss's cache.miss event names what changed since ("changed",
 * jq paths: tools/cache/changed.c). The stream is tools/cache/stream.c;
 * this file holds the key, the entries, the wrapper, stats and prune.
 *
 * DIR is $ORCH_CACHE_DIR, else the config's cache: (orch(1): shared is
 * $XDG_CACHE_HOME/orch), else RUN/.cache (--run, $ORCH_RUN_DIR).
 * Assumes rename(2) is atomic within a directory (any local POSIX fs; NFS
 * gives the same for rename within one directory).
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <sodium.h>
#include "cache/cache.h"

static const char usage[] =
	"usage: orch-cache [--run DIR] key < requests\n"
	"       orch-cache [--run DIR] get KEY\n"
	"       orch-cache [--run DIR] put KEY < response\n"
	"       orch-cache [--run DIR] -- CMD [ARG...] < request\n"
	"       orch-cache [--run DIR] stream -- CMD [ARG...] < requests\n"
	"       orch-cache [--run DIR] stats\n"
	"       orch-cache [--run DIR] prune [--max-size SIZE] [--older-than AGE]\n"
	"The cache is $ORCH_CACHE_DIR, else the config file's cache:, else RUN/.cache.\n";

/* ---- the key ---- */

/* The key's input object for one request, or invalid with a message. */
jv key_object(jv req)
{
	if (jv_get_kind(req) != JV_KIND_OBJECT) {
		jv_free(req);
		return jv_invalid_with_msg(jv_string("a request must be a JSON object"));
	}
	jv msgs = orch_jget(req, "messages");
	if (jv_get_kind(msgs) != JV_KIND_ARRAY) {
		jv_free(msgs);
		jv_free(req);
		return jv_invalid_with_msg(jv_string("a request needs a \"messages\" array"));
	}
	jv prov = orch_jget(req, "provider");
	if (jv_get_kind(prov) == JV_KIND_ARRAY) {  /* a list: the first's key */
		prov = jv_array_get(prov, 0);
		if (!jv_is_valid(prov)) {
			jv_free(prov);
			prov = jv_null();
		}
	}
	jv name = jv_null(), model, opts;
	if (jv_get_kind(prov) == JV_KIND_OBJECT) {  /* {"name","model","opts"} form */
		name = orch_jget(prov, "name");
		model = orch_jget(prov, "model");
		opts = orch_jget(prov, "opts");
		jv_free(prov);
	} else {
		name = prov;
		model = jv_null();
		opts = jv_null();
	}
	if (jv_get_kind(model) == JV_KIND_NULL) {
		jv_free(model);
		model = orch_jget(req, "model");
	}
	if (jv_get_kind(model) == JV_KIND_NULL) {
		jv_free(model);
		model = orch_jget(req, "command");
	}
	if (jv_get_kind(opts) == JV_KIND_NULL) {
		jv_free(opts);
		opts = orch_jget(req, "opts");
		if (jv_get_kind(opts) == JV_KIND_NULL) {
			jv_free(opts);
			opts = jv_object();
		}
	}
	const char *cv = getenv("ORCH_CODE_VERSION");
	jv p = jv_object();
	p = jv_object_set(p, jv_string("name"), name);
	p = jv_object_set(p, jv_string("model"), model);
	p = jv_object_set(p, jv_string("opts"), opts);
	jv k = jv_object();
	k = jv_object_set(k, jv_string("provider"), p);
	k = jv_object_set(k, jv_string("step"), orch_jget(req, "step"));
	jv schema = orch_jget(req, "schema");
	if (jv_get_kind(schema) != JV_KIND_NULL) {  /* only then: other keys stay as they were */
		k = jv_object_set(k, jv_string("schema"), schema);
		k = jv_object_set(k, jv_string("schema_name"), orch_jget(req, "schema_name"));
	} else
		jv_free(schema);
	jv_free(req);
	k = jv_object_set(k, jv_string("inputs"), msgs);
	k = jv_object_set(k, jv_string("code_version"), jv_string(cv && *cv ? cv : ORCH_VERSION));
	return k;
}

/* The key of req (consumed) into out; -1 (reported) if req is no request. */
int request_key(jv req, char out[65], const char *name)
{
	jv k = key_object(req);
	if (!jv_is_valid(k)) {
		jv msg = jv_invalid_get_msg(k);
		orch_err("%s: %s", name, jv_string_value(msg));
		jv_free(msg);
		return -1;
	}
	jv s = jv_dump_string(k, JV_PRINT_SORTED);
	orch_sha256_hex(jv_string_value(s), jv_string_length_bytes(jv_copy(s)), out);
	jv_free(s);
	return 0;
}

static int key_valid(const char *k)
{
	size_t n = 0;
	for (; k[n]; n++)
		if (!strchr("0123456789abcdef", k[n]))
			return 0;
	return n == 64;
}

/* ---- entries ---- */

const char *cache_dir(void)
{
	static char *dir;
	if (dir)
		return dir;
	const char *e = getenv("ORCH_CACHE_DIR");
	if (e && *e)
		return dir = orch_xstrdup(e);
	if (orch_config()->cache)  /* the config's cache: (shared, or a folder) */
		return dir = orch_xstrdup(orch_config()->cache);
	const char *run = orch_run_dir();
	if (!run)
		orch_die(EX_USAGE, "no cache folder: set ORCH_CACHE_DIR, or give --run DIR or ORCH_RUN_DIR");
	return dir = orch_path(run, ".cache");
}

static void warn_corrupt(const char *key, const char *why)
{
	orch_err("warning: cache entry %s: %s; treated as a miss", key, why);
	jv d = jv_object_set(jv_object(), jv_string("cache_key"), jv_string(key));
	d = jv_object_set(d, jv_string("reason"), jv_string(why));
	orch_emit(orch_run_dir(), "WARN", "cache.corrupt", NULL, d);
}

/* BLAKE2b-256 of a line, in hex: the entries' checksum (three times the
 * speed of SHA-256 in libsodium, and a hit checks 100 KB or more). */
static void sum_hex(const char *p, size_t n, char out[65])
{
	unsigned char h[32];
	crypto_generichash(h, sizeof h, (const unsigned char *)p, n, NULL, 0);
	sodium_bin2hex(out, 65, h, sizeof h);
}

/* Check the entry text buf (n bytes) for key and find line 1 of its body
 * (the response) or line 2 (its hit form) as which says: NULL with the
 * line at *line, *len bytes without its newline; or why it is no entry.
 * No I/O: tests/fuzz/cache.c feeds it arbitrary bytes. */
static const char *entry_check(char *buf, size_t n, const char *key, int which, char **line, size_t *len)
{
	const char *why = NULL;
	char *nl = memchr(buf, '\n', n);
	jv h = nl ? jv_parse_sized(buf, (int)(nl - buf)) : jv_invalid();
	double ver = 0, size = -1;
	const char *hk = orch_jstr(h, "key");
	jv sums = jv_get_kind(h) == JV_KIND_OBJECT ? jv_object_get(jv_copy(h), jv_string("blake2b")) : jv_invalid();
	jv want = jv_get_kind(sums) == JV_KIND_ARRAY ? jv_array_get(jv_copy(sums), which) : jv_invalid();
	char *body = nl ? nl + 1 : NULL, *mid = NULL, *p = NULL;
	size_t plen = 0;
	if (!nl || jv_get_kind(h) != JV_KIND_OBJECT)
		why = "no valid header";
	else if (!orch_jnum(h, "orch_cache", &ver) || ver != 2 || jv_get_kind(want) != JV_KIND_STRING ||
	         !orch_jnum(h, "size_bytes", &size))
		why = "not an orch-cache entry";
	else if (!hk || strcmp(hk, key) != 0)
		why = "foreign entry (its key differs)";
	else if ((double)(n - (size_t)(body - buf)) != size || size < 4 || buf[n - 1] != '\n' ||
	         !(mid = memchr(body, '\n', (size_t)size - 1)))
		why = "truncated or wrong size";
	else {
		p = which ? mid + 1 : body;
		plen = which ? (size_t)(buf + n - 1 - p) : (size_t)(mid - body);
		char sum[65];
		sum_hex(p, plen, sum);
		if (strcmp(sum, jv_string_value(want)) != 0)
			why = "checksum mismatch";
	}
	jv_free(want);
	jv_free(sums);
	jv_free(h);
	*line = p;
	*len = plen;
	return why;
}

/* Read and check the entry for key (entry_check). Returns the malloc'd
 * entry (free it) with the line at *line, *len bytes; or NULL on a miss
 * (a bad entry is also reported). */
char *entry_read(const char *key, int which, char **line, size_t *len)
{
	char *path = orch_fmt("%s/%s.json", cache_dir(), key);
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	free(path);
	if (fd < 0) {
		if (errno != ENOENT)
			warn_corrupt(key, strerror(errno));
		return NULL;
	}
	size_t n = 0;
	char *buf = orch_read_fd(fd, &n);
	const char *why = buf ? entry_check(buf, n, key, which, line, len) : "unreadable";
	if (why) {
		warn_corrupt(key, why);
		free(buf);
		buf = NULL;
	} else
		futimens(fd, NULL);  /* least recently used goes first on prune */
	close(fd);
	return buf;
}

jv mark(jv v, const char *how)
{
	if (jv_get_kind(v) == JV_KIND_OBJECT)
		v = jv_object_set(v, jv_string("cache"), jv_string(how));
	return v;
}

/* The entry for v (consumed) under key, as text. It holds the response
 * and, made by jv at store time, the response as a hit prints it: a hit
 * then costs no JSON parsing or printing (dumping 100 KB with libjq 1.6
 * takes ~1.6 ms). */
static jv entry_text(const char *key, jv v)
{
	if (jv_get_kind(v) == JV_KIND_OBJECT)
		v = jv_object_delete(v, jv_string("cache"));
	jv resp = jv_dump_string(jv_copy(v), 0), hit = jv_dump_string(mark(v, "hit"), 0);
	char s1[65], s2[65];
	sum_hex(jv_string_value(resp), (size_t)jv_string_length_bytes(jv_copy(resp)), s1);
	sum_hex(jv_string_value(hit), (size_t)jv_string_length_bytes(jv_copy(hit)), s2);
	jv body = jv_string_append_str(resp, "\n");
	body = jv_string_append_str(jv_string_concat(body, hit), "\n");
	size_t blen = jv_string_length_bytes(jv_copy(body));
	jv h = jv_object();
	h = jv_object_set(h, jv_string("orch_cache"), jv_number(2));
	h = jv_object_set(h, jv_string("key"), jv_string(key));
	h = jv_object_set(h, jv_string("size_bytes"), jv_number((double)blen));
	h = jv_object_set(h, jv_string("blake2b"),
	                  jv_array_append(jv_array_append(jv_array(), jv_string(s1)), jv_string(s2)));
	jv text = jv_string_append_str(jv_dump_string(h, 0), "\n");
	return jv_string_concat(text, body);
}

/* Store v (consumed) under key, fsynced if sync; 0, or -1 (reported). */
int entry_write(const char *key, jv v, int sync)
{
	const char *dir = cache_dir();
	jv text = entry_text(key, v);
	char *name = orch_fmt("%s.json", key);
	int rc = -1, dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 && errno == ENOENT && orch_mkdir_p(dir, 0700) == 0)
		dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		orch_err_sys("cannot open cache folder %s", dir);
	else if ((rc = orch_atomic_write_at(dfd, name, jv_string_value(text),
	                                    jv_string_length_bytes(jv_copy(text)), 0644, sync)) < 0)
		orch_err_sys("cannot store %s/%s", dir, name);
	if (dfd >= 0)
		close(dfd);
	free(name);
	jv_free(text);
	return rc;
}

/* ---- key, get, put ---- */

static int print_key(jv req, void *ctx)
{
	char key[65];
	if (request_key(req, key, ctx) < 0)
		return EX_USAGE;
	if (printf("%s\n", key) < 0)
		return EX_FAIL;
	return 0;
}

static int cmd_get(const char *key)
{
	char *r;
	size_t rlen;
	char *e = entry_read(key, 0, &r, &rlen);
	if (!e)
		return EX_FAIL;
	int ok = fwrite(r, 1, rlen, stdout) == rlen && putchar('\n') != EOF;
	free(e);
	return ok ? EX_OK : EX_FAIL;
}

static int cmd_put(const char *key)
{
	jv v = orch_read_one(stdin, "<stdin>");
	if (!jv_is_valid(v)) {
		jv_free(v);
		return EX_USAGE;
	}
	return entry_write(key, v, 1) < 0 ? EX_FAIL : EX_OK;
}

/* ---- the wrapper ---- */

static volatile sig_atomic_t child_pid;

static void forward(int sig)
{
	if (child_pid > 0)
		kill(child_pid, sig);
}

/* Run argv with stdin from the text, capture stdout. Returns the wait
 * status, or -1 (reported). */
static int run_cmd(char **argv, const char *in, size_t inlen, char **out, size_t *outlen)
{
	FILE *tf = tmpfile();
	int p[2];
	if (!tf || fwrite(in, 1, inlen, tf) != inlen || fflush(tf) != 0 ||
	    lseek(fileno(tf), 0, SEEK_SET) < 0) {
		orch_err_sys("cannot hold the request for %s", argv[0]);
		if (tf)
			fclose(tf);
		return -1;
	}
	if (pipe(p) < 0) {
		orch_err_sys("pipe");
		fclose(tf);
		return -1;
	}
	fflush(stdout);
	pid_t pid = fork();
	if (pid < 0) {
		orch_err_sys("fork");
		fclose(tf);
		close(p[0]);
		close(p[1]);
		return -1;
	}
	if (pid == 0) {
		dup2(fileno(tf), 0);
		dup2(p[1], 1);
		close(p[0]);
		close(p[1]);
		fclose(tf);
		execvp(argv[0], argv);
		int e = errno;
		orch_err_sys("cannot run %s", argv[0]);
		_exit(e == ENOENT ? 127 : 126);
	}
	child_pid = pid;
	struct sigaction sa = {0};
	sa.sa_handler = forward;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	close(p[1]);
	fclose(tf);
	size_t cap = 65536, n = 0;
	char *buf = orch_xmalloc(cap);
	for (;;) {
		if (cap - n < 4096)
			buf = orch_xrealloc(buf, cap *= 2);
		ssize_t r = read(p[0], buf + n, cap - n - 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	buf[n] = 0;
	close(p[0]);
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR) {
			orch_err_sys("waitpid");
			free(buf);
			return -1;
		}
	child_pid = 0;
	*out = buf;
	*outlen = n;
	return st;
}

static void emit_key(const char *type, const char *key)
{
	orch_emit(orch_run_dir(), "INFO", type, NULL,
	          jv_object_set(jv_object(), jv_string("cache_key"), jv_string(key)));
}

static int cmd_wrap(char **argv)
{
	size_t inlen;
	char *in = orch_slurp_fp(stdin, &inlen);
	if (!in)
		orch_die_sys(EX_FAIL, "reading the request");
	jv req = jv_parse_sized(in, (int)inlen);
	if (!jv_is_valid(req)) {
		jv msg = jv_invalid_get_msg(req);
		orch_err("<stdin>: not one JSON request: %s",
		         jv_get_kind(msg) == JV_KIND_STRING ? jv_string_value(msg) : "empty");
		jv_free(msg);
		free(in);
		return EX_USAGE;
	}
	jv asked = jv_copy(req);  /* for the step index: what changed */
	char key[65];
	if (request_key(req, key, "<stdin>") < 0) {
		jv_free(asked);
		free(in);
		return EX_USAGE;
	}
	char *h;
	size_t hlen;
	char *e = entry_read(key, 1, &h, &hlen);
	if (e) {
		free(in);
		emit_key("cache.hit", key);
		index_note(key, asked);
		int ok = fwrite(h, 1, hlen, stdout) == hlen && putchar('\n') != EOF &&
		         fflush(stdout) == 0;
		free(e);
		return ok ? EX_OK : EX_FAIL;
	}
	orch_emit(orch_run_dir(), "INFO", "cache.miss", NULL, miss_data(key, jv_copy(asked)));
	char *out;
	size_t outlen;
	int st = run_cmd(argv, in, inlen, &out, &outlen);
	free(in);
	if (st != 0)  /* nothing stored: the index stays */
		jv_free(asked);
	if (st < 0)
		return EX_FAIL;
	if (WIFSIGNALED(st)) {
		free(out);
		orch_err("%s killed by signal %d; nothing stored", argv[0], WTERMSIG(st));
		return EX_SIGNAL + WTERMSIG(st);
	}
	if (WEXITSTATUS(st) != 0) {  /* what it printed is passed on, not stored */
		orch_write_all(1, out, outlen);
		free(out);
		orch_err("%s exited %d; nothing stored", argv[0], WEXITSTATUS(st));
		return WEXITSTATUS(st);
	}
	jv v = jv_parse_sized(out, (int)outlen);
	free(out);
	if (!jv_is_valid(v)) {
		jv msg = jv_invalid_get_msg(v);
		orch_err("%s did not print one JSON value (%s); nothing stored", argv[0],
		         jv_get_kind(msg) == JV_KIND_STRING ? jv_string_value(msg) : "no output");
		jv_free(msg);
		jv_free(asked);
		return EX_FAIL;
	}
	if (entry_write(key, jv_copy(v), 1) == 0)  /* one that cannot store is still a pass-through */
		index_note(key, asked);
	else
		jv_free(asked);
	return orch_put(mark(v, "miss")) < 0 ? EX_FAIL : EX_OK;
}


/* ---- stats, prune ---- */

struct ent { char name[72]; time_t mtime; off_t size; };

static int entry_name(const char *n)
{
	size_t l = strlen(n);
	if (l != 69 || strcmp(n + 64, ".json") != 0)
		return 0;
	for (size_t i = 0; i < 64; i++)
		if (!strchr("0123456789abcdef", n[i]))
			return 0;
	return 1;
}

/* Temporary files a killed writer left: ".<key>.json.<random>.tmp". */
static int temp_name(const char *n)
{
	size_t l = strlen(n);
	return n[0] == '.' && l > 74 && strcmp(n + l - 4, ".tmp") == 0 &&
	       strncmp(n + 65, ".json.", 6) == 0;
}

/* Entries of the cache (and stale temp files when tmp is given). */
static struct ent *list(int dfd, size_t *n, struct ent **tmp, size_t *ntmp)
{
	int fd = dup(dfd);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d)
		orch_die_sys(EX_FAIL, "cannot read %s", cache_dir());
	size_t cap = 64, tcap = 4;
	struct ent *e = orch_xmalloc(cap * sizeof *e), *t = orch_xmalloc(tcap * sizeof *t);
	*n = 0;
	*ntmp = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		int isent = entry_name(de->d_name), istmp = !isent && temp_name(de->d_name);
		struct stat st;
		if ((!isent && !istmp) || strlen(de->d_name) >= sizeof e->name ||
		    fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
			continue;
		struct ent x;
		memcpy(x.name, de->d_name, strlen(de->d_name) + 1);  /* length checked above */
		x.mtime = st.st_mtime;
		x.size = st.st_size;
		if (isent) {
			if (*n == cap)
				e = orch_xrealloc(e, (cap *= 2) * sizeof *e);
			e[(*n)++] = x;
		} else {
			if (*ntmp == tcap)
				t = orch_xrealloc(t, (tcap *= 2) * sizeof *t);
			t[(*ntmp)++] = x;
		}
	}
	closedir(d);
	*tmp = t;
	return e;
}

static int open_dir(int must)
{
	int dfd = open(cache_dir(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 && (must || errno != ENOENT))
		orch_die_sys(EX_FAIL, "cannot open cache folder %s", cache_dir());
	return dfd;
}

static jv iso(time_t t)
{
	char buf[32];
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
	return jv_string(buf);
}

static int cmd_stats(void)
{
	size_t n = 0, nt = 0;
	struct ent *e = NULL, *t = NULL;
	int dfd = open_dir(0);
	if (dfd >= 0) {
		e = list(dfd, &n, &t, &nt);
		close(dfd);
	}
	double bytes = 0;
	time_t oldest = 0;
	for (size_t i = 0; i < n; i++) {
		bytes += (double)e[i].size;
		if (i == 0 || e[i].mtime < oldest)
			oldest = e[i].mtime;
	}
	jv s = jv_object();
	s = jv_object_set(s, jv_string("dir"), jv_string(cache_dir()));
	s = jv_object_set(s, jv_string("entries"), jv_number((double)n));
	s = jv_object_set(s, jv_string("bytes"), jv_number(bytes));
	s = jv_object_set(s, jv_string("oldest"), n ? iso(oldest) : jv_null());
	free(e);
	free(t);
	return orch_put(s) < 0 ? EX_FAIL : EX_OK;
}

/* "10M", "512k", "2G", "1000": bytes; -1 if malformed. */
static double parse_size(const char *s)
{
	char *end;
	double v = strtod(s, &end);
	if (end == s || v < 0)
		return -1;
	switch (*end) {
	case 0: return v;
	case 'k': case 'K': v *= 1024; break;
	case 'm': case 'M': v *= 1024 * 1024; break;
	case 'g': case 'G': v *= 1024.0 * 1024 * 1024; break;
	default: return -1;
	}
	return end[1] == 0 || (end[1] == 'B' && end[2] == 0) ? v : -1;
}

static int by_mtime(const void *a, const void *b)
{
	const struct ent *x = a, *y = b;
	return x->mtime < y->mtime ? -1 : x->mtime > y->mtime ? 1 : strcmp(x->name, y->name);
}

static int cmd_prune(int argc, char **argv)
{
	static const struct option lo[] = {
		{"max-size", required_argument, 0, 'S'},
		{"older-than", required_argument, 0, 'A'},
		ORCH_COMMON_LONGOPTS,
		{0, 0, 0, 0},
	};
	double max = -1, age = -1;
	int c;
	optind = 0;  /* glibc: start a fresh scan of the subcommand's argv */
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1)
		switch (c) {
		case 'S':
			if ((max = parse_size(optarg)) < 0)
				orch_die(EX_USAGE, "bad --max-size %s (say 500K, 10M, 2G or bytes)", optarg);
			break;
		case 'A':
			if ((age = orch_parse_age(optarg)) < 0)
				orch_die(EX_USAGE, "bad --older-than %s (say 90s, 30m, 12h, 7d, 2w)", optarg);
			break;
		default:
			if (!orch_common(c, optarg, usage))
				orch_usage(usage);
		}
	if (optind != argc || (max < 0 && age < 0))
		orch_usage(usage);
	int dfd = open_dir(0);
	if (dfd < 0)
		return orch_put(jv_parse("{\"removed\":0,\"indexes_removed\":0,\"freed_bytes\":0,\"entries\":0,\"bytes\":0}")) ? EX_FAIL : EX_OK;
	size_t n, nt;
	struct ent *t, *e = list(dfd, &n, &t, &nt);
	qsort(e, n, sizeof *e, by_mtime);
	time_t now = time(NULL);
	double total = 0, freed = 0;
	size_t removed = 0;
	for (size_t i = 0; i < n; i++)
		total += (double)e[i].size;
	for (size_t i = 0; i < n; i++) {
		int old = age >= 0 && difftime(now, e[i].mtime) > age;
		int big = max >= 0 && total > max;
		if (!old && !big)
			continue;
		if (unlinkat(dfd, e[i].name, 0) < 0 && errno != ENOENT) {
			orch_err_sys("cannot remove %s/%s", cache_dir(), e[i].name);
			continue;
		}
		total -= (double)e[i].size;
		freed += (double)e[i].size;
		removed++;
	}
	for (size_t i = 0; i < nt; i++)  /* a writer killed mid-entry, an hour ago */
		if (difftime(now, t[i].mtime) > 3600)
			unlinkat(dfd, t[i].name, 0);
	size_t ix = index_prune(dfd, age >= 0 ? age : INFINITY, now);
	close(dfd);
	jv s = jv_object();
	s = jv_object_set(s, jv_string("removed"), jv_number((double)removed));
	s = jv_object_set(s, jv_string("indexes_removed"), jv_number((double)ix));
	s = jv_object_set(s, jv_string("freed_bytes"), jv_number(freed));
	s = jv_object_set(s, jv_string("entries"), jv_number((double)(n - removed)));
	s = jv_object_set(s, jv_string("bytes"), jv_number(total));
	free(e);
	free(t);
	return orch_put(s) < 0 ? EX_FAIL : EX_OK;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {ORCH_COMMON_LONGOPTS, {0, 0, 0, 0}};
	orch_init(argc, argv);
	int c;
	/* "+": stop at the subcommand, so its own options (and CMD's) stay */
	while ((c = getopt_long(argc, argv, "+h", lo, NULL)) != -1)
		if (!orch_common(c, optarg, usage))
			orch_usage(usage);
	char **av = argv + optind;
	int ac = argc - optind;
	/* getopt ate a "--" that precedes CMD */
	if (optind > 1 && strcmp(argv[optind - 1], "--") == 0) {
		if (ac < 1)
			orch_usage(usage);
		orch_exit(cmd_wrap(av));
	}
	if (ac < 1)
		orch_usage(usage);
	const char *sub = av[0];
	if (strcmp(sub, "key") == 0 && ac == 1)
		orch_exit(orch_records(stdin, "<stdin>", print_key, "<stdin>"));
	if ((strcmp(sub, "get") == 0 || strcmp(sub, "put") == 0) && ac == 2) {
		if (!key_valid(av[1]))
			orch_die(EX_USAGE, "bad key %s (64 lowercase hex digits)", av[1]);
		orch_exit(sub[0] == 'g' ? cmd_get(av[1]) : cmd_put(av[1]));
	}
	if (strcmp(sub, "stream") == 0 && ac >= 3 && strcmp(av[1], "--") == 0)
		orch_exit(cmd_stream(av + 2));
	if (strcmp(sub, "stats") == 0 && ac == 1)
		orch_exit(cmd_stats());
	if (strcmp(sub, "prune") == 0)
		orch_exit(cmd_prune(ac, av));
	orch_usage(usage);
}
