/* resume.c: fingerprints, and what the run's events say of each step.
 *
 * A step's fingerprint is the sha256 of its spec_hash and of the
 * artifacts of the steps it needs (their bytes, in its needs' order). The
 * spec_hash is the sha256 of what the step is asked to do: its resolved
 * spec (provider and options included) less the keys that only schedule
 * it (priority, pool, retries, timeout_s), its command, the job's task and
 * inputs (what its templates can read) and the code version
 * ($ORCH_CODE_VERSION, else orch's). Both go into step.succeeded.
 * --resume skips a step, once its needs are done, only when its last
 * step.succeeded carried the fingerprint it has now and its artifact is
 * readable: so a step rerun to the same artifact lets its dependants be
 * skipped (as ninja's restat), and a changed artifact reruns what needs
 * it. An event with no fingerprint (an older orch) never matches.
 * The events are read once, before this run's job.started, and folded as
 * orch_events_steps() (lib/event.c) has it, but into a few bytes per step
 * of the plan (struct prior), not an object per step: 100,000 instances
 * cost 15 MB, not 90. Steps the events name that are not in the plan
 * are kept apart, by name: their open attempts matter to orphan.c, and
 * the instances of a dynamic fan-out (expand.c), added to the plan later,
 * are looked up there.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>
#include "orch.h"
#include "sched.h"

/* What the events said of a step of the plan: nothing unless seq > fresh. */
struct prior {
	long seq;               /* its first event since the run began afresh */
	jv open;                /* a step.started's data no end followed, or invalid */
	unsigned char done;     /* a step.succeeded */
	unsigned char fp_is, sh_is;  /* of the last: 0 no string, 1 the text below, 2 another */
	char fp[65], sh[65];
};

static struct prior *prior;  /* per plan step; NULL until a step event */
static int nprior;           /* plan.n, when prior was made */
static jv others;            /* steps not in the plan: name ->
                                [seq, open data or null, done, fingerprint, spec_hash] */
static long seq, fresh;      /* events counted; the count at the last fresh start */

/* A string v (borrowed) as fp_is has it, its text in out. */
static unsigned char hex_of(jv v, char out[65])
{
	const char *t = jv_get_kind(v) == JV_KIND_STRING ? jv_string_value(v) : NULL;
	*out = 0;
	if (!t)
		return 0;
	if (strlen(t) != 64)
		return 2;
	memcpy(out, t, 65);
	return 1;
}

/* A string field of data as fp_is has it, its text in out. */
static unsigned char hex_field(jv data, const char *key, char out[65])
{
	const char *v = orch_jstr(data, key);
	*out = 0;
	if (!v)
		return 0;
	if (strlen(v) != 64)
		return 2;
	memcpy(out, v, 65);
	return 1;
}

static void fold_prior(struct prior *p, const char *type, jv data)
{
	if (p->seq <= fresh) {  /* nothing since the fresh start */
		jv_free(p->open);
		memset(p, 0, sizeof *p);
		p->open = jv_invalid();
		p->seq = ++seq;
	}
	if (strcmp(type, "step.succeeded") == 0) {
		p->done = 1;
		p->fp_is = hex_field(data, "fingerprint", p->fp);
		p->sh_is = hex_field(data, "spec_hash", p->sh);
	}
	if (strcmp(type, "step.started") == 0 || strcmp(type, "step.succeeded") == 0 ||
	    strcmp(type, "step.failed") == 0) {
		jv_free(p->open);
		p->open = strcmp(type, "step.started") == 0 ? jv_copy(data) : jv_invalid();
	}
}

static void fold_other(const char *step, const char *type, jv data)
{
	jv o = jv_object_get(jv_copy(others), jv_string(step));
	if (jv_get_kind(o) != JV_KIND_ARRAY) {
		jv_free(o);
		o = JV_ARRAY(jv_number(++seq), jv_null(), jv_false(), jv_null(), jv_null());
	}
	others = jv_object_set(others, jv_string(step), jv_null());  /* o unshared */
	if (strcmp(type, "step.started") == 0)
		o = jv_array_set(o, 1, jv_copy(data));
	else if (strcmp(type, "step.succeeded") == 0 || strcmp(type, "step.failed") == 0)
		o = jv_array_set(o, 1, jv_null());
	if (strcmp(type, "step.succeeded") == 0) {
		o = jv_array_set(o, 2, jv_true());
		o = jv_array_set(o, 3, orch_jget(data, "fingerprint"));
		o = jv_array_set(o, 4, orch_jget(data, "spec_hash"));
	}
	others = jv_object_set(others, jv_string(step), o);
}

