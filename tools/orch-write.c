/* orch-write: safe, atomic, confined writes into the run's outputs/.
 *
 *   orch-write [--outputs DIR] [--mode M] [--result] < write records
 *   orch-write --extract [--result] [--step S] < response (or markdown)
 *   orch-write --no-files --result [--step S] < response: the step result
 *                                of a step that writes no files
 *   orch-write --input FILE --result < response: as --extract when the
 *                                step input record in FILE has spec.files
 *                                true or "required", else as --no-files
 *                                (orch step)
 *   orch-write --inputs FILE < responses: a stream of answers, each with
 *                                "step", their step input records a line
 *                                each in FILE (which may grow as they
 *                                come): each as --input RECORD --result,
 *                                its result (or a failure line
 *                                {"step","failed","exit_code"}) printed
 *                                as it is done; a failure line passes
 *                                on as it is (orch step --batch)
 *
 * Reads write records {"path","content","mode"} as ND-JSON (or an answer
 * whose fenced code blocks name their files), writes each file under OUT
 * (RUN/outputs, or --outputs DIR), prints one write result
 * {"path","sha256","size_bytes","wrote","reason"} per file (or, with
 * --result, the step result) and emits a file.written event for each.
 *
 * A batch is all or nothing as far as it can be known beforehand: every
 * record is checked (syntax, the existing part of its path, create_new
 * conflicts) before the first file is written; any refusal exits 2 with
 * nothing written, a conflict exits 1 with nothing written.
 *
 * The parts (tools/write/write.h): confine.c walks a path beneath OUT,
 * never through a symlink; files.c writes one record in its mode; fence.c
 * finds the fenced blocks of an answer. This file decides which blocks
 * are written: blocks with no name, blocks never closed (a cut-off
 * answer) and blocks whose name a later block reuses are not; they are
 * listed under "skipped" in the --result record and noted on stderr.
 * An answer extracted that names no file at all is not a silent success:
 * a files.none event (WARN); and when the step has files: required, the
 * step fails: a message on stderr, the line {"failed":{"kind":"no_files",
 * "message":...}} on stdout (the kind convention of orch-sched(1)), exit 1.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "orch.h"
#include "write/write.h"

static const char usage[] =
	"usage: orch-write [--run DIR] [--outputs DIR] [--mode MODE] [--result] [--step S] < records\n"
	"       orch-write --extract [--run DIR] [--outputs DIR] [--mode MODE] [--result] [--step S] < response\n"
	"       orch-write --no-files --result [--step S] < response\n"
	"       orch-write --input FILE [--extract | --no-files] --result [--step S] < response\n"
	"       orch-write --inputs FILE [--extract | --no-files] < responses\n"
	"MODE: create_new, overwrite (default), append.\n"
	"--input FILE: the step input record; its spec.files says whether to extract.\n";

static const char *mode_names[] = {"create_new", "overwrite", "append"};

struct opts {
	int answer;        /* stdin is an answer (a response or markdown), not records */
	int files;         /* write the answer's files: 1, 0, or -1 (as the --input says) */
	int required;      /* --input's spec.files is "required": no file fails */
	int result;        /* --result: print the step result */
	int mode;          /* --mode: of records that name none */
	const char *step, *outputs, *input;
	const char *inputs;  /* --inputs FILE: answers a line, their records in FILE */
};

struct batch {
	struct rec *r;
	size_t n, cap;
	long seen;         /* records read */
	int bad;           /* an invalid record was reported */
	int dflt_mode;
	jv skipped;        /* blocks of an answer not written */
};

/* ---- write records ---- */

static int mode_parse(const char *s)
{
	for (int i = 0; i < 3; i++)
		if (strcmp(s, mode_names[i]) == 0)
			return i;
	return -1;
}

/* Add a record (path and content consumed); a refused path is reported
 * and marks the batch bad. */
