/* changed.c: orch-cache's step index, and what changed on a miss.
 *
 * DIR/steps/<sha256 of "JOB\nSTEP">: two JSON lines, {"key":KEY} and the
 * request (as the key sees it: request_view) of the step's latest call
 * that was answered, a hit or a stored miss. A miss diffs its
 * request with that one: cache.miss's "changed". JOB is $ORCH_JOB_ID (a
 * shared cache serves many jobs), empty when unset. */

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "cache.h"

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
	size_t n = (size_t)jv_string_length_bytes(jv_copy(text));
	if (orch_atomic_write(path, jv_string_value(text), n, 0644, 0) < 0 && errno == ENOENT &&
	    orch_mkdir_p(dir, 0700) == 0)  /* the first: no steps/ yet */
		orch_atomic_write(path, jv_string_value(text), n, 0644, 0);
	jv_free(text);
	free(dir);
}

/* Make key and req (consumed) the step's last answered call: written
 * atomically, only when the index holds another key. A failure costs only
 * the next miss's "changed", so it is not reported. */
void index_note(const char *key, jv req)
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
jv miss_data(const char *key, jv req)
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

/* A step index's name: 64 hex digits; its temporary file's: "." then
 * that, ".", 16 hex digits, ".tmp". */
static int index_name(const char *n, int tmp)
{
	size_t l = strlen(n), skip = tmp ? 1 : 0;
	if (tmp ? l != 86 || n[0] != '.' || n[65] != '.' || strcmp(n + 82, ".tmp") != 0 : l != 64)
		return 0;
	for (size_t i = 0; i < 64; i++)
		if (!strchr("0123456789abcdef", n[skip + i]))
			return 0;
	return 1;
}

/* prune --older-than: the step indexes of DIR/steps (dfd: DIR) not
 * written for age seconds, and temporary files a killed writer left
 * there over an hour ago, removed. A step whose index goes has no
 * "changed" at its next miss, as a first miss has none. The count. */
size_t index_prune(int dfd, double age, time_t now)
{
	int fd = openat(dfd, "steps", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		if (fd >= 0)
			close(fd);
		return 0;
	}
	size_t removed = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		int ix = index_name(de->d_name, 0), tmp = !ix && index_name(de->d_name, 1);
		struct stat st;
		if ((!ix && !tmp) || fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISREG(st.st_mode) || difftime(now, st.st_mtime) <= (tmp ? 3600 : age))
			continue;
		if (unlinkat(dirfd(d), de->d_name, 0) == 0 && ix)
			removed++;
	}
	closedir(d);
	return removed;
}
