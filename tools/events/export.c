/* export.c: orch-events export --sqlite DB [RUN...]: the runs of each
 * folder, appended to a SQLite database for history across runs
 * (the schema is in orch-events(1), and in schema_sql below).
 *
 * A run is what one fresh job.started begins, with the resumes that
 * follow it, up to the next fresh start: a folder run three times holds
 * three runs. A run is keyed by (job_id, started), the ts of its
 * job.started, and exported in one transaction that deletes what the
 * database held of it and inserts it again: exporting twice leaves it
 * there once, and a run exported while running is brought up to date by
 * the next export. SQLite's atomic commit means a reader sees a run
 * whole or not at all; BEGIN IMMEDIATE and a busy timeout let two
 * exports into the same database wait for each other.
 *
 * Assumes events.jsonl as orch_emit writes it, read by read.c; a call's
 * cost is ev_llm_cost's (its cost_usd, else the price table; NULL when
 * neither knows). An orch database is one whose application_id is
 * APP_ID; any other database with tables in it is refused (exit 2). */
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sqlite3.h>
#include "events.h"

#define APP_ID 0x6f726368  /* "orch" */
#define SCHEMA_VERSION 1
#define BUSY_MS 60000

static const char schema_sql[] =
	"CREATE TABLE jobs (run_id INTEGER PRIMARY KEY, job_id TEXT NOT NULL,"
	" started TEXT NOT NULL, ended TEXT, status TEXT NOT NULL, duration_s REAL,"
	" resumes INTEGER NOT NULL DEFAULT 0, llm_calls INTEGER, prompt_tokens INTEGER,"
	" cached_tokens INTEGER, completion_tokens INTEGER, cost_usd REAL,"
	" unpriced_calls INTEGER, run_dir TEXT NOT NULL, exported TEXT NOT NULL,"
	" UNIQUE (job_id, started));\n"
	"CREATE TABLE steps (run_id INTEGER NOT NULL REFERENCES jobs, step TEXT NOT NULL,"
	" status TEXT NOT NULL, attempts INTEGER NOT NULL, started TEXT, ended TEXT,"
	" duration_s REAL, kind TEXT, message TEXT, reason TEXT, PRIMARY KEY (run_id, step));\n"
	"CREATE TABLE attempts (run_id INTEGER NOT NULL REFERENCES jobs, step TEXT NOT NULL,"
	" attempt INTEGER, started TEXT, ended TEXT, status TEXT NOT NULL, kind TEXT,"
	" message TEXT, duration_s REAL);\n"
	"CREATE INDEX attempts_run ON attempts (run_id, step);\n"
	"CREATE TABLE llm_calls (run_id INTEGER NOT NULL REFERENCES jobs, step TEXT,"
	" attempt INTEGER, provider TEXT, model TEXT, prompt_tokens INTEGER,"
	" cached_tokens INTEGER, completion_tokens INTEGER, cost_usd REAL, duration_s REAL,"
	" success INTEGER NOT NULL, ts TEXT NOT NULL);\n"
	"CREATE INDEX llm_calls_run ON llm_calls (run_id);\n"
	"CREATE TABLE files (run_id INTEGER NOT NULL REFERENCES jobs, step TEXT, path TEXT,"
	" sha256 TEXT, size_bytes INTEGER, wrote INTEGER, reason TEXT, ts TEXT NOT NULL);\n"
	"CREATE INDEX files_run ON files (run_id);\n"
	"CREATE TABLE cache (run_id INTEGER NOT NULL REFERENCES jobs, step TEXT NOT NULL,"
	" hits INTEGER NOT NULL, misses INTEGER NOT NULL, PRIMARY KEY (run_id, step));\n";

