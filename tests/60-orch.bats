#!/usr/bin/env bats
# orch: the driver, end to end (orch-plan | orch-sched --exec 'orch step')
load helper

EX=$ORCH_SRC/examples

setup() {
	orch_setup
	export NO_PROXY=127.0.0.1,localhost no_proxy=127.0.0.1,localhost
	unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy
}

teardown() {
	# whatever a test started in its own session (setsid), and the fake server
	for f in sid.*; do
		[ -f "$f" ] && pkill -9 -s "$(cat "$f")" 2>/dev/null
	done
	[ -f fake.pid ] && kill "$(cat fake.pid)" 2>/dev/null
	true
}

# bg NAME CMD...: run CMD in the background in a new session (so in its
# own process group): the session id goes to sid.NAME, the pid to wait
# for to pid.NAME.
bg() {
	local name=$1
	shift
	setsid -w sh -c 'echo $$ > "$0.tmp" && mv "$0.tmp" "$0" && exec "$@"' "sid.$name" "$@" \
		> "out.$name" 2> "err.$name" &
	echo $! > "pid.$name"
	wait_for test -s "sid.$name"
}

# wait_for CMD...: until CMD succeeds, at most 10 s.
wait_for() {
	local i
	for i in $(seq 200); do
		"$@" && return 0
		sleep 0.05
	done
	echo "timed out waiting for: $*" >&2
	return 1
}

# session_gone SID: no live process left in that session (a zombie waits
# for whoever adopted it, which may take its time)
session_gone() { ! ps -o stat= -s "$1" | grep -q '^[^Z]'; }
# sched_gone SID: no live orch-sched left in that session (SIGKILL is
# delivered at once, but the process takes a moment to end)
sched_gone() { ! ps -o stat=,comm= -s "$1" | grep -q '^[^Z].*orch-sched'; }

# events of run $1 since its last fresh start (job.started without resume)
fresh_events() {
	jq -c '.' "$ORCH_RUNS/$1/events.jsonl" | awk '/"type":"job.started"/ && !/"resume":true/ { n = NR } { l[NR] = $0 } END { for (i = n; i <= NR; i++) print l[i] }'
}

# the kill test's spec: a -> {b, c} -> d, each answer 20 ms away
kt_spec() {
	cat > kt.yaml <<-'EOF'
	job: kt
	provider: {name: exec, command: "sleep ${SLOW:-0.02}; cat"}
	steps:
	  - id: a
	    prompt: design
	  - id: b
	    needs: [a]
	    files: true
	    prompt: |
	      ```text title="b.txt"
	      b after {{ .steps.a.output }}
	      ```
	  - id: c
	    needs: [a]
	    files: true
	    prompt: |
	      ```text title="sub/c.txt"
	      c after {{ .steps.a.output }}
	      ```
	  - id: d
	    needs: [b, c]
	    files: true
	    prompt: |
	      ```text title="d.txt"
	      {{ .steps.b.files[0].sha256 }} {{ .steps.c.files[0].sha256 }}
	      ```
	EOF
}

# ---- usage ----

@test "orch: --help, --version, and bad usage exits 2" {
	run orch --help
	assert_success
	assert_line --partial 'usage: orch run SPEC'
	run orch --version
	assert_success
	assert_output --regexp '^orch [0-9]+\.[0-9]+\.[0-9]+$'
	run orch frobnicate
	[ "$status" -eq 2 ]
	run orch run
	[ "$status" -eq 2 ]
	run orch run "$EX/todo-app.yaml" --no-such-flag
	[ "$status" -eq 2 ]
	[ ! -e runs ]
}

@test "orch run: a bad spec exits 2, lists its problems, creates nothing" {
	printf 'job: bad\nsteps:\n  - id: a\n    neeeds: [b]\n    prompt: hi\n' > bad.yaml
	run --separate-stderr orch run bad.yaml
	[ "$status" -eq 2 ]
	[[ "$stderr" == *"bad.yaml:4:"* ]]
	[ ! -e "$ORCH_RUNS" ]
}

# ---- the example, end to end ----

