#!/bin/sh
# bench/orch.sh BINDIR: the driver's figures, measured in one run.
#  1. a fully cached re-run of the 4-step example (target: under 100 ms;
#     the seed's design quotes ~2 s), best and median of 10;
#  2. one prompt step, `orch step`, against the three tools it composes run
#     bare: the difference is the driver's own overhead per step;
#  3. a whole run through `orch run` against `orch-plan | orch-sched` by
#     hand: the driver's overhead per run.
set -u
bin=$(cd "${1:-build/bin}" && pwd) || exit 2
src=$(cd "$(dirname "$0")/.." && pwd)
PATH=$bin:$PATH
export PATH
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1
unset ORCH_RUN_DIR ORCH_STEP ORCH_JOB_ID ORCH_CACHE_DIR ORCH_CALL_FLAGS
export ORCH_RUNS="$tmp/runs"
spec=$src/examples/todo-app.yaml

now() { date +%s%N; }
# ms N CMD...: each of N runs' wall time in ms, one per line
ms() {
	n=$1
	shift
	i=0
	while [ "$i" -lt "$n" ]; do
		a=$(now)
		"$@" > /dev/null 2>&1
		b=$(now)
		echo $(((b - a) / 1000))
		i=$((i + 1))
	done | sort -n | awk '{ v[NR] = $1 / 1000 } END { printf "best %6.1f ms  median %6.1f ms", v[1], v[int((NR + 1) / 2)] }'
}
mean() {  # mean N IN CMD...: median wall ms of N runs of CMD < IN, a number
	n=$1 in=$2
	shift 2
	i=0
	while [ "$i" -lt "$n" ]; do
		a=$(now)
		"$@" < "$in" > /dev/null 2>&1
		b=$(now)
		echo $((b - a))
		i=$((i + 1))
	done | sort -n | awk '{ v[NR] = $1 } END { printf "%.1f", v[int((NR + 1) / 2)] / 1e6 }'
}
cpu() {  # cpu N IN CMD...: mean CPU ms (user+sys, children) of N runs
	n=$1 in=$2
	shift 2
	(
		i=0
		while [ "$i" -lt "$n" ]; do
			"$@" < "$in" > /dev/null 2>&1
			i=$((i + 1))
		done
		times
	) | tail -n 1 | tr 'ms' '  ' | awk -v n="$n" '{ printf "%.1f", ($1 * 60 + $2 + $3 * 60 + $4) * 1000 / n }'
}

orch run "$spec" > /dev/null || { echo "orch run failed"; exit 1; }
R=$ORCH_RUNS/todo-app

echo "fully cached re-run of examples/todo-app.yaml (4 steps, 3 waves):"
printf '  orch run               %s   (target < 100 ms; the seed: ~2 s)\n' "$(ms 10 orch run "$spec")"
printf '  orch-plan alone        %s\n' "$(ms 10 orch-plan "$spec")"
# the same job with its {{ }} templates replaced by plain text: what
# compiling them with libjq (orch-plan once, orch-call --render per step) costs
sed 's/{{[^}]*}}/X/g' "$spec" > plain.yaml
orch run plain.yaml > /dev/null
printf '  same, no {{ }} in it   %s   (no libjq compile)\n' "$(ms 10 orch run plain.yaml)"

# builder's step input record, as orch-sched gives it
orch-plan "$spec" | jq -c --arg run "$R" --slurpfile a "$R/artifacts/architect.json" \
	'select(.step == "builder") | {job_id: .job.job_id, step, attempt: 1, run_dir: $run,
	  task: .job.task, inputs: .job.inputs, spec, steps: {architect: $a[0]}}' > in.json
export ORCH_RUN_DIR="$R" ORCH_STEP=builder ORCH_JOB_ID=todo-app
orch-call --render < in.json > req.json
orch-cache -- orch-call < req.json > resp.json
bare() {
	orch-call --render < in.json > r1 &&
		orch-cache -- orch-call --stream < r1 > r2 &&
		orch-write --input in.json --result < r2
}
n=20
echo "one prompt step (builder, a cache hit), $n runs: median wall, mean CPU (user+sys):"
for what in "orch step:in.json:orch step" "the 3 tools bare:/dev/null:bare" \
	"  orch-call --render:in.json:orch-call --render" \
	"  orch-cache hit:req.json:orch-cache -- orch-call --stream" \
	"  orch-write --input:resp.json:orch-write --input in.json --result"; do
	label=${what%%:*} rest=${what#*:}
	in=${rest%%:*} cmd=${rest#*:}
	# shellcheck disable=SC2086
	w=$(mean $n "$in" $cmd) c=$(cpu $n "$in" $cmd)
	printf '  %-22s %6s ms wall %6s ms CPU\n' "$label" "$w" "$c"
	case $label in
	"orch step") sw=$w sc=$c ;;
	"the 3 tools bare") tw=$w tc=$c ;;
	esac
done
awk -v a="$sw" -v b="$tw" -v c="$sc" -v d="$tc" 'BEGIN {
	printf "  driver overhead/step   %6.1f ms wall %6.1f ms CPU (sh, cat, 3 command substitutions, a here-document)\n", a - b, c - d }'
unset ORCH_RUN_DIR ORCH_STEP ORCH_JOB_ID

# a run of 20 run: steps in a chain: the driver's cost per run
{
	echo "job: chain"
	echo "steps:"
	i=1
	while [ "$i" -le 20 ]; do
		if [ "$i" -eq 1 ]; then echo "  - {id: s1, run: \"true\"}"
		else echo "  - {id: s$i, needs: [s$((i - 1))], run: \"true\"}"; fi
		i=$((i + 1))
	done
} > chain.yaml
by_hand() { orch-plan chain.yaml | orch-sched --run "$ORCH_RUNS/chain"; }
drv=$(mean 10 /dev/null orch run chain.yaml) drvc=$(cpu 10 /dev/null orch run chain.yaml)
hand=$(mean 10 /dev/null by_hand) handc=$(cpu 10 /dev/null by_hand)
echo "20 chained run: \"true\" steps, 10 runs: median wall, mean CPU:"
printf '  orch run               %6s ms wall %6s ms CPU\n' "$drv" "$drvc"
printf '  orch-plan | orch-sched %6s ms wall %6s ms CPU\n' "$hand" "$handc"
awk -v a="$drv" -v b="$hand" -v c="$drvc" -v d="$handc" 'BEGIN {
	printf "  driver overhead/run    %6.1f ms wall %6.1f ms CPU\n", a - b, c - d }'