static int fold_event(jv e)
{
	const char *type = orch_jstr(e, "type"), *step = orch_jstr(e, "step");
	jv data = orch_jget(e, "data");
	if (jv_get_kind(data) != JV_KIND_OBJECT)
		data = (jv_free(data), jv_object());
	if (type && strcmp(type, "job.started") == 0 && !orch_jbool(data, "resume", 0)) {
		fresh = seq;  /* a fresh run starts again */
		jv_free(others);
		others = jv_object();
	} else if (type && step && strncmp(type, "step.", 5) == 0) {
		long i = orch_map_get(plan.byname, step);
		if (i >= 0 && !prior && !(prior = calloc((size_t)(nprior = plan.n) + 1, sizeof *prior)))
			orch_die(EX_FAIL, "out of memory");  /* zero bytes: seq 0, open jv_invalid() */
		if (i >= 0)
			fold_prior(&prior[i], type, data);
		else
			fold_other(step, type, data);
	}
	jv_free(data);
	jv_free(e);
	return 0;
}

/* One line of the events: a torn or invalid one is reported and skipped
 * (as lib/event.c reads them). */
static int event_line(char *line, size_t n, long lineno, void *ctx)
{
	if (n == 0)
		return 0;
	jv e = orch_parse_line(line, n);
	if (jv_get_kind(e) == JV_KIND_OBJECT)
		return fold_event(e);
	orch_err_at(ctx, lineno, 0, "not an event, skipped");
	jv_free(e);
	return 0;
}

void resume_read(void)
{
	char *ev = orch_path(run.dir, "events.jsonl");
	FILE *f = fopen(ev, "r");
	others = jv_object();
	if (f) {
		orch_lines(f, event_line, ev);
		fclose(f);
	}
	free(ev);
}

/* What the events said of a step added to the plan after they were read
 * (a dynamic fan-out's instance), from others; NULL: nothing. Valid until
 * the next call. */
static const struct prior *late_prior(const struct step *s)
{
	static struct prior late;
	static int made;
	if (!made)
		late.open = jv_invalid(), made = 1;
	jv o = jv_is_valid(others) ? jv_object_get(jv_copy(others), jv_string(s->name)) : jv_invalid();
	if (jv_get_kind(o) != JV_KIND_ARRAY) {
		jv_free(o);
		return NULL;
	}
	jv_free(late.open);
	jv open = jv_array_get(jv_copy(o), 1), fp = jv_array_get(jv_copy(o), 3),
	   sh = jv_array_get(jv_copy(o), 4);
	late.seq = (long)jv_number_value(jv_array_get(jv_copy(o), 0));
	late.open = jv_get_kind(open) == JV_KIND_OBJECT ? open : (jv_free(open), jv_invalid());
	late.done = jv_get_kind(jv_array_get(jv_copy(o), 2)) == JV_KIND_TRUE;
	late.fp_is = hex_of(fp, late.fp);
	late.sh_is = hex_of(sh, late.sh);
	jv_free(fp);
	jv_free(sh);
	jv_free(o);
	return &late;
}

/* What the events said of step s, or NULL: nothing. */
static const struct prior *prior_of(const struct step *s)
{
	if (s - plan.step >= nprior)  /* none was when the events were read */
		return late_prior(s);
	const struct prior *p = prior ? &prior[s - plan.step] : NULL;
	return p && p->seq > fresh ? p : NULL;
}

static const char *code_version(void)
{
	const char *v = getenv("ORCH_CODE_VERSION");
	return v && *v ? v : ORCH_VERSION;
}

/* h, updated with text then the bytes of the string str (consumed). */
static void hash_text(crypto_hash_sha256_state *h, const char *text, jv str)
{
	crypto_hash_sha256_update(h, (const unsigned char *)text, strlen(text));
	crypto_hash_sha256_update(h, (const unsigned char *)jv_string_value(str),
	                          (unsigned long long)jv_string_length_bytes(jv_copy(str)));
	jv_free(str);
}