@test "orch run: the todo-app example runs offline end to end" {
	run --separate-stderr orch run "$EX/todo-app.yaml"
	assert_success
	assert_output "$ORCH_RUNS/todo-app"
	R=$ORCH_RUNS/todo-app
	# outputs: builder's code, docs' README
	[ -s "$R/outputs/todo.py" ] && [ -s "$R/outputs/test_todo.py" ] && [ -s "$R/outputs/README.md" ]
	# the spec as given, a log and an artifact per step
	cmp "$EX/todo-app.yaml" "$R/inputs/spec.yaml"
	for s in architect builder docs qa triage; do
		[ -f "$R/logs/$s.log" ] && [ -s "$R/artifacts/$s.json" ]
	done
	run jq -r '.status' "$R/manifest.json"
	assert_output succeeded
	run jq -r '[.steps[].status] | unique | join(",")' "$R/manifest.json"
	assert_output succeeded
	run jq -r 'select(.type == "job.succeeded") | .job_id' "$R/events.jsonl"
	assert_output todo-app
	run jq -sc '[.[] | select(.type == "step.succeeded") | .step] | sort' "$R/events.jsonl"
	assert_output '["architect","builder","docs","qa","triage"]'
	run jq -sc '[.[] | select(.type == "file.written") | .data.path] | sort' "$R/events.jsonl"
	assert_output '["README.md","test_todo.py","todo.py"]'
	# qa saw what builder and docs wrote
	run jq -r '.output' "$R/artifacts/qa.json"
	assert_output --partial 'todo.py, test_todo.py, README.md'
	# its report, checked against its schema, and triage's count of it
	run jq -c '.json.defects | map([.file, .line, .severity])' "$R/artifacts/qa.json"
	assert_output '[["todo.py",34,"minor"],["README.md",4,"minor"]]'
	run jq -r '.output' "$R/artifacts/triage.json"
	assert_output 'minor: 2'
	# and the generated program works
	cd "$R/outputs"
	run env PYTHONDONTWRITEBYTECODE=1 python3 -m unittest -q test_todo
	assert_success
}

