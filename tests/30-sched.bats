#!/usr/bin/env bats
# orch-sched: plan lines -> steps run as processes
load helper

F=$BATS_TEST_DIRNAME/fixtures/sched

# step NAME CMD [NEEDS_JSON [SPEC_EXTRA_JSON]]: one plan line, job "j"
step() {
	jq -nc --arg s "$1" --arg run "$2" --argjson needs "${3:-[]}" --argjson x "${4:-{\}}" \
		'{step: $s, needs: $needs, spec: ({id: $s, run: $run} + $x),
		  job: {job_id: "j", task: "T", inputs: {n: 1}}}'
}

ev() { jq -c "$@" runs/j/events.jsonl; }

# gone PID: the process is dead (or a zombie nobody reaped yet), within a second
gone() {
	local i st
	for i in $(seq 50); do
		st=$(ps -o stat= -p "$1") || return 0
		case $st in Z*) return 0 ;; esac
		sleep 0.02
	done
	return 1
}

@test "sched: a chain runs in order; stdout is one result per step; artifacts and logs are kept" {
	{ step a 'echo hello'; step b 'jq -j ".steps.a.output | ascii_upcase"' '["a"]'
	  step c 'echo oops >&2' '["b"]'; } > plan
	run orch-sched < plan
	assert_success
	assert_output $'{"step":"a","output":"hello\\n","exit_code":0}\n{"step":"b","output":"HELLO\\n","exit_code":0}\n{"step":"c","output":"","exit_code":0}'
	run cat runs/j/artifacts/b.json
	assert_output '{"step":"b","output":"HELLO\n","exit_code":0}'
	run cat runs/j/logs/c.log
	assert_output oops
	run ev -s 'map(.type + ":" + (.step // "")) | join(" ")'
	assert_output '"job.started: step.started:a step.succeeded:a step.started:b step.succeeded:b step.started:c step.succeeded:c job.succeeded:"'
	run jq -c '[.status, (.steps | map_values(.status))]' runs/j/manifest.json
	assert_output '["succeeded",{"a":"succeeded","b":"succeeded","c":"succeeded"}]'
	[ -z "$(ls -A runs/j/artifacts | grep -v '\.json$')" ]  # no temporary left
}

@test "sched: the step input record, environment and process group" {
	{ step a 'echo 1'; step b cat '["a"]'
	  step e 'echo $ORCH_RUN_DIR $ORCH_JOB_ID $ORCH_STEP $ORCH_ATTEMPT; ps -o pgid= -p $$; echo $$'; } > plan
	run orch-sched -q < plan
	assert_success
	run jq -c '.json | [.job_id, .step, .attempt, .run_dir, .task, .inputs, .spec, .steps]' runs/j/artifacts/b.json
	assert_output "[\"j\",\"b\",1,\"$PWD/runs/j\",\"T\",{\"n\":1},{\"id\":\"b\",\"run\":\"cat\"},{\"a\":{\"step\":\"a\",\"output\":\"1\\n\",\"exit_code\":0,\"json\":1}}]"
	run jq -r .output runs/j/artifacts/e.json
	assert_line --index 0 "$PWD/runs/j j e 1"
	[ "${lines[1]// /}" = "${lines[2]}" ]  # its own process group
}

@test "sched: a run: step's stdout is always its .output; one JSON value is also its .json" {
	{ step txt 'printf "not json"'; step two 'printf "{}{}"'; step arr 'echo [1]'
	  step obj 'printf "{\"x\": 1}"'; step cat 'cat data.json'; step use 'jq -j .steps.cat.output' '["cat"]'; } > plan
	echo '{"k": "v"}' > data.json
	run orch-sched < plan
	assert_success
	run jq -c . runs/j/artifacts/txt.json runs/j/artifacts/two.json runs/j/artifacts/arr.json runs/j/artifacts/obj.json
	assert_output $'{"step":"txt","output":"not json","exit_code":0}\n{"step":"two","output":"{}{}","exit_code":0}\n{"step":"arr","output":"[1]\\n","exit_code":0,"json":[1]}\n{"step":"obj","output":"{\\"x\\": 1}","exit_code":0,"json":{"x":1}}'
	# `run: cat data.json` keeps its text for the next step's template
	run jq -r .output runs/j/artifacts/use.json
	assert_output '{"k": "v"}'
	run jq -c .json.k runs/j/artifacts/cat.json
	assert_output '"v"'
}

