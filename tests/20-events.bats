#!/usr/bin/env bats
# orch-events: the append-only event log
load helper

setup() {
	orch_setup
	export ORCH_RUN_DIR=$BATS_TEST_TMPDIR/runs/demo
}

TS_RE='[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z'

# a small but complete job's events
fill() {
	orch-events emit job.started --data '{"project":"demo","provider":"echo","task":"t","resume":false}'
	orch-events emit step.started --step architect --data '{"needs":[],"attempt":1}'
	orch-events emit llm.request --step architect --data '{"provider":"echo","model":"m","prompt_tokens":12}'
	orch-events emit llm.response --step architect --data '{"provider":"echo","model":"m","duration_s":0.25,"tokens":{"prompt":12,"completion":30},"success":true}'
	orch-events emit cache.miss --step architect --data '{"cache_key":"abc"}'
	orch-events emit step.succeeded --step architect --data '{"duration_s":1.5,"provider_calls":1}'
	orch-events emit step.started --step builder --data '{"needs":["architect"],"attempt":1}'
	orch-events emit step.failed --step builder --level WARN --data '{"kind":"exit","message":"exit 75","attempt":1,"will_retry":true}'
	orch-events emit step.started --step builder --data '{"needs":["architect"],"attempt":2}'
	orch-events emit cache.hit --step builder --data '{"cache_key":"def"}'
	orch-events emit file.written --step builder --data '{"path":"app/main.py","sha256":"00","size_bytes":3,"wrote":true,"reason":"created"}'
	orch-events emit step.succeeded --step builder --data '{"duration_s":0.5,"provider_calls":0}'
	orch-events emit job.succeeded --data '{"duration_s":2.5,"artifacts":["architect","builder"]}'
}

@test "events: emit writes the schema 2.1 line, keys in order, compact" {
	run orch-events emit step.started --step architect --data '{"needs":[],"attempt":1}'
	assert_success
	assert_output ""
	run cat "$ORCH_RUN_DIR/events.jsonl"
	assert_output --regexp "^\{\"ts\":\"$TS_RE\",\"level\":\"INFO\",\"job_id\":\"demo\",\"type\":\"step.started\",\"step\":\"architect\",\"data\":\{\"needs\":\[\],\"attempt\":1\}\}$"
	run stat -c %a "$ORCH_RUN_DIR"
	assert_output 700
}

@test "events: emit without step or data, ORCH_JOB_ID and ORCH_STEP from the environment" {
	ORCH_JOB_ID=todo ORCH_STEP=qa orch-events emit job.cancelled --level ERROR
	run cat "$ORCH_RUN_DIR/events.jsonl"
	assert_output --regexp "^\{\"ts\":\"$TS_RE\",\"level\":\"ERROR\",\"job_id\":\"todo\",\"type\":\"job.cancelled\",\"step\":\"qa\"\}$"
}

@test "events: emit refuses bad input with exit 2 and writes nothing" {
	run orch-events emit 'Bad Type'
	assert_failure 2
	run orch-events emit x.y --level DEBUG
	assert_failure 2
	run orch-events emit x.y --data '[1,2]'
	assert_failure 2
	assert_output "orch-events: --data must be a JSON object"
	run orch-events emit x.y --data '{"a":'
	assert_failure 2
	assert_output --partial "orch-events: --data: "
	run orch-events emit x.y --step '../x'
	assert_failure 2
	[ ! -e "$ORCH_RUN_DIR/events.jsonl" ]
	unset ORCH_RUN_DIR
	run orch-events emit x.y
	assert_failure 2
	assert_output "orch-events: no run folder: give --run DIR or set ORCH_RUN_DIR"
	run orch-events bogus
	assert_failure 2
	run orch-events
	assert_failure 2
}

@test "events: --run DIR wins over ORCH_RUN_DIR" {
	orch-events --run other emit a.b
	[ -s other/events.jsonl ]
	[ ! -e "$ORCH_RUN_DIR/events.jsonl" ]
	run jq -r .job_id other/events.jsonl
	assert_output other
}

