/* cache.h: what orch-cache's parts share (tools/orch-cache.c: the key,
 * the entries, the wrapper, stats and prune, main). changed.c keeps the
 * step index and says what changed on a miss; stream.c serves many
 * requests, every miss through one CMD. */
#ifndef CACHE_H
#define CACHE_H
#include <time.h>
#include "orch.h"

/* orch-cache.c */
jv key_object(jv req);  /* req consumed: what the key is the hash of */
int request_key(jv req, char out[65], const char *name);  /* req consumed; -1: bad */
const char *cache_dir(void);
char *entry_read(const char *key, int which, char **line, size_t *len);  /* free it; NULL: miss */
int entry_write(const char *key, jv v, int sync);  /* v consumed; 0, or -1 */
jv mark(jv v, const char *how);          /* v with "cache":how */

/* changed.c */
void index_note(const char *key, jv req);  /* req consumed: the step's last answered call */
jv miss_data(const char *key, jv req);     /* req consumed: cache.miss's data */
size_t index_prune(int dfd, double age, time_t now);  /* prune: old step indexes removed */

/* stream.c */
int cmd_stream(char **argv);

#endif
