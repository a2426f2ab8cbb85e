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
 * The events are read once, before this run's job.started.
 */
#include <stdlib.h>
#include <string.h>
#include <sodium.h>
#include "orch.h"
#include "sched.h"

static jv prior;  /* orch_events_steps() of the run, as we found it */

void resume_read(void)
{
	char *ev = orch_path(run.dir, "events.jsonl");
	prior = orch_events_steps(ev);
	free(ev);
}

static const char *code_version(void)
{
	const char *v = getenv("ORCH_CODE_VERSION");
	return v && *v ? v : ORCH_VERSION;
}

static void spec_hash(struct step *s)
{
	static const char *scheduling[] = {"priority", "pool", "retries", "timeout_s"};
	jv spec = jv_copy(s->spec);
	for (size_t k = 0; k < sizeof scheduling / sizeof *scheduling; k++)
		spec = jv_object_delete(spec, jv_string(scheduling[k]));
	jv w = jv_object_set(jv_object(), jv_string("step"), jv_string(s->name));
	w = jv_object_set(w, jv_string("spec"), spec);
	w = jv_object_set(w, jv_string("command"), jv_string(s->cmd));
	w = jv_object_set(w, jv_string("task"), orch_jget(plan.job, "task"));
	w = jv_object_set(w, jv_string("inputs"), orch_jget(plan.job, "inputs"));
	w = jv_object_set(w, jv_string("code_version"), jv_string(code_version()));
	char *text = orch_dump(w, 1);
	orch_sha256_hex(text, strlen(text), s->spec_hash);
	free(text);
}

void fingerprint(struct step *s)
{
	crypto_hash_sha256_state st;
	unsigned char h[crypto_hash_sha256_BYTES];
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

/* What the events say of the step: an object (maybe empty). */
static jv prior_of(const struct step *s)
{
	jv p = jv_is_valid(prior) ? jv_object_get(jv_copy(prior), jv_string(s->name)) : jv_invalid();
	return jv_get_kind(p) == JV_KIND_OBJECT ? p : (jv_free(p), jv_object());
}

/* Is s still done (its result and art then set)? If not, why not. */
int why_not_done(struct step *s, const char **why)
{
	jv p = prior_of(s);
	const char *fp = orch_jstr(p, "fingerprint"), *sh = orch_jstr(p, "spec_hash");
	if (jv_get_kind(p) == JV_KIND_OBJECT && jv_object_length(jv_copy(p)) == 0)
		*why = "new";
	else if (!orch_jbool(p, "done", 0))
		*why = "not done before";
	else if (!fp)
		*why = "no fingerprint: done by an older orch";
	else if (!sh || strcmp(sh, s->spec_hash) != 0)
		*why = "spec changed";
	else if (strcmp(fp, s->fp) != 0)
		*why = "what its needs gave it changed";
	else
		*why = NULL;
	jv_free(p);
	if (*why)
		return 0;
	jv r = stored_result(s->name, s->art);
	if (!jv_is_valid(r)) {
		*s->art = 0;
		*why = "no artifact";
		return 0;
	}
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
		jv p = prior_of(s), open = orch_jget(p, "open");
		double att;
		if (jv_get_kind(open) == JV_KIND_OBJECT) {
			s->attempt = orch_jnum(open, "attempt", &att) && att >= 1 && att < 1e6 ? (int)att : 1;
			char *msg = orch_fmt("lost: attempt %d was still running when its "
			                     "orch-sched ended", s->attempt);
			emit_failed(s, "lost", msg, 1, NULL, 0);
			free(msg);
		}
		jv_free(open);
		jv_free(p);
	}
}

/* Every attempt the events leave open, the step's included (for
 * orphan.c): an array of step.started data with "step". */
jv open_attempts(void)
{
	jv all = jv_array();
	if (jv_get_kind(prior) != JV_KIND_OBJECT)
		return all;
	jv_object_foreach(prior, name, p) {
		jv open = orch_jget(p, "open");
		if (jv_get_kind(open) == JV_KIND_OBJECT)
			all = jv_array_append(all, jv_object_set(open, jv_string("step"), name));
		else {
			jv_free(open);
			jv_free(name);
		}
		jv_free(p);
	}
	return all;
}

void resume_free(void)
{
	jv_free(prior);
	prior = jv_invalid();
}
