/* price.c: what a model's tokens cost, from a dated price table.
 *
 * The table is share/orch/prices.tsv (see that file for its columns): the
 * one installed beside the program, found by going up from the program's
 * folder (bin/../share/orch, as `make install` puts it; from build/bin or
 * build/san/bin, the source tree's). $ORCH_PRICES names a file in the same
 * form whose rows are looked at first, so it overrides single models.
 * Within the rows, the first whose provider is equal and whose model glob
 * matches wins. A model with no row has no price: its cost is null, never
 * a guess. The table is read once per process and kept.
 *
 * Override rows ({provider, model, input, cached_input, output}, as a
 * spec's or the config file's prices: give them) are JSON, looked at
 * before the table; the checks of their fields are here, so that each
 * reader (orch-plan, the config, orch-call) says the same. Tokens
 * written to a prompt cache (Anthropic's cache_creation_input_tokens)
 * cost 1.25 times the input price, as Anthropic charges them. */
#include <errno.h>
#include <fnmatch.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "orch.h"

struct price_row {
	char *provider, *model, *date;
	double in, cached, out;  /* USD per million tokens */
};

static struct price_table {
	struct price_row *rows;
	size_t n, cap;
	int loaded, bad;
} table;

/* A price: a number >= 0, or "-" (the input price) when dash_ok. */
static int price_field(const char *s, double dflt, int dash_ok, double *out)
{
	char *end;
	if (dash_ok && strcmp(s, "-") == 0) {
		*out = dflt;
		return 0;
	}
	errno = 0;
	*out = strtod(s, &end);
	return *s && !*end && !errno && *out >= 0 && isfinite(*out) ? 0 : -1;
}

static int date_field(const char *s)
{
	static const char shape[] = "dddd-dd-dd";
	if (strlen(s) != sizeof shape - 1)
		return -1;
	for (size_t i = 0; shape[i]; i++)
		if (shape[i] == 'd' ? (s[i] < '0' || s[i] > '9') : s[i] != '-')
			return -1;
	return 0;
}

/* One line of a table (no newline): a row added, or a problem reported. */
static void price_line(const char *path, long lineno, char *line)
{
	char *f[7], *p = line;
	int n = 0;
	if (!*line || *line == '#')
		return;
	for (; n < 7 && p; n++) {
		f[n] = p;
		if ((p = strchr(p, '\t')))
			*p++ = 0;
	}
	if (n != 6) {
		orch_err_at(path, lineno, 0, "not six tab-separated columns (provider, model, input, cached, output, date)");
		table.bad = 1;
		return;
	}
	struct price_row r = {0};
	int bad = !*f[0] ? 0 : !*f[1] ? 1 : price_field(f[2], 0, 0, &r.in) ? 2
		: price_field(f[3], r.in, 1, &r.cached) ? 3 : price_field(f[4], 0, 0, &r.out) ? 4
		: date_field(f[5]) ? 5 : -1;
	static const char *const what[] = {"an empty provider", "an empty model pattern",
		"the input price is not a number >= 0", "the cached input price is not a number >= 0 or -",
		"the output price is not a number >= 0", "the date is not YYYY-MM-DD"};
	if (bad >= 0) {
		orch_err_at(path, lineno, f[bad] - line + 1, "%s", what[bad]);
		table.bad = 1;
		return;
	}
	r.provider = orch_xstrdup(f[0]);
	r.model = orch_xstrdup(f[1]);
	r.date = orch_xstrdup(f[5]);
	if (table.n == table.cap) {
		table.cap = table.cap ? 2 * table.cap : 32;
		table.rows = orch_xrealloc(table.rows, table.cap * sizeof *table.rows);
	}
	table.rows[table.n++] = r;
}

static int price_file(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	long lineno = 0;
	while ((len = getline(&line, &cap, f)) >= 0) {
		lineno++;
		if (len > 0 && line[len - 1] == '\n')
			line[--len] = 0;
		price_line(path, lineno, line);
	}
	free(line);
	fclose(f);
	return 0;
}

/* share/orch/prices.tsv in the program's folder's parent, or the one's
 * above (up to three levels); NULL if none. malloc'd. */
static char *shipped_table(void)
{
	char exe[4096];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	if (n <= 0)
		return NULL;
	exe[n] = 0;
	for (int up = 0; up < 3; up++) {
		char *slash = strrchr(exe, '/');
		if (!slash)
			break;
		*slash = 0;
		char *p = orch_fmt("%s/../share/orch/prices.tsv", exe);
		if (access(p, R_OK) == 0)
			return p;
		free(p);
	}
	return NULL;
}