/* h, updated with text then v (consumed) as jv_dump_string(v,
 * JV_PRINT_SORTED) writes it. */
static void hash_dump(crypto_hash_sha256_state *h, const char *text, jv v)
{
	hash_text(h, text, jv_dump_string(v, JV_PRINT_SORTED));
}

/* spec_hash: the sha256 of the canonical JSON (sorted keys, compact) of
 * {code_version, command, inputs, item (an instance's), spec (less its
 * scheduling and fan-out keys), step, task}. It is hashed a member at a
 * time, in that (sorted) order, so the members an instance shares with
 * the rest of its fan-out (the one spec jv, group_spec_shared) are
 * dumped once for them all, not once each. */
static void spec_hash(struct step *s)
{
	static const char *scheduling[] = {"priority", "pool", "retries", "timeout_s"};
	static struct { jv spec; char *cmd; crypto_hash_sha256_state head; jv spec_text; } last;
	if (!last.cmd || !jv_identical(jv_copy(last.spec), jv_copy(s->spec)) ||
	    strcmp(last.cmd, s->cmd) != 0 || jv_is_valid(s->item) != jv_is_valid(last.spec_text)) {
		jv_free(last.spec);
		jv_free(last.spec_text);
		free(last.cmd);
		last.spec = jv_copy(s->spec);
		last.cmd = orch_xstrdup(s->cmd);
		crypto_hash_sha256_init(&last.head);
		hash_dump(&last.head, "{\"code_version\":", jv_string(code_version()));
		hash_dump(&last.head, ",\"command\":", jv_string(s->cmd));
		hash_dump(&last.head, ",\"inputs\":", orch_jget(plan.job, "inputs"));
		jv spec = jv_copy(s->spec);
		for (size_t k = 0; k < sizeof scheduling / sizeof *scheduling; k++)
			spec = jv_object_delete(spec, jv_string(scheduling[k]));
		/* an instance's item comes between inputs and spec */
		if (jv_is_valid(s->item))
			last.spec_text = jv_dump_string(group_spec(s, spec), JV_PRINT_SORTED);
		else {
			hash_dump(&last.head, ",\"spec\":", group_spec(s, spec));
			last.spec_text = jv_invalid();
		}
	}
	crypto_hash_sha256_state h = last.head;
	if (jv_is_valid(s->item)) {  /* a fan-out instance: its item, as loaded */
		hash_dump(&h, ",\"item\":", jv_copy(s->item));
		hash_text(&h, ",\"spec\":", jv_copy(last.spec_text));
	}
	hash_dump(&h, ",\"step\":", jv_string(s->name));
	hash_dump(&h, ",\"task\":", orch_jget(plan.job, "task"));
	crypto_hash_sha256_update(&h, (const unsigned char *)"}", 1);
	unsigned char d[crypto_hash_sha256_BYTES];
	crypto_hash_sha256_final(&h, d);
	sodium_bin2hex(s->spec_hash, sizeof s->spec_hash, d, sizeof d);
}

void fingerprint(struct step *s)
{
	crypto_hash_sha256_state st;
	unsigned char h[crypto_hash_sha256_BYTES];
	group_load_item(s);  /* a fan-out instance's item is part of what it is asked */
	spec_hash(s);
	crypto_hash_sha256_init(&st);
	crypto_hash_sha256_update(&st, (const unsigned char *)s->spec_hash, 64);
	for (size_t k = 0; k < s->ndep; k++) {
		const struct step *d = &plan.step[s->dep[k]];
		char *line = orch_fmt("\n%s %s", d->name, *d->art ? d->art : "-");
		crypto_hash_sha256_update(&st, (const unsigned char *)line, strlen(line));
		free(line);
	}
	crypto_hash_sha256_final(&st, h);
	sodium_bin2hex(s->fp, sizeof s->fp, h, sizeof h);
}

/* The stored result of a step that succeeded before, and its sha256 in
 * art; invalid if it cannot be read or is no object. */
