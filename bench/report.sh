#!/bin/sh
# bench/report.sh BINDIR: orch-events cost and metrics on 1,000,000 events
# of one run (1,000 steps, 166,667 priced LLM calls on two models), beside
# jq programs computing the same totals from the same file. Prints each
# time (best of 2) and checks that the totals agree.
set -eu
bin=${1:?usage: bench/report.sh BINDIR}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/run"
awk -v N="${N:-1000000}" 'BEGIN {
	split("step.started cache.miss llm.request llm.response file.written step.succeeded", t, " ")
	split("gpt-4o-mini claude-3-5-haiku-latest", m, " ")
	split("openai anthropic", p, " ")
	print "{\"ts\":\"2026-11-21T10:00:00.000Z\",\"level\":\"INFO\",\"job_id\":\"bench\",\"type\":\"job.started\",\"data\":{\"resume\":false}}"
	for (i = 1; i < N; i++) {
		k = int(i / 6) % 2 + 1; type = t[i % 6 + 1]
		d = "{}"
		if (type == "llm.response")
			d = sprintf("{\"provider\":\"%s\",\"model\":\"%s\",\"duration_s\":0.%03d,\"tokens\":{\"prompt\":%d,\"completion\":%d},\"success\":true}", p[k], m[k], i % 1000, i % 500, i % 700)
		else if (type == "step.succeeded")
			d = sprintf("{\"duration_s\":%d.%03d,\"provider_calls\":1}", i % 7, i % 1000)
		printf "{\"ts\":\"2026-11-21T10:%02d:%02d.%03dZ\",\"level\":\"INFO\",\"job_id\":\"bench\",\"type\":\"%s\",\"step\":\"s%d\",\"data\":%s}\n", (i / 60000) % 60, (i / 1000) % 60, i % 1000, type, int(i / 6) % 1000, d
	}
}' > "$tmp/run/events.jsonl"
echo "events.jsonl: $(wc -l < "$tmp/run/events.jsonl") lines, $(du -m "$tmp/run/events.jsonl" | cut -f1) MB"

t() {  # t LABEL OUT CMD...: best wall of 2; the output kept in $tmp/OUT
	label=$1 out=$2; shift 2
	best=
	for r in 1 2; do
		s=$(date +%s.%N)
		"$@" > "$tmp/$out"
		e=$(date +%s.%N)
		w=$(echo "$e - $s" | bc -l)
		if [ -z "$best" ] || [ "$(echo "$w < $best" | bc -l)" -eq 1 ]; then best=$w; fi
	done
	printf '%-40s %8.3f s\n' "$label" "$best"
	echo "$best" > "$tmp/$out.s"
}

# The same prices as share/orch/prices.tsv, per million tokens.
prices='{"gpt-4o-mini":[0.15,0.6],"claude-3-5-haiku-latest":[0.8,4]}'
cost_jq='reduce (inputs | select(.type == "llm.response") | .data) as $d
	({calls: 0, prompt: 0, completion: 0, usd: 0};
	 .calls += 1 | .prompt += $d.tokens.prompt | .completion += $d.tokens.completion
	 | .usd += ($d.tokens.prompt * $p[$d.model][0] + $d.tokens.completion * $p[$d.model][1]) / 1e6)
	| [.calls, .prompt, .completion, (.usd * 1e6 | round)] | @tsv'
# jq 1.6 copies an object on each update inside reduce (25 s for 100,000
# events), so the metrics' aggregates are a pipeline, as a jq user would
# write it: one pass picks the fields, a second groups them.
metrics_pick='select(.type | startswith("step.") or startswith("cache.") or . == "llm.response")
	| [.type, .step, .data.provider, .data.model, .data.tokens.prompt, .data.tokens.completion, .data.duration_s]'
metrics_group='def calls: map(select(.[0] == "llm.response"));
	(calls | group_by(.[1] + "|" + .[2])
		| map({k: (.[0][1] + "|" + .[0][2]), calls: length, prompt: (map(.[4]) | add), completion: (map(.[5]) | add),
		       usd: (map((.[4] * $p[.[3]][0] + .[5] * $p[.[3]][1]) / 1e6) | add)})) as $llm
	| (map(select(.[0] == "step.succeeded"))) as $done
	| [($llm | length), ($llm | map(.calls) | add), (map(.[1]) | unique | length), ($done | length),
	   ($done | map(.[6]) | add * 1000 | round)] | @tsv'
metrics_jq() {
	jq -c "$metrics_pick" "$1" | jq -sr --argjson p "$prices" "$metrics_group"
}

t "orch-events cost --json" oc "$bin/orch-events" cost --json "$tmp/run"
t "jq: the same totals" jc jq -nr --argjson p "$prices" "$cost_jq" "$tmp/run/events.jsonl"
t "orch-events metrics" om "$bin/orch-events" metrics "$tmp/run"
t "jq | jq -s: the same aggregates" jm metrics_jq "$tmp/run/events.jsonl"
printf 'cost:    orch-events %.1fx faster than jq\n' "$(echo "$(cat "$tmp/jc.s") / $(cat "$tmp/oc.s")" | bc -l)"
printf 'metrics: orch-events %.1fx faster than jq\n' "$(echo "$(cat "$tmp/jm.s") / $(cat "$tmp/om.s")" | bc -l)"

# The totals agree: calls, prompt and completion tokens, micro-dollars.
ours=$(jq -r '.total | [.calls, .prompt_tokens, .completion_tokens, (.cost_usd * 1e6 | round)] | @tsv' "$tmp/oc")
echo "totals: orch-events $ours | jq $(cat "$tmp/jc")" | tr '\t' ' '
[ "$ours" = "$(cat "$tmp/jc")" ] || { echo "bench/report.sh: the cost totals differ" >&2; exit 1; }
calls=$(awk '/^orch_llm_calls_total/ { n += $2 } END { print n }' "$tmp/om")
[ "$calls" = "$(cut -f2 "$tmp/jm")" ] || { echo "bench/report.sh: the metrics' calls differ" >&2; exit 1; }
hist=$(awk '/^orch_step_duration_seconds_(count|sum)/ { printf "%s ", $2 }' "$tmp/om")
echo "metrics: $(wc -l < "$tmp/om") lines; $calls calls; durations (sum count) $hist| jq: $(tr '\t' ' ' < "$tmp/jm") (step|provider pairs, calls, steps, durations, their sum in ms)"
