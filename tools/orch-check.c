/* orch-check: validate ND-JSON records against a JSON Schema.
 *
 *   orch-check --schema FILE [--quiet | --json] [JSON-FILE...]
 *
 * Reads every JSON value of the files (or stdin) through orch_loop and
 * checks it with lib/schema.c, compiled once. Each error is one line on
 * stdout, "FILE:RECORD: POINTER: message" (RECORD counts from 1 in each
 * file, "-" names stdin, POINTER is the JSON Pointer of the failing value,
 * "(root)" for the record itself), or with --json one record
 * {"file","record","path","keyword","message"}. The errors are the
 * output, as grep's matches are; stderr is for the tool's own troubles.
 * Exit 0 every record valid, 1 one or more invalid, 2 bad usage, a schema
 * that is invalid or uses an unknown keyword, an input that is not JSON or
 * cannot be opened (as grep, an error outranks a finding).
 */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include "orch.h"

static const char usage[] =
	"usage: orch-check --schema FILE [--quiet | --json] [JSON-FILE...]\n"
	"  Validate each JSON value of the files (or stdin) against the JSON Schema\n"
	"  in FILE; print one line per error: FILE:RECORD: POINTER: message.\n"
	"  -q, --quiet   print nothing: the exit status says (0 valid, 1 invalid)\n"
	"  --json        each error as {\"file\",\"record\",\"path\",\"keyword\",\"message\"}\n";

struct check {
	orch_schema *schema;
	int quiet, json;
	long invalid;  /* records with an error */
};

/* The schema in path, compiled; exits 2 if unreadable or invalid. */
static orch_schema *load_schema(const char *path)
{
	FILE *f = strcmp(path, "-") ? fopen(path, "r") : stdin;
	if (!f)
		orch_die_sys(EX_USAGE, "cannot open %s", path);
	jv v = orch_read_one(f, path);
	if (f != stdin)
		fclose(f);
	if (!jv_is_valid(v)) {
		jv_free(v);
		exit(EX_USAGE);  /* orch_read_one said why */
	}
	char *err = NULL;
	orch_schema *s = orch_schema_new(v, &err);
	if (!s) {
		orch_err("%s: %s", path, err);
		free(err);
		exit(EX_USAGE);
	}
	return s;
}

static void print_error(const struct check *c, const char *file, long rec, jv err)
{
	if (c->json) {
		jv line = jv_object_set(jv_object(), jv_string("file"), jv_string(file));
		line = jv_object_set(line, jv_string("record"), jv_number(rec));
		jv_object_foreach(err, k, v)
			line = jv_object_set(line, k, v);
		orch_put(line);
	} else {
		const char *path = orch_jstr(err, "path");
		printf("%s:%ld: %s: %s\n", file, rec, *path ? path : "(root)",
		       orch_jstr(err, "message"));
	}
	jv_free(err);
}

static int check_record(jv rec, void *ctx)
{
	struct check *c = ctx;
	jv errs = jv_array();
	int bad = orch_schema_check(c->schema, rec, c->quiet ? NULL : &errs);
	jv_free(rec);
	if (bad) {
		c->invalid++;
		long n;
		const char *file = orch_loop_at(&n);
		jv_array_foreach(errs, i, e)
			print_error(c, file, n, e);
	}
	jv_free(errs);
	return bad && c->quiet ? EX_FAIL : 0;  /* --quiet: one invalid record tells */
}

static const char *parse_options(int argc, char **argv, struct check *c)
{
	static const struct option lo[] = {
		{"schema", required_argument, 0, 's'},
		{"quiet", no_argument, 0, 'q'},
		{"json", no_argument, 0, 'j'},
		ORCH_COMMON_LONGOPTS,
		{0, 0, 0, 0},
	};
	const char *schema = NULL;
	int o;
	while ((o = getopt_long(argc, argv, "s:qh", lo, NULL)) != -1)
		switch (o) {
		case 's': schema = optarg; break;
		case 'q': c->quiet = 1; break;
		case 'j': c->json = 1; break;
		default:
			if (!orch_common(o, optarg, usage))
				orch_usage(usage);
		}
	if (!schema)
		orch_die(EX_USAGE, "no schema: give --schema FILE");
	if (c->quiet && c->json)
		orch_die(EX_USAGE, "--quiet and --json exclude each other");
	return schema;
}

int main(int argc, char **argv)
{
	orch_init(argc, argv);
	struct check c = {0};
	const char *schema = parse_options(argc, argv, &c);
	c.schema = load_schema(schema);
	int rc = orch_loop(argv + optind, argc - optind, check_record, &c);
	orch_schema_free(c.schema);
	if (c.quiet && c.invalid)
		orch_exit(EX_FAIL);  /* stopped at the first invalid record */
	if (rc)
		orch_exit(EX_USAGE);  /* not JSON, or a file that cannot be opened */
	orch_exit(c.invalid ? EX_FAIL : EX_OK);
}