@test "events: 8 concurrent writers x 10,000 events: 80,000 whole lines, none torn" {
	for w in 1 2 3 4 5 6 7 8; do
		awk -v w=$w 'BEGIN { for (i = 0; i < 10000; i++)
			printf "{\"type\":\"test.tick\",\"step\":\"w%d\",\"data\":{\"i\":%d,\"pad\":\"%0300d\"}}\n", w, i, 0 }' |
			orch-events emit - &
	done
	wait
	run wc -l < "$ORCH_RUN_DIR/events.jsonl"
	assert_output 80000
	run sh -c 'jq -c "select(.type == \"test.tick\") | .data.i" "$ORCH_RUN_DIR/events.jsonl" | wc -l'
	assert_output 80000
	# every writer's events are all there, in its own order
	run sh -c 'jq -r "select(.step == \"w5\") | .data.i" "$ORCH_RUN_DIR/events.jsonl" | awk "\$1 != NR - 1 { bad++ } END { print NR, bad + 0 }"'
	assert_output "10000 0"
}

@test "events: the seed's recipes work on emitted events" {
	fill
	cd "$ORCH_RUN_DIR"
	run sh -c "grep '\"type\":\"llm.response\"' events.jsonl | jq -c '.data.tokens'"
	assert_success
	assert_output '{"prompt":12,"completion":30}'
	run jq -r 'select(.type=="llm.response") | .data.duration_s' events.jsonl
	assert_success
	assert_output 0.25
}

@test "events: tail filters by type glob, step, level, since and jq; filters combine" {
	fill
	run orch-events tail
	assert_success
	assert_equal "${#lines[@]}" 13
	run sh -c "orch-events tail --type 'step.*' | jq -r .type | sort | uniq -c | awk '{print \$2, \$1}'"
	assert_output $'step.failed 1\nstep.started 3\nstep.succeeded 2'
	run sh -c "orch-events tail --type 'step.s*' --step builder | jq -r '.type + \" \" + (.data.attempt // \"-\" | tostring)'"
	assert_output $'step.started 1\nstep.started 2\nstep.succeeded -'
	run sh -c "orch-events tail --level WARN | jq -r .type"
	assert_output step.failed
	run sh -c "orch-events tail --jq '.data.duration_s? > 1' | jq -r .type"
	assert_output $'step.succeeded\njob.succeeded'
	run sh -c "orch-events tail --type cache.hit --jq '.step == \"builder\"' | jq -r .data.cache_key"
	assert_output def
	run orch-events tail --since 1h
	assert_equal "${#lines[@]}" 13
	run orch-events tail --since 2099-01-01
	assert_output ""
	run orch-events tail --since yesterday
	assert_failure 2
	run orch-events tail --jq '.a |'
	assert_failure 2
	assert_output --partial "orch-events: --jq: syntax error"
}

@test "events: tail --text is one readable line per event" {
	fill
	run sh -c "orch-events tail --text --type step.failed"
	assert_output --regexp "^$TS_RE WARN  step.failed +builder kind=exit message=exit 75 attempt=1 will_retry=true$"
}

@test "events: a torn or invalid line is reported with its number and skipped" {
	orch-events emit a.one
	printf '{"ts":"2025-01-01T00:00:00.000Z","level":"INFO","job_id":"demo","type":"a.t' >> "$ORCH_RUN_DIR/events.jsonl"
	orch-events emit a.two            # the torn line is left alone, this one whole
	echo 'garbage' >> "$ORCH_RUN_DIR/events.jsonl"
	orch-events emit a.three
	run --separate-stderr orch-events tail
	assert_success
	run jq -r .type <<<"$output"
	assert_output $'a.one\na.two\na.three'
	assert_equal "$stderr" "$(printf 'orch-events: %s:2: not an event, skipped\norch-events: %s:4: not an event, skipped' "$ORCH_RUN_DIR/events.jsonl" "$ORCH_RUN_DIR/events.jsonl")"
	run orch-events stats --json
	assert_success
}

