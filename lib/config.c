/* config.c: the user's defaults, read once per process from
 * $XDG_CONFIG_HOME/orch/config.yaml (default ~/.config/orch/config.yaml):
 *
 *   provider: {name: ollama, model: llama3}   # or "ollama" or "ollama:llama3"
 *   aliases: {fast: "ollama:llama3", smart: "openai:gpt-4o"}
 *   keys:
 *     openai: {api_key_file: ~/.secrets/openai}
 *     anthropic: {api_key_cmd: "pass show anthropic"}
 *   cache: shared                             # or a folder
 *   prices:                                   # over share/orch/prices.tsv
 *     - {provider: openai, model: "gpt-4o*", input: 2.5, cached_input: 1.25, output: 10}
 *
 * The reader is strict: a mapping of these keys only, each of its kind;
 * every problem is reported as "FILE:line:col: what" and the tool exits 2.
 * A missing file is no defaults. Paths may start with "~/" ($HOME); a
 * relative one is relative to the file's folder. "shared" is
 * $XDG_CACHE_HOME/orch (default ~/.cache/orch). Keys themselves are never
 * read here: orch-call reads a key source when it calls (call/config.c).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>
#include "orch.h"

static const struct { const char *provider, *var; } key_vars[ORCH_NKEYS] = {
	{"openai", "OPENAI_API_KEY"}, {"anthropic", "ANTHROPIC_API_KEY"},
};

/* The file being read, how many problems it has, and the provider whose
 * key source is being read. */
static struct { yaml_document_t doc; const char *path; int bad, key; } in;

static void problem(const yaml_node_t *n, const char *fmt, const char *arg)
{
	orch_err_at(in.path, (long)n->start_mark.line + 1, (long)n->start_mark.column + 1,
	            fmt, arg);
	in.bad++;
}

static yaml_node_t *node(int i)
{
	return yaml_document_get_node(&in.doc, i);
}

/* n's text, or NULL (reported as not being what) when n is no scalar. */
static const char *text(const yaml_node_t *n, const char *what)
{
	if (n->type == YAML_SCALAR_NODE)
		return (const char *)n->data.scalar.value;
	problem(n, "%s: expected a string", what);
	return NULL;
}

/* n a mapping (else reported); calls fn for each pair with its key text. */
static void each_pair(yaml_node_t *n, const char *what, struct orch_config *c,
                      void (*fn)(struct orch_config *, const char *, yaml_node_t *, yaml_node_t *))
{
	if (n->type != YAML_MAPPING_NODE) {
		problem(n, "%s: expected a mapping", what);
		return;
	}
	for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
		yaml_node_t *k = node(p->key), *v = node(p->value);
		const char *name = text(k, "a key");
		if (name)
			fn(c, name, k, v);
	}
}

/* "~/x" under $HOME, "x" under the config file's folder, "/x" as it is. */
static char *path_of(const char *s)
{
	const char *home = getenv("HOME");
	if (s[0] == '~' && (s[1] == '/' || !s[1]))
		return orch_fmt("%s%s", home ? home : "", s + 1);
	if (s[0] == '/')
		return orch_xstrdup(s);
	const char *slash = strrchr(in.path, '/');
	return orch_fmt("%.*s%s", slash ? (int)(slash - in.path + 1) : 0, in.path, s);
}

static void provider_key(struct orch_config *c, const char *k, yaml_node_t *kn, yaml_node_t *v)
{
	char **to = strcmp(k, "name") == 0 ? &c->provider : strcmp(k, "model") == 0 ? &c->model : NULL;
	const char *s = text(v, k);
	if (!to)
		problem(kn, "provider: unknown key '%s' (name, model)", k);
	else if (s)
		*to = orch_xstrdup(s);
}

/* provider: "name", "name:model" or {name, model}. */
static void read_provider(struct orch_config *c, yaml_node_t *v)
{
	if (v->type != YAML_SCALAR_NODE) {
		each_pair(v, "provider", c, provider_key);
		if (!c->provider && v->type == YAML_MAPPING_NODE)
			problem(v, "provider: %s", "no name");
		return;
	}
	const char *s = text(v, "provider"), *colon = strchr(s, ':');
	if (!*s || colon == s)
		problem(v, "provider: %s", "no name");
	c->provider = colon ? orch_fmt("%.*s", (int)(colon - s), s) : orch_xstrdup(s);
	c->model = colon ? orch_xstrdup(colon + 1) : NULL;
}

static void alias(struct orch_config *c, const char *k, yaml_node_t *kn, yaml_node_t *v)
{
	(void)kn;
	const char *s = text(v, k);
	if (s)
		c->aliases = jv_object_set(c->aliases, jv_string(k), jv_string(s));
}

static void key_source(struct orch_config *c, const char *k, yaml_node_t *kn, yaml_node_t *v)
{
	struct orch_keysrc *ks = c->keys + in.key;
	int file = strcmp(k, "api_key_file") == 0;
	const char *s = text(v, k);
	if (!file && strcmp(k, "api_key_cmd") != 0) {
		char *m = orch_fmt("keys.%s: unknown key '%s' (api_key_file, api_key_cmd)", ks->provider, k);
		problem(kn, "%s", m);
		free(m);
	}
	else if (ks->file || ks->cmd)
		problem(kn, "keys.%s: one of api_key_file and api_key_cmd", ks->provider);
	else if (s && file)
		ks->file = path_of(s);
	else if (s)
		ks->cmd = orch_xstrdup(s);
}

static void key_provider(struct orch_config *c, const char *k, yaml_node_t *kn, yaml_node_t *v)
{
	for (int i = 0; i < ORCH_NKEYS; i++)
		if (strcmp(k, c->keys[i].provider) == 0) {
			in.key = i;
			each_pair(v, k, c, key_source);
			return;
		}
	problem(kn, "keys: unknown provider '%s' (openai, anthropic)", k);
}