/* The statements, prepared once; ?1... as each row's columns come. */
enum { S_KEY, S_ID, S_JOB, S_STEP, S_ATTEMPT, S_LLM, S_FILE, S_CACHE, S_N };
static const char *const stmt_sql[S_N] = {
	"INSERT INTO jobs (job_id, started, status, run_dir, exported) VALUES (?1, ?2, 'running', ?3, ?4)"
	" ON CONFLICT (job_id, started) DO UPDATE SET run_dir = ?3, exported = ?4",
	"SELECT run_id FROM jobs WHERE job_id = ?1 AND started = ?2",
	"UPDATE jobs SET ended = ?2, status = ?3, duration_s = ?4, resumes = ?5, llm_calls = ?6,"
	" prompt_tokens = ?7, cached_tokens = ?8, completion_tokens = ?9, cost_usd = ?10,"
	" unpriced_calls = ?11 WHERE run_id = ?1",
	"INSERT INTO steps VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
	"INSERT INTO attempts VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
	"INSERT INTO llm_calls VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
	"INSERT INTO files VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
	"INSERT INTO cache VALUES (?1, ?2, ?3, ?4)",
};

/* A step of the run being exported, and its attempt now running. */
struct xstep {
	char *name, *started, *ended, *kind, *message, *reason, *open_started;
	const char *status;          /* NULL: only named by llm, file or cache events */
	double duration;
	int has_duration, open;
	long attempts, open_n, hits, misses;
};

struct xrun {
	sqlite3_int64 id;
	char *job, *started, *ended;
	const char *status;
	long resumes;
	double tally[T_N];
	struct xstep *s;
	size_t n, cap;
	orch_map *map;
	int active;
};

struct exporter {
	sqlite3 *db;
	const char *path, *run_dir;
	sqlite3_stmt *st[S_N];
	char now[32];
	struct xrun r;
};

/* ---- the database -------------------------------------------------- */

static int db_fail(struct exporter *x, const char *what)
{
	orch_err("%s: %s: %s", x->path, what, sqlite3_errmsg(x->db));
	return EX_FAIL;
}

static int db_exec(struct exporter *x, const char *sql, const char *what)
{
	return sqlite3_exec(x->db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : db_fail(x, what);
}

/* Run statement i with its bindings, then make it ready again. */
static int db_run(struct exporter *x, int i)
{
	int rc = sqlite3_step(x->st[i]);
	sqlite3_reset(x->st[i]);
	sqlite3_clear_bindings(x->st[i]);
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : db_fail(x, "cannot write");
}

static void bind_str(sqlite3_stmt *st, int i, const char *s)
{
	if (s)
		sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(st, i);
}

static void bind_num(sqlite3_stmt *st, int i, int have, double v)
{
	if (!have)
		sqlite3_bind_null(st, i);
	else if (v == (double)(sqlite3_int64)v)
		sqlite3_bind_int64(st, i, (sqlite3_int64)v);
	else
		sqlite3_bind_double(st, i, v);
}

/* data.key of the event as a column: its number, or NULL. */
static void bind_data(sqlite3_stmt *st, int i, const struct ev *ev, const char *key)
{
	double d = 0;
	int have = orch_jnum(ev->data, key, &d);
	bind_num(st, i, have, d);
}

static int db_int(struct exporter *x, const char *sql, sqlite3_int64 *out)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(x->db, sql, -1, &st, NULL) != SQLITE_OK)
		return db_fail(x, "not a database orch can read");
	int rc = sqlite3_step(st);
	*out = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	sqlite3_finalize(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : db_fail(x, "not a database orch can read");
}

/* Inside a write transaction: 0 if the database is orch's (the schema
 * made now when it is empty), else EX_USAGE, reported. */
static int db_schema(struct exporter *x)
{
	sqlite3_int64 app, version, tables;
	if (db_int(x, "PRAGMA application_id", &app) || db_int(x, "PRAGMA user_version", &version) ||
	    db_int(x, "SELECT count(*) FROM sqlite_master", &tables))
		return EX_USAGE;
	if (app == APP_ID && version > SCHEMA_VERSION) {
		orch_err("%s: made by a newer orch (schema %lld; this one knows %d)", x->path,
		         (long long)version, SCHEMA_VERSION);
		return EX_USAGE;
	}
	if (app == APP_ID)
		return 0;
	if (app != 0 || tables > 0) {
		orch_err("%s: not an orch database (it has tables of its own, and application_id %lld)",
		         x->path, (long long)app);
		return EX_USAGE;
	}
	char *pragmas = orch_fmt("PRAGMA application_id = %d; PRAGMA user_version = %d;", APP_ID,
	                         SCHEMA_VERSION);
	int rc = db_exec(x, schema_sql, "cannot make the tables") ||
	         db_exec(x, pragmas, "cannot make the tables") ? EX_USAGE : 0;
	free(pragmas);
	return rc;
}

