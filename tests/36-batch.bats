#!/usr/bin/env bats
# orch-sched --batch-exec (orch-sched(1) BATCH) and orch step --batch: one
# worker per fan-out prompt step serves its instances, a record a line;
# each instance keeps its events, artifact, attempts, -j slot, timeout
load helper

# spec NAME LINE...: a job spec NAME.yaml (job NAME), echo provider
spec() {
	local name=$1
	shift
	{ printf 'job: %s\ntask: t\nprovider: {name: echo}\nsteps:\n' "$name"; printf '%s\n' "$@"; } > "$name.yaml"
}

# worker FILE BODY: an executable sh worker that logs its pid to workers,
# then runs BODY
worker() {
	printf '#!/bin/sh\necho $$ >> workers\n%s\n' "$2" > "$1"
	chmod +x "$1"
}

# inst_events JOB: "step type" of every instance event, sorted
inst_events() {
	jq -r 'select(.step // "" | test("\\[")) | "\(.step) \(.type)"' "runs/$1/events.jsonl" | sort
}

# max_inflight JOB: the most instances between step.started and their end
max_inflight() {
	jq -rs 'reduce (.[] | select(.step // "" | test("\\["))) as $e ({n: 0, m: 0};
		if $e.type == "step.started" then .n += 1 | .m = ([.m, .n] | max)
		elif $e.type == "step.succeeded" or $e.type == "step.failed" then .n -= 1
		else . end) | .m' "runs/$1/events.jsonl"
}

teardown() {
	[ -s sched.pid ] && kill -KILL "$(cat sched.pid)" 2>/dev/null
	return 0
}

@test "batch: the same artifacts, outputs and instance events as one orch step each; the caches are one" {
	for j in a b; do
		spec $j '  - id: s' '    foreach: "[range(6)]"' '    files: true' \
			'    prompt: "Here:\n```out/{{ .key }}.txt\nitem {{ .item }}\n```\n"' \
			'  - id: all' '    needs: [s]' '    run: "jq -c \"[.steps.s[].output | length]\""'
	done
	ORCH_BATCH=0 ORCH_CACHE_DIR=$PWD/ca run orch run a.yaml -j 3
	assert_success
	ORCH_CACHE_DIR=$PWD/cb run orch run b.yaml -j 3
	assert_success
	# one worker served the six: no orch step per instance
	[ "$(grep -c '"step.started"' runs/b/events.jsonl)" -eq 7 ]
	for k in 0 3 5; do
		diff <(jq -S . "runs/a/artifacts/s[$k].json") <(jq -S . "runs/b/artifacts/s[$k].json")
	done
	run jq -r .cache 'runs/b/artifacts/s[4].json'
	assert_output miss
	diff -r runs/a/outputs runs/b/outputs
	[ "$(cat runs/b/outputs/out/2.txt)" = "item 2" ]
	diff <(inst_events a) <(inst_events b)
	# either path's cache answers the other
	ORCH_CACHE_DIR=$PWD/ca run orch run b.yaml -j 3
	assert_success
	run jq -r .cache 'runs/b/artifacts/s[0].json' 'runs/b/artifacts/s[5].json'
	assert_output $'hit\nhit'
	# stored over the first run's artifacts, no stdout file left beside them
	run ls -A runs/b/artifacts
	refute_output --partial '.out'
	ORCH_BATCH=0 ORCH_CACHE_DIR=$PWD/cb run orch run a.yaml -j 3
	assert_success
	run jq -r .cache 'runs/a/artifacts/s[1].json'
	assert_output hit
}

@test "batch: an instance that cannot be rendered fails alone, kind template, as one at a time" {
	spec t '  - id: s' '    foreach: "[range(4)]"' \
		'    prompt: "{{ if .item == 2 then error(\"no 2\") else .item end }}"'
	ORCH_CACHE_DIR=$PWD/c run orch run t.yaml -k
	assert_failure 1
	run jq -r 'select(.type == "step.failed") | "\(.step) \(.data.kind) \(.data.will_retry)"' runs/t/events.jsonl
	assert_output 's[2] template false'
	[ "$(grep -c '"step.succeeded"' runs/t/events.jsonl)" -eq 3 ]
	mv runs/t runs/t1
	ORCH_BATCH=0 ORCH_CACHE_DIR=$PWD/c run orch run t.yaml -k
	assert_failure 1
	run jq -r 'select(.type == "step.failed") | "\(.step) \(.data.kind) \(.data.will_retry)"' runs/t/events.jsonl
	assert_output 's[2] template false'
	# the same words: orch-call --render --failure-lines gives them in its line
	one=$(jq -r 'select(.type == "step.failed") | .data.message' runs/t/events.jsonl)
	batch=$(jq -r 'select(.type == "step.failed") | .data.message' runs/t1/events.jsonl)
	[[ $batch == *': no 2' ]]
	[ "$one" = "$batch (logs/s[2].log)" ]
}