@test "sched: a prompt step's result record (one JSON object from --exec) is stored as it is" {
	{ jq -nc '{step: "p", spec: {prompt: "hi"}, job: {job_id: "j"}}'
	  jq -nc '{step: "q", spec: {prompt: "hi"}, job: {job_id: "j"}}'; } > plan
	run orch-sched --exec 'jq -c "if .step == \"p\" then {step, output: .spec.prompt} else \"text\" end"' < plan
	assert_success
	run cat runs/j/artifacts/p.json runs/j/artifacts/q.json
	assert_output $'{"step":"p","output":"hi"}\n{"step":"q","output":"\\"text\\"\\n","exit_code":0}'
}

@test "sched: bad plans are refused with exit 2 before anything runs" {
	step a true '["nope"]' > p1
	run orch-sched < p1
	assert_failure 2
	assert_output --partial 'step a needs nope, which is not in the plan'
	{ step a true '["b"]'; step b true '["a"]'; } > p2
	run orch-sched < p2
	assert_failure 2
	assert_output --partial 'cycle'
	[ ! -e runs ]
	{ step a true; step a true; } > p3
	run orch-sched < p3
	assert_failure 2
	assert_output --partial 'duplicate step id a'
	jq -nc '{step: "p", spec: {prompt: "hi"}, job: {job_id: "j"}}' > p4
	run orch-sched < p4
	assert_failure 2
	assert_output --partial 'step p has no run: and no --exec CMD was given'
	step w true '[]' '{"when": ".x ==="}' > p5
	run orch-sched < p5
	assert_failure 2
	assert_output --partial 'step w: when:'
	step q true '[]' '{"pool": "gpu"}' > p6
	run orch-sched < p6
	assert_failure 2
	assert_output --partial 'pool gpu is not in the job'
	echo '{"step": "x", "needs": [1]}' > p7
	run orch-sched --run r < p7
	assert_failure 2
	assert_output --partial '-:1: step x: "needs" is not an array of step ids'
	echo '{"step": "x",' > p8
	run orch-sched --run r < p8
	assert_failure 2
	run orch-sched -j 0 < p1
	assert_failure 2
	[ ! -e runs ] && [ ! -e r ]
}

@test "sched: a cycle is printed as orch-plan prints it, b -> c -> a -> b, and nothing runs" {
	{ step a 'touch ran' '["c"]'; step b 'touch ran' '["a"]'; step c 'touch ran' '["b"]'
	  step d 'touch ran'; step e 'touch ran' '["d", "a"]'; } > plan
	run orch-sched < plan
	assert_failure 2
	assert_output 'orch-sched: the plan has a cycle: b -> c -> a -> b'  # orch-plan's text for the same steps
	[ ! -e ran ] && [ ! -e runs ]
}