@test "events: tail -f follows, also when the log appears only after it starts" {
	orch-events tail -f --type 'x.*' > out 2>err &
	pid=$!
	sleep 0.3
	orch-events emit x.first
	orch-events emit y.other
	orch-events emit x.second
	for i in $(seq 50); do [ "$(wc -l < out)" -ge 2 ] && break; sleep 0.1; done
	kill $pid
	wait $pid || true
	run jq -r .type out
	assert_output $'x.first\nx.second'
}

@test "events: stats, text and --json" {
	fill
	run orch-events stats
	assert_success
	assert_line --index 0 --regexp '^job demo: succeeded in 2\.5s \(started .*\)$'
	assert_line --regexp '^architect +succeeded +1 +1\.50s +1$'
	assert_line --regexp '^builder +succeeded +2 +0\.50s +0$'
	assert_line "llm: 1 calls, 0 failed, 12 prompt + 30 completion tokens, 0.25s"
	assert_line "cache: 1 hits, 1 misses (hit rate 50%)"
	assert_line "files: 1 written, 0 unchanged"
	run sh -c 'orch-events stats --json | jq -c "[.status, .steps.builder.attempts, .cache.hit_rate, .files.paths, .llm.completion_tokens]"'
	assert_output '["succeeded",2,0.5,["app/main.py"],30]'
}

@test "events: status is one line for orch ls; failed names each failed step and its error" {
	fill
	run orch-events status
	assert_success
	assert_output --regexp $'^succeeded\t[0-9]+\t2\t2$'
	orch-events emit job.started --data '{"resume":true}'
	orch-events emit step.skipped --step docs
	orch-events emit step.failed --step qa --data '{"message":"exit 1\ttwo\nlines","will_retry":false}'
	orch-events emit step.failed --step lint --data '{"will_retry":false}'
	orch-events emit step.failed --step retried --data '{"message":"exit 75","will_retry":true}'
	run orch-events status
	assert_output --regexp $'^running\t[0-9]+\t3\t6$'
	run orch-events failed
	assert_success
	assert_output $'qa\texit 1 two lines\nlint\tfailed'
	# a fresh log: no start, no steps
	run orch-events --run "$BATS_TEST_TMPDIR/none" status
	assert_output $'pending\t-\t0\t0'
	run orch-events --run "$BATS_TEST_TMPDIR/none" failed
	assert_success
	assert_output ''
	# the age counts from the start
	mkdir -p old
	printf '%s\n' '{"ts":"2020-01-01T00:00:00.500Z","level":"INFO","type":"job.started","job_id":"old","step":"","data":{}}' > old/events.jsonl
	run orch-events --run old status
	[ "$(cut -f2 <<<"$output")" -ge $(( $(date +%s) - $(date -d 2020-01-01T00:00:00Z +%s) - 5 )) ]
}

@test "events: completed lists what resume skips; a fresh job.started starts again" {
	fill
	run orch-events completed
	assert_output $'architect\nbuilder'
	orch-events emit job.started --data '{"resume":true}'
	run orch-events completed
	assert_output $'architect\nbuilder'
	orch-events emit job.started --data '{"resume":false}'
	orch-events emit step.succeeded --step qa
	run orch-events completed
	assert_output qa
}

@test "events: manifest is derived and written atomically" {
	fill
	run orch-events manifest
	assert_success
	run jq -c '[.job_id, .status, .duration_s, (.steps | keys), .steps.architect.artifact]' "$ORCH_RUN_DIR/manifest.json"
	assert_output '["demo","succeeded",2.5,["architect","builder"],"artifacts/architect.json"]'
	run sh -c 'ls -a "$ORCH_RUN_DIR" | grep -c tmp'
	assert_output 0
}

