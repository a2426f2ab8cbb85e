#!/bin/sh
# bench/call.sh BINDIR: 200 requests at -j 50 against tests/fakeprovider
# answering each after 100 ms (so 4 waves: 0.4 s is the floor; the target
# is under 0.6 s), with orch-call's own CPU per request. The peer, measured
# in the same run, is the shell way: xargs -P 50 running one curl per request.
# Then with 20% of the requests answered 429 at once (a second fake
# server): orch-call retries them (--backoff 0.1, and its default 1), the
# peer is xargs -P 50 curl --retry 5 (curl's own backoff, 1 s doubling).
# Then the exec provider the same way, against xargs -P 50 sh -c.
# Each figure is the best of 3 runs.
set -u
bin=$(cd "${1:-build/bin}" && pwd) || exit 2
src=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
pid=
pid2=
trap 'for p in $pid $pid2; do kill "$p" 2>/dev/null; done; rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy ORCH_RUN_DIR
export NO_PROXY=127.0.0.1 no_proxy=127.0.0.1

[ -x /usr/bin/time ] || { echo "bench/call.sh: needs /usr/bin/time (GNU time); skipped"; exit 0; }
# fake PORTFILE ARG...: start a fake provider; its port is in PORTFILE
fake() {
	f=$1
	shift
	python3 "$src/tests/fakeprovider" --portfile "$f" --delay 0.1 "$@" &
	i=0
	while [ ! -s "$f" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
	[ -s "$f" ] || { echo "bench/call.sh: the fake provider did not start" >&2; exit 1; }
}
fake "$tmp/port"
pid=$!
fake "$tmp/port429" --429 0.2
pid2=$!
port=$(cat "$tmp/port")
export OLLAMA_HOST="127.0.0.1:$port" OPENAI_BASE_URL="http://127.0.0.1:$port/v1"
export ANTHROPIC_BASE_URL="http://127.0.0.1:$port" OPENAI_API_KEY=sk-bench ANTHROPIC_API_KEY=sk-bench

n=200
reqs() {
	k=1
	while [ $k -le $n ]; do
		printf '{"provider":"%s","model":"bench","messages":[{"role":"user","content":"request %d"}],"step":"b"}\n' "$1" $k
		k=$((k + 1))
	done
}

# best of 3: "wall user sys" of the command
best() {
	b=
	for _ in 1 2 3; do
		/usr/bin/time -f "%e %U %S" -o "$tmp/t" "$@" > "$tmp/out" 2> "$tmp/err" || { cat "$tmp/err" >&2; return 1; }
		t=$(cat "$tmp/t")
		if [ -z "$b" ] || [ "$(echo "$t $b" | awk '{print ($1 < $4)}')" = 1 ]; then b=$t; fi
	done
	echo "$b"
}

report() {  # label "wall user sys"
	echo "$2" | awk -v l="$1" -v n=$n '{ printf "%-48s %6.3f s wall  %6.3f ms CPU/request\n", l, $1, ($2 + $3) * 1000 / n }'
}

for p in openai anthropic ollama; do
	reqs $p > "$tmp/$p.jsonl"
done
for mode in "" --stream; do
	for p in openai anthropic ollama; do
		r=$(best "$bin/orch-call" -j 50 $mode "$tmp/$p.jsonl") || exit 1
		lines=$(wc -l < "$tmp/out")
		[ "$lines" -eq $n ] || { echo "bench/call.sh: $lines answers, not $n" >&2; exit 1; }
		report "orch-call -j 50 $p ${mode:-(whole)}" "$r"
	done
done

# the peer: one curl process per request, 50 at a time
printf '{"model":"bench","messages":[{"role":"user","content":"request"}]}' > "$tmp/one.json"
if command -v curl >/dev/null 2>&1; then
	r=$(best sh -c 'seq '$n' | xargs -P 50 -I{} curl -sS -o /dev/null -H "Content-Type: application/json" -d @"$0" "$1"' \
		"$tmp/one.json" "$OPENAI_BASE_URL/chat/completions") || exit 1
	report "xargs -P 50 curl (openai, whole)" "$r"
fi

# 20% of the requests answered 429 at once
base="$OPENAI_BASE_URL"
export OPENAI_BASE_URL="http://127.0.0.1:$(cat "$tmp/port429")/v1"
for b in 0.1 1; do
	r=$(best "$bin/orch-call" -j 50 --backoff $b --retries 8 "$tmp/openai.jsonl") || exit 1
	lines=$(wc -l < "$tmp/out")
	[ "$lines" -eq $n ] || { echo "bench/call.sh: $lines answers, not $n" >&2; exit 1; }
	report "orch-call -j 50 openai, 20% 429 (--backoff $b)" "$r"
done
if command -v curl >/dev/null 2>&1; then
	# a file per request: a retry truncates what the 429 wrote
	r=$(best sh -c 'seq '$n' | xargs -P 50 -I{} curl -sS --retry 5 -o "$2/c{}" -H "Content-Type: application/json" -d @"$0" "$1"' \
		"$tmp/one.json" "$OPENAI_BASE_URL/chat/completions" "$tmp") || exit 1
	report "xargs -P 50 curl --retry 5, 20% 429" "$r"
fi
export OPENAI_BASE_URL="$base"

# exec: a command that takes 100 ms per request, 50 at a time, against
# xargs -P 50 running the same command
reqs exec > "$tmp/exec.jsonl"
r=$(best "$bin/orch-call" -j 50 --command 'sleep 0.1; cat' "$tmp/exec.jsonl") || exit 1
lines=$(wc -l < "$tmp/out")
[ "$lines" -eq $n ] || { echo "bench/call.sh: $lines answers, not $n" >&2; exit 1; }
report "orch-call -j 50 exec (sleep 0.1; cat)" "$r"
r=$(best sh -c 'seq '$n' | xargs -P 50 -I{} sh -c "echo request {} | { sleep 0.1; cat; }"') || exit 1
report "xargs -P 50 sh -c (the same command)" "$r"
echo "floor: 4 waves x 0.1 s = 0.400 s; target < 0.6 s (with 429s: plus the retries' backoff)"
