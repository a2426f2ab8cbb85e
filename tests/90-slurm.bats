#!/usr/bin/env bats
# Slurm: a real 3-node cluster on this machine (scripts/slurm-cluster), and
# what srun does on it: the ground the Slurm launcher stands on. The file
# brings the cluster up itself and down at the end (an instance of its own:
# test runs side by side do not meet); it is skipped, with the reason, only
# where the machine refuses to run the daemons (not root). Its tests run
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
	"$SC" up || rc=$?
	if [ "$rc" -eq 3 ]; then
		SLURM_SKIP="this machine refuses to run Slurm's daemons"
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