@test "sched: random DAGs: no step starts before all its needs have ended" {
	for seed in 1 2 3; do
		rm -rf runs t && mkdir t
		awk -v seed=$seed -v f="$F" 'BEGIN { srand(seed); n = 24
			for (i = 0; i < n; i++) {
				needs = ""
				for (j = 0; j < i; j++) if (rand() < 0.2) needs = needs (needs ? "," : "") "\"s" j "\""
				line[i] = sprintf("{\"step\":\"s%d\",\"needs\":[%s],\"spec\":{\"run\":\"%s/times.sh t 0.0%d\"},\"job\":{\"job_id\":\"j\"}}", i, needs, f, int(rand() * 4))
			}
			for (i = n - 1; i > 0; i--) { j = int(rand() * (i + 1)); t = line[i]; line[i] = line[j]; line[j] = t }
			for (i = 0; i < n; i++) print line[i] }' > plan
		run orch-sched -j 4 < plan
		assert_success
		[ "$(wc -l < t/times)" -eq 24 ]
		# every need ended (its own clock) before its dependant started
		run jq -n --rawfile t t/times --slurpfile p plan '
			($t | split("\n") | map(select(. != "") | split(" ")) | map({key: .[0], value: {s: (.[1] | tonumber), e: (.[2] | tonumber)}}) | from_entries) as $T
			| [$p[] | .step as $s | .needs[] | select($T[.].e >= $T[$s].s)] | length'
		assert_output 0
		# and the events say the same
		run ev -s '(map(select(.type == "step.succeeded") | {key: .step, value: .ts}) | from_entries) as $fin
			| [.[] | select(.type == "step.started") | . as $e | .data.needs[] | select($fin[.] == null or $fin[.] > $e.ts)] | length'
		assert_output 0
	done
}

@test "sched: -j is never exceeded, and it is used" {
	mkdir c
	for i in $(seq 10); do step s$i "$F/busy.sh c 0.1"; done > plan
	run orch-sched -j 3 < plan
	assert_success
	[ "$(cat c/max)" -eq 3 ]
	# the job's concurrency is the default
	rm -rf runs c && mkdir c
	for i in $(seq 6); do step s$i "$F/busy.sh c 0.1" | jq -c '.job.concurrency = 2'; done > plan
	run orch-sched < plan
	assert_success
	[ "$(cat c/max)" -eq 2 ]
}

@test "sched: pools limit their steps and not the others" {
	mkdir p o
	{ for i in $(seq 6); do step p$i "$F/busy.sh p 0.1" '[]' '{"pool": "llm"}'; done
	  for i in $(seq 4); do step o$i "$F/busy.sh o 0.1"; done; } | jq -c '.job.pools = {llm: 2}' > plan
	run orch-sched -j 6 < plan
	assert_success
	[ "$(cat p/max)" -eq 2 ]
	[ "$(cat o/max)" -ge 3 ]
}

@test "sched: higher priority starts first, then plan order" {
	{ step a true | jq -c '.priority = 1'; step b true | jq -c '.priority = 3'
	  step c true | jq -c '.priority = 3'; step d true; } > plan
	run orch-sched -j 1 < plan
	assert_success
	run ev -s '[.[] | select(.type == "step.started") | .step] | join("")'
	assert_output '"bcad"'
}

@test "sched: exit 75, timeouts and foreign signals are retried with backoff; exit 1 and 2 are not" {
	{ step flaky 'echo x >> n; [ $(wc -l < n) -ge 3 ] || exit 75; echo attempt $ORCH_ATTEMPT' '[]' '{"retries": 4}'
	  step bad 'echo x >> b; exit 2' '[]' '{"retries": 4}'
	  step one 'echo x >> o; exit 1' '[]' '{"retries": 4}'
	  step sig 'echo x >> k; kill -9 $$' '[]' '{"retries": 1}'
	  step tmp 'exit 75' '[]' '{"retries": 3}'; } > plan
	run orch-sched -k --backoff-base 0.02 --backoff-max 0.03 < plan
	assert_failure 1
	run jq -r .output runs/j/artifacts/flaky.json
	assert_output 'attempt 3'
	[ "$(wc -l < b)" -eq 1 ] && [ "$(wc -l < o)" -eq 1 ] && [ "$(wc -l < k)" -eq 2 ]
	run ev -s '[.[] | select(.type == "step.failed") | [.step, .data.attempt, .data.will_retry, .data.kind]]
		| group_by(.[0]) | map(map(.[1:] | map(tostring) | join(" ")) | join(","))'
	assert_output '["1 false exit","1 true exit,2 true exit","1 false exit","1 true signal,2 false signal","1 true exit,2 true exit,3 true exit,4 false exit"]'
	# full jitter under the cap: delay <= min(max, base * 2^(attempt-2))
	run ev -s '[.[] | select(.type == "step.retrying") | .data | select(.delay_s > ([0.03, 0.02 * pow(2; .attempt - 2)] | min))] | length'
	assert_output 0
	run ev -s '[.[] | select(.type == "step.retrying")] | length'
	assert_output 6
}

