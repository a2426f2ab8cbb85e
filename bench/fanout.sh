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
# fresh_runs: a new, empty runs folder for the next orch run. Not rm -rf
# of the last: on ext4 without a journal, every file created in the
# minutes after a mass delete scans the inodes freed (recently_deleted),
# so deleting a 10,000-instance run just before measuring the next one
# made its file creation cost O(files deleted) each; they go at the end.
runs_n=0
fresh_runs() {
	runs_n=$((runs_n + 1))
	ORCH_RUNS="$tmp/runs.$runs_n"
}

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
fresh_runs
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
# The N-item echo fan-out again, through one `orch step --batch` serving
# every instance (orch run's default) and through one `orch step` per
# instance (ORCH_BATCH=0), both at -j 50, each beside the floor (one
# orch-call -j 50 over the same requests, measured here again) and beside
# the files a cached instance must write, alone; then N items against
# tests/fakeprovider answering after 100 ms, at -j 50, beside orch-call
# -j 50 over the same requests and the ideal N x 0.1 / 50 s. FAKE_N
# (default N) items for that case; SLOW_ONE=1 adds the one-orch-step-per-
# instance row there too (slow). The last column: wall / floor.
src= fake=  # the source tree, from BINDIR (build/bin, build/san/bin)
for d in "$bin/../.." "$bin/../../.."; do
	[ -x "$d/tests/fakeprovider" ] && src=$d fake=$d/tests/fakeprovider && break
done
N=$(wc -l < requests)
FAKE_N=${FAKE_N:-$N}

# tb LABEL FLOOR CMD...: wall seconds, per item, peak RSS, and wall / FLOOR
tb() {
	label=$1 floor=$2
	shift 2
	/usr/bin/time -f '%e %M' -o time.out "$@" > /dev/null 2> err.out ||
		{ echo "$label: failed: $(tail -1 err.out)"; return; }
	read -r wall rss < time.out
	awk -v l="$label" -v w="$wall" -v r="$rss" -v n="$items" -v f="$floor" \
		'BEGIN { printf "%-44s %8.2fs %9.3f ms/item %7.0f MB %7.1fx\n", l, w, 1000 * w / n, r / 1024, (f > 0 ? w / f : 0) }'
}
# wall CMD...: its wall seconds
wall() {
	/usr/bin/time -f '%e' -o time.out "$@" > /dev/null 2>&1
	cat time.out
}

items=$N
printf '\n%-44s %9s %18s %10s %8s\n' "batch: $N echo items, -j 50" wall "per item" "peak RSS" "x floor"
floor=$(wall sh -c 'orch-call -j 50 < requests')
tb "orch-call -j 50 over all (the floor)" "$floor" sh -c 'orch-call -j 50 < requests'
for way in batch one; do
	b=1 name="one orch step --batch"
	[ $way = batch ] || { b=0 name="one orch step per instance"; }
	fresh_runs
	export ORCH_CACHE_DIR="$tmp/cache-$way"
	ORCH_BATCH=$b tb "$name (cache cold)" "$floor" orch run fan.yaml -j 50
	fresh_runs
	ORCH_BATCH=$b tb "$name (cache warm)" "$floor" orch run fan.yaml -j 50
done
# alone LABEL SECONDS: a row of work measured by itself, beside the floor
alone() {
	awk -v l="$1" -v w="$2" -v n="$N" -v f="$floor" \
		'BEGIN { printf "%-44s %8.2fs %9.3f ms/item %10s %7.1fx\n", l, w, 1000 * w / n, "", w / f }'
}
# What orch-run(5) has a cached instance write, and nothing else (its
# cache entry read, its artifact, three event lines: bench/filework.c):
# the part of the cached re-run no design can take away, on this disk;
# the artifact renamed into place, and linked in as orch-sched does.
if [ -n "$src" ] && ${CC:-cc} -O2 -o filework "$src/bench/filework.c" 2> err.out; then
	for how in renamed linked; do
		fw=$(./filework "files-$how" "$N" $([ $how = renamed ] || echo link)) &&
			alone "the files alone, artifact $how, 3 events" "$fw"
	done
	rm -rf files-renamed files-linked
else
	echo "bench/filework.c: not built: $(tail -1 err.out 2> /dev/null)"
fi
# The least JSON work orch-sched does per instance: its plan line parsed
# by libjq (bench/planread.c), beside the floor and the files.
if [ -n "$src" ] && ${CC:-cc} -O2 -o planread "$src/bench/planread.c" -ljq 2> err.out &&
	orch-plan fan.yaml > fan.plan; then
	pr=$(./planread fan.plan) && alone "the plan lines alone, parsed by libjq" "$pr"
else
	echo "bench/planread.c: not built: $(tail -1 err.out 2> /dev/null)"
fi
if command -v parallel > /dev/null; then
	tb "parallel -j2 orch-call, one per request" "$floor" \
		parallel -j2 --pipe -N1 orch-call < requests
fi

if [ -n "$fake" ]; then
	python3 "$fake" --portfile "$tmp/port" --delay 0.1 > /dev/null 2>&1 &
	fpid=$!
	i=0
	while [ ! -s "$tmp/port" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
	export OPENAI_BASE_URL="http://127.0.0.1:$(cat "$tmp/port")/v1" OPENAI_API_KEY=sk-bench
	export NO_PROXY=127.0.0.1 no_proxy=127.0.0.1
	cat > slow.yaml <<SPEC
job: slow
task: bench
provider: {name: openai, model: m}
steps:
  - id: s
    foreach: "[range($FAKE_N)]"
    max_items: $FAKE_N
    prompt: "item {{ .item }}"
SPEC
	seq 0 $((FAKE_N - 1)) | awk '{ printf "{\"provider\":\"openai\",\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"item %s\"}],\"opts\":{}}\n", $1 }' > slow.req
	items=$FAKE_N
	ideal=$(awk -v n="$FAKE_N" 'BEGIN { print n * 0.1 / 50 }')
	printf '\n%-44s %9s %18s %10s %8s\n' "batch: $FAKE_N items, server 100 ms, -j 50" wall "per item" "peak RSS" "x ideal"
	tb "ideal: N x 0.1 / 50" "$ideal" sleep "$ideal"
	tb "orch-call -j 50 over all (the floor)" "$ideal" sh -c 'orch-call -j 50 < slow.req'
	seq 0 $((FAKE_N - 1)) | awk '{ printf "{\"provider\":\"openai\",\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"item %s\"}],\"opts\":{},\"step\":\"s[%s]\"}\n", $1, $1 }' > slow.steps
	export ORCH_CACHE_DIR="$tmp/cache-stream"
	tb "orch-cache stream -- orch-call --serve -j 50" "$ideal" \
		sh -c 'orch-cache stream -- orch-call --serve -j 50 < slow.steps'
	fresh_runs
	export ORCH_CACHE_DIR="$tmp/cache-slow"
	tb "one orch step --batch (cache cold)" "$ideal" orch run slow.yaml -j 50
	if [ "${SLOW_ONE:-0}" = 1 ]; then
		fresh_runs
		export ORCH_CACHE_DIR="$tmp/cache-slow-one"
		ORCH_BATCH=0 tb "one orch step per instance (cache cold)" "$ideal" orch run slow.yaml -j 50
	fi
	kill "$fpid" 2> /dev/null
	wait "$fpid" 2> /dev/null
else
	echo "tests/fakeprovider: not found; the 100 ms server case is not run"
fi
# ==== end of the batch worker block ===================================
