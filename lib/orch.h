/* orch.h: what every orch tool shares, and nothing else.
 *
 * Conventions (see orch(7), orch-run(5), orch-events(5)):
 *  - diagnostics go to stderr as "orch-x: message" (with "file:line:col: "
 *    when about an input file); one exit-code table for all tools;
 *  - all JSON is jv; every jv_* call consumes its arguments except jv_copy;
 *  - records are ND-JSON, written compact and flushed one per line;
 *  - every write that matters is atomic (temp file, fsync, rename, fsync dir);
 *  - events are appended with one write(2) on O_APPEND under flock.
 */
#ifndef ORCH_H
#define ORCH_H

#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>
#include <jv.h>

#ifndef ORCH_VERSION
#define ORCH_VERSION "0.0.0"
#endif

/* Exit codes, the same for every tool (CONTRACT §1). */
enum {
	EX_OK = 0,        /* success */
	EX_FAIL = 1,      /* the work failed, or what was asked for is absent */
	EX_USAGE = 2,     /* bad usage or invalid input; nothing was changed */
	EX_TEMP = 75,     /* a transient failure worth retrying (EX_TEMPFAIL) */
	EX_SIGNAL = 128,  /* + signal number */
};

/* diag.c: program name and messages. */
extern const char *orch_prog;
void orch_init(int argc, char **argv);  /* sets orch_prog, sodium_init */
void orch_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void orch_err_sys(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void orch_err_at(const char *file, long line, long col, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* The last line said ("orch-x: ...") since the last take, or "" */
const char *orch_take_said(void);
_Noreturn void orch_die(int code, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
_Noreturn void orch_die_sys(int code, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void *orch_xmalloc(size_t n);
void *orch_xrealloc(void *p, size_t n);
char *orch_xstrdup(const char *s);
char *orch_fmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Common options: every tool takes --help, --version, --run DIR.
 * orch_common() handles them; it returns 1 if it consumed the option. */
#define ORCH_OPT_HELP 'h'
#define ORCH_OPT_VERSION 0x1001
#define ORCH_OPT_RUN 0x1002
#define ORCH_COMMON_LONGOPTS \
	{"help", no_argument, 0, ORCH_OPT_HELP}, \
	{"version", no_argument, 0, ORCH_OPT_VERSION}, \
	{"run", required_argument, 0, ORCH_OPT_RUN}
extern const char *orch_run_opt;  /* --run DIR, or NULL */
int orch_common(int opt, const char *optarg_, const char *usage);
_Noreturn void orch_usage(const char *usage);  /* usage to stderr, exit 2 */
/* Check stdout for errors (e.g. a full disk), then exit. */
_Noreturn void orch_exit(int code);

/* json.c: ND-JSON in and out. */
/* Called per record; consumes rec. Return 0 to go on, else stop the loop
 * with that value. */
typedef int (*orch_record_fn)(jv rec, void *ctx);
/* Read every JSON value from f (whitespace or newline separated). On
 * invalid input report "name:line:col: message" and return EX_USAGE;
 * else the first non-zero callback value, or 0. */
int orch_records(FILE *f, const char *name, orch_record_fn fn, void *ctx);
/* loop.c: the loop every record-reading tool shares (as mblaze's
 * blaze822_loop): each file named in files[0..n) in turn, "-" meaning
 * stdin, or stdin alone when n is 0, read with orch_records. A file that
 * cannot be opened is reported and the loop goes on. Returns the first
 * non-zero value of fn or of a file's reading (EX_USAGE: invalid JSON),
 * else EX_FAIL if a file could not be opened, else 0. While fn runs,
 * orch_loop_at() names the file and counts its records (1 for the first). */
int orch_loop(char **files, int n, orch_record_fn fn, void *ctx);
const char *orch_loop_at(long *rec);
/* Read exactly one JSON value from f; invalid value on error (reported). */
jv orch_read_one(FILE *f, const char *name);
/* One line of JSON text. A NUL byte is never valid JSON, and libjq 1.6
 * leaks on some inputs holding one, so such a line is refused first. */
jv orch_parse_line(const char *line, size_t n);
/* Is s[0..n) exactly one JSON value (RFC 8259, strict)? Allocates nothing;
 * for readers that print valid lines as they are. */
int orch_json_valid(const char *s, size_t n);
/* Print v (consumed) compact with a newline and flush (nothing at all when
 * stdout is /dev/null). -1 on write error. */
int orch_put(jv v);
/* Compact JSON text of v (consumed), malloc'd, NUL-terminated: the bytes
 * jv_dump_string(v, 0) gives, at a tenth of the cost. */
char *orch_json_text(jv v, size_t *len);
/* A JSON writer for records too many to build as jv first (orch-plan's
 * lines: building a jv costs several times what printing it does). It
 * puts the commas, escapes the strings, and writes the bytes orch_put
 * would for the same value. Start from a zeroed orch_jw; a key comes
 * before each value in an object. */
#define ORCH_JW_DEPTH 512
/* A growing byte buffer, p[0..n); start zeroed, empty it with n = 0.
 * orch_buf_add keeps a NUL after p[n - 1] (the JSON writer does not). */
struct orch_buf { char *p; size_t n, cap; };
void orch_buf_add(struct orch_buf *b, const void *s, size_t n);
void orch_buf_free(struct orch_buf *b);  /* and zero it */
typedef struct orch_jw {
	struct orch_buf b;  /* the line so far */
	unsigned depth, keyed;
	unsigned char at[ORCH_JW_DEPTH];  /* per level: object? a value yet? */
} orch_jw;
void orch_jw_open(orch_jw *w, char c);  /* '{' or '[' */
void orch_jw_close(orch_jw *w);
/* k and s must be valid UTF-8 (libyaml's scalars are): they are copied
 * as they are, where jv_string would replace a bad byte with U+FFFD. */
void orch_jw_key(orch_jw *w, const char *k);
void orch_jw_str(orch_jw *w, const char *s);
void orch_jw_jv(orch_jw *w, jv v);  /* any value, consumed */
/* A value already written as text, by orch_json_text: for one value that
 * every record repeats (printed once, not once a record). */
void orch_jw_text(orch_jw *w, const char *json, size_t n);
/* The line, with a newline, to stdout unflushed (-1 on error); w is reset. */
int orch_jw_put(orch_jw *w);
void orch_jw_free(orch_jw *w);
/* Compact JSON text of v (consumed), malloc'd, sorted keys if sorted. */
char *orch_dump(jv v, int sorted);
/* Small accessors; they do not consume obj. */
jv orch_jget(jv obj, const char *key);  /* obj.key (a new value); null when absent or obj is no object */
const char *orch_jstr(jv obj, const char *key);  /* NULL unless a string; valid while obj lives */
int orch_jnum(jv obj, const char *key, double *out);  /* 1 if a number */
int orch_jbool(jv obj, const char *key, int dflt);  /* true/false, else dflt */

/* file.c: files. */
/* Whole file (or stdin for "-"); NUL-terminated; NULL with errno on error. */
char *orch_slurp(const char *path, size_t *len);
char *orch_slurp_fp(FILE *f, size_t *len);
/* All of buf to fd (retrying short writes and EINTR); 0 or -1. */
int orch_write_all(int fd, const void *buf, size_t n);
/* Each line of f in turn, its newline cut off (NUL-terminated, writable,
 * valid until fn returns), numbered from 1. Returns 0 at the end, or fn's
 * first non-zero value. */
typedef int (*orch_line_fn)(char *line, size_t n, long lineno, void *ctx);
int orch_lines(FILE *f, orch_line_fn fn, void *ctx);
/* The whole of an open regular file, from its start; NUL-terminated. */
char *orch_read_fd(int fd, size_t *len);
/* Write buf to dirfd/name atomically: temp file in the same directory,
 * rename over the name. With sync, fsync the file before the rename and the
 * directory after it (survives power loss; ~0.7 ms here); without, it
 * survives any crash of the process (kill -9), which is what a derived file
 * such as manifest.json needs. A new file gets mode less the umask; a
 * replaced one keeps its permission bits. name must not contain '/'. */
int orch_atomic_write_at(int dirfd, const char *name, const void *buf, size_t len,
                         mode_t mode, int sync);
int orch_atomic_write(const char *path, const void *buf, size_t len, mode_t mode, int sync);
/* v (consumed) as one compact JSON line, atomically. */
int orch_atomic_json(const char *path, jv v, int sync);
/* mkdir -p with mode for each created component. */
int orch_mkdir_p(const char *path, mode_t mode);

/* run.c: the run folder (orch-run(5)). */
/* --run, else $ORCH_RUN_DIR, else NULL. */
const char *orch_run_dir(void);
/* $ORCH_RUNS (default "runs") / job_id; malloc'd. */
char *orch_run_dir_for(const char *job_id);
int orch_job_id_valid(const char *id);
/* A step id, or a fan-out instance "id[key]" (CONTRACT §9). */
int orch_step_name_valid(const char *name);
/* Create the run folder (0700) and its subfolders. 0 or -1 (reported). */
int orch_run_create(const char *dir);
/* Job id of a run: $ORCH_JOB_ID, else the folder's base name. malloc'd. */
char *orch_run_job_id(const char *dir);
char *orch_path(const char *dir, const char *rel);  /* dir/rel, malloc'd */

/* event.c: the append-only event log (orch-events(5)). */
/* Append one event to run_dir/events.jsonl; in a launched step
 * ($ORCH_EVENTS_FILE in run_dir/logs/), to that file instead, for
 * orch-sched to merge. step NULL: $ORCH_STEP if set. data is consumed
 * (jv_invalid() or jv_null(): no data). No run_dir: a no-op. Returns 0,
 * or -1 (reported). */
int orch_emit(const char *run_dir, const char *level, const char *type,
              const char *step, jv data);
/* orch_emit, and the event it wrote (*ev, the caller's to free; invalid
 * if none) and the offset its line begins at in events.jsonl (*at; -1 if
 * it went to a launched step's own file): for a writer that folds its own
 * events into a manifest without reading them back (orch_manifest_own). */
int orch_emit_kept(const char *run_dir, const char *level, const char *type,
                   const char *step, jv data, jv *ev, off_t *at);
/* Append whole lines (len bytes, each with its newline) to
 * run_dir/events.jsonl under its lock, as one write. before, if not NULL,
 * is called with the lock held and the offset the lines will begin at; if
 * it returns non-zero nothing is written. 0, or -1 with errno. */
typedef int (*orch_append_fn)(off_t at, void *ctx);
int orch_events_append(const char *run_dir, const char *lines, size_t len,
                       orch_append_fn before, void *ctx);
/* The steps with a step.succeeded event since the last job.started whose
 * data.resume is not true: an object {step: true}. */
jv orch_events_completed(const char *path);
/* Each step's state in the same events (what --resume needs): an object
 * {step: {"done": true if it has a step.succeeded, "fingerprint" and
 * "spec_hash" of the last one (null if it had none), "open": the data of
 * a step.started that no step.succeeded or step.failed followed, if any:
 * an attempt cut off when its scheduler was killed}}. */
jv orch_events_steps(const char *path);

/* manifest.c: manifest.json, derived from the events (orch-run(5)).
 * The fold is incremental: each update reads only the whole lines appended
 * since the last one, so a scheduler may rewrite the manifest after every
 * step at no quadratic cost. orch-events stats shows the same state. */
typedef struct orch_manifest orch_manifest;
orch_manifest *orch_manifest_new(const char *run_dir);
int orch_manifest_update(orch_manifest *m);   /* fold new events; 0 or -1 */
jv orch_manifest_get(orch_manifest *m);       /* the manifest (a new value) */
/* RUN/manifest.json, parsed, if it is of the whole of RUN/events.jsonl
 * (its "events" is the log's count of whole lines); else invalid. */
jv orch_manifest_fresh(const char *run_dir);
int orch_manifest_write(orch_manifest *m);    /* update, write atomically */
void orch_manifest_free(orch_manifest *m);
/* e (consumed) is the event whose line begins at offset at of events.jsonl,
 * written by the caller: the next update folds it when it reaches that
 * line, as it would have folded the line, without parsing it. */
void orch_manifest_own(orch_manifest *m, off_t at, jv e);

/* strmap.c: string -> index (steps by name, in linear time). Keys are
 * borrowed. put returns 1 (and changes nothing) if the key was there. */
typedef struct orch_map orch_map;
orch_map *orch_map_new(size_t hint);
long orch_map_get(const orch_map *m, const char *key);  /* -1 if absent */
int orch_map_put(orch_map *m, const char *key, long val);
void orch_map_free(orch_map *m);

/* graph.c: a dependency graph of n nodes, 0 to n-1 (orch-plan's steps,
 * orch-sched's): adjacency lists both ways, linear in nodes + edges. */
typedef struct orch_graph orch_graph;
orch_graph *orch_graph_new(size_t n);
/* node needs dep; a duplicate is dropped. Needs keep the order given. */
void orch_graph_need(orch_graph *g, size_t node, size_t dep);
/* Nodes n to n2-1 added, with no edges (n2 > n): orch-sched's dynamic
 * fan-out adds instances once a step's answer is known. */
void orch_graph_grow(orch_graph *g, size_t n2);
/* node needs dep, which it does not yet: not checked (a node just added). */
void orch_graph_need_new(orch_graph *g, size_t node, size_t dep);
/* Kahn's order; among ready nodes, before(a, b, ctx) true puts a first
 * (orch-plan: spec order; orch-sched: priority then index). Fills
 * order[0..n), returns how many got ordered (< n: a cycle). */
size_t orch_graph_order(orch_graph *g, int (*before)(size_t, size_t, void *), void *ctx,
                        size_t *order);
/* The text "a -> b -> a" of one cycle among the nodes the last order left
 * unordered, malloc'd (NULL if none); name(i, ctx) gives a node's name. */
char *orch_graph_cycle(orch_graph *g, const char *(*name)(size_t, void *), void *ctx);
/* Every such cycle once, one a call, then NULL (orch-plan reports them
 * all; after an order, the first call gives orch_graph_cycle's). *first,
 * if not NULL, gets the node the text starts and ends with. */
char *orch_graph_next_cycle(orch_graph *g, const char *(*name)(size_t, void *), void *ctx,
                            size_t *first);
size_t orch_graph_ndeps(const orch_graph *g, size_t node);   /* what it needs */
const size_t *orch_graph_deps(const orch_graph *g, size_t node);
size_t orch_graph_nrdeps(const orch_graph *g, size_t node);  /* its dependants */
const size_t *orch_graph_rdeps(const orch_graph *g, size_t node);
void orch_graph_free(orch_graph *g);

/* config.c: the user's defaults, $XDG_CONFIG_HOME/orch/config.yaml
 * (default ~/.config/orch/config.yaml), read on first use, once per
 * process. A missing file is no defaults; an invalid one is reported
 * (file:line:col, every problem) and the process exits 2. Key sources
 * are where a key is read from, by orch-call, when it calls; the config
 * never holds a key. */
#define ORCH_NKEYS 2  /* the providers that take a key: openai, anthropic */
struct orch_keysrc {
	const char *provider, *var;  /* "openai", "OPENAI_API_KEY" */
	char *file, *cmd;            /* api_key_file (a path), api_key_cmd; or NULL */
};
struct orch_config {
	char *path;              /* the file, whether or not it exists */
	int found;               /* it exists (and was read) */
	char *provider, *model;  /* the default provider and its model, or NULL */
	jv aliases;              /* {name: "provider:model" or "model"} */
	struct orch_keysrc keys[ORCH_NKEYS];
	char *cache;             /* the cache folder, or NULL */
	jv prices;               /* override rows (lib/price.c), maybe [] */
};
const struct orch_config *orch_config(void);
/* The configured model of provider, when it is the default provider. */
const char *orch_config_model(const char *provider);
/* What alias name stands for ("provider:model" or "model"), or NULL. */
const char *orch_config_alias(const char *name);

/* time.c */
void orch_now_iso(char buf[32]);   /* 2025-10-22T10:00:00.123Z */
double orch_mono(void);            /* monotonic seconds */
double orch_wall(void);            /* epoch seconds */
int orch_parse_iso(const char *s, double *epoch);
/* An age or duration: "90s", "30m", "12h", "7d", "2w", "3600" (seconds),
 * fractions allowed; -1 if malformed or negative. */
double orch_parse_age(const char *s);

/* price.c: what tokens cost, from share/orch/prices.tsv (rows of
 * $ORCH_PRICES first; see that file). The table is read on first use.
 * Usage objects are the response's ({prompt_tokens, completion_tokens,
 * cache_read_tokens, cache_creation_tokens}) or an llm.response event's
 * tokens ({prompt, completion, cache_read, cache_creation}); prompt
 * counts cached tokens too. */
/* The cost in USD of one call (usage consumed), a number, or null when
 * the model has no price or usage is no object. Cache writes cost 1.25
 * times the input price. */
jv orch_price_cost(const char *provider, const char *model, jv usage);
/* The same with override rows first (an array of {provider, model,
 * input, cached_input, output}, consumed; null for none). */
jv orch_price_cost_over(jv rows, const char *provider, const char *model, jv usage);
/* An override row's field k = v (borrowed): NULL if good, else what is
 * wrong; the fields a row (borrowed) lacks: the first, or NULL. */
const char *orch_price_field_problem(const char *k, jv v);
const char *orch_price_row_missing(jv row);
/* Read the tables now: 0, or -1 if one could not be read or has a bad row
 * (reported as file:line: and skipped). */
int orch_price_load(void);
/* The token counts of a usage object (not consumed), 0 where absent;
 * cached is at most prompt. */
void orch_price_tokens(jv usage, double *prompt, double *cached, double *completion);

/* hash.c: libsodium. */
void orch_sha256_hex(const void *buf, size_t len, char out[65]);
void orch_random_hex(char *out, size_t nbytes);  /* 2*nbytes hex + NUL */

/* ratelimit.c: requests and tokens per minute shared by every process
 * calling one account (a provider, its URL, a hash of its key: never the
 * key), one small file per account under dir, updated under flock
 * (orch-run(5) FILES, orch-call(1) RATE LIMITS). Times are epoch seconds;
 * a limit of 0 is none. */
/* $ORCH_CACHE_DIR/ratelimit, else the config's cache/ratelimit, else
 * RUN/.cache/ratelimit, else
 * $XDG_CACHE_HOME/orch/ratelimit, else ~/.cache/orch/ratelimit; malloc'd,
 * NULL when there is none of these. */
char *orch_rate_dir(void);
char *orch_rate_file(const char *dir, const char *account);  /* malloc'd */
/* Take one request and `tokens` from the account's shares at now: 0 when
 * taken; else the seconds to wait before asking again (nothing taken); -1
 * when the account is blocked until *retry_at. */
double orch_rate_take(const char *dir, const char *account, double rpm, double tpm,
                      double tokens, double now, double *retry_at);
/* The answer counted `tokens` more than were taken (fewer: negative). */
void orch_rate_correct(const char *dir, const char *account, double tpm, double tokens);
/* No request on the account before retry_at (a daily quota ran out). */
void orch_rate_block(const char *dir, const char *account, double retry_at);
void orch_rate_iso(double t, char buf[32]);  /* 2025-10-22T10:00:00.123Z */

/* tmpl.c: {{ jq }} templates, compiled once per process (libjq 1.6 spends
 * ~20 ms per jq_compile, so every expression of a set goes into one). */
typedef struct orch_tmpl orch_tmpl;
/* Compile a set of n templates (copied: texts need not outlive it). On
 * error return NULL and set *err to a
 * malloc'd message per failing template: errs[i] (NULL where fine). */
orch_tmpl *orch_tmpl_compile(const char **texts, size_t n, char **errs);
/* Render template i against ctx (not consumed). Returns malloc'd text, or
 * NULL with *err malloc'd: a jq error, or a hole whose value is null (or
 * absent), which is never rendered as "null"; {{ .x // "" }} is optional. */
char *orch_tmpl_render(orch_tmpl *t, size_t i, jv ctx, char **err);
void orch_tmpl_free(orch_tmpl *t);
/* Only check them (as compile does, at half the cost): 0, or -1 and errs. */
int orch_tmpl_check(const char **texts, size_t n, char **errs);
/* Does text contain any {{ }}? */
int orch_tmpl_has(const char *text);
/* One jq program: compile; NULL and *err on failure. Every program runs
 * without the environment ($ENV and env are {}) and without ~/.jq: no
 * secret can reach a prompt, a log or the cache through a template or
 * condition. */
struct jq_state;
struct jq_state *orch_jq_compile(const char *prog, char **err);
/* Run prog on input (consumed): its first output, or jv_invalid with msg. */
jv orch_jq_first(struct jq_state *jq, jv input);

/* fankey.c: a fan-out item's key, as orch-plan and orch-sched make it:
 * keyq's value over item (keyq NULL: the item itself; by_path: its
 * "path"), when that is a number or a name ([A-Za-z0-9._-]{1,64}), else
 * the first 12 hex digits of its sha256. malloc'd; item consumed. */
#define ORCH_MAX_ITEMS 100000  /* max_items: when the spec gives none */
char *orch_item_key(struct jq_state *keyq, jv item, int by_path);

/* schema.c: JSON Schema (orch-check(1) lists the keywords). Compile once,
 * validate many. */
typedef struct orch_schema orch_schema;
/* Compile schema (consumed). On an invalid schema or an unknown keyword,
 * NULL and *err (malloc'd) = "POINTER: message", POINTER the JSON Pointer
 * of the bad keyword in the schema ("(root)" for the schema itself). */
orch_schema *orch_schema_new(jv schema, char **err);
/* Validate v (not consumed): 0 if valid, else the number of errors, each
 * appended to *errs (a jv array) as {"path": JSON Pointer into v,
 * "keyword", "message"}. errs NULL: stop at the first error (return 1). */
int orch_schema_check(orch_schema *s, jv v, jv *errs);
void orch_schema_free(orch_schema *s);

#endif