@test "batch: a failed instance is retried alone, by the same worker's step; its kind kept" {
	spec r '  - id: s' '    foreach: "[range(4)]"' '    retries: 1' '    prompt: x'
	worker w.sh 'while IFS= read -r rec; do
	printf "%s\n" "$rec" | jq -c "if .step == \"s[1]\" and .attempt == 1
		then {step, failed: {kind: \"flaky\", message: \"not now\"}, exit_code: 75}
		else {step, output: \"ok \(.item) \(.attempt)\"} end"
done'
	orch-plan r.yaml > plan
	run orch-sched --run runs/r -q -j 4 --backoff-base 0 --exec false --batch-exec ./w.sh < plan
	assert_success
	run jq -r 'select(.step == "s[1]" and (.type | test("step\\."))) | "\(.type) \(.data.attempt) \(.data.kind // "") \(.data.message // "")"' runs/r/events.jsonl
	assert_output $'step.started 1  \nstep.failed 1 flaky not now\nstep.retrying 2  \nstep.started 2  \nstep.succeeded 2  '
	[ "$(grep -c '"step.started"' runs/r/events.jsonl)" -eq 5 ]
	run jq -r .output 'runs/r/artifacts/s[1].json' 'runs/r/artifacts/s[3].json'
	assert_output $'ok 1 2\nok 3 1'
	# not 75: not retried, and the job fails with the message the worker gave
	sed -i 's/exit_code: 75/exit_code: 1/' w.sh
	rm -rf runs/r
	run orch-sched --run runs/r -q -j 4 --backoff-base 0 -k --exec false --batch-exec ./w.sh < plan
	assert_failure 1
	assert_output --partial 's[1]: not now'
}

@test "batch: kill -9 of the worker: its instances in flight are lost and retried" {
	spec k '  - id: s' '    foreach: "[range(3)]"' '    retries: 1' '    prompt: x'
	# the first worker takes the records and never answers
	worker w.sh '[ -e first ] || { echo $$ > first; cat > /dev/null; sleep 100; }
exec jq -c --unbuffered "{step, output: \"ok \(.item)\"}"'
	orch-plan k.yaml > plan
	orch-sched --run runs/k -q -j 3 --backoff-base 0 --exec false --batch-exec ./w.sh < plan > /dev/null &
	echo $! > sched.pid
	for _ in $(seq 100); do
		[ "$(grep -c '"step.started"' runs/k/events.jsonl 2>/dev/null)" -ge 3 ] && [ -s first ] && break
		sleep 0.1
	done
	kill -KILL "$(cat first)"
	wait "$(cat sched.pid)"
	run jq -r 'select(.type == "step.failed") | "\(.step) \(.data.kind) \(.data.will_retry)"' runs/k/events.jsonl
	assert_output $'s[0] lost true\ns[1] lost true\ns[2] lost true'
	run jq -r 'select(.type == "step.failed") | .data.message' runs/k/events.jsonl
	assert_line --index 0 --regexp '^its --batch-exec worker \(pid [0-9]+\) was killed before it answered \(logs/s\.log\)$'
	run jq -r 'select(.type == "step.succeeded") | "\(.step) \(.data.attempt)"' runs/k/events.jsonl
	assert_output $'s[0] 2\ns[1] 2\ns[2] 2'
	[ "$(wc -l < workers)" -eq 2 ]
	! kill -0 "$(head -1 workers)" 2>/dev/null  # the first is gone, group and all
}

@test "batch: -j caps the instances in flight; one worker serves them all" {
	spec j '  - id: s' '    foreach: "[range(12)]"' '    prompt: x'
	worker w.sh 'while IFS= read -r rec; do
	sleep 0.1
	printf "%s\n" "$rec" | jq -c "{step, output: .key}"
done'
	orch-plan j.yaml > plan
	run orch-sched --run runs/j -q -j 3 --exec false --batch-exec ./w.sh < plan
	assert_success
	run max_inflight j
	assert_output 3
	[ "$(wc -l < workers)" -eq 1 ]
	[ "$(ls runs/j/artifacts | wc -l)" -eq 12 ]
}

@test "batch: an instance past its timeout: the worker is stopped, that one times out, the rest are lost; all retried" {
	spec t '  - id: s' '    foreach: "[range(3)]"' '    retries: 1' '    timeout_s: 1' '    prompt: x'
	# the first worker answers s[0] and holds s[1] and s[2]
	worker w.sh 'if [ -e first ]; then exec jq -c --unbuffered "{step, output: .key}"; fi
touch first
while IFS= read -r rec; do
	case $rec in *"s[0]"*) printf "%s\n" "$rec" | jq -c "{step, output: .key}" ;; esac
done'
	orch-plan t.yaml > plan
	run orch-sched --run runs/t -q -j 3 --grace 0.2 --backoff-base 0 --exec false --batch-exec ./w.sh < plan
	assert_success
	# s[1] and s[2]: one timed out (or both, at the same instant), the other lost
	run jq -r 'select(.type == "step.failed") | "\(.step) \(.data.kind) \(.data.will_retry)"' runs/t/events.jsonl
	assert_line --regexp '^s\[[12]\] timeout true$'
	[ "${#lines[@]}" -eq 2 ]
	for l in "${lines[@]}"; do [[ $l =~ ^s\[[12]\]\ (timeout|lost)\ true$ ]]; done
	run sh -c "jq -r 'select(.type == \"step.succeeded\") | \"\(.step) \(.data.attempt)\"' runs/t/events.jsonl | sort"
	assert_output $'s[0] 1\ns[1] 2\ns[2] 2'
}

@test "batch: kill -9 of orch-sched during a batch, then --resume: every instance once, the same outputs" {
	spec big '  - id: s' '    foreach: "[range(300)]"' \
		'    provider: {name: exec, command: "sleep 0.02; cat"}' '    prompt: "n{{ .item }}"' \
		'  - id: all' '    needs: [s]' '    run: "jq -c \"[.steps.s[].output] | length\""'
	export ORCH_CACHE_DIR=$PWD/cache
	orch run big.yaml -j 8 > /dev/null &
	echo $! > sched.pid
	for _ in $(seq 300); do
		[ "$(cat runs/big/events.jsonl 2>/dev/null | grep -c '"step.succeeded"')" -ge 20 ] && break
		sleep 0.1
	done
	sleep "0.$((RANDOM % 5))"
	kill -KILL "$(cat runs/big/.lock)"
	wait "$(cat sched.pid)" || true
	n=$(jq -rs 'map(select(.type == "step.succeeded")) | length' runs/big/events.jsonl)
	[ "$n" -gt 0 ] && [ "$n" -lt 301 ]
	run orch run big.yaml --resume -j 8
	assert_success
	run orch out big all
	assert_output 300
	run jq -rs 'map(select(.type == "step.succeeded") | .step) | group_by(.) | map(select(length > 1)) | length' \
		runs/big/events.jsonl
	assert_output 0
	run jq -c .output 'runs/big/artifacts/s[0].json' 'runs/big/artifacts/s[299].json'
	assert_output $'"n0\\n"\n"n299\\n"'
}

@test "orch-cache stream: hits at once, misses from CMD, each answer with its step; a failure alone; failed lines pass on" {
	export ORCH_CACHE_DIR=$PWD/cache
	for i in 1 2 3; do
		jq -cn --arg s "s[$i]" --arg q "q$i" '{provider: "echo", model: "echo", messages: [{role: "user", content: $q}], step: $s}'
	done > reqs
	run orch-cache stream -- orch-call --serve < reqs
	assert_success
	run jq -r '"\(.step) \(.content) \(.cache)"' <<< "$output"
	assert_output $'s[1] q1 miss\ns[2] q2 miss\ns[3] q3 miss'
	# the one-at-a-time wrapper finds what the stream stored, and the stream hits
	run orch-cache -- orch-call < <(sed -n 2p reqs)
	assert_output --partial '"cache":"hit"'
	{ sed -n 1p reqs; printf '%s\n' '{"step":"s[9]","failed":{"kind":"template"},"exit_code":2}'
	  jq -cn '{provider: "exec", command: "exit 3", model: "x", messages: [{role: "user", content: "q"}], step: "s[4]"}'
	  sed -n 3p reqs; } > mixed
	run --separate-stderr orch-cache stream -- orch-call --serve < mixed
	assert_success
	run jq -c '[.step, .cache, .failed.kind, .exit_code]' <<< "$output"
	assert_line '["s[1]","hit",null,null]'
	assert_line '["s[9]",null,"template",2]'
	assert_line '["s[3]","hit",null,null]'
	assert_line '["s[4]",null,null,1]'
	[ "${#lines[@]}" -eq 4 ]
}

@test "orch-write --inputs FILE: each answer written with its own record, results as they come; failures as lines" {
	export ORCH_RUN_DIR=$PWD/run
	mkdir -p run/outputs
	# a record a line; a later one for a step (a retry) is the one taken
	{ echo '{"job_id":"j","step":"a[1]","spec":{}}'
	  echo '{"job_id":"j","step":"a[1]","spec":{"files":true}}'
	  echo '{"job_id":"j","step":"a[2]","spec":{"files":"required"}}'
	  echo '{"job_id":"j","step":"a[3]","spec":{}}'; } > recs
	{ jq -cn '{step: "a[1]", content: "```x/one.txt\none\n```\n", cache: "miss", usage: {prompt_tokens: 1}}'
	  jq -cn '{step: "a[2]", content: "no file", cache: "hit"}'
	  jq -cn '{step: "a[3]", content: "```x/three.txt\n3\n```\n", cache: "hit"}'
	  jq -cn '{step: "a[4]", content: "no record"}'
	  echo '{"step":"a[5]","failed":{"kind":"template"},"exit_code":2}'; } > answers
	run --separate-stderr orch-write --inputs recs < answers
	assert_success
	run jq -c '[.step, (.files // [] | map(.path)), .failed.kind, .exit_code]' <<< "$output"
	assert_output $'["a[1]",["x/one.txt"],null,null]\n["a[2]",[],"no_files",75]\n["a[3]",[],null,null]\n["a[4]",[],null,2]\n["a[5]",[],"template",2]'
	[ "$(cat run/outputs/x/one.txt)" = one ]
	[ ! -e run/outputs/x/three.txt ]
	run jq -r 'select(.type == "file.written") | .step' run/events.jsonl
	assert_output 'a[1]'
}

# A request to the fake provider (tests/fakeprovider) for step $1, model $2.
fake_req() {
	jq -cn --arg s "$1" --arg m "${2:-m}" \
		'{provider: "openai", model: $m, messages: [{role: "user", content: $s}], step: $s}'
}

@test "orch-cache stream: one long-lived CMD serves every miss, answers matched by id; a failure alone; CMD dying fails only what it left, once" {
	export ORCH_CACHE_DIR=$PWD/cache NO_PROXY=127.0.0.1 no_proxy=127.0.0.1
	"$ORCH_SRC/tests/fakeprovider" --portfile port --log calls.jsonl --delay 0.3 3>&- &
	fake=$!
	for _ in $(seq 100); do [ -s port ] && break; sleep 0.05; done
	export OPENAI_BASE_URL="http://127.0.0.1:$(cat port)/v1" OPENAI_API_KEY=sk-test-x
	printf '#!/bin/sh\necho start >> "%s/starts"\nexec orch-call --serve -j 8 --retries 0 "$@"\n' "$PWD" > cmd
	chmod +x cmd
	# answers as they come (s[2] before s[1]); the 401 fails alone, nobody asked twice
	{ fake_req 's[1]'; fake_req 's[2]' fail401; jq -cn '{provider: "echo", messages: [{role: "user", content: "e"}], step: "s[3]"}'
	  sleep 1; fake_req 's[4]'
	  sleep 1  # then CMD is killed with s[5] in flight: s[5] failed, never asked again
	  fake_req 's[5]'; sleep 0.1
	  jq -cn '{provider: "exec", command: "kill -9 $PPID", model: "k", messages: [{role: "user", content: "k"}], step: "s[6]"}'
	  sleep 1; fake_req 's[7]'; } | orch-cache stream -- ./cmd > out 2> err || true
	kill "$fake"
	run jq -c '[.step, .cache, .failed != null, .exit_code]' out
	assert_line --index 0 '["s[3]","miss",false,null]'
	assert_line '["s[1]","miss",false,null]'
	assert_line '["s[2]",null,true,1]'
	assert_line '["s[4]","miss",false,null]'
	assert_line '["s[5]",null,true,137]'
	assert_line '["s[6]",null,true,137]'
	assert_line '["s[7]","miss",false,null]'
	[ "${#lines[@]}" -eq 7 ]
	run jq -r 'select(.step == "s[5]") | .failed.message' out
	assert_output --partial 'killed by signal 9 before it answered'
	[ "$(wc -l < starts)" -eq 2 ]  # one CMD, started again after it died
	# each request reached the provider once: s[1], s[2], s[4], s[5], s[7]
	run jq -rs 'map(.body.messages[0].content // .messages[0].content) | sort | join(" ")' calls.jsonl
	assert_output 's[1] s[2] s[4] s[5] s[7]'
	# s[1] was stored: asked again, a hit, no CMD
	rm starts
	fake_req 's[1]' | orch-cache stream -- ./cmd > out
	run jq -r .cache out
	assert_output hit
	[ ! -e starts ]
}