static void add(struct batch *b, jv path, jv content, int mode, const char *where)
{
	struct rec r = {.content = content, .mode = mode};
	enum refusal why = path_split(jv_string_value(path), (size_t)jv_string_length_bytes(jv_copy(path)), &r);
	if (why) {
		jv shown = jv_dump_string(path, 0);  /* quoted and escaped: safe to print */
		orch_err("%s: %s: refused: %s", where, jv_string_value(shown), refusal_text[why]);
		jv_free(shown);
		rec_free(&r);
		b->bad = 1;
		return;
	}
	jv_free(path);
	if (b->n == b->cap)
		b->r = orch_xrealloc(b->r, (b->cap = b->cap ? 2 * b->cap : 16) * sizeof *b->r);
	b->r[b->n++] = r;
}

static int take_record(jv v, void *ctx)
{
	struct batch *b = ctx;
	char where[64];
	snprintf(where, sizeof where, "<stdin>: record %ld", ++b->seen);
	if (jv_get_kind(v) != JV_KIND_OBJECT) {
		orch_err("%s: not a write record (an object)", where);
		jv_free(v);
		b->bad = 1;
		return 0;
	}
	jv path = jv_object_get(jv_copy(v), jv_string("path"));
	jv content = jv_object_get(jv_copy(v), jv_string("content"));
	jv m = jv_object_get(v, jv_string("mode"));
	int mode = jv_get_kind(m) == JV_KIND_STRING ? mode_parse(jv_string_value(m))
		: jv_is_valid(m) ? -1 : b->dflt_mode;
	jv_free(m);
	const char *bad = jv_get_kind(path) != JV_KIND_STRING ? "\"path\" must be a string"
		: jv_get_kind(content) != JV_KIND_STRING ? "\"content\" must be a string"
		: mode < 0 ? "\"mode\" must be create_new, overwrite or append" : NULL;
	if (bad) {
		orch_err("%s: %s", where, bad);
		jv_free(path);
		jv_free(content);
		b->bad = 1;
		return 0;
	}
	add(b, path, content, mode, where);
	return 0;
}

/* ---- an answer's files: which fenced blocks are written ---- */

struct block {
	char *name;        /* NULL: unnamed */
	jv content, info;
	long line;
	int closed, superseded;
};
struct blocks { struct block *v; size_t n, cap; };

static int keep_block(const struct fence_block *f, void *ctx)
{
	struct blocks *bs = ctx;
	if (bs->n == bs->cap)
		bs->v = orch_xrealloc(bs->v, (bs->cap = bs->cap ? 2 * bs->cap : 16) * sizeof *bs->v);
	bs->v[bs->n++] = (struct block){
		.name = f->name ? orch_xstrdup(f->name) : NULL,
		.content = jv_string_sized(f->content, (int)f->len),
		.info = jv_string_sized(f->info, (int)f->info_len),
		.line = f->line, .closed = f->closed,
	};
	return 0;
}

/* Mark the closed blocks whose name a later closed block reuses. */
static void mark_superseded(struct blocks *bs)
{
	orch_map *later = orch_map_new(bs->n);
	for (size_t i = bs->n; i-- > 0; )
		if (bs->v[i].closed && bs->v[i].name)
			bs->v[i].superseded = orch_map_put(later, bs->v[i].name, (long)i);
	orch_map_free(later);
}

static void skip(struct batch *b, struct block *k, const char *reason)
{
	jv s = jv_object();
	s = jv_object_set(s, jv_string("line"), jv_number((double)k->line));
	s = jv_object_set(s, jv_string("info"), jv_copy(k->info));
	if (k->name)
		s = jv_object_set(s, jv_string("path"), jv_string(k->name));
	s = jv_object_set(s, jv_string("reason"), jv_string(reason));
	b->skipped = jv_array_append(b->skipped, s);
	if (strcmp(reason, "unnamed") == 0)
		orch_err("<stdin>:%ld: code block names no file; not written", k->line);
	else if (strcmp(reason, "unclosed") == 0)
		orch_err("<stdin>:%ld: code block never closed; not written", k->line);
}

/* The records of the blocks of text that are written; the rest skipped.
 * Returns how many fenced blocks the text has. */
