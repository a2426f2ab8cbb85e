#!/bin/sh
# bench/slurm.sh BINDIR: the floor for steps run through Slurm: N no-op
# steps (`srun -Q true`) launched by `xargs -P 4` and `-P 8` against a real
# 3-node cluster on this machine (scripts/slurm-cluster, brought up and
# down here), beside N local `true` by `xargs -P 4`, all in the same run:
# wall seconds and steps per second; and orch's own figure: N `run: "true"`
# steps through orch-sched --launcher slurm at -j 4, with orch-sched's own
# CPU per step (user+sys of orch-sched alone, not of srun or the steps).
# Skips, saying why, where the cluster cannot start (not root, no Slurm).
# N defaults to 500 (STEPS).
set -u
bin=${1:-build/bin}
bin=$(cd "$bin" && pwd) || exit 2
src=$(cd "$(dirname "$0")/.." && pwd) || exit 2
sc=$src/scripts/slurm-cluster
N=${STEPS:-500}
if [ "$(id -u)" -ne 0 ]; then
	echo "bench/slurm.sh: skipped: Slurm's daemons and namespaces need root"
	exit 0
fi
ORCH_SLURM_ID=$("$sc" claim $$) || { echo "bench/slurm.sh: skipped: no free cluster instance"; exit 0; }
export ORCH_SLURM_ID
trap '"$sc" down' EXIT
trap 'exit 1' INT TERM
if ! "$sc" up 2>/tmp/orch-bench-slurm.$$; then
	echo "bench/slurm.sh: skipped: the cluster did not start: $(tail -n 3 /tmp/orch-bench-slurm.$$)"
	rm -f /tmp/orch-bench-slurm.$$
	exit 0
fi
rm -f /tmp/orch-bench-slurm.$$
dir=/tmp/orch-slurm$ORCH_SLURM_ID
[ "$ORCH_SLURM_ID" = 0 ] && dir=${ORCH_SLURM_DIR:-/tmp/orch-slurm}
export SLURM_CONF="$dir/slurm.conf"
cd "$dir" || exit 2

now() { date +%s.%N; }

# measure NAME CMD...: CMD once per step, N steps through xargs; one line
measure() {
	name=$1
	shift
	t0=$(now)
	seq "$N" | xargs -n 1 "$@" >/dev/null 2>&1
	rc=$?
	t1=$(now)
	awk -v name="$name" -v n="$N" -v a="$t0" -v b="$t1" -v rc="$rc" 'BEGIN {
		w = b - a
		printf "%-34s %5d %8.2f s %8.1f steps/s %8.1f ms/step%s\n", name, n, w, n / w,
		       w / n * 1000, rc == 0 ? "" : "  (some failed: xargs exit " rc ")" }'
}

# cpu_of PID: its own user+sys CPU in clock ticks (not its children's)
cpu_of() { awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$1/stat" 2>/dev/null; }

# orch_sched: N steps through orch-sched --launcher slurm -j 4; two lines:
# wall, and orch-sched's own CPU (read from /proc every 0.05 s while it
# runs: the last reading may miss at most that much)
orch_sched() {
	seq "$N" | awk '{ printf "{\"step\":\"s%d\",\"spec\":{\"run\":\"true\"},\"job\":{\"job_id\":\"bench\"}}\n", $1 }' \
		> "$dir/bench.plan"
	rm -rf "$dir/bench-run"
	t0=$(now)
	"$bin/orch-sched" -q -j 4 --launcher slurm --run "$dir/bench-run" < "$dir/bench.plan" > /dev/null &
	pid=$!
	ticks=0
	while t=$(cpu_of "$pid") && [ -n "$t" ]; do
		ticks=$t
		sleep 0.05
	done
	wait "$pid"
	rc=$?
	t1=$(now)
	awk -v n="$N" -v a="$t0" -v b="$t1" -v rc="$rc" -v c="$ticks" -v hz="$(getconf CLK_TCK)" 'BEGIN {
		w = b - a
		printf "%-34s %5d %8.2f s %8.1f steps/s %8.1f ms/step%s\n", "slurm: orch-sched -j 4 --launcher", n, w,
		       n / w, w / n * 1000, rc == 0 ? "" : "  (failed: exit " rc ")"
		printf "%-34s %5s %8.2f s %14s %8.2f ms/step\n", "  orch-sched alone, CPU", "", c / hz, "", c / hz / n * 1000 }'
	rm -rf "$dir/bench-run" "$dir/bench.plan"
}

printf '%-34s %5s %10s %14s %16s\n' launcher steps wall rate "wall/step"
measure "local: xargs -P 4 true" -P 4 true
measure "slurm: xargs -P 4 srun -Q true" -P 4 srun -Q true
orch_sched
measure "slurm: xargs -P 8 srun -Q true" -P 8 srun -Q true
echo "(a 3-node cluster on this machine, each node its own network namespace;"
echo " srun -Q true is the floor for a step on Slurm: allocation, launch, I/O, exit)"