static jv stored_result(const char *name, char art[65])
{
	char *path = orch_fmt("%s/artifacts/%s.json", run.dir, name);
	size_t n;
	char *text = orch_slurp(path, &n);
	free(path);
	jv r = text ? jv_parse_sized(text, (int)n) : jv_invalid();
	if (text)
		orch_sha256_hex(text, n, art);
	free(text);
	if (jv_get_kind(r) != JV_KIND_OBJECT) {
		jv_free(r);
		return jv_invalid();
	}
	return r;
}

/* Is s still done (its art then set, and its result if a dependant will
 * take it)? If not, why not. */
int why_not_done(struct step *s, const char **why)
{
	const struct prior *p = prior_of(s);
	if (!p || (!p->done && !jv_is_valid(p->open)))
		*why = "new";
	else if (!p->done)
		*why = "not done before";
	else if (!p->fp_is)
		*why = "no fingerprint: done by an older orch";
	else if (p->sh_is != 1 || strcmp(p->sh, s->spec_hash) != 0)
		*why = "spec changed";
	else if (p->fp_is != 1 || strcmp(p->fp, s->fp) != 0)
		*why = "what its needs gave it changed";
	else
		*why = NULL;
	if (*why)
		return 0;
	jv r = stored_result(s->name, s->art);
	if (!jv_is_valid(r)) {
		*s->art = 0;
		*why = "no artifact";
		return 0;
	}
	if (s->users == 0)  /* no dependant takes it: not held (all at once on --resume) */
		jv_free(r);
	else
		s->result = r;
	return 1;
}

int still_done(struct step *s)
{
	const char *why;
	return why_not_done(s, &why);
}

/* --resume: an attempt that its scheduler did not see end (killed, or the
 * machine stopped) is recorded as step.failed, kind lost. It counts as an
 * attempt: the next one has the number after it, in ORCH_ATTEMPT, so a
 * step with side effects can tell it may have run before. */
void record_lost(void)
{
	for (int i = 0; i < plan.n; i++) {
		struct step *s = &plan.step[i];
		const struct prior *p = prior_of(s);
		double att;
		if (p && jv_get_kind(p->open) == JV_KIND_OBJECT) {
			s->attempt = orch_jnum(p->open, "attempt", &att) && att >= 1 && att < 1e6 ?
			             (int)att : 1;
			char *msg = orch_fmt("lost: attempt %d was still running when its "
			                     "orch-sched ended", s->attempt);
			emit_failed(s, "lost", msg, 1, NULL, 0);
			free(msg);
		}
	}
}

/* An open attempt: when its step was first named, the step, its data. */
struct open { long seq; jv step, data; };

static int by_seq(const void *a, const void *b)
{
	long x = ((const struct open *)a)->seq, y = ((const struct open *)b)->seq;
	return (x > y) - (x < y);
}

/* The open attempts, in the order their steps were first named. */
static struct open *opens(int *n)
{
	struct open *o = orch_xmalloc(((size_t)plan.n + jv_object_length(jv_copy(others)) + 1) *
	                              sizeof *o);
	*n = 0;
	for (int i = 0; i < nprior; i++) {  /* the plan's as read; others below */
		const struct prior *p = prior_of(&plan.step[i]);
		if (p && jv_is_valid(p->open))
			o[(*n)++] = (struct open){p->seq, jv_string(plan.step[i].name), jv_copy(p->open)};
	}
	jv_object_foreach(others, name, v) {
		jv data = jv_array_get(jv_copy(v), 1);
		if (jv_get_kind(data) == JV_KIND_OBJECT)
			o[(*n)++] = (struct open){(long)jv_number_value(jv_array_get(jv_copy(v), 0)),
			                          jv_copy(name), data};
		else
			jv_free(data);
		jv_free(name);
		jv_free(v);
	}
	qsort(o, (size_t)*n, sizeof *o, by_seq);
	return o;
}

/* Every attempt the events leave open, the step's included (for
 * orphan.c): an array of step.started data with "step". */
jv open_attempts(void)
{
	int n;
	struct open *o = opens(&n);
	jv all = jv_array();
	for (int k = 0; k < n; k++)
		all = jv_array_append(all, jv_object_set(o[k].data, jv_string("step"), o[k].step));
	free(o);
	return all;
}

void resume_free(void)
{
	for (int i = 0; prior && i < nprior; i++)
		jv_free(prior[i].open);
	free(prior);
	prior = NULL;
	jv_free(others);
	others = jv_invalid();
}
