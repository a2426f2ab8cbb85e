#!/usr/bin/env bats
# Templates at the seams (lib/tmpl.c), driven through orch-call --render,
# orch-sched's when: and orch-events tail --jq: null never reaches a model,
# and no user jq library (~/.jq) is ever loaded.
load helper

FIX="$ORCH_SRC/tests/fixtures/call"

# rec PROMPT [SYSTEM]: the fixture step record with that prompt (and system)
rec() {
	jq -c --arg p "$1" --arg s "${2:-}" \
		'.spec.prompt = $p | if $s == "" then del(.spec.system) else .spec.system = $s end
		 | .steps.sum_d = {step: "sum_d", output: "the summary", n: null}' "$FIX/step.json"
}

# prompt PROMPT: render it; the user message's text
prompt() { rec "$1" | orch-call --render | jq -r '.messages[-1].content'; }

# refused PROMPT [SYSTEM]: rendering fails with exit 2 and no request;
# $stderr says why
refused() {
	rec "$@" > in.json
	run --separate-stderr orch-call --render < in.json
	[ "$status" -eq 2 ] && [ -z "$output" ]
}

# ---- null is never rendered ----

@test "render: a plain path that is absent fails, naming the path and the way to make it optional" {
	refused 'Summary: {{ .steps.sum_d.outptu }}'
	assert_equal "$stderr" 'orch-call: step architect: prompt: {{ .steps.sum_d.outptu }}: .steps.sum_d has no "outptu" (null is never rendered: write {{ .steps.sum_d.outptu // "" }} to make it optional)'
	refused 'x' 'You know {{ .inputs.x }}.'
	assert_equal "$stderr" 'orch-call: step architect: system: {{ .inputs.x }}: .inputs has no "x" (null is never rendered: write {{ .inputs.x // "" }} to make it optional)'
	refused '{{ .steps.nope.output }}'
	[[ "$stderr" == *': .steps has no "nope" ('* ]]
	refused '{{ .nothing }}'
	[[ "$stderr" == *'{{ .nothing }}: the input has no "nothing" ('* ]]
}

@test "render: a plain path whose value is null, or under a null, fails" {
	refused '{{ .steps.sum_d.n }}'
	[[ "$stderr" == *'{{ .steps.sum_d.n }}: .steps.sum_d.n is null (null is never rendered: write {{ .steps.sum_d.n // "" }} to make it optional)' ]]
	refused '{{ .steps.sum_d.n.deeper }}'
	[[ "$stderr" == *': .steps.sum_d.n is null ('* ]]
}

@test "render: a jq expression that yields null fails too; // \"\" is the escape" {
	refused 'S: {{ .steps.sum_d | .outptu }}'
	assert_equal "$stderr" 'orch-call: step architect: prompt: {{ .steps.sum_d | .outptu }}: its value is null (null is never rendered: write {{ (.steps.sum_d | .outptu) // "" }} to make it optional)'
	refused '{{ "a", null }}'
	[[ "$stderr" == *'its value is null ('* ]]
	run prompt '[{{ .steps.sum_d.outptu // "" }}] [{{ (.steps.sum_d | .outptu) // "" }}] [{{ .inputs.x // "none" }}]'
	assert_output '[] [] [none]'
}

@test "render --failure-lines: a record that cannot be rendered is its step's failure line, in its place; the others render" {
	{ rec 'one {{ .inputs.x // "" }}'; rec 'two {{ .steps.sum_d.outptu }}' | jq -c '.step = "b"'
	  rec 'three' | jq -c '.step = "c"'; } > in.json
	run --separate-stderr orch-call --render --failure-lines < in.json
	[ "$status" -eq 2 ]
	[ "${#lines[@]}" -eq 3 ]
	assert_equal "$(jq -r '.messages[-1].content' <<< "${lines[0]}")" 'one '
	# the words orch-call said on stderr, as orch-sched's batch failure line
	assert_equal "$stderr" 'orch-call: step b: prompt: {{ .steps.sum_d.outptu }}: .steps.sum_d has no "outptu" (null is never rendered: write {{ .steps.sum_d.outptu // "" }} to make it optional)'
	jq -e --arg m "$stderr" '. == {step: "b", failed: {kind: "template", message: $m}, exit_code: 2}' <<< "${lines[1]}"
	assert_equal "$(jq -r '.messages[-1].content' <<< "${lines[2]}")" three
	# without it, the failed record has no line; and it goes with --render alone
	run --separate-stderr orch-call --render < in.json
	[ "$status" -eq 2 ] && [ "${#lines[@]}" -eq 2 ]
	run --separate-stderr orch-call --failure-lines < in.json
	[ "$status" -eq 2 ] && [ -z "$output" ]
	assert_equal "$stderr" 'orch-call: --failure-lines goes with --render'
}