@test "sched: a timeout kills the step's whole process group, grandchild included" {
	step t 'sleep 1000 & echo $! > gc; sleep 1000' '[]' '{"timeout_s": 0.3, "retries": 1}' > plan
	step u 'trap "" TERM; sleep 1000 & echo $! > gc2; sleep 1000' '[]' '{"timeout_s": 0.2}' >> plan
	run timeout 20 orch-sched -k --grace 0.2 --backoff-base 0.01 < plan
	assert_failure 1
	run ev -c 'select(.type == "step.failed") | [.step, .data.kind, .data.attempt, .data.will_retry]'
	assert_line '["t","timeout",1,true]'
	assert_line '["t","timeout",2,false]'
	assert_line '["u","timeout",1,false]'
	gone "$(cat gc)"
	gone "$(cat gc2)"
}

@test "sched: a failure stops new starts and skips its dependants; -k runs the rest" {
	{ step bad 'sleep 0.05; exit 1' | jq -c '.priority = 9'; step dep true '["bad"]'; step dep2 true '["dep"]'
	  step other true; } > plan
	run --separate-stderr orch-sched -j 1 < plan
	assert_failure 1
	assert_output ''
	[ "$stderr" = "orch-sched: j: 1 of 4 steps failed: bad: exited with 1" ]
	run ev -c 'select(.type == "step.skipped") | [.step, .data.reason]'
	assert_output $'["dep","upstream_failed"]\n["dep2","upstream_failed"]'
	run ev -c 'select(.type == "step.started") | .step'
	assert_output '"bad"'
	run ev -c 'select(.type == "job.failed") | .data.error'
	assert_output '"step bad failed"'
	rm -rf runs
	run --separate-stderr orch-sched -j 1 -k < plan
	assert_failure 1
	assert_output '{"step":"other","output":"","exit_code":0}'
	run ev -c 'select(.type == "step.skipped") | [.step, .data.reason]'
	assert_output $'["dep","upstream_failed"]\n["dep2","upstream_failed"]'
}

@test "sched: a failure says the attempt's last stderr line and its log, in the event and the summary" {
	{ step read_a 'cat a.txt'
	  step twice 'if [ "$ORCH_ATTEMPT" = 1 ]; then echo first try >&2; fi; exit 75' '[]' '{"retries": 1}'
	  step cached 'echo the real problem >&2; echo "orch-cache: orch-call exited 1; nothing stored" >&2; exit 1'; } > plan
	run --separate-stderr orch-sched -k --backoff-base 0 < plan
	assert_failure 1
	run ev -rs 'map(select(.type == "step.failed") | .step + ": " + .data.message) | sort[]'
	assert_output - <<-'OUT'
	cached: exited with 1: the real problem (logs/cached.log)
	read_a: exited with 1: cat: a.txt: No such file or directory (logs/read_a.log)
	twice: exited with 75 (temporary failure)
	twice: exited with 75 (temporary failure): first try (logs/twice.log)
	OUT
	run jq -r .steps.read_a.error runs/j/manifest.json
	assert_output 'exited with 1: cat: a.txt: No such file or directory (logs/read_a.log)'
	step read_a 'cat a.txt' > plan1
	run --separate-stderr orch-sched < plan1
	[ "$stderr" = "orch-sched: j: 1 of 1 steps failed: read_a: exited with 1: cat: a.txt: No such file or directory (logs/read_a.log)" ]
}

@test "sched: while a job runs, orch-events status counts its pending steps too" {
	{ step a true; step b 'while [ ! -e go ]; do sleep 0.02; done' '["a"]'; step c true '["b"]'
	  step d true '["c"]'; } > plan
	orch-sched -q < plan > /dev/null 3>&- &
	for i in $(seq 250); do grep -q '"step.started","step":"b"' runs/j/events.jsonl 2>/dev/null && break; sleep 0.02; done
	run orch-events --run runs/j status
	touch go
	wait $!
	assert_output --regexp $'^running\t[0-9]+\t1\t4$'
	run jq -c '[.status, .steps_total]' runs/j/manifest.json
	assert_output '["succeeded",4]'
}