static void cache_of(struct orch_config *c, yaml_node_t *v)
{
	const char *s = text(v, "cache"), *xdg = getenv("XDG_CACHE_HOME");
	if (!s)
		return;
	if (strcmp(s, "shared") != 0)
		c->cache = path_of(s);
	else if (xdg && *xdg == '/')
		c->cache = orch_fmt("%s/orch", xdg);
	else
		c->cache = path_of("~/.cache/orch");
}

/* A scalar as JSON: a number when it is all one, else its text. */
static jv scalar_value(const yaml_node_t *n)
{
	const char *s = (const char *)n->data.scalar.value;
	char *end;
	double d = strtod(s, &end);
	return *s && !*end && n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE
		? jv_number(d) : jv_string(s);
}

static void price_field(struct orch_config *c, const char *k, yaml_node_t *kn, yaml_node_t *v)
{
	jv val = v->type == YAML_SCALAR_NODE ? scalar_value(v) : jv_null();
	const char *why = orch_price_field_problem(k, val);
	if (why) {  /* reported here, and not as missing below */
		char *m = orch_fmt("prices: '%s' %s", k, why);
		problem(strncmp(why, "is no key", 9) == 0 ? kn : v, "%s", m);
		free(m);
		jv_free(val);
		val = jv_false();
	}
	jv rows = c->prices;  /* the row being read is the last */
	int last = jv_array_length(jv_copy(rows)) - 1;
	jv row = jv_object_set(jv_array_get(jv_copy(rows), last), jv_string(k), val);
	c->prices = jv_array_set(rows, last, row);
}

/* prices: a list of {provider, model, input, cached_input, output}. */
static void read_prices(struct orch_config *c, yaml_node_t *v)
{
	if (v->type != YAML_SEQUENCE_NODE) {
		problem(v, "%s: expected a list", "prices");
		return;
	}
	for (yaml_node_item_t *i = v->data.sequence.items.start; i < v->data.sequence.items.top; i++) {
		yaml_node_t *e = node(*i);
		c->prices = jv_array_append(c->prices, jv_object());
		each_pair(e, "prices", c, price_field);
		jv row = jv_array_get(jv_copy(c->prices), jv_array_length(jv_copy(c->prices)) - 1);
		const char *missing = e->type == YAML_MAPPING_NODE ? orch_price_row_missing(row) : NULL;
		if (missing)
			problem(e, "prices: a row needs '%s' (provider, model, input, output)", missing);
		jv_free(row);
	}
}

static void top_key(struct orch_config *c, const char *k, yaml_node_t *kn, yaml_node_t *v)
{
	if (strcmp(k, "provider") == 0)
		read_provider(c, v);
	else if (strcmp(k, "aliases") == 0)
		each_pair(v, "aliases", c, alias);
	else if (strcmp(k, "keys") == 0)
		each_pair(v, "keys", c, key_provider);
	else if (strcmp(k, "cache") == 0)
		cache_of(c, v);
	else if (strcmp(k, "prices") == 0)
		read_prices(c, v);
	else
		problem(kn, "unknown key '%s' (provider, aliases, keys, cache, prices)", k);
}

/* Parse the text of the file into c; problems reported and counted. */
static void parse(struct orch_config *c, const char *buf, size_t len)
{
	yaml_parser_t y;
	yaml_parser_initialize(&y);
	yaml_parser_set_input_string(&y, (const unsigned char *)buf, len);
	if (!yaml_parser_load(&y, &in.doc)) {
		orch_err_at(in.path, (long)y.problem_mark.line + 1, (long)y.problem_mark.column + 1,
		            "%s", y.problem ? y.problem : "invalid YAML");
		in.bad++;
	} else {
		yaml_node_t *root = yaml_document_get_root_node(&in.doc);
		if (root && !(root->type == YAML_SCALAR_NODE && !root->data.scalar.length))
			each_pair(root, "the file", c, top_key);
		yaml_document_delete(&in.doc);
	}
	yaml_parser_delete(&y);
}

static char *config_path(void)
{
	const char *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
	if (xdg && *xdg == '/')
		return orch_fmt("%s/orch/config.yaml", xdg);
	return orch_fmt("%s/.config/orch/config.yaml", home ? home : "");
}

const struct orch_config *orch_config(void)
{
	static struct orch_config c;
	static int done;
	if (done)
		return &c;
	done = 1;
	c.path = config_path();
	c.aliases = jv_object();
	c.prices = jv_array();
	for (int i = 0; i < ORCH_NKEYS; i++)
		c.keys[i].provider = key_vars[i].provider, c.keys[i].var = key_vars[i].var;
	size_t len;
	char *buf = orch_slurp(c.path, &len);
	if (!buf && errno != ENOENT)
		orch_die_sys(EX_USAGE, "cannot read %s", c.path);
	if (!buf)
		return &c;
	c.found = 1;
	in.path = c.path;
	parse(&c, buf, len);
	free(buf);
	if (in.bad)
		exit(EX_USAGE);
	return &c;
}

const char *orch_config_model(const char *provider)
{
	const struct orch_config *c = orch_config();
	return c->provider && provider && strcmp(c->provider, provider) == 0 ? c->model : NULL;
}

const char *orch_config_alias(const char *name)
{
	jv v = jv_object_get(jv_copy(orch_config()->aliases), jv_string(name));
	const char *s = jv_is_valid(v) ? jv_string_value(v) : NULL;
	jv_free(v);  /* the config keeps its copy: s stays valid */
	return s;
}