@test "render: values that are not null render as before: false, 0, [null], nothing for no output" {
	run prompt '{{ .inputs.language }} {{ false }} {{ 0 }} {{ [.steps.sum_d.n] }} {{ .steps.sum_d.output }} <{{ empty }}> {{ .steps.base.files[].path }}'
	assert_output $'python false 0 [null] the summary <> a.py\nb.py'
}

# ---- no user library ----

# jq_home secret|broken: a home folder ($JQHOME) whose ~/.jq would put
# $SECRET into any program, or is not jq. Only the program under test runs
# with HOME=$JQHOME (the jq(1) these tests use would load it too).
jq_home() {
	JQHOME=$BATS_TEST_TMPDIR/jqhome
	mkdir -p "$JQHOME"
	export SECRET=s3cr3t-from-env
	case $1 in
	secret) echo 'def k: $ENV.SECRET; def language: "cobol";' > "$JQHOME/.jq" ;;
	broken) echo 'def broken( this is not jq' > "$JQHOME/.jq" ;;
	esac
}

@test "~/.jq is not loaded into templates: its functions are not defined, the secret stays out" {
	rec 'k={{ k }}' > k.json
	rec 'lang={{ .inputs.language }} {{ [1] | length }} {{ .inputs.language | ascii_upcase }}' > ok.json
	jq_home secret
	HOME=$JQHOME run --separate-stderr orch-call --render < k.json
	[ "$status" -eq 2 ]
	assert_equal "$stderr" 'orch-call: step architect: prompt: k/0 is not defined'
	[[ "$output$stderr" != *s3cr3t* ]]
	HOME=$JQHOME run --separate-stderr orch-call --render < ok.json
	assert_success
	[ "$(jq -r '.messages[-1].content' <<<"$output")" = 'lang=python 1 PYTHON' ]
	jq_home broken
	HOME=$JQHOME run --separate-stderr orch-call --render < ok.json
	assert_success
	[ "$(jq -r '.messages[-1].content' <<<"$output")" = 'lang=python 1 PYTHON' ]
}

# one plan line of job "j": step $1 runs $2 when $3
when_step() {
	jq -nc --arg s "$1" --arg run "$2" --arg w "$3" \
		'{step: $s, needs: [], spec: {id: $s, run: $run, when: $w}, job: {job_id: "j", task: "T", inputs: {n: 1}}}'
}

@test "~/.jq is not loaded into when: conditions; steps still see their HOME" {
	{ when_step a 'echo "home=$HOME"' '.inputs.n == 1'; when_step b 'echo b' '.inputs.n == 2'; } > plan
	when_step c 'echo c' 'k == "s3cr3t-from-env"' > plan.k
	jq_home broken
	HOME=$JQHOME run --separate-stderr orch-sched < plan
	assert_success
	assert_output "{\"step\":\"a\",\"output\":\"home=$JQHOME\\n\",\"exit_code\":0}"
	jq_home secret
	rm -rf runs
	HOME=$JQHOME run --separate-stderr orch-sched < plan.k
	[ "$status" -eq 2 ]
	[[ "$stderr" == *'step c: when: k/0 is not defined'* ]]
	[[ "$output$stderr" != *s3cr3t* ]]
}

@test "~/.jq is not loaded into orch-events tail --jq" {
	export ORCH_RUN_DIR=$BATS_TEST_TMPDIR/runs/demo
	orch-events emit step.started --step a
	orch-events emit step.succeeded --step a
	jq_home broken
	HOME=$JQHOME run --separate-stderr orch-events tail --jq '.type == "step.succeeded"'
	assert_success
	[ "$(jq -r .type <<<"$output")" = step.succeeded ]
	jq_home secret
	HOME=$JQHOME run --separate-stderr orch-events tail --jq 'k == "s3cr3t-from-env"'
	assert_failure 2
	[[ "$stderr" == *'k/0 is not defined'* ]]
}

@test "render: a hole reads no variable of the renderer's own (orch-plan's check and the render agree)" {
	refused 'p={{ .task }} i={{ $__i }}'
	assert_equal "$stderr" 'orch-call: step architect: prompt: $__i is not defined'
}

@test "render: input and _input read no next input (libjq 1.6 crashed on a hole after them)" {
	for hole in '{{ input }}' '{{ _input }}'; do
		refused "Do $hole! for {{ .task }}"
		assert_equal "$stderr" "orch-call: step architect: prompt: $hole: break"
	done
}
