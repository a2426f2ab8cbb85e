#!/bin/sh
# bench/fanout.sh BINDIR: a fan-out of N echo-provider items (orch run: a
# shell, orch-call --render, orch-cache, orch-call and orch-write per
# item), first run (cache cold), a fresh run with the cache warm, and
# --resume (nothing to run), beside GNU parallel running one orch-call per
# request (parallel -j2) and one orch-call -j 50 over all the requests
# (the floor); then the cost per instance of orch-plan and orch-sched -n
# at each count in SIZES side by side (flat is the aim), and time and peak
# RSS at BIG instances of a `run: "true"` step with a step that needs them
# all: a run, --resume -n and --resume. Prints figures side by side;
# asserts nothing. N (default 10000), BIG (default 100000), SIZES (default
# "10000 50000 BIG"), J (default 2).
set -u
bin=${1:-build/bin}
bin=$(cd "$bin" && pwd) || exit 2
N=${N:-10000}
BIG=${BIG:-100000}
SIZES=${SIZES:-"10000 50000 $BIG"}
J=${J:-2}
PATH=$bin:$PATH
export PATH
tmp=$(mktemp -d "${TMPDIR:-/tmp}/orch-bench-fanout.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT INT TERM
cd "$tmp" || exit 2
export ORCH_RUNS="$tmp/runs" ORCH_CACHE_DIR="$tmp/cache"

# t LABEL CMD...: wall seconds and peak RSS (MB) of CMD, one row
t() {
	label=$1
	shift
	/usr/bin/time -f '%e %M' -o time.out "$@" > /dev/null 2> err.out ||
		{ echo "$label: failed: $(tail -1 err.out)"; return; }
	read -r wall rss < time.out
	awk -v l="$label" -v w="$wall" -v r="$rss" -v n="$N" \
		'BEGIN { printf "%-44s %8.2fs %9.3f ms/item %7.0f MB\n", l, w, 1000 * w / n, r / 1024 }'
}

cat > fan.yaml <<SPEC
job: fan
task: bench
provider: {name: echo}
steps:
  - id: s
    foreach: "[range($N)]"
    max_items: $BIG
    prompt: "item {{ .item }}"
SPEC
seq 0 $((N - 1)) | awk '{ printf "{\"provider\":\"echo\",\"model\":\"echo\",\"messages\":[{\"role\":\"user\",\"content\":\"item %s\"}],\"opts\":{}}\n", $1 }' > requests

printf '%-44s %9s %18s %10s\n' "fan-out of $N echo items" wall "per item" "peak RSS"
t "orch run -j $J (cache cold)" orch run fan.yaml -j "$J"
rm -rf runs
t "orch run -j $J (a fresh run, cache warm)" orch run fan.yaml -j "$J"
t "orch run -j $J --resume (nothing to run)" orch run fan.yaml -j "$J" --resume
if command -v parallel > /dev/null; then
	t "parallel -j2 orch-call, one per request" \
		parallel -j2 --pipe -N1 orch-call < requests
else
	echo "parallel: not installed"
fi
t "orch-call -j 50 over all (the floor)" sh -c 'orch-call -j 50 < requests'

# big COUNT [all]: big<COUNT>.yaml, COUNT instances of run: true; with
# "all", big<COUNT>all.yaml, and a step that needs them all after them
big() {
	{
		printf 'job: big\ntask: bench\nsteps:\n  - id: s\n'
		printf '    foreach: "[range(%s)]"\n    max_items: %s\n    run: "true"\n' "$1" "$1"
		[ -z "${2:-}" ] || printf '  - id: all\n    needs: [s]\n    run: "cat > /dev/null"\n'
	} > "big$1${2:-}.yaml"
}

# per LABEL CMD: a row of CMD's cost per instance at each count in SIZES
# ({} in CMD is the count): microseconds, then peak RSS in KB
per() {
	label=$1
	cmd=$2
	us="" kb=""
	for n in $SIZES; do
		c=$(echo "$cmd" | sed "s/{}/$n/g")
		if /usr/bin/time -f '%e %M' -o time.out sh -c "$c" > /dev/null 2> err.out; then
			read -r wall rss < time.out
			us="$us $(awk -v w="$wall" -v n="$n" 'BEGIN { printf "%10.1f", 1e6 * w / n }')"
			kb="$kb $(awk -v r="$rss" -v n="$n" 'BEGIN { printf "%10.2f", r / n }')"
		else
			us="$us $(printf '%10s' failed)" kb="$kb $(printf '%10s' failed)"
		fi
	done
	printf "%-36s %-8s%s\n%-36s %-8s%s\n" "$label" "us/inst" "$us" "" "KB/inst" "$kb"
}

printf '\n%-45s' "per instance (and a step needing all), by count"
for n in $SIZES; do
	printf ' %10s' "$n"
	big "$n" all
	orch-plan "big${n}all.yaml" > "big$n.plan"
done
echo
per "orch-plan" 'orch-plan big{}all.yaml'
per "orch-sched -n (read, order, report)" 'orch-sched --run runs/big{} -n < big{}.plan'

printf '\n%-44s %9s %18s %10s\n' "$BIG instances of run: true" wall "per item" "peak RSS"
big "$BIG"
big "$BIG" all
N=$BIG
t "orch-plan" orch-plan "big$BIG.yaml"
orch-plan "big$BIG.yaml" > big.plan
orch-plan "big${BIG}all.yaml" > bigall.plan
t "orch-sched -n (read, fingerprint, report)" sh -c "orch-sched --run runs/big -n < big.plan"
t "orch-sched -j $J (every instance run)" sh -c "orch-sched --run runs/big -q -j $J < big.plan"
t "orch-sched --resume -n (events read too)" sh -c "orch-sched --run runs/big --resume -n < big.plan"
t "orch-sched --resume -j $J (nothing to run)" sh -c "orch-sched --run runs/big --resume -q -j $J < big.plan"
t "--resume -j $J, one more step needing all" sh -c "orch-sched --run runs/big --resume -q -j $J < bigall.plan"