@test "events: --help and --version" {
	run orch-events --help
	assert_success
	assert_output --partial "usage: orch-events"
	run orch-events --version
	assert_output --regexp '^orch-events [0-9.]+$'
}

@test "events: the man page's examples run and print what the page shows" {
	unset ORCH_RUN_DIR
	for n in 1 2 3 4 5 6 7; do
		cmd=$(man_example orch-events.1 $n)
		[ -n "$cmd" ]
		run sh -c "$cmd 2>&1"
		assert_success
		assert_output "$(man_expected orch-events.1 $n)"
	done
}

@test "events: orch-events(5)'s examples print what the page shows" {
	for s in architect builder docs qa; do
		orch-events emit step.started --step $s --data '{"needs":[],"attempt":1}'
	done
	orch-events emit llm.response --step architect --data '{"provider":"echo","model":"echo","duration_s":0.001,"tokens":{"prompt":1,"completion":1},"success":true}'
	orch-events emit file.written --step builder --data '{"path":"app/main.py","sha256":"0","size_bytes":1,"wrote":true,"reason":"created"}'
	cd "$ORCH_RUN_DIR"
	for n in 1 2 3; do
		run sh -c "$(man_example orch-events.5 $n)"
		assert_success
		assert_output "$(man_expected orch-events.5 $n)"
	done
}

@test "events: fuzz findings: RS and NUL bytes are refused, no abort, no leak" {
	run orch-events emit - < "$BATS_TEST_DIRNAME/fixtures/fuzz/records-rs.ndjson"
	assert_failure 2
	run orch-events emit - < "$BATS_TEST_DIRNAME/fixtures/fuzz/records-nul.ndjson"
	assert_failure 2
	assert_output "orch-events: <stdin>:1: a NUL byte in the input"
	mkdir -p "$ORCH_RUN_DIR"
	{ orch-events emit a.b; cat "$BATS_TEST_DIRNAME/fixtures/fuzz/records-nul.ndjson" >> "$ORCH_RUN_DIR/events.jsonl"; orch-events emit c.d; }
	run --separate-stderr orch-events tail
	assert_success
	assert_equal "$(jq -r .type <<<"$output" | tr '\n' ' ')" "a.b c.d "
}

@test "events: a record on a pipe is handled when it arrives, not when the pipe fills" {
	mkfifo in
	orch-events emit - < in &
	pid=$!
	exec 4> in
	echo '{"type":"a.first"}' >&4
	for i in $(seq 50); do [ -s "$ORCH_RUN_DIR/events.jsonl" ] && break; sleep 0.1; done
	run jq -r .type "$ORCH_RUN_DIR/events.jsonl"
	assert_output a.first
	exec 4>&-
	wait $pid
}

@test "events: lines are byte for byte what libjq prints (the fast serializer)" {
	data='{"s":"tab\there \"q\" back\\slash nl\n cr\r bs\b ff\f nul-ish \u0001 \u001f del \u007f é ☃ 🚀","n":[0,-0,1,-1,0.1,1.5e-7,123456789012345,1e15,1e17,-2.5e300,3.141592653589793],"e":{},"a":[],"t":true,"f":false,"z":null,"deep":{"a":{"b":[{"c":"d"}]}}}'
	orch-events emit t.x --data "$data"
	jq -c . "$ORCH_RUN_DIR/events.jsonl" > ref
	run cmp "$ORCH_RUN_DIR/events.jsonl" ref
	assert_success
	run jq -c .data.n "$ORCH_RUN_DIR/events.jsonl"
	assert_output '[0,-0,1,-1,0.1,1.5e-07,123456789012345,1000000000000000,1e+17,-2.5e+300,3.141592653589793]'
}

