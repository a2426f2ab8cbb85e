#!/usr/bin/env bats
# orch-sched's launchers (orch-sched(1) LAUNCHERS), with fake launchers:
# scripts that record their argv and run the rest, as srun would. The real
# Slurm cases are in 90-slurm.bats.
load helper

# step NAME CMD [NEEDS_JSON [SPEC_EXTRA_JSON [JOB_EXTRA_JSON]]]: one plan line, job "j"
step() {
	jq -nc --arg s "$1" --arg run "$2" --argjson needs "${3:-[]}" --argjson x "${4:-{\}}" \
		--argjson j "${5:-{\}}" \
		'{step: $s, needs: $needs, spec: ({id: $s, run: $run} + $x),
		  job: ({job_id: "j", task: "T", inputs: {}} + $j)}'
}

ev() { jq -c "$@" runs/j/events.jsonl; }

setup() {
	orch_setup
	mkdir -p bin
	# bin/launch [-OPTION...] CMD...: records its argv (one line per call),
	# drops its options and runs the rest, like srun; exits 0 whatever the
	# command did (srun, when the node dies under it); LAUNCH_DROP=1: does
	# not run the command at all (a launch that never reached a node)
	cat > bin/launch <<-'EOF'
	#!/bin/sh
	echo "$*" >> "$(dirname "$0")/argv"
	while [ $# -gt 0 ]; do case $1 in -*) shift ;; *) break ;; esac; done
	[ -n "${LAUNCH_DROP:-}" ] && [ ! -e "$(dirname "$0")/dropped" ] && { : > "$(dirname "$0")/dropped"; exit 0; }
	"$@"
	exit 0
	EOF
	# bin/srun: a fake srun for the preset: --test-only answers $SRUN_TEST
	# (default 0) with a message; else as bin/launch
	cat > bin/srun <<-'EOF'
	#!/bin/sh
	echo "$*" >> "$(dirname "$0")/argv"
	case " $* " in *" --test-only "*) [ "${SRUN_TEST:-0}" = 0 ] || echo "srun: error: invalid partition specified: nosuch" >&2; exit "${SRUN_TEST:-0}" ;; esac
	while [ $# -gt 0 ]; do case $1 in -*) shift ;; *) break ;; esac; done
	exec "$@"
	EOF
	chmod +x bin/launch bin/srun
	L=$PWD/bin/launch
}

@test "launch: --launcher runs each step through it, placeholders filled in, the result as run locally" {
	{ step a 'echo hello' '[]' '{"resources": {"cpus": 2, "mem": "1G", "gpus": 1, "time": "90s"}}'
	  step b cat '["a"]'; } > plan
	orch-sched -q < plan > local.out
	rm -rf runs
	run orch-sched -q --launcher "$L -c{cpus} --mem={mem}M --gpus={gpus} -t{time} -m{minutes} -n={step}.{attempt}.{job} -r={run}" < plan
	assert_success
	assert_output "$(cat local.out)"
	run cat bin/argv
	assert_line --index 0 "-c2 --mem=1024M --gpus=1 -t90 -m2 -n=a.1.j -r=$PWD/runs/j $ORCH_BIN/orch-sched --remote-exec $PWD/runs/j a $(jq -r .token runs/j/logs/a.status) -- echo hello"
	# a word whose placeholder has no value (no mem, gpus, time) is left out
	assert_line --index 1 --regexp "^-c1 -n=b.1.j -r=$PWD/runs/j .*/orch-sched --remote-exec $PWD/runs/j b [0-9a-f]{8}\.1 -- cat$"
	run jq -c '[.step, .exit_code, (.token | test("^[0-9a-f]{8}\\.1$")), (.host | length > 0)]' runs/j/logs/a.status
	assert_output '["a",0,true,true]'
}

@test "launch: {runhash} names the run folder, the same on every run of it" {
	step a true > plan
	orch-sched -q --launcher "$L --job-name=orch.{runhash}.{step}" < plan
	orch-sched -q --launcher "$L --job-name=orch.{runhash}.{step}" --run other < plan
	run cut -d' ' -f1 bin/argv
	assert_line --index 0 --regexp '^--job-name=orch\.[0-9a-f]{16}\.a$'
	[ "${lines[0]}" != "${lines[1]}" ]
	rm runs/j/artifacts/a.json
	orch-sched -q --launcher "$L --job-name=orch.{runhash}.{step}" < plan
	run cut -d' ' -f1 bin/argv
	[ "${lines[0]}" = "${lines[2]}" ]
}

@test "launch: a step's launcher over its pool's, over the job's, over --launcher, over ORCH_LAUNCHER; local is none" {
	local job='{"pools": {"big": {"limit": 1, "launcher": "'"$L"' -p"}}, "launcher": "'"$L"' -j"}'
	{ step s 'echo s' '[]' '{"launcher": "'"$L"' -s"}' "$job"
	  step p 'echo p' '[]' '{"pool": "big"}' "$job"
	  step j 'echo j' '[]' '{}' "$job"
	  step l 'echo l' '[]' '{"launcher": "local"}' "$job"; } > plan
	ORCH_LAUNCHER="$L -e" run orch-sched -q -j1 --launcher "$L -o" < plan
	assert_success
	run cut -d' ' -f1,3 bin/argv
	assert_output $'-s --remote-exec\n-p --remote-exec\n-j --remote-exec'
	# with no launcher in the spec: --launcher, else ORCH_LAUNCHER
	rm -rf runs bin/argv
	step a true > plan
	ORCH_LAUNCHER="$L -e" orch-sched -q --launcher "$L -o" < plan
	rm -rf runs
	ORCH_LAUNCHER="$L -e" orch-sched -q < plan
	rm -rf runs
	ORCH_LAUNCHER=local orch-sched -q < plan
	run cut -d' ' -f1 bin/argv
	assert_output $'-o\n-e'
}

@test "launch: the slurm preset is srun with the step's name and resources; --exact -N1 inside an allocation" {
	PATH=$PWD/bin:$PATH
	step a 'echo hi' '[]' '{"resources": {"cpus": 3, "mem": 500}, "timeout_s": 100}' > plan
	run orch-sched -q --launcher slurm < plan
	assert_success
	local h
	h=$(sed -n 's/.*--job-name=orch\.\([0-9a-f]*\)\..*/\1/p' bin/argv | head -n 1)
	run cat bin/argv
	# once at start: --test-only with the step's resources; then the step
	assert_line --index 0 "--test-only --quiet --job-name=orch.$h.a --nodes=1 --ntasks=1 --cpus-per-task=3 --mem=500M --time=2 --export=ALL true"
	assert_line --index 1 --regexp "^--quiet --job-name=orch.$h.a --nodes=1 --ntasks=1 --cpus-per-task=3 --mem=500M --time=2 --export=ALL .*/orch-sched --remote-exec $PWD/runs/j a [0-9a-f.]+ -- echo hi$"
	rm -rf runs bin/argv
	SLURM_JOB_ID=7 orch-sched -q --launcher 'slurm --partition=big' < plan
	run sed -n 2p bin/argv
	assert_output --regexp "^--quiet .* --export=ALL --exact -N1 --partition=big .*/orch-sched --remote-exec"
}

@test "launch: a slurm launcher that srun --test-only refuses is exit 2 at start, before any step" {
	PATH=$PWD/bin:$PATH
	{ step a true; step b true; } > plan
	SRUN_TEST=1 run orch-sched -q --launcher 'slurm -p nosuch' < plan
	assert_failure 2
	assert_output --partial 'step a: the launcher refuses it: srun: error: invalid partition specified: nosuch'
	[ "$(grep -c -- --test-only bin/argv)" -eq 1 ]  # the same resources: checked once
	[ "$(wc -l < bin/argv)" -eq 1 ]
	[ ! -s runs/j/events.jsonl ]
}

@test "launch: the command's own exit status counts, not the launcher's" {
	{ step bad 'exit 3'; step sig 'kill -USR1 $$' '[]' '{"retries": 1}'; } > plan
	run orch-sched -q -k --backoff-base 0 --launcher "$L" < plan
	assert_failure 1
	run ev -s 'map(select(.type == "step.failed") | [.step, .data.kind, .data.exit_code // .data.signal, .data.will_retry]) | sort'
	assert_output '[["bad","exit",3,false],["sig","signal",10,false],["sig","signal",10,true]]'
	run jq -c '[.exit_code, .signal]' runs/j/logs/bad.status runs/j/logs/sig.status
	assert_output $'[3,null]\n[null,10]'
}

@test "launch: no status file from the far side (a lost node): the attempt is lost, retried, and its cut output not stored" {
	step a 'echo whole' '[]' '{"retries": 1}' > plan
	LAUNCH_DROP=1 run orch-sched -q --backoff-base 0 --status-wait 0.2 --launcher "$L" < plan
	assert_success
	run ev -s 'map(select(.type == "step.failed" or .type == "step.succeeded") | [.type, .data.kind, .data.attempt])'
	assert_output '[["step.failed","lost",1],["step.succeeded",null,2]]'
	run ev -r 'select(.type == "step.failed") | .data.message'
	assert_output "lost: $L exited with 0 and the command left no status in logs/a.status (node lost, or the launch failed)"
	run jq -r .output runs/j/artifacts/a.json
	assert_output whole
}

@test "launch: a status file left by an earlier attempt or scheduler does not count" {
	step a 'echo x' > plan
	mkdir -p runs/j/logs
	echo '{"token":"00000000.1","step":"a","exit_code":0}' > runs/j/logs/a.status
	# the launcher runs nothing but leaves that file be (it is removed first)
	LAUNCH_DROP=1 run orch-sched -q --status-wait 0 --launcher "$L" < plan
	assert_failure 1
	run ev -r 'select(.type == "step.failed") | .data.kind'
	assert_output lost
}

@test "launch: a timeout stops the launcher's whole group, and is reported as a timeout" {
	export T=$PWD
	step a 'echo $$ > "$T/pid"; exec sleep 30' '[]' '{"timeout_s": 0.5}' > plan
	local t0=$SECONDS
	run orch-sched -q --grace 1 --launcher "$L" < plan
	assert_failure 1
	[ $((SECONDS - t0)) -lt 5 ]
	run ev -r 'select(.type == "step.failed") | .data.kind'
	assert_output timeout
	# the command (the launcher's grandchild) is gone too: dead, or a
	# zombie that init has yet to reap (it is slow to, on some machines)
	[ -s pid ]
	local i p
	p=$(cat pid)
	for i in $(seq 100); do
		kill -0 "$p" 2>/dev/null || break
		grep -q '^[0-9]* ([^)]*) Z' "/proc/$p/stat" 2>/dev/null && break
		sleep 0.05
	done
	! kill -0 "$p" 2>/dev/null || grep -q '^[0-9]* ([^)]*) Z' "/proc/$p/stat"
}

@test "launch: --remote-exec runs the command, writes its status, and ends as it did" {
	mkdir -p r/logs
	printf 'in\n' > in
	run orch-sched --remote-exec "$PWD/r" s tok.1 -- sh -c 'cat; echo $ORCH_RUN_DIR $ORCH_STEP; exit 4' < in
	assert_failure 4
	assert_output "in
$PWD/r s"
	run jq -c '[.token, .step, .exit_code]' r/logs/s.status
	assert_output '["tok.1","s",4]'
	run orch-sched --remote-exec "$PWD/r" s tok.2 -- sh -c 'kill -TERM $$'
	assert_failure $((128 + 15))
	run jq -c '[.token, .signal]' r/logs/s.status
	assert_output '["tok.2",15]'
	# a signal it gets goes on to the command
	orch-sched --remote-exec "$PWD/r" s tok.3 -- sleep 30 &
	local pid=$!
	sleep 0.3
	kill -TERM "$pid"
	wait "$pid" || true
	run jq -c '[.token, .signal]' r/logs/s.status
	assert_output '["tok.3",15]'
	run orch-sched --remote-exec "$PWD/r" s
	assert_failure 2
	assert_output --partial 'usage: orch-sched --remote-exec RUN STEP TOKEN -- COMMAND...'
}

@test "launch: --remote-exec stops the command when the reader of its output goes (a killed ssh: sshd sends no signal)" {
	mkdir -p r/logs
	export T=$PWD
	local t0=$SECONDS
	# as sshd's shell, it leads its own group: the command's children go too
	setsid orch-sched --remote-exec "$PWD/r" s tok.1 -- sh -c 'sleep 30 & echo $! > "$T/pid"; sleep 31' | true
	[ $((SECONDS - t0)) -lt 10 ]
	run jq -c '[.token, .signal]' r/logs/s.status
	assert_output '["tok.1",15]'
	local i
	for i in $(seq 50); do kill -0 "$(cat pid)" 2>/dev/null || break; sleep 0.1; done
	! kill -0 "$(cat pid)" 2>/dev/null
}

@test "launch: an unknown placeholder or bad resources are refused before anything runs" {
	step a true > plan
	run orch-sched --launcher "$L {nodes}" < plan
	assert_failure 2
	assert_output --partial 'step a: launcher: unknown placeholder in {nodes}'
	step a true '[]' '{"resources": {"mem": "lots"}}' > plan
	run orch-sched --launcher "$L" < plan
	assert_failure 2
	assert_output --partial 'step a: resources: want {cpus: N, mem: MB or "4G"'
	[ ! -e runs ]
}

@test "launch: orch-plan takes launcher: and resources: in steps, defaults, pools and the job" {
	cat > spec.yaml <<-'EOF'
	job: l
	launcher: slurm
	pools: {gpu: {limit: 2, launcher: "slurm --partition=gpu"}, llm: 1}
	defaults: {resources: {cpus: 2}}
	steps:
	  - {id: a, run: "true", pool: gpu, resources: {cpus: 4, mem: 4G, gpus: 1, time: 2h}}
	  - {id: b, run: "true", launcher: local}
	EOF
	run orch-plan spec.yaml
	assert_success
	run jq -c '[.step, .spec.launcher, .spec.resources, .job.launcher, .job.pools.gpu]' <<< "$output"
	assert_line --index 0 '["a",null,{"cpus":4,"mem":"4G","gpus":1,"time":"2h"},"slurm",{"limit":2,"launcher":"slurm --partition=gpu"}]'
	assert_line --index 1 '["b","local",{"cpus":2},"slurm",{"limit":2,"launcher":"slurm --partition=gpu"}]'
	cat > bad.yaml <<-'EOF'
	job: l
	pools: {gpu: {launcher: 3}}
	steps:
	  - {id: a, run: "true", launcher: [srun], resources: {cpu: 4, mem: [1]}}
	EOF
	run orch-plan bad.yaml
	assert_failure 2
	assert_output --partial "pool 'gpu' has no 'limit'"
	assert_output --partial "'launcher' must be a string, not a number"
	assert_output --partial "'launcher' must be a string, not a list"
	assert_output --partial "unknown key 'cpu' in resources (did you mean 'cpus'?)"
	assert_output --partial "'mem' must be a whole number"
}

@test "launch: a launcher that fails after the command succeeded is a lost attempt (its output may be cut)" {
	printf '#!/bin/sh\n"$@"\nexit 1\n' > bin/fails
	chmod +x bin/fails
	step a 'echo x' > plan
	run orch-sched -q --launcher "$PWD/bin/fails" < plan
	assert_failure 1
	run ev -r 'select(.type == "step.failed") | [.data.kind, .data.message] | @tsv'
	assert_output "lost	lost: $PWD/bin/fails exited with 1 but the command succeeded: its output may be cut"
	[ ! -e runs/j/artifacts/a.json ]
}

@test "launch: resources are read as numbers or with units" {
	step a true '[]' '{"resources": {"cpus": 8, "mem": "2G", "gpus": 2, "time": "1h"}}' > plan
	step b true '[]' '{"resources": {"mem": 300.5, "time": 61}}' >> plan
	run orch-sched -q -j1 --launcher "$L -c{cpus} -m{mem} -g{gpus} -t{time} -n{minutes}" < plan
	assert_success
	run cut -d' ' -f1-5 bin/argv
	assert_output $'-c8 -m2048 -g2 -t3600 -n60\n-c1 -m301 -t61 -n2 '"$ORCH_BIN"'/orch-sched'
}

@test "launch: events of tools in a launched step go to its own file, merged into events.jsonl in order before its end" {
	export T=$PWD
	# the step checks that its tools leave events.jsonl alone, and that
	# they write the file orch-sched gave it
	step a 'wc -c < "$ORCH_RUN_DIR/events.jsonl" > "$T/before"
		orch-events emit llm.request --data "{\"n\":1}"
		orch-events emit llm.response --data "{\"n\":2}"
		wc -c < "$ORCH_RUN_DIR/events.jsonl" > "$T/after"
		echo "$ORCH_EVENTS_FILE" > "$T/file"; cat "$ORCH_EVENTS_FILE" > "$T/own"' > plan
	step l 'orch-events emit cache.hit; echo "${ORCH_EVENTS_FILE:-none}" > "$T/local"' '["a"]' '{"launcher": "local"}' >> plan
	run orch-sched -q --launcher "$L" < plan
	assert_success
	cmp before after
	assert_equal "$(cat file)" "$PWD/runs/j/logs/a.1.events.jsonl"
	run jq -c '[.type, .step, .data.n]' own
	assert_output $'["llm.request","a",1]\n["llm.response","a",2]'
	[ ! -e runs/j/logs/a.1.events.jsonl ]  # merged, then gone
	run ev -c 'select(.step == "a") | .type'
	assert_output $'"step.started"\n"llm.request"\n"llm.response"\n"step.succeeded"'
	# a local step's tools write events.jsonl as ever
	assert_equal "$(cat local)" none
	[ "$(ev -r 'select(.step == "l") | .type' | grep -c cache.hit)" -eq 1 ]
	# the status file says how long the event file was (for NFS)
	[ "$(jq .events_bytes runs/j/logs/a.status)" -eq "$(wc -c < own)" ]
}

@test "launch: a failed or lost attempt's events are merged too, before its step.failed; a torn last line is dropped with a WARN" {
	step a 'orch-events emit llm.request --data "{\"n\":$ORCH_ATTEMPT}"
		printf "{\"ts\":\"2025-" >> "$ORCH_EVENTS_FILE"; exit 3' > plan
	run orch-sched -q --launcher "$L" < plan
	assert_failure 1
	run ev -c 'select(.step == "a") | [.type, .level, .data.n // .data.torn]'
	assert_output $'["step.started","INFO",null]\n["llm.request","INFO",1]\n["events.dropped","WARN",1]\n["step.failed","ERROR",null]'
	run ev -r 'select(.type == "events.dropped") | .data.file'
	assert_output logs/a.1.events.jsonl
	[ -z "$(ls runs/j/logs | grep events)" ]
	# a lost attempt (no status file): what it logged is kept, then retried
	rm -rf runs
	printf '#!/bin/sh\nwhile [ $# -gt 0 ]; do case $1 in -*) shift ;; *) break ;; esac; done\n"$@"\nrm -f "$ORCH_RUN_DIR/logs/a.status"\n' > bin/lose
	chmod +x bin/lose
	step a 'orch-events emit llm.request --data "{\"n\":$ORCH_ATTEMPT}"' '[]' '{"retries": 1}' > plan
	run orch-sched -q --backoff-base 0 --status-wait 0.1 --launcher "$PWD/bin/lose" < plan
	assert_failure 1
	run ev -c 'select(.step == "a") | [.type, .data.n // .data.kind]'
	assert_output $'["step.started",null]\n["llm.request",1]\n["step.failed","lost"]\n["step.retrying",null]\n["step.started",null]\n["llm.request",2]\n["step.failed","lost"]'
}

@test "launch: kill -9 of orch-sched under a launched step, then --resume: each of its events once" {
	export T=$PWD
	step a 'orch-events emit llm.request --data "{\"n\":$ORCH_ATTEMPT}"; touch "$T/in.$ORCH_ATTEMPT"
		[ "$ORCH_ATTEMPT" -gt 1 ] || sleep 30
		orch-events emit llm.response --data "{\"n\":$ORCH_ATTEMPT}"' > plan
	orch-sched -q --launcher "$L" < plan > /dev/null 2>&1 &
	local pid=$! i
	for i in $(seq 100); do [ -e in.1 ] && break; sleep 0.05; done
	[ -e in.1 ]
	kill -9 "$pid"
	wait "$pid" || true
	[ -s runs/j/logs/a.1.events.jsonl ]
	run orch-sched -q --resume --launcher "$L" < plan
	assert_success
	run ev -c 'select(.step == "a") | [.type, .data.n // .data.kind // .data.attempt]'
	assert_output $'["step.started",1]\n["llm.request",1]\n["step.failed","lost"]\n["step.started",2]\n["llm.request",2]\n["llm.response",2]\n["step.succeeded",2]'
	# and again: nothing is merged twice
	run orch-sched -q --resume --launcher "$L" < plan
	[ "$(ev -c 'select(.type == "llm.request")' | wc -l)" -eq 2 ]
}

@test "launch: a merge cut off by kill -9 at any point is finished at the next start, each line once" {
	step a true > plan
	orch-sched -q < plan
	local log=runs/j/events.jsonl lines at i
	lines=$(for i in 1 2 3; do jq -nc --arg i "$i" '{ts: "2025-01-01T00:00:0\($i).000Z", level: "INFO", job_id: "j", type: "llm.request", step: "x", data: {n: ($i | tonumber)}}'; done)
	# killed before the append: the file renamed with its offset, nothing in the log
	at=$(stat -c %s $log)
	printf '%s\n' "$lines" > "runs/j/logs/x.1.events.jsonl.at$at"
	# killed during it: the first line and half the second in the log
	printf '%s\n' "$lines" > "runs/j/logs/y.1.events.jsonl.at$(stat -c %s $log)"
	printf '%s\n%s' "$(sed -n 1p <<< "$lines")" "$(sed -n 2p <<< "$lines" | head -c 20)" | sed 's/"x"/"y"/' >> $log
	sed -i 's/"x"/"y"/' runs/j/logs/y.1.events.jsonl.at*
	# killed after it: the whole file in the log, the file not yet removed
	printf '\n' >> $log
	at=$(stat -c %s $log)
	printf '%s\n' "$lines" | sed 's/"x"/"z"/' | tee -a $log > "runs/j/logs/z.1.events.jsonl.at$at"
	# never begun
	printf '%s\n' "$lines" | sed 's/"x"/"w"/' > runs/j/logs/w.1.events.jsonl
	run orch-sched -q --resume < plan
	assert_success
	for s in w x y z; do  # (the torn half line stays, skipped by readers)
		run jq -R "fromjson? | select(.step == \"$s\") | .data.n" $log
		assert_output $'1\n2\n3'
	done
	[ "$(jq -R 'fromjson? // "torn"' $log | grep -c torn)" -eq 1 ]
	[ -z "$(ls runs/j/logs | grep events)" ]
}

@test "launch: the ssh preset runs ssh -T -o BatchMode=yes with the command as one word for the far side's sh" {
	# bin/ssh stands in for ssh (no sshd here): it records its argv, one
	# word a line, then runs its last word with sh -c in an environment as
	# bare as sshd's (only HOME), in $HOME as sshd would
	cat > bin/ssh <<-'EOF'
	#!/bin/sh
	printf '%s\n' "$@" > "$(dirname "$0")/ssh.argv"
	[ -z "${SSH_FAIL:-}" ] || exit 255
	for last; do :; done
	cd / && exec env -i HOME=/ sh -c "$last"
	EOF
	chmod +x bin/ssh
	# ssh passes no environment: orch-sched passes PATH and ORCH_* on,
	# but nothing that looks like a secret
	export PATH=$PWD/bin:$PATH ORCH_TEST_OUT=$PWD/out
	step a "printf '%s|' \"\$1\" it\\'s > \"\$ORCH_TEST_OUT\"; pwd >> \"\$ORCH_TEST_OUT\"; echo \$ORCH_STEP \$ORCH_ATTEMPT \$ORCH_JOB_ID >> \"\$ORCH_TEST_OUT\"; orch-events emit llm.request" > plan
	ORCH_SECRET_KEY=s3cret run orch-sched -q --launcher 'ssh -p 2222 node1' < plan
	assert_success
	run head -n 6 bin/ssh.argv
	assert_output $'-T\n-o\nBatchMode=yes\n-p\n2222\nnode1'
	[ "$(wc -l < bin/ssh.argv)" -eq 7 ]  # the command: one word
	run sed -n 7p bin/ssh.argv
	assert_output --regexp "^cd '$PWD' && exec env '"
	assert_output --partial " 'ORCH_TEST_OUT=$PWD/out' "
	assert_output --partial " '$ORCH_BIN/orch-sched' '--remote-exec' '$PWD/runs/j' 'a' "
	assert_output --partial " '-c' 'printf '\\''%s|'\\'' \"\$1\" it\\'\\''s > "
	! grep -q s3cret bin/ssh.argv
	# the far side's sh got the words as they were, in the step's folder
	run cat out
	assert_output $'|it\'s|'"$PWD"$'\na 1 j'
	[ "$(ev -c 'select(.type == "llm.request") | .step')" = '"a"' ]
	# ssh's own exit 255 (no connection) with no status: lost, retried
	rm -rf runs
	step a true '[]' '{"retries": 1}' > plan
	SSH_FAIL=1 run orch-sched -q --backoff-base 0 --status-wait 0 --launcher 'ssh node1' < plan
	assert_failure 1
	run ev -c 'select(.type == "step.failed") | [.data.kind, .data.will_retry]'
	assert_output $'["lost",true]\n["lost",false]'
}