/* Open (or create) the database and check it is orch's; exits 2 if not. */
static void db_open(struct exporter *x, const char *path)
{
	x->path = path;
	if (!*path)
		orch_die(EX_USAGE, "--sqlite: an empty path");
	int rc = sqlite3_open_v2(path, &x->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
	if (rc != SQLITE_OK)
		orch_die(EX_USAGE, "%s: cannot open: %s", path, x->db ? sqlite3_errmsg(x->db)
		                                                       : sqlite3_errstr(rc));
	sqlite3_busy_timeout(x->db, BUSY_MS);
	sqlite3_exec(x->db, "PRAGMA cache_size = -131072", NULL, NULL, NULL);  /* KiB: a big run without spills */
	if (db_exec(x, "BEGIN IMMEDIATE", "not a database orch can write"))
		orch_exit(EX_USAGE);
	if ((rc = db_schema(x)) != 0) {
		sqlite3_exec(x->db, "ROLLBACK", NULL, NULL, NULL);
		orch_exit(rc);
	}
	if (db_exec(x, "COMMIT", "cannot make the tables"))
		orch_exit(EX_USAGE);
	for (int i = 0; i < S_N; i++)
		if (sqlite3_prepare_v2(x->db, stmt_sql[i], -1, &x->st[i], NULL) != SQLITE_OK) {
			db_fail(x, "not the tables orch made");
			orch_exit(EX_USAGE);
		}
}

static void db_close(struct exporter *x)
{
	for (int i = 0; i < S_N; i++)
		sqlite3_finalize(x->st[i]);
	sqlite3_close(x->db);
}

/* ---- the run being exported ----------------------------------------- */

static void set_str(char **dst, const char *s)
{
	free(*dst);
	*dst = s ? orch_xstrdup(s) : NULL;
}

static struct xstep *step_at(struct xrun *r, const char *name)
{
	long i = orch_map_get(r->map, name);
	if (i >= 0)
		return &r->s[i];
	if (r->n == r->cap) {
		r->cap = r->cap ? 2 * r->cap : 64;
		r->s = orch_xrealloc(r->s, r->cap * sizeof *r->s);
	}
	struct xstep *s = &r->s[r->n];
	*s = (struct xstep){.name = orch_xstrdup(name)};
	orch_map_put(r->map, s->name, (long)r->n);
	return &r->s[r->n++];
}

static void run_free(struct xrun *r)
{
	for (size_t i = 0; i < r->n; i++) {
		struct xstep *s = &r->s[i];
		free(s->name), free(s->started), free(s->ended), free(s->kind);
		free(s->message), free(s->reason), free(s->open_started);
	}
	free(r->s);
	free(r->job), free(r->started), free(r->ended);
	if (r->map)
		orch_map_free(r->map);
	*r = (struct xrun){0};
}

/* A run starts: take the write lock, keep its row (and run_id), and
 * drop what an earlier export wrote of it. */
static int run_begin(struct exporter *x, const char *job, const char *started)
{
	struct xrun *r = &x->r;
	*r = (struct xrun){.job = orch_xstrdup(job), .started = orch_xstrdup(started),
	                   .status = "running", .map = orch_map_new(64), .active = 1};
	if (db_exec(x, "BEGIN IMMEDIATE", "cannot start a transaction"))
		return EX_FAIL;
	sqlite3_stmt *key = x->st[S_KEY], *id = x->st[S_ID];
	bind_str(key, 1, job), bind_str(key, 2, started);
	bind_str(key, 3, x->run_dir), bind_str(key, 4, x->now);
	if (db_run(x, S_KEY))
		return EX_FAIL;
	bind_str(id, 1, job), bind_str(id, 2, started);
	if (sqlite3_step(id) != SQLITE_ROW)
		return sqlite3_reset(id), db_fail(x, "cannot read its run_id");
	r->id = sqlite3_column_int64(id, 0);
	sqlite3_reset(id);
	char *del = orch_fmt("DELETE FROM steps WHERE run_id = %1$lld; DELETE FROM attempts WHERE run_id = %1$lld;"
	                     " DELETE FROM llm_calls WHERE run_id = %1$lld; DELETE FROM files WHERE run_id = %1$lld;"
	                     " DELETE FROM cache WHERE run_id = %1$lld;", (long long)r->id);
	int rc = db_exec(x, del, "cannot delete the run's earlier rows");
	free(del);
	return rc;
}

/* The attempt of s now running ends: a row for it. */
static int attempt_row(struct exporter *x, struct xstep *s, const struct ev *ev, const char *status)
{
	sqlite3_stmt *st = x->st[S_ATTEMPT];
	sqlite3_bind_int64(st, 1, x->r.id);
	bind_str(st, 2, s->name);
	if (ev && !s->open)  /* ended with no start seen */
		s->attempts++;
	double n = s->open_n;
	int have_n = s->open ? s->open_n > 0 : ev && orch_jnum(ev->data, "attempt", &n);
	bind_num(st, 3, have_n, n);
	bind_str(st, 4, s->open ? s->open_started : NULL);
	bind_str(st, 5, ev ? ev->ts : NULL);
	bind_str(st, 6, status);
	bind_str(st, 7, ev ? ev_str(ev, "kind") : NULL);
	bind_str(st, 8, ev ? ev_str(ev, "message") : NULL);
	if (ev)
		bind_data(st, 9, ev, "duration_s");
	s->open = 0;
	return db_run(x, S_ATTEMPT);
}

static int step_row(struct exporter *x, const struct xstep *s)
{
	sqlite3_stmt *st = x->st[S_STEP];
	sqlite3_bind_int64(st, 1, x->r.id);
	bind_str(st, 2, s->name), bind_str(st, 3, s->status);
	sqlite3_bind_int64(st, 4, s->attempts);
	bind_str(st, 5, s->started), bind_str(st, 6, s->ended);
	bind_num(st, 7, s->has_duration, s->duration);
	bind_str(st, 8, s->kind), bind_str(st, 9, s->message), bind_str(st, 10, s->reason);
	return db_run(x, S_STEP);
}

static int cache_row(struct exporter *x, const struct xstep *s)
{
	sqlite3_stmt *st = x->st[S_CACHE];
	sqlite3_bind_int64(st, 1, x->r.id);
	bind_str(st, 2, s->name);
	sqlite3_bind_int64(st, 3, s->hits);
	sqlite3_bind_int64(st, 4, s->misses);
	return db_run(x, S_CACHE);
}

static int job_row(struct exporter *x)
{
	struct xrun *r = &x->r;
	const double *t = r->tally;
	double t0, t1;
	int timed = r->ended && orch_parse_iso(r->started, &t0) == 0 && orch_parse_iso(r->ended, &t1) == 0;
	sqlite3_stmt *st = x->st[S_JOB];
	sqlite3_bind_int64(st, 1, r->id);
	bind_str(st, 2, r->ended), bind_str(st, 3, r->status);
	bind_num(st, 4, timed, timed ? round((t1 - t0) * 1000) / 1000 : 0);  /* ms, as ts */
	bind_num(st, 5, 1, r->resumes);
	for (int i = 0; i < 4; i++)  /* calls, prompt, cached, completion tokens */
		bind_num(st, 6 + i, 1, t[T_CALLS + i]);
	bind_num(st, 10, !(t[T_CALLS] > 0 && t[T_UNPRICED] == t[T_CALLS]), t[T_USD]);
	bind_num(st, 11, 1, t[T_UNPRICED]);
	return db_run(x, S_JOB);
}

/* The run ends (the next run starts, or the log does): its steps, the
 * attempts still running, its cache counts and its totals; commit. */
static int run_end(struct exporter *x)
{
	struct xrun *r = &x->r;
	int rc = 0;
	for (size_t i = 0; i < r->n && !rc; i++) {
		struct xstep *s = &r->s[i];
		if (s->open)
			rc = attempt_row(x, s, NULL, "running");
		if (!rc && s->status)
			rc = step_row(x, s);
		if (!rc && s->hits + s->misses > 0)
			rc = cache_row(x, s);
	}
	if (!rc)
		rc = job_row(x);
	if (!rc)
		rc = db_exec(x, "COMMIT", "cannot commit");
	if (rc)
		sqlite3_exec(x->db, "ROLLBACK", NULL, NULL, NULL);
	run_free(r);
	return rc;
}

/* ---- events --------------------------------------------------------- */

static int on_job(struct exporter *x, const struct ev *ev)
{
	struct xrun *r = &x->r;
	if (strcmp(ev->type, "job.started") == 0) {
		if (r->active && !ev_is_fresh_start(ev)) {  /* a resume: the same run */
			r->resumes++;
			r->status = "running";
			set_str(&r->ended, NULL);
			return 0;
		}
		int rc = r->active ? run_end(x) : 0;
		return rc ? rc : run_begin(x, ev->job, ev->ts);
	}
	const char *end = strcmp(ev->type, "job.succeeded") == 0 ? "succeeded"
		: strcmp(ev->type, "job.failed") == 0 ? "failed"
		: strcmp(ev->type, "job.cancelled") == 0 ? "cancelled" : NULL;
	if (end) {
		r->status = end;
		set_str(&r->ended, ev->ts);
	}
	return 0;
}

static int on_step(struct exporter *x, const struct ev *ev)
{
	struct xstep *s = step_at(&x->r, ev->step);
	const char *what = ev->type + 5;  /* after "step." */
	int rc = 0;
	if (strcmp(what, "started") == 0) {
		if (s->open)  /* a start with no end: lost */
			rc = attempt_row(x, s, NULL, "lost");
		s->open = 1;
		s->open_n = (long)ev_num(ev, "attempt");
		set_str(&s->open_started, ev->ts);
		s->attempts++;
		if (!s->started)
			set_str(&s->started, ev->ts);
		s->status = "running";  /* and how an earlier attempt ended is no longer the end */
		set_str(&s->ended, NULL), set_str(&s->kind, NULL), set_str(&s->message, NULL);
		s->has_duration = 0;
		return rc;
	}
	if (strcmp(what, "succeeded") && strcmp(what, "failed") && strcmp(what, "skipped"))
		return 0;  /* step.retrying: the attempts say it */
	if (s->status && strcmp(s->status, "succeeded") == 0 && strcmp(what, "skipped") == 0)
		return 0;  /* completed, on a resume: it stays succeeded */
	s->status = strcmp(what, "succeeded") == 0 ? "succeeded" : strcmp(what, "failed") == 0 ? "failed" : "skipped";
	set_str(&s->ended, ev->ts);
	set_str(&s->kind, ev_str(ev, "kind"));
	set_str(&s->message, ev_str(ev, "message"));
	set_str(&s->reason, ev_str(ev, "reason"));
	double d = 0;
	s->has_duration = orch_jnum(ev->data, "duration_s", &d);
	s->duration = d;
	return strcmp(what, "skipped") == 0 ? 0 : attempt_row(x, s, ev, s->status);
}

static int on_llm(struct exporter *x, const struct ev *ev)
{
	struct llm_cost c;
	ev_llm_cost(ev, &c);
	tally_add(x->r.tally, &c);
	sqlite3_stmt *st = x->st[S_LLM];
	sqlite3_bind_int64(st, 1, x->r.id);
	bind_str(st, 2, ev->step);
	bind_data(st, 3, ev, "attempt");
	bind_str(st, 4, c.provider), bind_str(st, 5, c.model);
	bind_num(st, 6, 1, c.prompt), bind_num(st, 7, 1, c.cached), bind_num(st, 8, 1, c.completion);
	bind_num(st, 9, c.priced, c.usd);
	bind_data(st, 10, ev, "duration_s");
	sqlite3_bind_int(st, 11, !c.failed);
	bind_str(st, 12, ev->ts);
	return db_run(x, S_LLM);
}

static int on_file(struct exporter *x, const struct ev *ev)
{
	sqlite3_stmt *st = x->st[S_FILE];
	sqlite3_bind_int64(st, 1, x->r.id);
	bind_str(st, 2, ev->step);
	bind_str(st, 3, ev_str(ev, "path")), bind_str(st, 4, ev_str(ev, "sha256"));
	bind_data(st, 5, ev, "size_bytes");
	jv wrote = orch_jget(ev->data, "wrote");
	bind_num(st, 6, jv_get_kind(wrote) == JV_KIND_TRUE || jv_get_kind(wrote) == JV_KIND_FALSE,
	         jv_get_kind(wrote) == JV_KIND_TRUE);
	jv_free(wrote);
	bind_str(st, 7, ev_str(ev, "reason"));
	bind_str(st, 8, ev->ts);
	return db_run(x, S_FILE);
}

static int export_event(const struct ev *ev, void *ctx)
{
	struct exporter *x = ctx;
	if (!x->r.active && strcmp(ev->type, "job.started") != 0) {
		int rc = run_begin(x, ev->job, ev->ts);  /* no job.started yet: a run from here */
		if (rc)
			return rc;
	}
	if (strncmp(ev->type, "job.", 4) == 0)
		return on_job(x, ev);
	if (strncmp(ev->type, "step.", 5) == 0)
		return ev->step ? on_step(x, ev) : 0;
	if (strcmp(ev->type, "llm.response") == 0)
		return on_llm(x, ev);
	if (strcmp(ev->type, "file.written") == 0)
		return on_file(x, ev);
	if (ev->step && strcmp(ev->type, "cache.hit") == 0)
		step_at(&x->r, ev->step)->hits++;
	else if (ev->step && strcmp(ev->type, "cache.miss") == 0)
		step_at(&x->r, ev->step)->misses++;
	return 0;
}

/* ---- the command ---------------------------------------------------- */

static const char *export_opts(int argc, char **argv, const char *usage)
{
	static const struct option longopts[] = {
		{"sqlite", required_argument, 0, 'Q'},
		ORCH_COMMON_LONGOPTS,
		{0, 0, 0, 0},
	};
	const char *db = NULL;
	int c;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		if (c == 'Q')
			db = optarg;
		else
			orch_common(c, optarg, usage);
	}
	if (!db)
		orch_die(EX_USAGE, "export: --sqlite DB is needed");
	return db;
}