@test "sched: when: false skips a step; its dependants run and see null" {
	{ step a 'echo a' '[]' '{"when": ".inputs.n == 1"}'; step b 'echo b' '[]' '{"when": ".inputs.n == 2"}'
	  step c 'jq -j ".steps | tojson"' '["a","b"]'; } > plan
	run orch-sched < plan
	assert_success
	run ev -c 'select(.type == "step.skipped") | [.step, .data.reason]'
	assert_output '["b","condition"]'
	run jq -r .output runs/j/artifacts/c.json
	assert_output '{"a":{"step":"a","output":"a\n","exit_code":0},"b":null}'
	# a condition that fails at run time fails its step, once
	rm -rf runs
	step e 'echo e' '[]' '{"when": "error(\"no such input\")", "retries": 2}' > plan
	run orch-sched < plan
	assert_failure 1
	run ev -c 'select(.type == "step.failed") | .data | [.kind, .message, .will_retry]'
	assert_output '["condition","when: no such input",false]'
}

@test "sched: prompt steps run --exec CMD" {
	jq -nc '{step: "p", spec: {prompt: "hi"}, job: {job_id: "j"}}' > plan
	run orch-sched --exec 'jq -c "{step, output: .spec.prompt}"' < plan
	assert_success
	assert_output '{"step":"p","output":"hi"}'
}

@test "sched: megabytes of stdout and stderr do not deadlock" {
	step big 'head -c 3000000 /dev/zero | tr "\\0" a; head -c 3000000 /dev/zero | tr "\\0" b >&2' > plan
	step after 'jq -r ".steps.big.output | length"' '["big"]' >> plan
	run timeout 60 orch-sched < plan
	assert_success
	run jq -r .output runs/j/artifacts/after.json
	assert_output 3000000
	[ "$(wc -c < runs/j/logs/big.log)" -eq 3000000 ]
}

@test "sched: --resume skips what succeeded, with the stored results; on a new job it just starts" {
	{ step a 'echo run >> ran; echo A'; step b 'cat > in; [ -e ok ] || exit 1' '["a"]'; } > plan
	run orch-sched --resume < plan
	assert_failure 1
	touch ok
	run orch-sched --resume < plan
	assert_success
	assert_output '{"step":"b","output":"","exit_code":0}'
	[ "$(wc -l < ran)" -eq 1 ]
	run jq -c '.steps.a' in
	assert_output '{"step":"a","output":"A\n","exit_code":0}'
	run ev -c 'select(.type == "step.skipped") | [.step, .data.reason]'
	assert_output '["a","completed"]'
	run ev -c 'select(.type == "job.started") | .data.resume'
	assert_output $'false\ntrue'
	# without --resume everything runs again
	run orch-sched < plan
	assert_success
	[ "$(wc -l < ran)" -eq 2 ]
}

@test "sched: resume after kill -9 at random moments: nothing that succeeded runs again, same results" {
	awk -v f="$F" 'BEGIN { srand(7); n = 12
		for (i = 0; i < n; i++) { needs = ""
			for (j = 0; j < i; j++) if (rand() < 0.3) needs = needs (needs ? "," : "") "\"s" j "\""
			printf "{\"step\":\"s%d\",\"needs\":[%s],\"spec\":{\"run\":\"%s/det.sh ran.log\"},\"job\":{\"job_id\":\"j\"}}\n", i, needs, f } }' > plan
	orch-sched -q --run ref < plan > /dev/null
	for it in 1 2 3 4; do
		rm -rf runs ran.log
		orch-sched -q < plan > /dev/null 3>&- &
		sleep 0.$((RANDOM % 3 + 1)); kill -9 $! 2>/dev/null || true; wait $! || true
		for k in 1 2; do
			orch-sched -q --resume < plan > /dev/null 3>&- &
			sleep 0.$((RANDOM % 2 + 1)); kill -9 $! 2>/dev/null || true; wait $! || true
		done
		run orch-sched -q --resume < plan
		assert_success
		# no step started again after it had succeeded
		run ev -s 'reduce .[] as $e ({ok: {}, bad: []};
			if $e.type == "step.succeeded" then .ok[$e.step] = true
			elif $e.type == "step.started" and .ok[$e.step] then .bad += [$e.step] else . end) | .bad'
		assert_output '[]'
		for s in $(seq 0 11); do cmp ref/artifacts/s$s.json runs/j/artifacts/s$s.json; done
	done
}

