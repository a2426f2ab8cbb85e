#!/bin/sh
# bench/export.sh BINDIR: orch-events export --sqlite of one run of
# 1,000,000 events (1,000 steps; attempts, a failure in ten retried, cache
# misses, priced LLM calls on two models, files), beside the sqlite3 shell
# importing the same lines and building the same llm_calls and files
# tables with its JSON functions. Prints the wall and the CPU time of
# each (one try: on a shared machine CPU time is the steadier figure) and
# checks that the totals agree.
set -eu
bin=${1:?usage: bench/export.sh BINDIR}
command -v sqlite3 >/dev/null || { echo "bench/export.sh: no sqlite3 (scripts/deps test)"; exit 0; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/run"
# Cycles of six events per attempt of a step; every tenth attempt fails
# (kind exit) and is retried.
awk -v N="${N:-1000000}" 'BEGIN {
	split("step.started cache.miss llm.request llm.response file.written step.end", t, " ")
	split("gpt-4o-mini claude-3-5-haiku-latest", m, " ")
	split("openai anthropic", p, " ")
	print "{\"ts\":\"2026-11-21T10:00:00.000Z\",\"level\":\"INFO\",\"job_id\":\"bench\",\"type\":\"job.started\",\"data\":{\"resume\":false}}"
	for (i = 1; i < N - 1; i++) {
		c = int(i / 6); k = c % 2 + 1; type = t[i % 6 + 1]; a = int(c / 1000) + 1
		d = sprintf("{\"attempt\":%d}", a)
		if (type == "llm.response")
			d = sprintf("{\"provider\":\"%s\",\"model\":\"%s\",\"duration_s\":0.%03d,\"tokens\":{\"prompt\":%d,\"completion\":%d},\"success\":true,\"attempt\":%d}", p[k], m[k], i % 1000, i % 500, i % 700, a)
		else if (type == "file.written")
			d = sprintf("{\"path\":\"out/s%d.txt\",\"sha256\":\"%064d\",\"size_bytes\":%d,\"wrote\":true,\"reason\":\"created\"}", c % 1000, c, i % 4096)
		else if (type == "step.end" && c % 10 == 9) {
			type = "step.failed"
			d = sprintf("{\"kind\":\"exit\",\"message\":\"exited with 75\",\"attempt\":%d,\"will_retry\":true,\"duration_s\":0.%03d}", a, i % 1000)
		} else if (type == "step.end") {
			type = "step.succeeded"
			d = sprintf("{\"duration_s\":%d.%03d,\"provider_calls\":1,\"attempt\":%d}", i % 7, i % 1000, a)
		}
		printf "{\"ts\":\"2026-11-21T10:%02d:%02d.%03dZ\",\"level\":\"INFO\",\"job_id\":\"bench\",\"type\":\"%s\",\"step\":\"s%d\",\"data\":%s}\n", (i / 60000) % 60, (i / 1000) % 60, i % 1000, type, c % 1000, d
	}
	print "{\"ts\":\"2026-11-21T11:00:00.000Z\",\"level\":\"INFO\",\"job_id\":\"bench\",\"type\":\"job.succeeded\",\"data\":{\"duration_s\":3600}}"
}' > "$tmp/run/events.jsonl"
echo "events.jsonl: $(wc -l < "$tmp/run/events.jsonl") lines, $(du -m "$tmp/run/events.jsonl" | cut -f1) MB"

t() {  # t NAME LABEL CMD...: wall and CPU (user + sys) seconds, kept in $tmp/NAME
	name=$1 label=$2; shift 2
	/usr/bin/time -f '%e %U %S' -o "$tmp/$name" "$@"
	read -r wall user sys < "$tmp/$name"
	printf '%-44s %8.2f s wall %8.2f s CPU\n' "$label" "$wall" "$(echo "$user + $sys" | bc -l)"
}

# The peer: the same llm_calls and files rows, from the raw lines, by the
# sqlite3 shell (the prices of share/orch/prices.tsv, per million tokens).
cat > "$tmp/peer.sql" <<-EOF
	CREATE TABLE raw (j TEXT);
	.mode ascii
	.separator "\037" "\n"
	.import $tmp/run/events.jsonl raw
	BEGIN;
	CREATE TABLE llm_calls AS SELECT json_extract(j, '$.step') AS step,
	  json_extract(j, '$.data.model') AS model,
	  json_extract(j, '$.data.tokens.prompt') AS prompt_tokens,
	  json_extract(j, '$.data.tokens.completion') AS completion_tokens
	  FROM raw WHERE json_extract(j, '$.type') = 'llm.response';
	ALTER TABLE llm_calls ADD COLUMN cost_usd REAL;
	UPDATE llm_calls SET cost_usd = CASE model
	  WHEN 'gpt-4o-mini' THEN (prompt_tokens * 0.15 + completion_tokens * 0.6) / 1e6
	  WHEN 'claude-3-5-haiku-latest' THEN (prompt_tokens * 0.8 + completion_tokens * 4) / 1e6 END;
	CREATE TABLE files AS SELECT json_extract(j, '$.step') AS step,
	  json_extract(j, '$.data.path') AS path, json_extract(j, '$.data.sha256') AS sha256,
	  json_extract(j, '$.data.size_bytes') AS size_bytes
	  FROM raw WHERE json_extract(j, '$.type') = 'file.written';
	COMMIT;
	EOF

totals='SELECT count(*), sum(prompt_tokens), sum(completion_tokens), round(sum(cost_usd) * 1e6) FROM llm_calls;
	SELECT count(*), sum(size_bytes) FROM files;'
t ours "orch-events export --sqlite" "$bin/orch-events" export --sqlite "$tmp/orch.db" "$tmp/run"
t again "orch-events export again (delete, insert)" "$bin/orch-events" export --sqlite "$tmp/orch.db" "$tmp/run"
t peer "sqlite3: .import and JSON functions" sqlite3 "$tmp/peer.db" ".read $tmp/peer.sql"
cpu() { awk '{ print $2 + $3 }' "$tmp/$1"; }
printf 'export: orch-events %.1fx the CPU time of the sqlite3 shell (which fills two tables, not six)\n' \
	"$(echo "$(cpu ours) / $(cpu peer)" | bc -l)"
ours=$(sqlite3 "$tmp/orch.db" "$totals" | tr '\n' ' ')
theirs=$(sqlite3 "$tmp/peer.db" "$totals" | tr '\n' ' ')
echo "totals (calls prompt completion micro-USD | files bytes): orch-events $ours| sqlite3 $theirs"
[ "$ours" = "$theirs" ] || { echo "bench/export.sh: the totals differ" >&2; exit 1; }
sqlite3 "$tmp/orch.db" "SELECT 'orch-events also: ' || (SELECT count(*) FROM steps) || ' steps, '
	|| (SELECT count(*) FROM attempts) || ' attempts (' || (SELECT count(*) FROM attempts WHERE status = 'failed')
	|| ' failed), ' || (SELECT sum(misses) FROM cache) || ' cache misses; '
	|| (SELECT page_count * page_size / 1048576 FROM pragma_page_count, pragma_page_size) || ' MB'"
