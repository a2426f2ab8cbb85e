/* strmap.c: string -> index, open addressing (FNV-1a). Keys are borrowed:
 * the caller keeps them alive as long as the map. */
#include <stdlib.h>
#include <string.h>
#include "orch.h"

struct orch_map { size_t cap, n; const char **key; long *val; };

static size_t hash(const char *s)
{
	size_t h = 1469598103934665603ULL;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

orch_map *orch_map_new(size_t hint)
{
	orch_map *m = orch_xmalloc(sizeof *m);
	m->cap = 16;
	while (m->cap < hint * 2)
		m->cap *= 2;
	m->n = 0;
	m->key = calloc(m->cap, sizeof *m->key);
	m->val = orch_xmalloc(m->cap * sizeof *m->val);
	if (!m->key)
		orch_die(EX_FAIL, "out of memory");
	return m;
}

static size_t slot(const orch_map *m, const char *key)
{
	size_t i = hash(key) & (m->cap - 1);
	while (m->key[i] && strcmp(m->key[i], key))
		i = (i + 1) & (m->cap - 1);
	return i;
}

long orch_map_get(const orch_map *m, const char *key)
{
	size_t i = slot(m, key);
	return m->key[i] ? m->val[i] : -1;
}

static void grow(orch_map *m)
{
	orch_map big = {m->cap * 2, 0, calloc(m->cap * 2, sizeof(char *)),
	                orch_xmalloc(m->cap * 2 * sizeof(long))};
	if (!big.key)
		orch_die(EX_FAIL, "out of memory");
	for (size_t i = 0; i < m->cap; i++)
		if (m->key[i]) {
			size_t j = slot(&big, m->key[i]);
			big.key[j] = m->key[i];
			big.val[j] = m->val[i];
			big.n++;
		}
	free(m->key);
	free(m->val);
	*m = big;
}

int orch_map_put(orch_map *m, const char *key, long val)
{
	if (2 * (m->n + 1) > m->cap)
		grow(m);
	size_t i = slot(m, key);
	if (m->key[i])
		return 1;
	m->key[i] = key;
	m->val[i] = val;
	m->n++;
	return 0;
}

void orch_map_free(orch_map *m)
{
	if (!m)
		return;
	free(m->key);
	free(m->val);
	free(m);
}
