#!/bin/sh
# bench/ratelimit.sh BINDIR: rate limits shared across runs (issue 13).
# Two concurrent orch-call processes of 100 requests each (-j 50), both
# at --rpm 600 on one account (one ORCH_CACHE_DIR), against
# tests/fakeprovider playing a server that limits itself to 600 requests a
# minute (a bucket of 4, so a breach shows as a 429). The achieved rate is
# taken from the server's log of arrival times: (n - 1) / (last - first);
# the target is within 5% of 600/min, with no 429. For contrast, the same
# two runs without --rpm, not retried: how many the server refused.
# About 20 s.
set -u
bin=$(cd "${1:-build/bin}" && pwd) || exit 2
src=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy ORCH_RUN_DIR
export NO_PROXY=127.0.0.1 no_proxy=127.0.0.1
export ORCH_CACHE_DIR="$tmp/cache" OPENAI_API_KEY=sk-bench

# fake LOG: a fake provider limiting itself to 600/min, logging to LOG
fake() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	rm -f "$tmp/port"
	python3 "$src/tests/fakeprovider" --portfile "$tmp/port" --log "$1" --rpm 600 --burst 4 &
	pid=$!
	i=0
	while [ ! -s "$tmp/port" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
	[ -s "$tmp/port" ] || { echo "bench/ratelimit.sh: the fake provider did not start" >&2; exit 1; }
	export OPENAI_BASE_URL="http://127.0.0.1:$(cat "$tmp/port")/v1"
}

for r in a b; do
	k=1
	while [ $k -le 100 ]; do
		printf '{"provider":"openai","model":"bench","messages":[{"role":"user","content":"run %s request %d"}],"step":"b"}\n' $r $k
		k=$((k + 1))
	done > "$tmp/$r.jsonl"
done

# two FLAGS...: both runs at once; the answers' count
two() {
	"$bin/orch-call" -j 50 "$@" "$tmp/a.jsonl" > "$tmp/a.out" 2> "$tmp/a.err" &
	a=$!
	"$bin/orch-call" -j 50 "$@" "$tmp/b.jsonl" > "$tmp/b.out" 2> "$tmp/b.err"
	wait $a
	cat "$tmp/a.out" "$tmp/b.out" | wc -l
}

# rate LOG: "requests refused achieved-per-minute"
rate() {
	python3 -c '
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
t = sorted(r["t"] for r in recs)
no = sum(1 for r in recs if r.get("limited"))
print(len(t), no, "%.1f" % ((len(t) - 1) / (t[-1] - t[0]) * 60 if len(t) > 1 and t[-1] > t[0] else 0))
' "$1"
}

fake "$tmp/limited.jsonl"
start=$(date +%s.%N)
n=$(two --rpm 600)
wall=$(echo "$(date +%s.%N) - $start" | bc)
set -- $(rate "$tmp/limited.jsonl")
echo "$1 $2 $3 $n $wall" | awk '{
	printf "%-44s %7.1f/min  target 600/min (%+.1f%%)  %d answers, %d requests, %d refused (429), %.1f s\n",
	       "2 runs x 100 requests, --rpm 600 (shared)", $3, ($3 / 600 - 1) * 100, $4, $1, $2, $5 }'

fake "$tmp/free.jsonl"
n=$(two --retries 0)
set -- $(rate "$tmp/free.jsonl")
echo "$1 $2 $n" | awk '{
	printf "%-44s %d answers, %d requests, %d refused (429)\n", "the same without --rpm (no retries)", $3, $1, $2 }'
