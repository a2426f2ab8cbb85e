#!/usr/bin/env bats
# Slurm: a real 3-node cluster on this machine (scripts/slurm-cluster), and
# what srun does on it: the ground the Slurm launcher stands on. The file
# brings the cluster up itself and down at the end (an instance of its own:
# test runs side by side do not meet); it is skipped, with the reason, only
# where the machine refuses to run the daemons (not root, or no cgroup
# file system, as in a chroot). Its tests run
# one after another: one kills a node.
load helper

SC=$ORCH_SRC/scripts/slurm-cluster

setup_file() {
	export BATS_NO_PARALLELIZE_WITHIN_FILE=true
	export SLURM_SKIP=
	if [ "$(id -u)" -ne 0 ]; then
		SLURM_SKIP="Slurm's daemons and namespaces need root"
		return 0
	fi
	ORCH_SLURM_ID=$("$SC" claim $$) || return 1
	export ORCH_SLURM_ID
	local rc=0
	"$SC" up 2> "$BATS_FILE_TMPDIR/up.err" || rc=$?
	cat "$BATS_FILE_TMPDIR/up.err" >&2
	if [ "$rc" -eq 3 ]; then  # not root, or no cgroup file system (a chroot)
		SLURM_SKIP="this machine refuses to run Slurm's daemons: $(tail -n 1 "$BATS_FILE_TMPDIR/up.err")"
		return 0
	fi
	[ "$rc" -eq 0 ] || return 1
	export SLURM_CONF
	SLURM_CONF=$(slurm_dir)/slurm.conf
}

teardown_file() {
	[ -z "${ORCH_SLURM_ID:-}" ] || "$SC" down
}

setup() {
	[ -z "$SLURM_SKIP" ] || skip "$SLURM_SKIP"
	orch_setup
}

slurm_dir() {
	if [ "$ORCH_SLURM_ID" = 0 ]; then echo "${ORCH_SLURM_DIR:-/tmp/orch-slurm}"; else echo "/tmp/orch-slurm$ORCH_SLURM_ID"; fi
}

# state NODE: its state as sinfo shows it (idle, alloc, down*...)
state() { sinfo -h -n "$1" -o '%t'; }

@test "slurm: srun -N1 hostname runs on a node of the cluster" {
	run srun -N1 hostname
	assert_success
	if [ "$(cat "$(slurm_dir)/mode")" = netns ]; then
		assert_output --regexp '^node[123]$'  # each node has a UTS namespace
	else
		assert_output "$(hostname)"
	fi
	run srun -N1 -Q sh -c 'echo $SLURMD_NODENAME'
	assert_output --regexp '^node[123]$'
}

@test "slurm: three steps at once spread over the three nodes" {
	# each asks for a whole node (4 CPUs), so they cannot share one
	for i in 1 2 3; do
		srun -Q -c 4 sh -c 'sleep 1; echo $SLURMD_NODENAME' > "out$i" &
	done
	wait
	run sort out1 out2 out3
	assert_output "$(printf 'node1\nnode2\nnode3')"
}

@test "slurm: 5 MB of binary stdin, stdout and stderr pass through srun --quiet intact" {
	head -c 5000000 /dev/urandom > in
	srun --quiet cat < in > out
	cmp in out
	srun --quiet sh -c 'cat >&2' < in > out2 2> err
	cmp in err
	[ ! -s out2 ]
}

@test "slurm: srun passes the step's exit status" {
	run srun -Q sh -c 'exit 7'
	assert_failure 7
	run srun -Q true
	assert_success
}

@test "slurm: srun --test-only refuses a partition that does not exist" {
	run srun --test-only -p debug true
	assert_success
	run srun --test-only -p nosuch true
	assert_failure
	assert_output --partial 'invalid partition'
}

@test "slurm: a node killed mid-step: srun says 0 with the output cut; the node comes back" {
	# a step that writes 100 lines over 10 s on node3, killed after ~1 s
	srun -Q -w node3 sh -c 'i=0; while [ $i -lt 100 ]; do echo line $i; i=$((i + 1)); sleep 0.1; done' \
		> out 2> err &
	local srun_pid=$! t0 t1 rc=0 i got
	for i in $(seq 100); do [ -s out ] && break; sleep 0.1; done
	[ -s out ]
	t0=$(date +%s.%N)
	"$SC" kill-node 3
	wait "$srun_pid" || rc=$?
	t1=$(date +%s.%N)
	got=$(wc -l < out)
	echo "# node killed mid-step: srun exit $rc after $(echo "$t1 - $t0" | bc) s, $got of 100 lines, stderr: $(tr '\n' ' ' < err)" >&3
	# srun's exit status lies: 0, with the output cut short (orch must
	# record the true status on the node's side)
	[ "$rc" -eq 0 ]
	[ "$got" -lt 100 ]
	grep -q 'Node failure on node3' err
	[ "$(state node3)" = 'down*' ] || [ "$(state node3)" = down ]
	# up again starts the node's slurmd; ReturnToService=2 puts it back
	"$SC" up 2>/dev/null
	[ "$(state node3)" = idle ]
	run srun -Q -w node3 hostname
	assert_success
}