@test "events: a line that looks like ours but is not JSON is still reported, not printed" {
	orch-events emit a.b
	printf '%s\n' '{"ts":"2026-01-01T00:00:00.000Z","level":"INFO","job_id":"demo","type":"a.b","data":{"x":tru}}' >> "$ORCH_RUN_DIR/events.jsonl"
	printf '%s\n' '{"ts":"2026-01-01T00:00:00.000Z","level":"INFO","job_id":"demo","type":"a.b","data":{"s":"\x"}}' >> "$ORCH_RUN_DIR/events.jsonl"
	printf '%s\n' '{"ts":"2026-01-01T00:00:00.000Z","level":"INFO","job_id":"demo","type":"a.b"} trailing' >> "$ORCH_RUN_DIR/events.jsonl"
	orch-events emit a.b
	run --separate-stderr orch-events tail --type a.b
	assert_success
	assert_equal "$(wc -l <<<"$output")" 2
	run jq -c . <<<"$output"
	assert_success
	assert_equal "${#stderr_lines[@]}" 3
	assert_equal "${stderr_lines[0]}" "orch-events: $ORCH_RUN_DIR/events.jsonl:2: not an event, skipped"
}

@test "events: input errors name the program and the right line" {
	run orch-events --bogus
	assert_failure 2
	assert_line --index 0 "orch-events: unrecognized option '--bogus'"
	run sh -c "printf 'garbage\n' | orch-events emit -"
	assert_failure 2
	assert_output "orch-events: <stdin>:1: Invalid numeric literal"
	run sh -c "printf '{\"type\":\"a.b\"}\n{\"type\": tru}\n' | orch-events emit -"
	assert_failure 2
	assert_output "orch-events: <stdin>:2:13: Invalid literal"
}

@test "events: emit - appends the valid records, names the invalid one, and exits 2" {
	run sh -c 'printf "%s\n" "{\"type\":\"a.one\"}" "{\"type\":\"Bad Type\"}" "{\"type\":\"a.two\",\"data\":[1]}" "{\"type\":\"a.three\"}" | orch-events emit -'
	assert_failure 2
	assert_line "orch-events: <stdin>: record 2: not an event {\"type\",\"step\",\"level\",\"data\":{}}: skipped"
	assert_line "orch-events: <stdin>: record 3: not an event {\"type\",\"step\",\"level\",\"data\":{}}: skipped"
	run jq -r .type "$ORCH_RUN_DIR/events.jsonl"
	assert_output $'a.one\na.three'
}

@test "events: the manifest and status count every step of the plan, pending ones included; skips keep their reason" {
	orch-events emit job.started --data '{"project":"demo","resume":false,"steps":4}'
	orch-events emit step.started --step a --data '{"needs":[],"attempt":1}'
	orch-events emit step.succeeded --step a --data '{"duration_s":0.1}'
	orch-events emit step.started --step b --data '{"needs":["a"],"attempt":1}'
	run orch-events status
	assert_output --regexp $'^running\t[0-9]+\t1\t4$'
	run orch-events manifest
	run jq -c '[.steps_total, (.steps | length)]' "$ORCH_RUN_DIR/manifest.json"
	assert_output '[4,2]'
	orch-events emit step.failed --step b --data '{"kind":"exit","message":"exited with 1","will_retry":false}'
	orch-events emit step.skipped --step c --data '{"reason":"upstream_failed","failed":"b"}'
	orch-events emit step.skipped --step d --data '{"reason":"condition"}'
	orch-events emit job.failed --data '{"error":"step b failed"}'
	# resumed: a is completed, c runs this time
	orch-events emit job.started --data '{"resume":true,"steps":4}'
	orch-events emit step.skipped --step a --data '{"reason":"completed"}'
	orch-events emit step.started --step c --data '{"needs":["b"],"attempt":1}'
	orch-events manifest
	run jq -c '.steps | map_values([.status, .reason])' "$ORCH_RUN_DIR/manifest.json"
	assert_output '{"a":["skipped","completed"],"b":["failed",null],"c":["running",null],"d":["skipped","condition"]}'
	run orch-events status
	assert_output --regexp $'^running\t[0-9]+\t2\t4$'
}