@test "orch run: a second run is all cache hits and rewrites no file" {
	orch run "$EX/todo-app.yaml" > /dev/null
	R=$ORCH_RUNS/todo-app
	touch -d '2001-01-01 00:00:00' "$R"/outputs/*
	before=$(stat -c '%n %Y' "$R"/outputs/*)
	run orch run "$EX/todo-app.yaml"
	assert_success
	fresh_events todo-app > ev
	run jq -sc '[(map(select(.type == "cache.hit")) | length), (map(select(.type == "cache.miss")) | length),
	             (map(select(.type == "llm.request")) | length)]' ev
	assert_output '[4,0,0]'
	run jq -sc 'map(select(.type == "file.written") | .data.wrote) | unique' ev
	assert_output '[false]'
	[ "$(stat -c '%n %Y' "$R"/outputs/*)" = "$before" ]
	run jq -sc '[.[] | select(.type == "step.succeeded") | .step] | length' ev
	assert_output 5
}

@test "orch run --provider/--model override the spec's provider for every step" {
	sed 's/^provider: {name: echo}/provider: {name: ollama, model: llama3}/' "$EX/todo-app.yaml" > ol.yaml
	grep -q '^provider: {name: ollama' ol.yaml
	export OLLAMA_HOST=127.0.0.1:1  # nothing there: an ollama call would fail
	run orch run ol.yaml --provider echo --model parrot
	assert_success
	run jq -r 'select(.type == "llm.request") | "\(.data.provider) \(.data.model)"' "$ORCH_RUNS/todo-app/events.jsonl"
	assert_output $'echo parrot\necho parrot\necho parrot\necho parrot'
}

@test "orch run: a spec on stdin, -j 1, and results that reach dependants" {
	kt_spec
	run orch run - -j 1 < kt.yaml
	assert_success
	[ "$(cat "$ORCH_RUNS/kt/outputs/b.txt")" = "b after design" ]
	cmp kt.yaml "$ORCH_RUNS/kt/inputs/spec.yaml"
	b=$(sha256sum < "$ORCH_RUNS/kt/outputs/b.txt") c=$(sha256sum < "$ORCH_RUNS/kt/outputs/sub/c.txt")
	[ "$(cat "$ORCH_RUNS/kt/outputs/d.txt")" = "${b%% *} ${c%% *}" ]
	run jq -r 'select(.type == "job.started") | .data.jobs' "$ORCH_RUNS/kt/events.jsonl"
	assert_output 1
}

@test "orch run: a run: step tests the generated code, when: skips a step" {
	run orch run "$EX/count-words.yaml"
	assert_success
	R=$ORCH_RUNS/count-words
	run jq -r '.output' "$R/artifacts/test.json"
	assert_output 'all tests pass'
	run jq -r 'select(.type == "step.skipped") | "\(.step) \(.data.reason)"' "$R/events.jsonl"
	assert_output 'publish condition'
	run jq -r '.output' "$R/artifacts/review.json"
	assert_output --partial 'all tests pass'
	echo 'print(1)' >> "$R/outputs/count.py"
}

# ---- crashes, outages, locks, cancel ----

@test "orch run: kill -9 of the whole driver at random moments, then --resume: same outputs" {
	kt_spec
	t0=$(date +%s%N)
	ORCH_RUNS=$PWD/ref orch run kt.yaml > /dev/null
	took=$(( ($(date +%s%N) - t0) / 1000000 ))  # ms: the kills fall within it
	for i in $(seq 10); do
		export ORCH_RUNS=$PWD/k$i
		bg "k$i" orch run kt.yaml
		sleep "$(awk -v r="$RANDOM" -v t="$took" 'BEGIN { printf "%.3f", r / 32768 * t / 1000 }')"
		kill -9 -- "-$(cat "sid.k$i")" 2>/dev/null || true
		wait "$(cat "pid.k$i")" 2>/dev/null || true
		wait_for sched_gone "$(cat "sid.k$i")"
		# its scheduler is gone with the manifest saying running: ls says
		# stopped, or, killed between the job's end event and the manifest's
		# last write, how the log says it ended
		if grep -qs '"status":"running"' "$ORCH_RUNS/kt/manifest.json"; then
			run orch ls
			if grep -qs '"type":"job\.succeeded"' "$ORCH_RUNS/kt/events.jsonl"; then
				assert_line --regexp '^kt +succeeded '
			else
				assert_line --regexp '^kt +stopped '
			fi
		fi
		run orch run kt.yaml --resume
		assert_success
		wait_for session_gone "$(cat "sid.k$i")"  # orphaned steps end by themselves
		diff -r "$PWD/ref/kt/outputs" "$ORCH_RUNS/kt/outputs"
		grep -q '^{"job_id":"kt","status":"succeeded"' "$ORCH_RUNS/kt/manifest.json"
		# every step succeeded once in this (fresh, then resumed) run
		run sh -c "grep -o '\"type\":\"step.succeeded\",\"step\":\"[a-z]*\"' '$ORCH_RUNS/kt/events.jsonl' | sort | uniq -c | awk '{ print \$1 }'"
		assert_output $'1\n1\n1\n1'
	done
}

@test "orch run: a provider that is down fails with a one-line reason; --resume finishes later" {
	# a port that is bound but not listening: connections are refused, and
	# no other test can take it until the server comes back on it
	python3 -c 'import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 0)); open("port", "w").write("%d\n" % s.getsockname()[1])
time.sleep(60)' 3>&- &
	echo $! > fake.pid
	wait_for test -s port
	PORT=$(cat port)
	export OLLAMA_HOST=127.0.0.1:$PORT ORCH_CALL_FLAGS='--retries 0'
	sed -e 's/^provider: {name: echo}/provider: {name: ollama, model: llama3}/' \
		-e 's/retries: 2/retries: 0/' "$EX/todo-app.yaml" > ol.yaml
	# architect answers offline; the others need the server
	sed -i '/^  - id: architect/a\    provider: {name: echo}' ol.yaml
	run --separate-stderr orch run ol.yaml
	[ "$status" -eq 1 ]
	run grep '^orch-sched:   ' <<<"$stderr"
	assert_line --regexp '^orch-sched:   (builder|docs): exited with 75 \(temporary failure\): orch-call: step (builder|docs): ollama: .* \(logs/(builder|docs)\.log\)$'
	run jq -r '.steps.architect.status' "$ORCH_RUNS/todo-app/manifest.json"
	assert_output succeeded
	# the server is back
	kill "$(cat fake.pid)"
	wait "$(cat fake.pid)" 2>/dev/null || true
	"$ORCH_SRC/tests/fakeprovider" --port "$PORT" --portfile port2 3>&- &
	echo $! > fake.pid
	wait_for test -s port2
	run orch run ol.yaml --resume
	assert_success
	run jq -r 'select(.type == "step.skipped" and .data.reason == "completed") | .step' "$ORCH_RUNS/todo-app/events.jsonl"
	assert_output architect
	run sh -c "jq -r 'select(.type == \"step.succeeded\") | .step' '$ORCH_RUNS/todo-app/events.jsonl' | sort | uniq -c | awk '{print \$1}' | sort -u"
	assert_output 1
	[ -s "$ORCH_RUNS/todo-app/outputs/todo.py" ] && [ -s "$ORCH_RUNS/todo-app/outputs/README.md" ]
	run jq -c '.json' "$ORCH_RUNS/todo-app/artifacts/qa.json"
	assert_output '{"defects":[{"file":"x","line":1,"severity":"critical","text":"x"}]}'
}

@test "orch run: a second run of a running job refuses; orch cancel stops it cleanly" {
	kt_spec
	export SLOW=30
	bg one orch run kt.yaml
	wait_for grep -q '"type":"step.started"' "$ORCH_RUNS/kt/events.jsonl"
	# the second refuses at once, and changes nothing
	{ echo '# another spec of job kt'; cat kt.yaml; } > other.yaml
	run --separate-stderr orch run other.yaml
	[ "$status" -eq 75 ]
	[[ "$stderr" == *"kt is running"* ]]
	cmp kt.yaml "$ORCH_RUNS/kt/inputs/spec.yaml"
	run grep -c '"type":"job.started"' "$ORCH_RUNS/kt/events.jsonl"
	assert_output 1
	run orch ls
	assert_line --regexp '^kt +running '
	# cancel: the scheduler stops its steps and records it
	run orch cancel kt
	assert_success
	wait "$(cat pid.one)" || [ $? -eq 143 ]
	wait_for session_gone "$(cat sid.one)"
	run jq -r 'select(.type == "job.failed") | .data.error' "$ORCH_RUNS/kt/events.jsonl"
	assert_output interrupted
	run jq -r '.status' "$ORCH_RUNS/kt/manifest.json"
	assert_output cancelled
	run orch ls
	assert_line --regexp '^kt +cancelled '
	run orch cancel kt
	[ "$status" -eq 1 ]
	# and it resumes to the end
	SLOW=0 run orch run kt.yaml --resume
	assert_success
	[ "$(cat "$ORCH_RUNS/kt/outputs/b.txt")" = "b after design" ]
}

@test "orch run: the driver's exit code is orch-sched's (143 on SIGTERM to the group)" {
	kt_spec
	SLOW=30 bg one orch run kt.yaml
	wait_for grep -q '"type":"step.started"' "$ORCH_RUNS/kt/events.jsonl"
	kill -TERM -- "-$(cat sid.one)"
	status=0
	wait "$(cat pid.one)" || status=$?
	[ "$status" -eq 143 ]
	wait_for session_gone "$(cat sid.one)"
	run jq -r '.status' "$ORCH_RUNS/kt/manifest.json"
	assert_output failed
}

# a job whose one step stops cleanly on SIGTERM: it waits 0.5 s, then
# writes outputs/stopped; a SIGKILL (a second stop) leaves no such file
stop_spec() {
	printf '%s\n' 'job: st' 'steps:' \
		"  - {id: a, run: \"trap 'sleep 0.5; echo clean > \$ORCH_RUN_DIR/outputs/stopped; exit 1' TERM; sleep 30 & wait\"}" \
		'  - {id: b, needs: [a], run: "true"}' > st.yaml
}

@test "orch run: SIGTERM or SIGINT to the driver's pid stops the job cleanly (143, 130)" {
	stop_spec
	for sig in TERM INT; do
		rm -f "$ORCH_RUNS/st/outputs/stopped"
		# a driver started from a script ignores SIGINT (POSIX): give it back
		env --default-signal=INT orch run st.yaml > out 2> err &
		pid=$!
		wait_for grep -q '"type":"step.started"' "$ORCH_RUNS/st/events.jsonl"
		kill -"$sig" "$pid"
		status=0
		wait "$pid" || status=$?
		if [ "$sig" = TERM ]; then [ "$status" -eq 143 ]; else [ "$status" -eq 130 ]; fi
		[ "$(cat "$ORCH_RUNS/st/outputs/stopped")" = clean ]
		run jq -r 'select(.type == "job.failed") | .data.error' "$ORCH_RUNS/st/events.jsonl"
		assert_line interrupted
		rm "$ORCH_RUNS/st/events.jsonl"
	done
	# a signal before orch-sched starts (here while the spec is planned):
	# exit 143, nothing is run. orch-plan itself sends it: a kill just
	# after `orch run &` may reach bash's child before it execs orch, and
	# bash's handler (it has one: an EXIT trap) takes it and exec drops it
	mkdir stopper
	printf '#!/bin/sh\n[ "$1" != --id ] || kill -TERM "$PPID"\nexec %s "$@"\n' \
		"$(command -v orch-plan)" > stopper/orch-plan
	chmod +x stopper/orch-plan
	status=0
	PATH=$PWD/stopper:$PATH orch run st.yaml > out 2> err || status=$?
	[ "$status" -eq 143 ]
	[ ! -e "$ORCH_RUNS/st/events.jsonl" ]
}

@test "orch run: a ^C to the whole process group is one clean stop, not two" {
	stop_spec
	for sig in INT TERM; do
		rm -f "$ORCH_RUNS/st/outputs/stopped"
		bg "$sig" env --default-signal=INT orch run st.yaml
		wait_for grep -q '"type":"step.started"' "$ORCH_RUNS/st/events.jsonl"
		kill -"$sig" -- "-$(cat "sid.$sig")"
		status=0
		wait "$(cat "pid.$sig")" || status=$?
		if [ "$sig" = TERM ]; then [ "$status" -eq 143 ]; else [ "$status" -eq 130 ]; fi
		# a second stop would have sent SIGKILL before the step's 0.5 s
		[ "$(cat "$ORCH_RUNS/st/outputs/stopped")" = clean ]
		rm "$ORCH_RUNS/st/events.jsonl"
	done
}

@test "orch run: a ^C to the whole group, many times over, is always one clean stop" {
	# the group's INT and the one orch run forwards may merge in orch-sched
	# while blocked: that one still counts, and once
	stop_spec
	for i in 1 2 3 4 5; do
		rm -f "$ORCH_RUNS/st/outputs/stopped" "$ORCH_RUNS/st/events.jsonl"
		bg "i$i" env --default-signal=INT orch run st.yaml
		wait_for grep -q '"type":"step.started"' "$ORCH_RUNS/st/events.jsonl"
		kill -INT -- "-$(cat "sid.i$i")"
		status=0
		wait "$(cat "pid.i$i")" || status=$?
		[ "$status" -eq 130 ]
		[ "$(cat "$ORCH_RUNS/st/outputs/stopped")" = clean ]
	done
}

@test "orch run started with SIGINT ignored ignores a ^C to its group, as sh does; TERM still stops it" {
	printf '%s\n' 'job: ig' 'steps:' \
		'  - {id: a, run: "sleep 1; echo done > $ORCH_RUN_DIR/outputs/a"}' > ig.yaml
	bg one env --ignore-signal=INT orch run ig.yaml
	wait_for grep -q '"type":"step.started"' "$ORCH_RUNS/ig/events.jsonl"
	kill -INT -- "-$(cat sid.one)"
	wait "$(cat pid.one)"
	[ "$(cat "$ORCH_RUNS/ig/outputs/a")" = done ]
	grep -q '"type":"job.succeeded"' "$ORCH_RUNS/ig/events.jsonl"
	bg two env --ignore-signal=INT orch run ig.yaml
	second() { [ "$(grep -c '"type":"step.started"' "$ORCH_RUNS/ig/events.jsonl")" -eq 2 ]; }
	wait_for second
	kill -TERM -- "-$(cat sid.two)"
	status=0
	wait "$(cat pid.two)" || status=$?
	[ "$status" -eq 143 ]
}

@test "orch run --wait leaves the running job's spec alone until it holds the lock" {
	kt_spec
	SLOW=0.5 bg one orch run kt.yaml
	wait_for grep -q '"type":"step.started"' "$ORCH_RUNS/kt/events.jsonl"
	{ echo '# the same job, edited'; cat kt.yaml; } > other.yaml
	SLOW=0 bg two orch run other.yaml --wait
	sleep 0.3
	cmp kt.yaml "$ORCH_RUNS/kt/inputs/spec.yaml"
	run grep -c '"type":"job.started"' "$ORCH_RUNS/kt/events.jsonl"
	assert_output 1
	wait "$(cat pid.one)"
	wait "$(cat pid.two)"
	cmp other.yaml "$ORCH_RUNS/kt/inputs/spec.yaml"
	# and orch-sched --spec writes nothing when it is refused (exit 75)
	# (a cache of its own, so that its first step misses and takes 30 s)
	ORCH_CACHE_DIR=$PWD/c3 SLOW=30 bg three orch run kt.yaml
	third() { [ "$(grep -c '"type":"job.started"' "$ORCH_RUNS/kt/events.jsonl")" -eq 3 ]; }
	wait_for third
	run orch-plan kt.yaml
	run orch-sched --spec other.yaml --exec 'orch step' <<<"$output"
	[ "$status" -eq 75 ]
	cmp kt.yaml "$ORCH_RUNS/kt/inputs/spec.yaml"
}

@test "orch run --wait waits for the running job; -k runs what does not need a failure" {
	kt_spec
	SLOW=0.3 bg one orch run kt.yaml
	wait_for grep -q '"type":"step.started"' "$ORCH_RUNS/kt/events.jsonl"
	run orch run kt.yaml --wait
	assert_success
	wait "$(cat pid.one)"
	run grep -c '"type":"job.succeeded"' "$ORCH_RUNS/kt/events.jsonl"
	assert_output 2
	# the second started after the first ended
	run jq -sr '[.[] | select(.type == "job.started" or .type == "job.succeeded") | .type] | join(" ")' "$ORCH_RUNS/kt/events.jsonl"
	assert_output 'job.started job.succeeded job.started job.succeeded'

	printf '%s\n' 'job: kk' 'steps:' '  - {id: bad, run: "exit 3"}' \
		'  - {id: after, needs: [bad], run: "true"}' '  - {id: other, run: "echo ok"}' > kk.yaml
	run --separate-stderr orch run kk.yaml -j 1
	[ "$status" -eq 1 ]
	[[ "$stderr" == *"orch-sched: kk: 1 of 3 steps failed: bad: exited with 3"* ]]
	run jq -r '.steps.other.status // "not run"' "$ORCH_RUNS/kk/manifest.json"
	assert_output 'not run'
	run orch run kk.yaml -j 1 -k
	[ "$status" -eq 1 ]
	run jq -r '[.steps.bad.status, .steps.after.status, .steps.other.status] | join(" ")' "$ORCH_RUNS/kk/manifest.json"
	assert_output 'failed skipped succeeded'
}

# ---- show, tail, ls, step ----

@test "orch show, tail and ls read the run folder" {
	orch run "$EX/todo-app.yaml" > /dev/null
	run orch show todo-app
	assert_success
	assert_line --partial 'succeeded'
	assert_line --regexp '^builder +succeeded'
	run orch show todo-app --json
	assert_success
	run jq -r '.status' <<<"$output"
	assert_output succeeded
	run orch tail todo-app --type 'step.succeeded'
	assert_success
	[ "${#lines[@]}" -eq 5 ]
	assert_line --regexp 'step.succeeded +qa'
	run orch tail todo-app --json --type job.succeeded
	run jq -r '.type' <<<"$output"
	assert_output job.succeeded
	run orch ls
	assert_success
	assert_line --regexp '^todo-app +succeeded +[0-9]+s +5/5$'
	run orch show nope
	[ "$status" -eq 1 ]
	run orch show '../x'
	[ "$status" -eq 1 ]
}

@test "orch show and ls count the plan's steps not yet started; a skipped step says why" {
	printf '%s\n' 'job: pend' 'task: t' 'steps:' '  - {id: a, run: "sleep 2"}' \
		'  - {id: b, needs: [a], run: "true"}' '  - {id: c, needs: [b], when: "false", run: "true"}' \
		'  - {id: d, needs: [a], run: "true"}' > p.yaml
	orch run p.yaml > /dev/null &
	wait_for grep -q '"type":"step.started"' "$ORCH_RUNS/pend/events.jsonl"
	run orch show pend
	assert_line --regexp '^a +running '
	assert_line '3 more steps of the plan not started'
	run orch ls
	assert_line --regexp '^pend +running +[0-9]+s +0/4$'
	wait
	run orch show pend
	assert_line --regexp '^c +skipped \(condition\) '
	refute_line --partial 'not started'
}

@test "orch step: one prompt step, composed by hand with orch-sched" {
	mkdir -p r/outputs
	printf '%s\n' '{"job_id":"h","step":"s","attempt":1,"task":"t","inputs":{},"spec":{"id":"s","files":true,"prompt":"```text title=\"{{ .task }}.txt\"\nhello\n```\n","provider":{"name":"echo"}},"steps":{}}' > in.json
	ORCH_RUN_DIR=$PWD/r ORCH_STEP=s run orch step < in.json
	assert_success
	run jq -c '[.step, (.files | map(.path)), .cache]' <<<"$output"
	assert_output '["s",["t.txt"],"miss"]'
	[ "$(cat r/outputs/t.txt)" = hello ]
	# --no-extract: the same answer, nothing written
	rm r/outputs/t.txt
	ORCH_RUN_DIR=$PWD/r ORCH_STEP=s run orch step --no-extract < in.json
	assert_success
	run jq -c '[.step, .files, .cache]' <<<"$output"
	assert_output '["s",[],"hit"]'
	[ ! -e r/outputs/t.txt ]
	# the step input record decides: "files":false writes nothing; --extract overrides it
	sed 's/"files":true/"files":false/' in.json > in0.json
	ORCH_RUN_DIR=$PWD/r ORCH_STEP=s run orch step < in0.json
	assert_success
	run jq -c '[.step, .files]' <<<"$output"
	assert_output '["s",[]]'
	[ ! -e r/outputs/t.txt ]
	ORCH_RUN_DIR=$PWD/r ORCH_STEP=s run orch step --extract < in0.json
	assert_success
	run jq -c '.files | map(.path)' <<<"$output"
	assert_output '["t.txt"]'
	[ -e r/outputs/t.txt ]
	# without $ORCH_STEP the record names the step
	ORCH_RUN_DIR=$PWD/r run orch step < in.json
	assert_success
	run jq -r .step <<<"$output"
	assert_output s
	run orch step < /dev/null
	[ "$status" -eq 2 ]
}

@test "orch step: a step input of megabytes (its dependencies' results) reaches orch-write whole" {
	mkdir -p r/outputs
	head -c 3000000 /dev/zero | tr '\0' x > big.txt
	printf '%s\n' '{"job_id":"h","step":"s","attempt":1,"task":"t","inputs":{},"spec":{"id":"s","prompt":"```text title=\"{{ .task }}.txt\"\nhello\n```\n","provider":{"name":"echo"}},"steps":{}}' |
		jq -c --rawfile big big.txt '.steps.dep = {step: "dep", output: $big, files: []} | .spec.files = true' > in.json
	[ "$(wc -c < in.json)" -gt 3000000 ]
	ORCH_RUN_DIR=$PWD/r ORCH_STEP=s run orch step < in.json
	assert_success
	run jq -c '[.step, (.files | map(.path))]' <<<"$output"
	assert_output '["s",["t.txt"]]'
	[ "$(cat r/outputs/t.txt)" = hello ]
}

# ---- the other examples ----

@test "examples/Makefile: the second make does nothing; a changed spec runs again" {
	cp "$EX/todo-app.yaml" spec.yaml
	mk() { make -f "$EX/Makefile" ORCH="$ORCH_BIN/orch" SPEC=spec.yaml RUNS="$ORCH_RUNS" "$@"; }
	run mk
	assert_success
	[ -s "$ORCH_RUNS/todo-app/outputs/todo.py" ]
	run mk
	assert_success
	assert_output --partial 'Nothing to be done'
	touch -d '+2 seconds' spec.yaml
	run mk
	assert_success
	assert_output --partial 'orch run spec.yaml'
	run mk check
	assert_success
}

@test "examples/crontab: the job's line runs, and an overlapping run stays quiet" {
	line=$(grep -v '^#' "$EX/crontab" | grep -v '^PATH=' | grep '[^[:space:]]')
	cmd=$(printf '%s\n' "$line" | awk '{ $1 = $2 = $3 = $4 = $5 = ""; sub(/^ +/, ""); print }')
	unset ORCH_RUNS
	mkdir -p "$HOME/jobs"
	cp "$EX/todo-app.yaml" "$HOME/jobs/"
	cd "$HOME/jobs"
	run sh -c "$cmd"
	assert_success
	assert_output ''
	grep -qx 'runs/todo-app' cron.log
	[ -s runs/todo-app/outputs/todo.py ]
	# a failing job: the log's tail is printed (cron mails it)
	printf 'job: todo-app\nsteps:\n  - {id: x, run: "exit 3"}\n' > todo-app.yaml
	run sh -c "$cmd"
	assert_output --partial 'orch-sched: todo-app: 1 of 1 steps failed: x: exited with 3'
}

# ---- the man pages' examples ----

@test "orch(1) examples run" {
	cp -r "$EX" examples
	export ORCH_RUNS=runs
	run sh -c "$(man_example orch.1 1)"
	assert_success
	assert_output "$(man_expected orch.1 1)"
	[ -s runs/todo-app/outputs/todo.py ]
	n=2
	while cmd=$(man_example orch.1 $n) && [ -n "$cmd" ]; do
		run sh -c "$cmd"
		assert_success
		[ -n "$output" ]
		n=$((n + 1))
	done
	[ "$n" -eq 8 ]
	[ -n "$(ls "$HOME/.cache/orch")" ]
}

@test "orch(7) examples run" {
	cp -r "$EX" examples
	export ORCH_RUNS=runs
	run sh -c "$(man_example orch.7 1)"
	assert_success
	assert_output "$(man_expected orch.7 1)"
	n=2
	while cmd=$(man_example orch.7 $n) && [ -n "$cmd" ]; do
		run sh -c "$cmd"
		assert_success
		case $n in
		5 | 8) assert_output "$(man_expected orch.7 $n)" ;;
		7) assert_output --regexp '^[0-9a-f]{64}$' ;;
		9) assert_line --regexp 'cache.hit +architect' ;;
		*) [ "$n" -eq 2 ] || [ -n "$output" ] ;;
		esac
		n=$((n + 1))
	done
	[ "$n" -eq 10 ]
}

@test "orch run: a spec's provider options cannot move the run into another job's folder" {
	cat > forge.yaml <<-'EOF'
	job: real
	provider: {name: echo, opts: {job: {job_id: other}}}
	steps:
	  - {id: a, prompt: hi}
	EOF
	run orch run forge.yaml
	assert_success
	assert_output "$ORCH_RUNS/real"
	[ -s "$ORCH_RUNS/real/artifacts/a.json" ]
	[ ! -e "$ORCH_RUNS/other" ]
}