static size_t extract(struct batch *b, jv text)
{
	struct blocks bs = {0};
	fence_scan(jv_string_value(text), (size_t)jv_string_length_bytes(jv_copy(text)), keep_block, &bs);
	mark_superseded(&bs);
	for (size_t i = 0; i < bs.n; i++) {
		struct block *k = &bs.v[i];
		const char *reason = !k->closed ? "unclosed" : !k->name ? "unnamed"
			: k->superseded ? "superseded" : NULL;
		if (reason)
			skip(b, k, reason);
		else {
			char where[64];
			snprintf(where, sizeof where, "<stdin>:%ld: code block", k->line);
			add(b, jv_string(k->name), jv_copy(k->content), b->dflt_mode, where);
		}
		free(k->name);
		jv_free(k->content);
		jv_free(k->info);
	}
	free(bs.v);
	return bs.n;
}

/* An answer extracted named no file (of its blocks code blocks): the
 * files.none warning; with files: required, the failure too. The exit
 * code. */
static int no_files(const struct opts *o, size_t blocks)
{
	jv data = jv_object_set(jv_object(), jv_string("blocks"), jv_number((double)blocks));
	data = jv_object_set(data, jv_string("required"), jv_bool(o->required));
	orch_emit(orch_run_dir(), "WARN", "files.none", NULL, data);
	if (!o->required)
		return EX_OK;
	char *msg = orch_fmt("the answer names no file, and the step has files: required "
	                     "(%zu code block%s, none named a file)", blocks, blocks == 1 ? "" : "s");
	orch_err("%s", msg);
	jv why = jv_object_set(jv_object(), jv_string("kind"), jv_string("no_files"));
	why = jv_object_set(why, jv_string("message"), jv_string(msg));
	free(msg);
	jv line = jv_object();
	if (o->inputs)  /* --inputs: the line names its step and the exit status */
		line = jv_object_set(line, jv_string("step"), jv_string(o->step));
	line = jv_object_set(line, jv_string("failed"), why);
	if (o->inputs)
		line = jv_object_set(line, jv_string("exit_code"), jv_number(EX_TEMP));
	orch_put(line);
	return EX_TEMP;  /* a model may do better next time: worth a retry */
}

/* ---- input ---- */

/* An answer on stdin: a response's content (the response in *resp), or
 * plain markdown. */
static jv read_answer(jv *resp)
{
	size_t len;
	char *in = orch_slurp_fp(stdin, &len);
	if (!in)
		orch_die_sys(EX_FAIL, "reading stdin");
	const char *p = in;
	while (p < in + len && strchr(" \t\r\n", *p))
		p++;
	jv v = p < in + len && *p == '{' ? jv_parse_sized(in, (int)len) : jv_invalid();
	jv output;
	if (jv_get_kind(v) == JV_KIND_OBJECT) {
		output = jv_object_get(jv_copy(v), jv_string("content"));
		if (jv_get_kind(output) != JV_KIND_STRING)
			orch_die(EX_USAGE, "<stdin>: a response needs a \"content\" string");
		*resp = v;
	} else {
		jv_free(v);  /* not JSON: plain markdown */
		output = jv_string_sized(in, (int)len);
	}
	free(in);
	return output;
}

/* Whether the answer's files are written, as the step input record in
 * says (unless --extract or --no-files did). */
static void files_of(struct opts *o, jv in)
{
	jv spec = orch_jget(in, "spec");
	const char *files = orch_jstr(spec, "files");
	int required = files && strcmp(files, "required") == 0;
	if (o->files < 0)
		o->files = required || orch_jbool(spec, "files", 0);
	o->required = required && o->files;
	jv_free(spec);
}

/* --input FILE: the step input record (CONTRACT §5) of the step that gave
 * the answer. Its spec.files says whether to write the answer's files
 * (unless --extract or --no-files did); its step names the result's step
 * when neither --step nor $ORCH_STEP does. Returns the record. */
