#!/usr/bin/env bats
# orch-sched --resume: fingerprints, dry runs, lost attempts, orphans
load helper

# step NAME CMD [NEEDS_JSON [SPEC_EXTRA_JSON [JOB_EXTRA_JSON]]]: one plan line, job "j"
step() {
	jq -nc --arg s "$1" --arg run "$2" --argjson needs "${3:-[]}" --argjson x "${4:-{\}}" \
		--argjson jx "${5:-{\}}" \
		'{step: $s, needs: $needs, spec: ({id: $s, run: $run} + $x),
		  job: ({job_id: "j", task: "T", inputs: {n: 1}} + $jx)}'
}

ev() { jq -c "$@" runs/j/events.jsonl; }

# ran: the steps started by the last orch-sched, in order
ran() { jq -rs '(map(.type == "job.started") | rindex(true)) as $i | .[$i:][]
	| select(.type == "step.started") | .step' runs/j/events.jsonl | paste -sd' '; }

@test "resume: step.succeeded carries the fingerprint and spec_hash, sha256 each" {
	{ step a 'echo A'; step b cat '["a"]'; } > plan
	orch-sched -q < plan > /dev/null
	run ev -r 'select(.type == "step.succeeded") | [.step, (.data.fingerprint | test("^[0-9a-f]{64}$")),
		(.data.spec_hash | test("^[0-9a-f]{64}$")), .data.fingerprint != .data.spec_hash] | @tsv'
	assert_output $'a\ttrue\ttrue\ttrue\nb\ttrue\ttrue\ttrue'
}

@test "resume: an edited step runs again, and so does what needs it; the rest stays skipped" {
	{ step a 'echo A'; step b 'echo B'; step c 'cat' '["a"]'; step d 'cat' '["b"]'; } > plan
	orch-sched -q < plan > /dev/null
	{ step a 'echo A2'; step b 'echo B'; step c 'cat' '["a"]'; step d 'cat' '["b"]'; } > plan2
	run orch-sched -q --resume < plan2
	assert_success
	run ran
	assert_output 'a c'
	run jq -r '.steps.a.output' runs/j/artifacts/c.json
	assert_output A2
	run ev -r 'select(.type == "step.skipped") | .step + " " + .data.reason'
	assert_output $'b completed\nd completed'
	# and as it is now, nothing runs
	run orch-sched -q --resume < plan2
	assert_success
	run ran
	assert_output ''
}

@test "resume: a step rerun to the same artifact lets its dependants be skipped (restat)" {
	{ step a 'echo same'; step b 'cat; echo run >> b.ran' '["a"]'; } > plan
	orch-sched -q < plan > /dev/null
	# a's command changes, its output does not: b stays done
	{ step a 'echo same # edited'; step b 'cat; echo run >> b.ran' '["a"]'; } > plan2
	run orch-sched -q --resume < plan2
	assert_success
	run ran
	assert_output 'a'
	[ "$(wc -l < b.ran)" -eq 1 ]
	# an artifact edited by hand counts as changed
	echo '{"step":"a","output":"other","exit_code":0}' > runs/j/artifacts/a.json
	run orch-sched -q --resume < plan2
	run ran
	assert_output 'b'
}

@test "resume: the job's task and inputs and the code version are in the fingerprint; priority is not" {
	step a 'echo A' '[]' > plan
	orch-sched -q < plan > /dev/null
	step a 'echo A' '[]' '{"priority": 9, "retries": 2}' > plan2
	orch-sched -q --resume < plan2 > /dev/null
	run ran
	assert_output ''
	step a 'echo A' '[]' '{}' '{"inputs": {"n": 2}}' > plan3
	orch-sched -q --resume < plan3 > /dev/null
	run ran
	assert_output 'a'
	step a 'echo A' '[]' '{}' '{"inputs": {"n": 2}, "task": "U"}' > plan4
	orch-sched -q --resume < plan4 > /dev/null
	run ran
	assert_output 'a'
	ORCH_CODE_VERSION=9.9 orch-sched -q --resume < plan4 > /dev/null
	run ran
	assert_output 'a'
	ORCH_CODE_VERSION=9.9 orch-sched -q --resume < plan4 > /dev/null
	run ran
	assert_output ''
}

@test "resume: a step.succeeded with no fingerprint (an older orch) runs the step again" {
	step a 'echo A' > plan
	orch-sched -q < plan > /dev/null
	jq -c 'if .type == "step.succeeded" then del(.data.fingerprint) else . end' runs/j/events.jsonl > e
	mv e runs/j/events.jsonl
	run orch-sched -q --resume < plan
	assert_success
	run ran
	assert_output 'a'
}
