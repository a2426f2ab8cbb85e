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
 * jq paths: see "what changed" below).
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
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <sodium.h>
#include "orch.h"

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
static jv key_object(jv req)
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
static int request_key(jv req, char out[65], const char *name)
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

static const char *cache_dir(void)
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
static char *entry_read(const char *key, int which, char **line, size_t *len)
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

static jv mark(jv v, const char *how)
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

/* Store v (consumed) under key; 0, or -1 (reported). */
static int entry_write(const char *key, jv v)
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
	                                    jv_string_length_bytes(jv_copy(text)), 0644, 1)) < 0)
		orch_err_sys("cannot store %s/%s", dir, name);
	if (dfd >= 0)
		close(dfd);
	free(name);
	jv_free(text);
	return rc;
}

/* ---- what changed: the step index ----
 *
 * DIR/steps/<sha256 of "JOB\nSTEP">: two JSON lines, {"key":KEY} and the
 * request (as the key sees it: request_view) of the step's latest call
 * that was answered, a hit or a stored miss. A miss diffs its
 * request with that one: cache.miss's "changed". JOB is $ORCH_JOB_ID (a
 * shared cache serves many jobs), empty when unset. */

enum { CHANGED_MAX = 20 };  /* paths named in "changed"; the rest counted */

/* Does an option's name say it holds a secret? (No key should be in a
 * request; if one is, the index holds its hash, never its value.) */
static int secret_name(const char *k)
{
	static const char *const parts[] = {"api_key", "apikey", "api-key", "secret", "password",
	                                    "passwd", "authorization", "credential", "token", NULL};
	for (const char *const *p = parts; *p; p++)
		if (strcasestr(k, *p) && !strcasestr(k, "tokens"))
			return 1;
	return strcasecmp(k, "key") == 0 || strcasecmp(k, "auth") == 0;
}

/* v (consumed) with every value under a secret-looking name replaced by
 * "sha256:<hex>" of its JSON: a change still shows, the value never. */
static jv redact(jv v)
{
	if (jv_get_kind(v) == JV_KIND_ARRAY) {
		int n = jv_array_length(jv_copy(v));
		for (int i = 0; i < n; i++)
			v = jv_array_set(v, i, redact(jv_array_get(jv_copy(v), i)));
	} else if (jv_get_kind(v) == JV_KIND_OBJECT) {
		jv keys = jv_keys(jv_copy(v));
		jv_array_foreach(keys, i, k) {
			jv x = jv_object_get(jv_copy(v), jv_copy(k));
			if (secret_name(jv_string_value(k))) {
				char h[65];
				jv s = jv_dump_string(x, JV_PRINT_SORTED);
				orch_sha256_hex(jv_string_value(s), (size_t)jv_string_length_bytes(jv_copy(s)), h);
				jv_free(s);
				x = jv_string_fmt("sha256:%s", h);
			} else
				x = redact(x);
			v = jv_object_set(v, k, x);
		}
		jv_free(keys);
	}
	return v;
}

/* What the key of req (consumed) is made of, as a request spells it:
 * {"provider","model","opts","messages","step","code_version"} (and
 * "schema", "schema_name"), redacted; null if req is no request. */
static jv request_view(jv req)
{
	jv k = key_object(req);
	if (!jv_is_valid(k)) {
		jv_free(k);
		return jv_null();
	}
	jv p = orch_jget(k, "provider"), v = jv_object();
	v = jv_object_set(v, jv_string("provider"), orch_jget(p, "name"));
	v = jv_object_set(v, jv_string("model"), orch_jget(p, "model"));
	v = jv_object_set(v, jv_string("opts"), orch_jget(p, "opts"));
	jv_free(p);
	v = jv_object_set(v, jv_string("messages"), orch_jget(k, "inputs"));
	k = jv_object_delete(jv_object_delete(k, jv_string("provider")), jv_string("inputs"));
	return redact(jv_object_merge(v, k));  /* step, code_version, schema... */
}

/* The step index's path for req (borrowed), or NULL if it has no step. */
static char *index_path(jv req)
{
	const char *step = orch_jstr(req, "step"), *job = getenv("ORCH_JOB_ID");
	if (!step)
		return NULL;
	char *id = orch_fmt("%s\n%s", job ? job : "", step), h[65];
	orch_sha256_hex(id, strlen(id), h);
	free(id);
	return orch_fmt("%s/steps/%s", cache_dir(), h);
}

/* Line which of the index at path, parsed (0: {"key":KEY}, 1: the
 * request); invalid if none. A hit reads only the short first line. */
