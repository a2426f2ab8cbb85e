/* libFuzzer harness for orch-plan's spec reader and checks: the whole of
 * orch-plan.c, with main renamed, fed each input as a spec (--check). */
#define main orch_plan_main
#include "../../tools/orch-plan.c"
#undef main

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	char *text = orch_xmalloc(size + 1);
	memcpy(text, data, size);
	text[size] = 0;
	check_jq = size < 512;  /* jq's compiler is slow: fuzz it on small inputs */
	plan(text, size, "<fuzz>", 'c');
	free(text);
	return 0;
}
