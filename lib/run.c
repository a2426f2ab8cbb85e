/* run.c: the run folder, orch-run(5). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "orch.h"

const char *orch_run_dir(void)
{
	if (orch_run_opt && *orch_run_opt)
		return orch_run_opt;
	const char *e = getenv("ORCH_RUN_DIR");
	return e && *e ? e : NULL;
}

int orch_job_id_valid(const char *id)
{
	size_t n = 0;
	for (const char *s = id; *s; s++, n++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-", *s))
			return 0;
	return n >= 1 && n <= 64 && strcmp(id, ".") && strcmp(id, "..");
}

/* A step's name: an id, or an instance of a fan-out, "id[key]" with
 * key 1 to 64 of the same characters (CONTRACT §9). */
int orch_step_name_valid(const char *name)
{
	const char *open = strchr(name, '[');
	size_t n = strlen(name);
	if (!open)
		return orch_job_id_valid(name);
	if (n < 4 || name[n - 1] != ']' || open == name || (size_t)(open - name) > 64)
		return 0;
	char id[65], key[65];
	size_t nk = n - (size_t)(open - name) - 2;
	if (nk > 64)
		return 0;
	memcpy(id, name, (size_t)(open - name));
	id[open - name] = 0;
	memcpy(key, open + 1, nk);
	key[nk] = 0;
	return orch_job_id_valid(id) && orch_job_id_valid(key);
}

char *orch_run_dir_for(const char *job_id)
{
	const char *runs = getenv("ORCH_RUNS");
	return orch_fmt("%s/%s", runs && *runs ? runs : "runs", job_id);
}

char *orch_path(const char *dir, const char *rel)
{
	return orch_fmt("%s/%s", dir, rel);
}

int orch_run_create(const char *dir)
{
	static const char *sub[] = {"inputs", "outputs", "logs", "artifacts", ".cache"};
	if (orch_mkdir_p(dir, 0700) < 0) {
		orch_err_sys("cannot create run folder %s", dir);
		return -1;
	}
	for (size_t i = 0; i < sizeof sub / sizeof *sub; i++) {
		char *p = orch_path(dir, sub[i]);
		int rc = mkdir(p, 0700);
		if (rc < 0 && errno != EEXIST) {
			orch_err_sys("cannot create %s", p);
			free(p);
			return -1;
		}
		free(p);
	}
	return 0;
}

char *orch_run_job_id(const char *dir)
{
	const char *e = getenv("ORCH_JOB_ID");
	if (e && *e)
		return orch_xstrdup(e);
	size_t n = strlen(dir);
	while (n > 1 && dir[n - 1] == '/')
		n--;
	size_t b = n;
	while (b > 0 && dir[b - 1] != '/')
		b--;
	return orch_fmt("%.*s", (int)(n - b), dir + b);
}
