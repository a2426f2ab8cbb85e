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
	# the command (the launcher's grandchild) is gone too (reaped within 1 s)
	[ -s pid ]
	local i
	for i in $(seq 50); do kill -0 "$(cat pid)" 2>/dev/null || break; sleep 0.02; done
	run kill -0 "$(cat pid)"
	assert_failure
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