static jv read_step_input(struct opts *o)
{
	FILE *f = fopen(o->input, "r");
	if (!f)
		orch_die_sys(EX_USAGE, "cannot read %s", o->input);
	jv in = orch_read_one(f, o->input);
	fclose(f);
	if (jv_get_kind(in) != JV_KIND_OBJECT) {
		if (jv_is_valid(in))
			orch_err("%s: not a step input record (an object)", o->input);
		jv_free(in);
		orch_exit(EX_USAGE);
	}
	files_of(o, in);
	if (!o->step) {
		o->step = orch_jstr(in, "step");  /* valid while the record lives */
		if (o->step)  /* and its events' step (orch step --batch sets no ORCH_STEP) */
			setenv("ORCH_STEP", o->step, 1);
	}
	return in;
}

/* ---- output ---- */

static int open_outputs(const char *opt)
{
	char *dir;
	int fl = O_RDONLY | O_DIRECTORY | O_CLOEXEC;
	if (opt)
		dir = orch_xstrdup(opt);
	else if (orch_run_dir()) {
		dir = orch_path(orch_run_dir(), "outputs");
		fl |= O_NOFOLLOW;  /* RUN/outputs itself may not be a planted symlink */
	} else
		orch_die(EX_USAGE, "no outputs folder: give --outputs DIR, --run DIR or ORCH_RUN_DIR");
	int fd = open(dir, fl);
	if (fd < 0 && errno == ENOENT && (opt ? orch_mkdir_p(dir, 0755) : mkdir(dir, 0755)) == 0)
		fd = open(dir, fl);
	if (fd < 0)
		orch_die_sys(errno == ELOOP || errno == ENOTDIR ? EX_USAGE : EX_FAIL,
		             "cannot open outputs folder %s", dir);
	free(dir);
	return fd;
}

/* Report what went wrong with r, if anything: its exit code, else 0. */
static int report(const struct rec *r, struct outcome *o)
{
	if (o->refused) {
		orch_err("%s: refused: %s", r->path, refusal_text[o->refused]);
		return EX_USAGE;
	}
	if (o->failed) {
		orch_err("%s", o->failed);
		free(o->failed);
		return EX_FAIL;
	}
	return EX_OK;
}

/* Before any write: the worst exit code of the records' checks. */
static int check_batch(struct batch *b, int outfd)
{
	int rc = EX_OK;
	for (size_t i = 0; i < b->n; i++) {
		struct outcome o = precheck(outfd, &b->r[i]);
		int r = report(&b->r[i], &o);
		rc = r > rc ? r : rc;
	}
	return rc;
}

/* Check every record, then write them all: the write results into *files
 * (and to stdout unless quiet), a file.written event each. The exit code:
 * the worst of them. */
static int write_batch(struct batch *b, const char *outputs, int quiet, jv *files)
{
	int outfd = b->n ? open_outputs(outputs) : -1;
	int rc = check_batch(b, outfd), go = rc == EX_OK;  /* else nothing is written */
	for (size_t i = 0; go && i < b->n; i++) {
		struct outcome o = write_rec(outfd, &b->r[i]);
		int r = report(&b->r[i], &o);
		if (r) {
			rc = r > rc ? r : rc;
			continue;
		}
		orch_emit(orch_run_dir(), "INFO", "file.written", NULL, jv_copy(o.result));
		if (!quiet && orch_put(jv_copy(o.result)) < 0)
			rc = EX_FAIL;
		*files = jv_array_append(*files, o.result);
	}
	if (outfd >= 0)
		close(outfd);
	return rc;
}

/* The step result: {"step","output","files"} and the response's "cache",
 * "usage" and "json" (a structured answer), "skipped" when blocks were
 * not written. All consumed. */
static int print_result(const char *step, jv output, jv files, jv resp, jv skipped)
{
	jv r = jv_object();
	r = jv_object_set(r, jv_string("step"), step ? jv_string(step) : jv_null());
	r = jv_object_set(r, jv_string("output"), output);
	r = jv_object_set(r, jv_string("files"), files);
	static const char *const copied[] = {"cache", "usage", "json"};
	for (size_t i = 0; i < sizeof copied / sizeof *copied; i++) {
		jv v = jv_get_kind(resp) == JV_KIND_OBJECT ?
			jv_object_get(jv_copy(resp), jv_string(copied[i])) : jv_invalid();
		if (jv_is_valid(v))
			r = jv_object_set(r, jv_string(copied[i]), v);
		else
			jv_free(v);
	}
	jv_free(resp);
	if (jv_array_length(jv_copy(skipped)) > 0)
		r = jv_object_set(r, jv_string("skipped"), skipped);
	else
		jv_free(skipped);
	return orch_put(r) < 0 ? EX_FAIL : EX_OK;
}