int orch_price_load(void)
{
	if (table.loaded)
		return table.bad ? -1 : 0;
	table.loaded = 1;
	const char *mine = getenv("ORCH_PRICES");
	if (mine && *mine && price_file(mine) < 0) {
		orch_err_sys("ORCH_PRICES: cannot read %s", mine);
		table.bad = 1;
	}
	char *shipped = shipped_table();
	if (shipped)
		price_file(shipped);
	free(shipped);
	return table.bad ? -1 : 0;
}

static const struct price_row *price_find(const char *provider, const char *model)
{
	orch_price_load();
	for (size_t i = 0; provider && model && i < table.n; i++)
		if (strcmp(table.rows[i].provider, provider) == 0 &&
		    fnmatch(table.rows[i].model, model, 0) == 0)
			return &table.rows[i];
	return NULL;
}

/* usage[a], else usage[b], else 0. */
static double usage_num(jv usage, const char *a, const char *b)
{
	double d = 0;
	if (!orch_jnum(usage, a, &d))
		orch_jnum(usage, b, &d);
	return d;
}

void orch_price_tokens(jv usage, double *prompt, double *cached, double *completion)
{
	*prompt = *cached = *completion = 0;
	if (jv_get_kind(usage) != JV_KIND_OBJECT)
		return;
	*prompt = usage_num(usage, "prompt_tokens", "prompt");
	*cached = usage_num(usage, "cache_read_tokens", "cache_read");
	if (*cached > *prompt)
		*cached = *prompt;
	*completion = usage_num(usage, "completion_tokens", "completion");
}

/* ---- override rows ---- */

static const char *const row_keys[] = {"provider", "model", "input", "cached_input", "output",
	NULL};

const char *orch_price_field_problem(const char *k, jv v)
{
	int i = 0;
	while (row_keys[i] && strcmp(row_keys[i], k) != 0)
		i++;
	if (!row_keys[i])
		return "is no key of a price (provider, model, input, cached_input, output)";
	if (i < 2)
		return jv_get_kind(v) == JV_KIND_STRING && jv_string_length_bytes(jv_copy(v)) > 0
			? NULL : "must be a non-empty string";
	return jv_get_kind(v) == JV_KIND_NUMBER && jv_number_value(v) >= 0 &&
	       isfinite(jv_number_value(v)) ? NULL : "must be a number >= 0 (USD per million tokens)";
}

const char *orch_price_row_missing(jv row)
{
	static const char *const needed[] = {"provider", "model", "input", "output"};
	for (size_t i = 0; i < sizeof needed / sizeof *needed; i++) {
		jv v = orch_jget(row, needed[i]);
		int has = jv_get_kind(v) != JV_KIND_NULL;
		jv_free(v);
		if (!has)
			return needed[i];
	}
	return NULL;
}

/* The first of rows (borrowed: an array, or anything else for none) for
 * provider and model, as a table row in *r; 0 if none. */
static int override_find(jv rows, const char *provider, const char *model, struct price_row *r)
{
	int found = 0;
	if (jv_get_kind(rows) != JV_KIND_ARRAY || !provider || !model)
		return 0;
	jv_array_foreach(rows, i, row) {
		const char *p = orch_jstr(row, "provider"), *m = orch_jstr(row, "model");
		if (!found && p && m && strcmp(p, provider) == 0 && fnmatch(m, model, 0) == 0) {
			found = orch_jnum(row, "input", &r->in) & orch_jnum(row, "output", &r->out);
			if (!orch_jnum(row, "cached_input", &r->cached))
				r->cached = r->in;
		}
		jv_free(row);
	}
	return found;
}

/* ---- a call's cost ---- */

jv orch_price_cost_over(jv rows, const char *provider, const char *model, jv usage)
{
	struct price_row mine;
	const struct price_row *r = override_find(rows, provider, model, &mine) ? &mine
		: price_find(provider, model);
	int counted = jv_get_kind(usage) == JV_KIND_OBJECT;
	double p, c, out, w = usage_num(usage, "cache_creation_tokens", "cache_creation");
	orch_price_tokens(usage, &p, &c, &out);
	jv_free(usage);
	jv_free(rows);
	if (!r || !counted)
		return jv_null();
	w = fmin(fmax(w, 0), p - c);  /* written to the cache: part of the prompt */
	double usd = ((p - c - w) * r->in + w * r->in * 1.25 + c * r->cached + out * r->out) / 1e6;
	return jv_number(round(usd * 1e9) / 1e9);  /* to the nano-dollar: no float dust */
}

jv orch_price_cost(const char *provider, const char *model, jv usage)
{
	return orch_price_cost_over(jv_null(), provider, model, usage);
}