@test "sched: a second scheduler on the same run refuses at once; --wait waits" {
	step a 'while [ ! -e go ]; do sleep 0.02; done' > plan
	orch-sched < plan > first.out 3>&- &
	first=$!
	for i in $(seq 200); do grep -q step.started runs/j/events.jsonl 2>/dev/null && break; sleep 0.02; done
	run orch-sched < plan
	assert_failure 75
	assert_output --partial "another orch-sched (pid $first) is running this job"
	orch-sched --wait < plan > second.out 3>&- &
	second=$!
	sleep 0.2
	touch go
	wait $first
	wait $second
	run ev -c 'select(.type == "job.succeeded") | .type'
	assert_output $'"job.succeeded"\n"job.succeeded"'
}

@test "sched: SIGTERM and SIGINT stop cleanly: running steps are killed, exit 143 / 130" {
	{ step a 'sleep 1000 & echo $! > a.pid; sleep 1000'
	  step b 'trap "" TERM; sleep 1000 & echo $! > b.pid; sleep 1000'; step c true '["a"]'; } > plan
	for sig in TERM INT; do
		rm -rf runs a.pid b.pid
		env --default-signal=INT orch-sched --grace 0.3 < plan > out 3>&- &
		pid=$!
		for i in $(seq 200); do [ -s a.pid ] && [ -s b.pid ] && break; sleep 0.02; done
		kill -$sig $pid
		rc=0; wait $pid || rc=$?
		[ $rc -eq $(( 128 + $(kill -l $sig) )) ]
		gone "$(cat a.pid)"
		gone "$(cat b.pid)"
		run ev -c 'select(.type == "job.failed") | .data.error'
		assert_output '"interrupted"'
		run ev -c 'select(.type == "step.failed") | .data.kind' 
		assert_output $'"interrupted"\n"interrupted"'
		run ev -c 'select(.step == "c") | .type'
		assert_output ''
		run jq -r .status runs/j/manifest.json
		assert_output failed
	done
}

@test "sched: a stop signal pending as it begins starts no step (it is taken before the first start)" {
	step a 'touch ran' > plan
	for sig in TERM INT HUP; do
		rm -rf runs ran
		# the signal blocked and pending across exec, as one that came
		# between a driver's fork and orch-sched's first turn
		run python3 -c 'import os, signal, sys
s = getattr(signal, "SIG" + sys.argv[1])
signal.signal(signal.SIGINT, signal.SIG_DFL)
signal.pthread_sigmask(signal.SIG_BLOCK, [s])
os.kill(os.getpid(), s)
os.execvp("orch-sched", ["orch-sched", "-q", "plan"])' "$sig"
		[ "$status" -eq $(( 128 + $(kill -l $sig) )) ]
		[ ! -e ran ]
		run ev -c 'select(.type == "step.started")'
		assert_output ''
		run ev -c 'select(.type == "job.failed") | .data.error'
		assert_output '"interrupted"'
	done
}

@test "sched: plan files as operands, - for stdin" {
	step a 'echo a' > p1
	step b 'echo b' '["a"]' > p2
	run orch-sched -q p1 - < p2
	assert_success
	assert_output $'{"step":"a","output":"a\\n","exit_code":0}\n{"step":"b","output":"b\\n","exit_code":0}'
}