@test "slurm: scancel --name leaves nothing in squeue" {
	srun -Q --job-name=orch.t.x sleep 60 &
	srun -Q --job-name=orch.t.x sleep 60 &
	local i
	for i in $(seq 50); do
		[ "$(squeue -h --name=orch.t.x -t R | wc -l)" -eq 2 ] && break
		sleep 0.1
	done
	[ "$(squeue -h --name=orch.t.x -t R | wc -l)" -eq 2 ]
	scancel --name=orch.t.x
	wait || true
	for i in $(seq 50); do
		[ -z "$(squeue -h --name=orch.t.x)" ] && break
		sleep 0.1
	done
	run squeue -h --name=orch.t.x
	assert_output ''
}

# ---- orch-sched's slurm launcher (orch-sched(1) LAUNCHERS) ----

# step NAME CMD [SPEC_EXTRA_JSON]: one plan line, job "j"
step() {
	jq -nc --arg s "$1" --arg run "$2" --argjson x "${3:-{\}}" \
		'{step: $s, spec: ({id: $s, run: $run} + $x), job: {job_id: "j", task: "T"}}'
}

ev() { jq -c "$@" runs/j/events.jsonl; }

# none_left: nothing of this run's in squeue (within 5 s)
none_left() {
	local i
	for i in $(seq 50); do
		[ -z "$(squeue -h -o %j | grep '^orch\.')" ] && return 0
		sleep 0.1
	done
	squeue -h -o '%i %j %T' >&2
	return 1
}

@test "slurm launcher: the example pipeline gives the same outputs/ as run locally" {
	ORCH_RUNS=$PWD/local orch run "$ORCH_SRC/examples/todo-app.yaml" > /dev/null
	ORCH_LAUNCHER=slurm ORCH_RUNS=$PWD/slurm orch run "$ORCH_SRC/examples/todo-app.yaml" > /dev/null
	diff -r local/todo-app/outputs slurm/todo-app/outputs
	[ -n "$(ls local/todo-app/outputs)" ]
	# every step ran on a node of the cluster, through srun
	run jq -r '[.step, .exit_code] | @tsv' slurm/todo-app/logs/architect.status \
		slurm/todo-app/logs/builder.status slurm/todo-app/logs/docs.status slurm/todo-app/logs/qa.status
	assert_output $'architect\t0\nbuilder\t0\ndocs\t0\nqa\t0'
	none_left
}

@test "slurm launcher: a prompt step's llm.request and llm.response, logged on the node, are in events.jsonl before its step.succeeded" {
	cat > spec.yaml <<-'EOF'
	job: p
	provider: echo
	steps:
	  - {id: ask, prompt: "Say hi"}
	EOF
	ORCH_LAUNCHER=slurm run orch run spec.yaml
	assert_success
	run jq -r 'select(.step == "ask") | .type' runs/p/events.jsonl
	assert_output $'step.started\ncache.miss\nllm.request\nllm.response\nstep.succeeded'
	[ "$(jq -r .exit_code runs/p/logs/ask.status)" = 0 ]  # it ran through srun
	[ -z "$(ls runs/p/logs | grep events)" ]  # its own event file: merged, gone
	none_left
}

@test "slurm launcher: steps in parallel spread over the nodes" {
	# each asks for a whole node (4 CPUs)
	for s in a b c; do step "$s" 'sleep 1; echo $SLURMD_NODENAME' '{"resources": {"cpus": 4}}'; done > plan
	run orch-sched -q --launcher slurm < plan
	assert_success
	run jq -r .output runs/j/artifacts/a.json runs/j/artifacts/b.json runs/j/artifacts/c.json
	[ "$(printf '%s\n' "${lines[@]}" | sort | tr '\n' ' ')" = 'node1 node2 node3 ' ]
}

@test "slurm launcher: -j caps the sruns in flight" {
	for s in a b c d e f; do step "$s" 'sleep 0.5'; done > plan
	orch-sched -q -j 2 --launcher slurm < plan &
	local pid=$! most=0 n
	while kill -0 "$pid" 2>/dev/null; do
		n=$(pgrep -c -P "$pid" -x srun) || n=0
		[ "$n" -le "$most" ] || most=$n
		sleep 0.05
	done
	wait "$pid"
	echo "# at most $most sruns at once" >&3
	[ "$most" -eq 2 ]
	[ "$(ls runs/j/artifacts | wc -l)" -eq 6 ]
}