static jv index_line(const char *path, int which)
{
	FILE *f = fopen(path, "r");
	char *line = NULL;
	size_t cap = 0;
	ssize_t n = -1;
	for (int i = 0; f && i <= which; i++)
		n = getline(&line, &cap, f);
	jv v = n > 0 ? jv_parse_sized(line, (int)n) : jv_invalid();
	free(line);
	if (f)
		fclose(f);
	return v;
}

static void index_write(const char *path, const char *key, jv view)
{
	char *dir = orch_path(cache_dir(), "steps");
	jv text = jv_dump_string(jv_object_set(jv_object(), jv_string("key"), jv_string(key)), 0);
	text = jv_string_concat(jv_string_append_str(text, "\n"), jv_dump_string(view, 0));
	text = jv_string_append_str(text, "\n");
	if (orch_mkdir_p(dir, 0700) == 0)
		orch_atomic_write(path, jv_string_value(text), (size_t)jv_string_length_bytes(jv_copy(text)),
		                  0644, 0);
	jv_free(text);
	free(dir);
}

/* Make key and req (consumed) the step's last answered call: written
 * atomically, only when the index holds another key. A failure costs only
 * the next miss's "changed", so it is not reported. */
static void index_note(const char *key, jv req)
{
	char *path = index_path(req);
	jv was = path ? index_line(path, 0) : jv_invalid();
	const char *k = orch_jstr(was, "key");
	if (path && (!k || strcmp(k, key) != 0))
		index_write(path, key, request_view(jv_copy(req)));
	jv_free(was);
	jv_free(req);
	free(path);
}

struct diff { jv paths; int n; };

static void diff_add(struct diff *d, const char *path)
{
	if (d->n++ < CHANGED_MAX)
		d->paths = jv_array_append(d->paths, jv_string(*path ? path : "."));
}

/* path.k in jq's notation without the leading dot: messages[1].content,
 * opts.temperature, opts["top-p"]. */
static char *path_key(const char *path, const char *k)
{
	int ident = *k == '_' || isalpha((unsigned char)*k);
	for (const char *c = k; ident && *c; c++)
		ident = *c == '_' || isalnum((unsigned char)*c);
	if (ident)
		return orch_fmt("%s%s%s", path, *path ? "." : "", k);
	jv s = jv_dump_string(jv_string(k), 0);
	char *p = orch_fmt("%s[%s]", path, jv_string_value(s));
	jv_free(s);
	return p;
}

static void diff_walk(struct diff *d, const char *path, jv a, jv b);

static void diff_objects(struct diff *d, const char *path, jv a, jv b)
{
	jv keys = jv_keys(jv_object_merge(jv_copy(a), jv_copy(b)));
	jv_array_foreach(keys, i, k) {
		char *p = path_key(path, jv_string_value(k));
		jv x = jv_object_get(jv_copy(a), jv_copy(k)), y = jv_object_get(jv_copy(b), k);
		if (jv_is_valid(x) && jv_is_valid(y))
			diff_walk(d, p, x, y);
		else {  /* added or removed */
			diff_add(d, p);
			jv_free(x);
			jv_free(y);
		}
		free(p);
	}
	jv_free(keys);
	jv_free(a);
	jv_free(b);
}

static void diff_arrays(struct diff *d, const char *path, jv a, jv b)
{
	int na = jv_array_length(jv_copy(a)), nb = jv_array_length(jv_copy(b));
	for (int i = 0; i < na || i < nb; i++) {
		char *p = orch_fmt("%s[%d]", path, i);
		if (i < na && i < nb)
			diff_walk(d, p, jv_array_get(jv_copy(a), i), jv_array_get(jv_copy(b), i));
		else
			diff_add(d, p);
		free(p);
	}
	jv_free(a);
	jv_free(b);
}

/* The leaves that differ between a and b (consumed), each by its path; a
 * subtree only one side has, by the path of its root. */
static void diff_walk(struct diff *d, const char *path, jv a, jv b)
{
	jv_kind ka = jv_get_kind(a), kb = jv_get_kind(b);
	if (ka == JV_KIND_OBJECT && kb == JV_KIND_OBJECT)
		diff_objects(d, path, a, b);
	else if (ka == JV_KIND_ARRAY && kb == JV_KIND_ARRAY)
		diff_arrays(d, path, a, b);
	else if (!jv_equal(a, b))
		diff_add(d, path);
}

/* cache.miss's data for key and req (consumed): {"cache_key"}, plus
 * "changed" (and "changed_more", the paths beyond CHANGED_MAX) when the
 * step has an index to compare with. */