/* Every folder has a log we can read, or nothing is exported (exit 2). */
static void check_runs(char **runs, int n)
{
	int bad = 0;
	for (int i = 0; i < n; i++) {
		char *log = orch_path(runs[i], "events.jsonl");
		if (access(log, R_OK) != 0) {
			orch_err_sys("%s", log);
			bad = 1;
		}
		free(log);
	}
	if (bad)
		orch_die(EX_USAGE, "export: nothing exported");
}

static int export_runs(struct exporter *x, char **runs, int n)
{
	static const char *const types[] = {"job.", "step.", "llm.response", "file.written", "cache.", NULL};
	for (int i = 0; i < n; i++) {
		x->run_dir = runs[i];
		int rc = ev_read(runs[i], types, export_event, x);
		if (rc) {  /* a DB error (reported): this run is not written */
			if (x->r.active)
				sqlite3_exec(x->db, "ROLLBACK", NULL, NULL, NULL);
			run_free(&x->r);
			return EX_FAIL;
		}
		if (x->r.active && run_end(x))
			return EX_FAIL;
	}
	return EX_OK;
}

int events_export(int argc, char **argv, const char *usage)
{
	int at = events_command_at(argc, argv);
	if (at < 0 || strcmp(argv[at], "export") != 0)
		return -1;
	const char *db = export_opts(argc, argv, usage);
	int n;
	char **runs = events_runs(argc, argv, &n);
	check_runs(runs, n);
	if (orch_price_load() < 0)
		orch_die(EX_USAGE, "the price table has errors (above)");
	struct exporter x = {0};
	orch_now_iso(x.now);
	db_open(&x, db);
	int rc = export_runs(&x, runs, n);
	db_close(&x);
	return rc;
}
