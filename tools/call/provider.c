/* provider.c: the provider table, one row per provider. A new provider is
 * a file with its functions (as ollama.c) and a row here; request.c,
 * the queue and --provider find it by name. */
#include <string.h>
#include "call.h"

static const struct provider table[] = {
	/* name, default model, needs a command?, start,
	 * prepare, stream parser, answer parser, error classifier, SSE? */
	{"ollama", NULL, 0, http_start,
	 ollama_prepare, ollama_line, ollama_object, wire_classify, 0},
	{"openai", NULL, 0, http_start,
	 openai_prepare, openai_data, openai_chunk, wire_classify, 1},
	{"anthropic", NULL, 0, http_start,
	 anthropic_prepare, anthropic_data, anthropic_event, wire_classify, 1},
	{"exec", NULL, 1, exec_start, NULL, NULL, NULL, NULL, 0},
	{"echo", "echo", 0, echo_start, NULL, NULL, NULL, NULL, 0},
};

#define NTABLE (sizeof table / sizeof *table)

const struct provider *provider_find(const char *name)
{
	for (size_t i = 0; i < NTABLE; i++)
		if (strcmp(name, table[i].name) == 0)
			return &table[i];
	return NULL;
}

const char *provider_names(void)
{
	static char names[256];
	if (!names[0])
		for (size_t i = 0; i < NTABLE; i++) {
			if (i)
				strcat(names, ", ");
			strcat(names, table[i].name);
		}
	return names;
}