static jv miss_data(const char *key, jv req)
{
	jv data = jv_object_set(jv_object(), jv_string("cache_key"), jv_string(key));
	char *path = index_path(req);
	jv last = path ? index_line(path, 1) : jv_invalid();
	free(path);
	if (jv_get_kind(last) == JV_KIND_OBJECT) {
		struct diff d = {jv_array(), 0};
		diff_walk(&d, "", last, request_view(jv_copy(req)));
		data = jv_object_set(data, jv_string("changed"), d.paths);
		if (d.n > CHANGED_MAX)
			data = jv_object_set(data, jv_string("changed_more"), jv_number(d.n - CHANGED_MAX));
	} else
		jv_free(last);
	jv_free(req);
	return data;
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
	return entry_write(key, v) < 0 ? EX_FAIL : EX_OK;
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
	if (entry_write(key, jv_copy(v)) == 0)  /* one that cannot store is still a pass-through */
		index_note(key, asked);
	else
		jv_free(asked);
	return orch_put(mark(v, "miss")) < 0 ? EX_FAIL : EX_OK;
}


/* ---- the stream: many requests, answers as they come ---- */

/* orch-cache stream -- CMD [ARG...]: request lines in, one line out per
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

struct sreq { char key[65]; char *step; char *text; size_t len; };
struct sbuf { char *p; size_t n, cap; };

static struct {
	char **argv;
	pid_t pid;                  /* CMD, or 0 */
	int to, from;               /* its stdin (a socket), its stdout */
	struct sbuf out, ans;       /* for its stdin, not written yet; its answers' last part */
	struct sreq **sent;         /* by id; NULL once answered */
	size_t nsent, capsent, lo;  /* ids below lo are answered */
	int bad;
} st = {.to = -1, .from = -1};

static void sbuf_add(struct sbuf *b, const char *p, size_t n)
{
	if (b->cap - b->n < n + 1)
		b->p = orch_xrealloc(b->p, b->cap = (b->n + n + 1) * 2);
	memcpy(b->p + b->n, p, n);
	b->n += n;
	b->p[b->n] = 0;
}

static void sbuf_drop(struct sbuf *b, size_t n)  /* the first n bytes */
{
	memmove(b->p, b->p + n, b->n - n);
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
	sbuf_add(&st.out, tag, (size_t)n);
	sbuf_add(&st.out, line + 1, len - 1);
	sbuf_add(&st.out, "\n", 1);
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
		index_note(r->key, asked);
		if (put_hit(h, hlen, r->step) < 0)
			orch_die_sys(EX_FAIL, "writing output failed");
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
	} else {  /* stored: the step's last answered call */
		if (entry_write(r->key, jv_copy(v)) == 0)
			index_note(r->key, jv_parse_sized(r->text, (int)r->len));
		if (put_tagged(mark(v, "miss"), r->step) < 0)
			orch_die_sys(EX_FAIL, "writing output failed");
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
	sbuf_add(&st.ans, buf, (size_t)n);
	char *p = st.ans.p, *end = p + st.ans.n, *nl;
	while ((nl = memchr(p, '\n', (size_t)(end - p)))) {
		if (nl > p)
			stream_answer(p, (size_t)(nl - p));
		p = nl + 1;
	}
	sbuf_drop(&st.ans, (size_t)(p - st.ans.p));
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
		sbuf_drop(&st.out, (size_t)n);
	else if (n < 0 && errno != EAGAIN && errno != EINTR) {
		st.out.n = 0;  /* it has gone: its end says what it left */
		close(st.to);
		st.to = -1;
	}
}

/* The whole request lines read so far, taken; the rest kept. */
static void take_lines(struct sbuf *in)
{
	if (in->n == 0)
		return;
	char *p = in->p, *end = p + in->n, *nl;
	while (p < end && (nl = memchr(p, '\n', (size_t)(end - p)))) {
		if (nl > p)
			stream_request(p, (size_t)(nl - p));
		p = nl + 1;
	}
	sbuf_drop(in, (size_t)(p - in->p));
}

/* Wait for stdin, CMD's answers or room in its stdin; stdin read while
 * it has more now. 0 once stdin has ended. */
static int stream_turn(struct sbuf *in, int open)
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
				sbuf_add(in, "\n", 1);
		} else
			sbuf_add(in, buf, (size_t)n);
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

static int cmd_stream(char **argv)
{
	st.argv = argv;
	signal(SIGPIPE, SIG_DFL);
	struct sbuf in = {0};
	int open = 1;
	while (open || st.pid)
		open = stream_turn(&in, open);
	free(in.p);
	free(st.out.p);
	free(st.ans.p);
	free(st.sent);
	return st.bad ? EX_USAGE : EX_OK;
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
		return orch_put(jv_parse("{\"removed\":0,\"freed_bytes\":0,\"entries\":0,\"bytes\":0}")) ? EX_FAIL : EX_OK;
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
	close(dfd);
	jv s = jv_object();
	s = jv_object_set(s, jv_string("removed"), jv_number((double)removed));
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
