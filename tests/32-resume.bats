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

# what a failed test left running (the steps write their pid in NAME.pid)
teardown() {
	local f
	for f in "$BATS_TEST_TMPDIR"/*.pid; do
		[ -s "$f" ] && kill -KILL -- "-$(cat "$f")" 2>/dev/null
	done
	return 0
}

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
	run jq -r '.json.steps.a.output' runs/j/artifacts/c.json
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

@test "resume: --dry-run prints what each step would do and why, and touches nothing" {
	{ step a 'echo A'; step b 'echo B'; step c cat '["a"]'; step d cat '["b"]'
	  step e 'echo E' '[]' '{"when": ".inputs.n == 2"}'; step f cat '["c","d"]'; } > plan
	run orch-sched -n --resume < plan
	assert_success
	assert_output $'a\trun (new)\nb\trun (new)\nc\trun (new)\nd\trun (new)\ne\tskip (condition)\nf\trun (new)'
	[ ! -e runs ]
	orch-sched -q < plan > /dev/null
	run orch-sched --dry-run < plan
	assert_line --index 0 $'a\trun (no --resume)'
	{ step a 'echo A2'; step b 'echo B'; step c cat '["a"]'; step d cat '["b"]'
	  step e 'echo E' '[]' '{"when": ".inputs.n == 2"}'; step f cat '["c","d"]'; step g true; } > plan2
	before=$(cksum runs/j/events.jsonl runs/j/manifest.json; ls -lR runs)
	run orch-sched -n --resume < plan2
	assert_success
	assert_output $'a\trun (spec changed)\nb\tskip (completed)\nc\trun (needs a, which changed)\nd\tskip (completed)\ne\tskip (condition)\nf\trun (needs c, which changed)\ng\trun (new)'
	[ "$before" = "$(cksum runs/j/events.jsonl runs/j/manifest.json; ls -lR runs)" ]
	# a result edited by hand, and one gone
	echo '{"step":"b","output":"x"}' > runs/j/artifacts/b.json
	rm runs/j/artifacts/c.json
	run orch-sched -n --resume < plan
	assert_output $'a\tskip (completed)\nb\tskip (completed)\nc\trun (no artifact)\nd\trun (what its needs gave it changed)\ne\tskip (condition)\nf\trun (needs c, which will run)'
	# the lock is not needed: a run holding it does not stop a dry run
	step w 'sleep 5' > plan3
	orch-sched -q < plan3 > /dev/null 3>&- &
	for i in $(seq 250); do grep -q '"step.started","step":"w"' runs/j/events.jsonl && break; sleep 0.02; done
	run orch-sched -n --resume < plan3
	assert_success
	assert_output $'w\trun (not done before)'
	kill $!; wait $! || true
}

@test "resume: an attempt cut off by kill -9 is recorded as lost, and the next one has ORCH_ATTEMPT 2" {
	{ step a 'echo A'
	  step b 'echo $ORCH_ATTEMPT >> attempts; [ "$ORCH_ATTEMPT" -gt 1 ] || { echo $$ > b.pid; exec sleep 30; }' '["a"]'; } > plan
	orch-sched -q < plan > /dev/null 3>&- &
	kill9_once_b_runs $!
	run orch-sched -q --resume < plan
	kill "$(cat b.pid)" 2>/dev/null || true
	assert_success
	run cat attempts
	assert_output $'1\n2'
	run ev -c 'select(.type == "step.failed") | [.step, .data.kind, .data.attempt, .data.will_retry]'
	assert_output '["b","lost",1,true]'
	run ev -c 'select(.type == "step.started" and .step == "b") | .data.attempt'
	assert_output $'1\n2'
	run jq -r .steps.b.status runs/j/manifest.json
	assert_output succeeded
	# resumed again, nothing is lost any more
	run orch-sched -q --resume < plan
	run ev -c 'select(.type == "step.failed") | .step'
	assert_output '"b"'
}

@test "resume: a step a killed orch-sched left running is stopped before its next attempt starts" {
	# attempt 1 sleeps, with a child in its group that ignores SIGTERM;
	# each process marks its end; attempt 2 notes what it finds
	{ step s 'if [ "$ORCH_ATTEMPT" = 1 ]; then
		(trap "" TERM; sleep 30; echo child >> ended) &
		trap "echo leader >> ended; exit 1" TERM
		echo $$ > s.pid; while :; do sleep 0.05; done
	  else cat ended > seen 2>/dev/null; echo none >> seen; fi'; } > plan
	orch-sched -q < plan > /dev/null 3>&- &
	# the step may write its pid a moment before step.started is appended
	for i in $(seq 250); do
		[ -s s.pid ] && grep -q '"type":"step.started"' runs/j/events.jsonl 2>/dev/null && break
		sleep 0.02
	done
	kill -9 $!; wait $! || true
	run ev -c 'select(.type == "step.started") | [.data.pgid == ('"$(cat s.pid)"'), (.data.pid_start > 0)]'
	assert_output '[true,true]'
	run orch-sched -q --resume --grace 0.5 < plan 3>&-
	assert_success
	assert_output --partial 'step s is still running'
	# the leader ended on SIGTERM, the child (SIGTERM ignored) was killed:
	# nothing of the group lives
	run cat seen
	assert_output $'leader\nnone'
	[ -z "$(ps -eo pgid=,stat= | awk -v g="$(cat s.pid)" '$1 == g && $2 !~ /^Z/')" ]
}

@test "resume: a pid reused by another process is never signalled" {
	sleep 30 &
	other=$!
	# an open attempt whose pgid is that process but whose start time is not
	jq -nc --argjson p "$other" '{ts: "2025-01-01T00:00:00.000Z", level: "INFO", job_id: "j",
		type: "step.started", step: "s", data: {needs: [], attempt: 1, pgid: $p, pid_start: 1}}' > e
	step s true > plan
	mkdir -p runs/j && mv e runs/j/events.jsonl
	run orch-sched -q --resume < plan
	assert_success
	kill -0 "$other"
	kill "$other"
}

@test "resume: temporary files a killed writer left in outputs/ and .cache/ are swept at the start of a job" {
	mkdir -p runs/j/outputs/app/deep runs/j/.cache elsewhere
	key=$(printf '%064d' 7)
	touch runs/j/outputs/.main.py.0123456789abcdef.tmp runs/j/outputs/app/deep/.x.c.fedcba9876543210.tmp \
		"runs/j/.cache/.$key.json.00000000000000aa.tmp" runs/j/.manifest.json.1111111111111111.tmp
	# not orch's: kept
	touch runs/j/outputs/.notes.tmp runs/j/outputs/app/.a.0123456789ABCDEF.tmp elsewhere/.y.0123456789abcdef.tmp
	mkdir runs/j/outputs/.d.0123456789abcdef.tmp
	ln -s "$PWD/elsewhere" runs/j/outputs/link
	step a 'echo A' > plan
	run orch-sched -q < plan
	assert_success
	run sh -c 'cd runs/j && find . -name "*.tmp" | sort'
	assert_output $'./outputs/.d.0123456789abcdef.tmp\n./outputs/.notes.tmp\n./outputs/app/.a.0123456789ABCDEF.tmp'
	[ -e elsewhere/.y.0123456789abcdef.tmp ]  # a symlink is not followed
}

@test "resume: orch-write killed mid-write leaves nothing in outputs/ after the next run" {
	command -v strace > /dev/null || skip "no strace"
	# a writer stopped between its temporary file and the rename
	step w 'printf "{\"path\":\"big.txt\",\"content\":\"x\",\"mode\":\"overwrite\"}\n" |
		strace -f -e inject=renameat2,rename,renameat:signal=KILL orch-write >/dev/null 2>&1; exit 0' > plan
	orch-sched -q < plan > /dev/null
	[ -n "$(find runs/j/outputs -name '.big.txt.*.tmp')" ]
	orch-sched -q --resume < plan > /dev/null
	[ -z "$(find runs/j/outputs -name '.*.tmp')" ]
}
