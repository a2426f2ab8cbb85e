#!/bin/sh
# bench/merge.sh BINDIR: the cost of merging a launched step's event file
# into events.jsonl (orch-sched(1), LAUNCHERS). One step, run through the
# launcher env(1), writes LINES (default 10000) events of ~250 bytes to
# its $ORCH_EVENTS_FILE; its peer, a local step, appends the same lines
# to events.jsonl itself, as local steps' tools do. Both pay for folding
# the events into manifest.json; the difference is the merge: read, check
# each line (JSON), one append under the lock. Best of REPS (default 5).
# Never fails a build: read the numbers.
set -u
bin=${1:-build/bin}
bin=$(cd "$bin" && pwd) || exit 2
LINES=${LINES:-10000}
REPS=${REPS:-5}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/orch-bench-merge.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT INT TERM
cd "$tmp" || exit 2
export ORCH_RUNS="$tmp/runs"
i=0
while [ "$i" -lt "$LINES" ]; do
	printf '{"ts":"2025-10-22T10:00:00.123Z","level":"INFO","job_id":"j","type":"llm.response","step":"a","data":{"provider":"echo","model":"echo","duration_s":0.001,"tokens":{"prompt":12,"completion":34},"success":true,"n":%d}}\n' "$i"
	i=$((i + 1))
done > ev
plan() {
	jq -nc --arg run "$1" '{step: "a", needs: [], spec: {id: "a", run: $run}, job: {job_id: "j"}}'
}
# best_ms PLANFILE: the best wall time of orch-sched over REPS runs, in ms
best_ms() {
	best=
	r=0
	while [ "$r" -lt "$REPS" ]; do
		rm -rf runs
		t0=$(date +%s%N)
		"$bin/orch-sched" -q --launcher "$2" < "$1" > /dev/null || echo "orch-sched failed" >&2
		t1=$(date +%s%N)
		ms=$(( (t1 - t0) / 1000000 ))
		[ -n "$best" ] && [ "$best" -le "$ms" ] || best=$ms
		r=$((r + 1))
	done
	echo "$best"
}
plan "cat $tmp/ev >> \"\$ORCH_EVENTS_FILE\"" > merged.plan
plan "cat $tmp/ev >> \"\$ORCH_RUN_DIR/events.jsonl\"" > local.plan
m=$(best_ms merged.plan env)
n=$(best_ms local.plan local)
rm -rf runs
"$bin/orch-sched" -q --launcher env < merged.plan > /dev/null
got=$(grep -c '"type":"llm.response"' runs/j/events.jsonl)
printf 'merge of %d lines (%d KB): %d ms a step, against %d ms for a local step writing them: %d ms, %.2f us a line (%d lines in events.jsonl)\n' \
	"$LINES" "$(($(wc -c < ev) / 1024))" "$m" "$n" "$((m - n))" \
	"$(echo "($m - $n) * 1000 / $LINES" | bc -l)" "$got"
