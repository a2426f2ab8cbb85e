#!/usr/bin/env bats
# Failure kinds: a step names why it failed (orch-sched(1), "Failure
# kinds"); files: required; a full disk says so and names the file.
load helper

# step NAME CMD [SPEC_EXTRA_JSON]: one plan line, job "j", no needs
step() {
	jq -nc --arg s "$1" --arg run "$2" --argjson x "${3:-{\}}" \
		'{step: $s, needs: [], spec: ({id: $s, run: $run} + $x),
		  job: {job_id: "j", task: "T", inputs: {}}}'
}

ev() { jq -c "$@" runs/j/events.jsonl; }

@test "plan: files is true, false or required" {
	printf 'job: j\nsteps:\n  - id: a\n    prompt: hi\n    files: required\n  - id: b\n    prompt: hi\n    files: false\n' > ok.yaml
	run orch-plan ok.yaml
	assert_success
	[ "$(jq -sc 'map(.spec.files)' <<< "$output")" = '["required",false]' ]
	printf 'job: j\nsteps:\n  - id: a\n    prompt: hi\n    files: maybe\n' > bad.yaml
	run orch-plan bad.yaml
	assert_failure 2
	assert_output "orch-plan: bad.yaml:5:12: 'files' must be true, false or required, not a string"
}

@test "sched: a failed step's last stdout line names its kind and message; the exit status decides the retry" {
	cat > says.sh <<'SH'
echo "some output"
echo "says.sh: the details" >&2
printf '%s\n' "{\"failed\":{\"kind\":\"$1\",\"message\":\"$2\"}}"
exit "$3"
SH
	{ step t 'sh says.sh template "cannot render {{ .x }}" 2' '{"retries":2}'
	  step n 'sh says.sh no_files "no file named" 75' '{"retries":1}'
	  step k 'printf "{\"failed\":{\"kind\":\"schema\"}}" ; echo "k: bad json" >&2; exit 1'
	  step r 'sh says.sh interrupted "not mine" 1'
	  step x 'echo "{\"failed\":{\"kind\":\"Bad Kind!\"}}"; exit 1'
	  step o 'echo "{\"failed\":{\"kind\":\"schema\"}}"; echo later; exit 1'; } > plan
	run orch-sched -k --backoff-base 0.01 < plan
	assert_failure 1
	run ev -c 'select(.type == "step.failed") | [.step, .data.kind, .data.message, .data.attempt, .data.will_retry, .data.exit_code]'
	assert_line '["t","template","cannot render {{ .x }}",1,false,2]'
	assert_line '["n","no_files","no file named",1,true,75]'
	assert_line '["n","no_files","no file named",2,false,75]'
	assert_line '["k","schema","exited with 1: k: bad json (logs/k.log)",1,false,1]'
	# the scheduler's own kinds, a kind out of [a-z0-9_], a line not last: plain exit
	assert_line '["r","exit","exited with 1: says.sh: the details (logs/r.log)",1,false,1]'
	assert_line '["x","exit","exited with 1",1,false,1]'
	assert_line '["o","exit","exited with 1",1,false,1]'
	[ "$(ev 'select(.type == "step.failed")' | wc -l)" = 7 ]
}