@test "sched: a plan file that cannot be opened is reported, the others read, and nothing runs: exit 1" {
	step a 'echo a > ran' > p1
	echo '{"step": "b", "needs": 1}' > p2
	run orch-sched -q p1 nonesuch
	assert_failure 1
	assert_output --partial 'cannot open nonesuch'
	[ ! -e ran ] && [ ! -e runs ]
	run orch-sched -q nonesuch p2 p1
	assert_failure 2  # an invalid plan line as well: invalid input wins
	assert_output --partial 'cannot open nonesuch'
	assert_output --partial 'p2:1: step b: "needs" is not an array of step ids'
	[ ! -e ran ] && [ ! -e runs ]
}

@test "sched: a second signal kills at once, whatever the grace" {
	step a 'trap "" TERM; echo $$ > a.pid; sleep 1000' > plan
	env --default-signal=INT orch-sched --grace 100 < plan > out 3>&- &
	pid=$!
	for i in $(seq 200); do [ -s a.pid ] && break; sleep 0.02; done
	kill -TERM $pid
	sleep 0.2
	kill -INT $pid
	rc=0; wait $pid || rc=$?
	[ $rc -eq 130 ]
	gone "$(cat a.pid)"
	run ev -c 'select(.type == "step.failed") | .data.kind'
	assert_output '"interrupted"'
}

@test "sched: a terminal gets one live progress line on stderr; -q and pipes get none" {
	command -v script > /dev/null || skip "no script(1)"
	for i in 1 2; do step s$i 'sleep 0.2'; done > plan
	run script -qc "orch-sched < plan > out" /dev/null
	assert_success
	assert_output --partial '[0/2 done, 2 running, 0 failed] 0.0s s1 s2'
	[ "$(wc -l < out)" -eq 2 ]
	rm -rf runs
	run script -qc "orch-sched -q < plan > out" /dev/null
	assert_success
	assert_output ''
	rm -rf runs
	run --separate-stderr orch-sched < plan
	assert_success
	[ -z "$stderr" ]
}

@test "sched: --help, --version, bad options" {
	run orch-sched --help
	assert_success
	assert_output --partial 'usage: orch-sched'
	run orch-sched --version
	assert_output --regexp '^orch-sched [0-9]'
	run orch-sched --bogus
	assert_failure 2
	run orch-sched < /dev/null
	assert_failure 2
}

@test "sched: the man page's examples run" {
	cp "$F"/hello.plan .
	run sh -c "$(man_example orch-sched.1 1)"
	assert_success
	assert_output $'{"step":"greet","output":"hello\\n","exit_code":0}\n{"step":"shout","output":"HELLO\\n","exit_code":0}'
	run sh -c "$(man_example orch-sched.1 2)"
	assert_success
	assert_output ''
	run sh -c "$(man_example orch-sched.1 3)"
	assert_success
	assert_output $'["step.skipped","greet","completed"]\n["step.skipped","shout","completed"]'
	run sh -c "$(man_example orch-sched.1 4)"
	assert_success
	assert_output 'HELLO'
}

@test "sched: several failed steps are each named on stderr, after the count" {
	printf '%s\n' '{"step":"read_a","spec":{"run":"cat a.txt"}}' \
		'{"step":"read_b","spec":{"run":"cat b.txt"}}' '{"step":"c","needs":["read_a"],"spec":{"run":"true"}}' > p
	run --separate-stderr orch-sched -k --run r p
	[ "$status" -eq 1 ]
	[ "${stderr_lines[0]}" = "orch-sched: r: 2 of 3 steps failed:" ]
	[ "${#stderr_lines[@]}" -eq 3 ]  # then one line each, in the order they failed
	run sort <<<"$stderr"
	assert_line --index 0 "orch-sched:   read_a: exited with 1: cat: a.txt: No such file or directory (logs/read_a.log)"
	assert_line --index 1 "orch-sched:   read_b: exited with 1: cat: b.txt: No such file or directory (logs/read_b.log)"
}