/* ---- --inputs FILE: a stream of answers (orch step --batch) ---- */

/* A line for an answer that could not be written: its step, the exit
 * status orch-write --input would have had, why. */
static void stream_failed(const char *step, int code, const char *msg)
{
	jv why = jv_object_set(jv_object(), jv_string("message"), jv_string(msg));
	jv line = jv_object_set(jv_object(), jv_string("step"), step ? jv_string(step) : jv_null());
	line = jv_object_set(line, jv_string("failed"), why);
	orch_put(jv_object_set(line, jv_string("exit_code"), jv_number(code)));
}

/* The step input records of --inputs FILE, by step: FILE grows as the
 * worker hands records on (each before its answer can come), so what is
 * new in it is read when an answer's record is not known yet. */
static struct { FILE *f; jv byname; } recs;

static void read_new_records(const char *path)
{
	if (!recs.f && !(recs.f = fopen(path, "r"))) {
		orch_err_sys("cannot read %s", path);
		return;
	}
	clearerr(recs.f);  /* past its end before: it may have grown */
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	while ((n = getline(&line, &cap, recs.f)) > 0) {
		if (line[n - 1] != '\n') {  /* half written: again next time */
			fseeko(recs.f, -(off_t)n, SEEK_CUR);
			break;
		}
		jv r = jv_parse_sized(line, (int)n);
		const char *step = jv_get_kind(r) == JV_KIND_OBJECT ? orch_jstr(r, "step") : NULL;
		if (step)
			recs.byname = jv_object_set(recs.byname, jv_string(step), r);
		else
			jv_free(r);
	}
	free(line);
}

/* The step input record of step (taken: a retry hands a new one), or
 * invalid. */
static jv stream_record(const char *path, const char *step)
{
	if (!jv_is_valid(recs.byname))
		recs.byname = jv_object();
	if (!jv_object_has(jv_copy(recs.byname), jv_string(step)))
		read_new_records(path);
	jv in = jv_object_get(jv_copy(recs.byname), jv_string(step));
	if (jv_is_valid(in))
		recs.byname = jv_object_delete(recs.byname, jv_string(step));
	return in;
}

/* One answer (a response whose "step" names it), written and its result
 * printed as orch-write --input RECORD --result would; a failure as
 * one line. The response is consumed; 0 always (the stream goes on). */
static int stream_answer(jv resp, void *ctx)
{
	struct opts o = *(const struct opts *)ctx;
	if (jv_get_kind(resp) == JV_KIND_OBJECT && jv_object_has(jv_copy(resp), jv_string("failed")))
		return orch_put(resp) < 0 ? EX_FAIL : 0;  /* failed before: passed on */
	const char *step = jv_get_kind(resp) == JV_KIND_OBJECT ? orch_jstr(resp, "step") : NULL;
	jv in = step ? stream_record(o.inputs, step) : jv_invalid();
	jv output = jv_is_valid(in) ? orch_jget(resp, "content") : jv_invalid();
	if (jv_get_kind(output) != JV_KIND_STRING) {
		orch_err("<stdin>: %s", !step ? "an answer with no \"step\"" : !jv_is_valid(in)
		         ? "no step input record for its step" : "a response needs a \"content\" string");
		stream_failed(step, EX_USAGE, "orch-write: no answer or no step input record");
		jv_free(output);
		jv_free(in);
		jv_free(resp);
		return 0;
	}
	o.step = step;
	setenv("ORCH_STEP", step, 1);  /* its events' step */
	files_of(&o, in);
	struct batch b = {.dflt_mode = o.mode, .skipped = jv_array()};
	jv files = jv_array();
	size_t blocks = o.files ? extract(&b, output) : 0;
	int rc = o.files && b.n == 0 && !b.bad ? no_files(&o, blocks) : b.bad ? EX_USAGE : EX_OK;
	if (rc == EX_OK)
		rc = write_batch(&b, o.outputs, 1, &files);
	if (rc == EX_OK)
		print_result(step, output, files, jv_copy(resp), b.skipped);
	else {
		if (rc != EX_TEMP || !o.required)  /* no_files said it */
			stream_failed(step, rc, "orch-write: the answer's files were not written");
		jv_free(output);
		jv_free(files);
		jv_free(b.skipped);
	}
	for (size_t i = 0; i < b.n; i++)
		rec_free(&b.r[i]);
	free(b.r);
	jv_free(in);
	jv_free(resp);
	return 0;
}