@test "slurm launcher: a partition that does not exist is refused at start (exit 2), nothing runs" {
	step a true > plan
	run orch-sched -q --launcher 'slurm --partition=nosuch' < plan
	assert_failure 2
	assert_output --partial 'step a: the launcher refuses it: srun: error: invalid partition specified: nosuch'
	[ ! -s runs/j/events.jsonl ]
}

@test "slurm launcher: a timeout is reported as a timeout, and the Slurm step is gone" {
	step a 'sleep 30' '{"timeout_s": 1}' > plan
	run orch-sched -q --launcher slurm < plan
	assert_failure 1
	run ev -r 'select(.type == "step.failed") | [.data.kind, .data.duration_s < 5] | @tsv'
	assert_output $'timeout\ttrue'
	none_left
}

@test "slurm launcher: SIGTERM to orch-sched (orch cancel) leaves nothing in squeue" {
	for s in a b c; do step "$s" 'sleep 30'; done > plan
	orch-sched -q --launcher slurm < plan &
	local pid=$! i
	for i in $(seq 100); do
		[ "$(squeue -h -t R -o %j | grep -c '^orch\.')" -eq 3 ] && break
		sleep 0.1
	done
	[ "$(squeue -h -t R -o %j | grep -c '^orch\.')" -eq 3 ]
	kill -TERM "$pid"
	local rc=0
	wait "$pid" || rc=$?
	[ "$rc" -eq $((128 + 15)) ]
	none_left
	run ev -r 'select(.type == "step.failed") | .data.kind'
	assert_output $'interrupted\ninterrupted\ninterrupted'
}

@test "slurm launcher: kill -9 of orch-sched, then --resume cancels the step left running before it runs it again" {
	step a 'echo start $$ >> "$T/starts"; sleep ${NAP:-0}; echo end $$ >> "$T/starts"; echo ok' > plan
	export T=$PWD
	local t0=$SECONDS
	NAP=30 orch-sched -q --launcher slurm < plan &
	local pid=$! i
	for i in $(seq 100); do [ -s starts ] && break; sleep 0.1; done
	kill -9 "$pid"
	wait "$pid" || true
	[ "$(squeue -h -t R -o %j | grep -c '^orch\.')" -eq 1 ]  # still running
	run orch-sched -q --resume --launcher slurm < plan
	assert_success
	assert_output --partial 'cancelling the Slurm jobs an earlier scheduler left running'
	# the first was cancelled (not slept out), and had ended before the second
	# started (its shell may write "end" if Slurm signals its sleep first)
	[ $((SECONDS - t0)) -lt 25 ]
	local first second
	first=$(sed -n 1p starts | cut -d' ' -f2)
	second=$(grep '^start' starts | sed -n 2p | cut -d' ' -f2)
	[ "$(grep -c '^start' starts)" -eq 2 ]
	[ "$(grep -n " $first\$" starts | tail -n 1 | cut -d: -f1)" -lt "$(grep -n "^start $second\$" starts | cut -d: -f1)" ]
	[ "$(tail -n 1 starts)" = "end $second" ]
	none_left
}

@test "slurm launcher: a node killed mid-step: srun says 0, the attempt is lost, retried on another node, the job succeeds" {
	step a 'echo $SLURMD_NODENAME >> "$T/nodes"; sleep 5; echo done' '{"retries": 1}' > plan
	export T=$PWD
	orch-sched -q --backoff-base 0 --launcher slurm < plan > out &
	local pid=$! i first
	for i in $(seq 100); do [ -s nodes ] && break; sleep 0.1; done
	first=$(head -n 1 nodes)
	"$SC" kill-node "${first#node}"
	wait "$pid"
	run ev -r 'select(.type == "step.failed" or .type == "step.succeeded") | [.type, .data.kind // "", .data.attempt] | @tsv'
	assert_output $'step.failed\tlost\t1\nstep.succeeded\t\t2'
	run jq -r .output runs/j/artifacts/a.json
	assert_output done
	[ "$(sed -n 2p nodes)" != "$first" ]
	if [ "$(cat "$(slurm_dir)/mode")" = netns ]; then  # hostnames are node names
		run jq -r .host runs/j/logs/a.status
		assert_output "$(sed -n 2p nodes)"
	fi
	"$SC" up 2>/dev/null
	[ "$(state "$first")" = idle ]
}
