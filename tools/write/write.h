/* write.h: orch-write's parts, one job each.
 *
 *   confine.c  a path checked and split into components, and walked beneath
 *              the outputs folder one component at a time, never through a
 *              symlink: the security boundary
 *   files.c    one record written (create_new, overwrite, append) or checked
 *              before any is written; what became of it is a value
 *   fence.c    the fenced code blocks of a markdown answer, and the file
 *              each names, handed one at a time to a callback; it knows
 *              nothing of writing (so it can be fuzzed alone)
 *
 * orch-write.c reads the records (or an answer), decides which blocks are
 * written, and prints the results.
 */
#ifndef ORCH_WRITE_H
#define ORCH_WRITE_H

#include "orch.h"

enum { M_CREATE_NEW, M_OVERWRITE, M_APPEND };  /* CONTRACT §7 */

/* Why a write is refused (exit 2): one value per reason, and one table of
 * their words (refusal_text), the same wherever a refusal is reported. */
enum refusal {
	R_NONE,
	R_EMPTY_PATH, R_NUL, R_PATH_TOO_LONG, R_ABSOLUTE, R_CONTROL_CHAR,
	R_EMPTY_COMPONENT, R_DOTDOT, R_NAME_TOO_LONG,  /* the path's syntax */
	R_SYMLINK_ON_PATH, R_PARENT_NOT_FOLDER,        /* the walk to its folder */
	R_TARGET_SYMLINK, R_TARGET_NOT_FILE, R_HARD_LINKS,  /* the target */
};
extern const char *const refusal_text[];

/* One file to write. */
struct rec {
	char *path;   /* normalized: components joined by '/' */
	char **comp;  /* its components */
	size_t ncomp;
	jv content;   /* string */
	int mode;     /* M_* */
};

/* confine.c */
/* Check path p (len bytes, NULs included) and split it into r's path and
 * components ("." ones dropped): R_NONE, or why it is refused. r is to be
 * freed with rec_free either way (content is not set). */
enum refusal path_split(const char *p, size_t len, struct rec *r);
void rec_free(struct rec *r);
/* The folder holding r's last component, beneath outfd, creating missing
 * folders (0755) when mk. A descriptor; or -1 with *why set (a refusal),
 * or -1 with *why R_NONE and errno (an error; ENOENT when !mk and a
 * folder does not exist yet). */
int open_parent(int outfd, const struct rec *r, int mk, enum refusal *why);

/* files.c: what became of one record: exactly one of refused, failed or
 * result says so. */
struct outcome {
	enum refusal refused;  /* why it was refused (exit 2), or R_NONE */
	char *failed;          /* else why it failed (exit 1), malloc'd, or NULL */
	jv result;             /* else the write result (invalid: none) */
};
/* Write r beneath outfd; emits nothing, prints nothing. */
struct outcome write_rec(int outfd, const struct rec *r);
/* Before any write: the refusals and create_new conflicts that can be seen
 * now; an outcome without result when r may go ahead. */
struct outcome precheck(int outfd, const struct rec *r);

/* fence.c: the fenced code blocks of a markdown text (the rules are in
 * fence.c's header). */
struct fence_block {
	const char *name;     /* the file it names, or NULL */
	const char *content;  /* its lines, each ending in '\n' */
	size_t len;
	long line;            /* the line of its opening fence, from 1 */
	const char *info;     /* the opening fence's info string (not NUL-ended) */
	size_t info_len;
	int closed;           /* 0: the text ended inside it (a cut-off answer) */
};
/* Called per block, in order; the block is valid only during the call.
 * Return 0 to go on, else stop the scan with that value. */
typedef int (*fence_fn)(const struct fence_block *b, void *ctx);
/* Every block of text[0..len), a never closed one last: 0, or fn's value. */
int fence_scan(const char *text, size_t len, fence_fn fn, void *ctx);

#endif