static struct opts parse_options(int argc, char **argv)
{
	static const struct option lo[] = {
		{"extract", no_argument, 0, 'x'},
		{"no-files", no_argument, 0, 'N'},
		{"input", required_argument, 0, 'i'},
		{"inputs", required_argument, 0, 'I'},
		{"result", no_argument, 0, 'R'},
		{"step", required_argument, 0, 's'},
		{"mode", required_argument, 0, 'm'},
		{"outputs", required_argument, 0, 'o'},
		ORCH_COMMON_LONGOPTS,
		{0, 0, 0, 0},
	};
	struct opts o = {.files = -1, .mode = M_OVERWRITE, .step = getenv("ORCH_STEP")};
	int c;
	while ((c = getopt_long(argc, argv, "xRs:m:o:h", lo, NULL)) != -1)
		switch (c) {
		case 'x': o.answer = 1; o.files = o.files != 0; break;  /* --no-files wins */
		case 'N': o.answer = 1; o.files = 0; break;
		case 'i': o.answer = 1; o.input = optarg; break;
		case 'I': o.answer = 1; o.inputs = optarg; break;
		case 'R': o.result = 1; break;
		case 's': o.step = optarg; break;
		case 'o': o.outputs = optarg; break;
		case 'm':
			if ((o.mode = mode_parse(optarg)) < 0)
				orch_die(EX_USAGE, "bad --mode %s (create_new, overwrite or append)", optarg);
			break;
		default:
			if (!orch_common(c, optarg, usage))
				orch_usage(usage);
		}
	if (optind != argc)
		orch_usage(usage);
	return o;
}

int main(int argc, char **argv)
{
	orch_init(argc, argv);
	struct opts o = parse_options(argc, argv);
	if (o.inputs) {  /* a stream of answers: each its own step's result */
		recs.byname = jv_invalid();
		int rc = orch_records(stdin, "<stdin>", stream_answer, &o);
		jv_free(recs.byname);
		if (recs.f)
			fclose(recs.f);
		orch_exit(rc);
	}
	struct batch b = {.dflt_mode = o.mode, .skipped = jv_array()};
	jv input = o.input ? read_step_input(&o) : jv_null();
	jv output = jv_null(), resp = jv_null(), files = jv_array();
	int rc = EX_OK;
	if (o.answer) {
		output = read_answer(&resp);
		size_t blocks = o.files ? extract(&b, output) : 0;
		if (o.files && b.n == 0 && !b.bad)
			rc = no_files(&o, blocks);
	} else
		rc = orch_records(stdin, "<stdin>", take_record, &b);
	if (rc == EX_OK && b.bad)
		rc = EX_USAGE;
	if (rc == EX_OK)
		rc = write_batch(&b, o.outputs, o.result, &files);
	if (o.result && rc == EX_OK)
		rc = print_result(o.step, output, files, resp, b.skipped);
	else {
		jv_free(output);
		jv_free(files);
		jv_free(resp);
		jv_free(b.skipped);
	}
	jv_free(input);
	for (size_t i = 0; i < b.n; i++)
		rec_free(&b.r[i]);
	free(b.r);
	orch_exit(rc);
}
