#!/bin/sh
# bench/cache.sh BINDIR: what a cache hit costs, end to end (process start,
# key, lookup, checksum, output), for a 100 KB response; with 10 entries in
# the cache and with 100,000. Peers in the same run: cat of the entry file
# (the floor: a process that only copies the bytes) and jq -c . of the
# response (a process that parses and prints the JSON once).
# Figures: CPU time (user+sys of the runs) and wall time, per run.
set -eu
bin=$(cd "${1:-build/bin}" && pwd)
N=${N:-300}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
cd "$tmp"

# snap FILE: this shell's finished children's user+sys seconds into FILE
# (times runs in this shell; inside $(...) it would see a subshell's).
snap() {
	times > times.out
	awk 'NR == 2 { split($1, u, "m"); split($2, s, "m"); print u[1] * 60 + u[2] + s[1] * 60 + s[2] }' times.out > "$1"
}

# run LABEL STDIN CMD...: CMD N times with STDIN; per-run figures
run() {
	label=$1 in=$2
	shift 2
	snap c0
	t0=$(date +%s%N) i=0
	while [ "$i" -lt "$N" ]; do
		"$@" < "$in" > /dev/null
		i=$((i + 1))
	done
	t1=$(date +%s%N)
	snap c1
	awk -v l="$label" -v c0="$(cat c0)" -v c1="$(cat c1)" -v t0="$t0" -v t1="$t1" -v n="$N" \
		'BEGIN { printf "  %-46s %7.3f ms cpu %7.3f ms wall\n", l, (c1 - c0) * 1000 / n, (t1 - t0) / 1e6 / n }'
}

# a 100 KB response and the request it answers
head -c 75000 /dev/urandom | base64 -w 76 > content.txt
jq -Rsc '{provider: "ollama", model: "llama3", content: ., finish_reason: "stop",
	usage: {prompt_tokens: 900, completion_tokens: 25000}, duration_s: 41.5}' content.txt > response.json
echo '{"provider":"ollama","model":"llama3","messages":[{"role":"user","content":"write it"}],"step":"bench"}' > request.json
export ORCH_CACHE_DIR="$tmp/cache"
key=$("$bin/orch-cache" key < request.json)
"$bin/orch-cache" -- cat response.json < request.json > /dev/null
for i in 1 2 3 4 5 6 7 8 9; do
	"$bin/orch-cache" put "$(printf '%064d' "$i")" < response.json
done
echo "orch-cache hit, $(wc -c < response.json) byte response, $N runs each"
run "cat entry file (floor)" /dev/null cat "cache/$key.json"
run "jq -c . response (parse + print once)" response.json jq -c .
run "orch-cache get KEY, 10 entries" /dev/null "$bin/orch-cache" get "$key"
run "orch-cache -- CMD (a hit), 10 entries" request.json "$bin/orch-cache" -- false

# 100,000 entries: names as orch-cache makes them; only their number matters
t0=$(date +%s)
(cd cache && seq -f '%064.0f' 100 100099 | xargs touch)
echo "  (made $(ls cache | wc -l) entries in $(( $(date +%s) - t0 )) s)"
run "orch-cache get KEY, 100,000 entries" /dev/null "$bin/orch-cache" get "$key"
run "orch-cache -- CMD (a hit), 100,000 entries" request.json "$bin/orch-cache" -- false
snap c0
t0=$(date +%s%N)
"$bin/orch-cache" stats > stats.json
t1=$(date +%s%N)
snap c1
awk -v c0="$(cat c0)" -v c1="$(cat c1)" -v t0="$t0" -v t1="$t1" \
	'BEGIN { printf "  %-46s %7.3f ms cpu %7.3f ms wall\n", "orch-cache stats, 100,000 entries (once)", (c1 - c0) * 1000, (t1 - t0) / 1e6 }'
