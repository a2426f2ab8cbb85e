#!/bin/sh
# bench/events.sh BINDIR: filter 1,000,000 events by type, side by side:
# orch-events tail --type, jq -c 'select(.type == ...)', and grep (the floor).
# Target (issue 2): orch-events at least 5x faster than jq.
set -eu
bin=${1:?usage: bench/events.sh BINDIR}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/run"
awk 'BEGIN { split("step.started step.succeeded llm.request llm.response cache.hit file.written", t, " ")
	for (i = 0; i < 1000000; i++)
		printf "{\"ts\":\"2026-11-21T10:%02d:%02d.%03dZ\",\"level\":\"INFO\",\"job_id\":\"bench\",\"type\":\"%s\",\"step\":\"s%d\",\"data\":{\"provider\":\"echo\",\"model\":\"m\",\"duration_s\":0.%03d,\"tokens\":{\"prompt\":%d,\"completion\":%d},\"success\":true}}\n", (i / 60000) % 60, (i / 1000) % 60, i % 1000, t[i % 6 + 1], i % 97, i % 1000, i % 500, i % 700 }' > "$tmp/run/events.jsonl"
echo "events.jsonl: $(wc -l < "$tmp/run/events.jsonl") lines, $(du -m "$tmp/run/events.jsonl" | cut -f1) MB; selecting type llm.response (1 in 6)"
t() {  # t LABEL CMD...: best wall of 3, and the count of lines printed
	label=$1; shift
	best=
	for r in 1 2 3; do
		s=$(date +%s.%N)
		"$@" > "$tmp/out"
		e=$(date +%s.%N)
		w=$(echo "$e - $s" | bc -l)
		if [ -z "$best" ] || [ "$(echo "$w < $best" | bc -l)" -eq 1 ]; then best=$w; fi
	done
	printf '%-44s %8.3f s %9d lines\n' "$label" "$best" "$(wc -l < "$tmp/out")"
	echo "$best" > "$tmp/last"
}
t "grep -F '\"type\":\"llm.response\"' (floor)" grep -F '"type":"llm.response"' "$tmp/run/events.jsonl"
t "orch-events tail --type llm.response" "$bin/orch-events" --run "$tmp/run" tail --type llm.response
o=$(cat "$tmp/last")
t "orch-events tail --type 'llm.resp*'" "$bin/orch-events" --run "$tmp/run" tail --type 'llm.resp*'
t "jq -c 'select(.type == \"llm.response\")'" jq -c 'select(.type == "llm.response")' "$tmp/run/events.jsonl"
j=$(cat "$tmp/last")
printf 'orch-events is %.1fx faster than jq (target: at least 5x)\n' "$(echo "$j / $o" | bc -l)"
