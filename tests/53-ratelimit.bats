#!/usr/bin/env bats
# Rate limits shared across runs (issue 13): requests and tokens per
# minute per account, in a file under the shared cache folder, taken by
# concurrent orch-call processes from one bucket; a spent daily quota
# stops this run and the next. tests/fakeprovider logs each request's
# arrival time, and with --rpm plays a server's own limit.
load helper
load fake

# rreq MODEL QUESTION [LIMITS]: a request to openai; LIMITS (JSON) goes in
# the provider object, as a spec's provider would carry it.
rreq() {
	jq -cn --arg m "$1" --arg q "$2" --argjson l "${3:-null}" \
		'{provider:({name:"openai"} + if $l then {limits:$l} else {} end), model:$m,
		  messages:[{role:"system",content:"Be brief."},{role:"user",content:$q}], step:"s1"}'
}

# The arrival times of the requests, from the first, sorted: a JSON array.
arrivals() {
	jq -s '[.[].t] | sort | .[0] as $t0 | map(. - $t0)' reqs.jsonl
}

@test "rpm: two processes on one key share one limit; the server sees no 429" {
	fake_start --rpm 120 --burst 3
	export ORCH_CACHE_DIR=$PWD/cache
	for i in 1 2 3 4; do rreq m "a$i" '{"rpm":120}'; done > a.jsonl
	for i in 1 2 3 4; do rreq m "b$i"; done > b.jsonl
	orch-call -j 4 a.jsonl > a.out 2> a.err &
	a=$!
	orch-call -j 4 --rpm 120 b.jsonl > b.out 2> b.err &
	b=$!
	wait $a
	wait $b
	[ "$(cat a.out b.out | wc -l)" -eq 8 ]
	[ "$(jq -s 'map(select(.limited)) | length' reqs.jsonl)" -eq 0 ]
	# one every 0.5 s, two at the start: the kth no earlier than (k-1) * 0.5 s
	run jq -c '. as $t | [range(1; length) | select($t[.] < (. - 1) * 0.5 - 0.05)]' <<< "$(arrivals)"
	assert_output '[]'
	# and not much later either: 8 requests in 3 s
	[ "$(arrivals | jq '.[7] < 4')" = true ]
}

@test "tpm: tokens are estimated before each call and corrected after it" {
	fake_start
	export ORCH_CACHE_DIR=$PWD/cache
	# 89 bytes of prompt: 23 tokens estimated; the answer counts 11 + 22
	q=$(printf 'q%.0s' $(seq 80))
	for i in 1 2 3; do rreq m "$q" '{"tpm":2400}'; done > a.jsonl
	orch-call -j 3 a.jsonl > a.out &
	a=$!
	orch-call -j 3 a.jsonl > b.out
	wait $a
	run jq -s -c 'map(.usage.prompt_tokens + .usage.completion_tokens) | unique' a.out b.out
	assert_output '[33]'
	# 40 tokens a second, one second of them ahead: the kth request no
	# earlier than (33k - 40) / 40 s (with the estimates alone the sixth
	# would go at 1.9 s, not 3.0 s)
	run jq -c '. as $t | [range(1; length) | select($t[.] < (33 * . - 40) / 40 - 0.1)]' <<< "$(arrivals)"
	assert_output '[]'
	[ "$(arrivals | jq '.[5] < 4.2')" = true ]
	run jq -c '[.rpm, .tpm]' cache/ratelimit/*.json
	assert_output '[0,2400]'
}

@test "a spent daily quota stops this run and the next, without a request" {
	fake_start --rpd 0
	export ORCH_CACHE_DIR=$PWD/cache
	for i in 1 2 3; do rreq m "q$i" '{"rpm":600}'; done > a.jsonl
	run --separate-stderr orch-call --backoff 0.01 a.jsonl
	[ "$status" -eq 1 ]
	[ "$(nreqs)" -eq 1 ]
	file=$(echo cache/ratelimit/*.json)
	at=$(jq -r .retry_at "$file")
	# an hour on, when the server does not say
	[ "$(jq -r '.retry_at | sub("\\.[0-9]+Z$"; "Z") | fromdate - now | . > 3500 and . < 3700' "$file")" = true ]
	first="orch-call: step s1: openai: HTTP 429: requests: Rate limit reached for requests per day (RPD): Limit 0, Used 0, Requested 1.; the daily quota is spent: no request before $at (retry_at in $PWD/$file)"
	then="orch-call: step s1: openai: the daily quota is spent: no request before $at (retry_at in $PWD/$file)"
	assert_equal "$stderr" "$first"$'\n'"$then"$'\n'"$then"
	# another process on the same account sends nothing
	run --separate-stderr orch-call a.jsonl
	[ "$status" -eq 1 ]
	[ "$(nreqs)" -eq 1 ]
	assert_equal "$stderr" "$then"$'\n'"$then"$'\n'"$then"
}

@test "a 429 with Retry-After over an hour is a daily quota; without limits it is not recorded" {
	fake_start
	export ORCH_CACHE_DIR=$PWD/cache
	req anthropic fail429-ra7200 > r.json
	run --separate-stderr orch-call --backoff 0.01 r.json
	[ "$status" -eq 1 ]
	[ "$(nreqs)" -eq 1 ]
	[[ "$stderr" == *"rate_limit_error: fake failure 429 (request 1); the daily quota is spent: no request before 20"*Z ]]
	[ ! -e cache ]
	run --separate-stderr orch-call --rpm 600 --backoff 0.01 r.json
	[ "$status" -eq 1 ]
	[ "$(jq -r '.retry_at | sub("\\.[0-9]+Z$"; "Z") | fromdate - now | . > 7100 and . < 7300' cache/ratelimit/*.json)" = true ]
	req anthropic plain > r.json
	run orch-call --rpm 600 r.json
	[ "$status" -eq 1 ]
	[ "$(nreqs)" -eq 2 ]
	# another account (another key) is not blocked
	ANTHROPIC_API_KEY=sk-ant-other run orch-call --rpm 600 r.json
	assert_success
}

@test "the state file names the account by a hash of its key, never the key" {
	fake_start
	export ORCH_CACHE_DIR=$PWD/cache
	rreq m hello '{"rpm":600,"tpm":100000}' > r.json
	run orch-call r.json
	assert_success
	OPENAI_API_KEY=sk-another-key-000 run orch-call r.json
	assert_success
	[ "$(ls cache/ratelimit | wc -l)" -eq 2 ]
	run grep -rl -e "$KEY_OPENAI" -e sk-another-key-000 cache
	assert_failure
	run jq -r '.account | sub(" [0-9a-f]{16}$"; "")' cache/ratelimit/*.json
	assert_output "openai http://127.0.0.1:$PORT/v1/chat/completions
openai http://127.0.0.1:$PORT/v1/chat/completions"
	run jq -c 'keys_unsorted' "$(ls cache/ratelimit/*.json | head -1)"
	assert_output '["account","rpm","tpm","requests_until","tokens_until"]'
	[ "$(stat -c %a cache/ratelimit/*.json | sort -u)" = 600 ]
}

@test "the files go to ORCH_CACHE_DIR, else the run's .cache, else XDG_CACHE_HOME" {
	fake_start
	rreq m hello '{"rpm":6000}' > r.json
	mkdir -p run
	ORCH_CACHE_DIR=$PWD/shared run orch-call --run run r.json
	assert_success
	run orch-call --run run r.json
	assert_success
	XDG_CACHE_HOME=$PWD/xdg run orch-call r.json
	assert_success
	run orch-call r.json
	assert_success
	ls shared/ratelimit/*.json run/.cache/ratelimit/*.json xdg/orch/ratelimit/*.json \
		"$HOME"/.cache/orch/ratelimit/*.json
}

@test "limits: in the spec's provider, checked by orch-plan, carried into the request" {
	cat > s.yaml <<'EOF'
job: t
provider: {name: openai, model: m, limits: {rpm: 500, tpm: 200000}}
steps:
  - id: a
    prompt: hi
  - id: b
    provider: {limits: {rpm: many, tmp: 3}}
    prompt: hi
EOF
	run --separate-stderr orch-plan s.yaml
	[ "$status" -eq 2 ]
	assert_equal "$stderr" "orch-plan: s.yaml:7:30: 'rpm' must be a number from 0 to 1e+09
orch-plan: s.yaml:7:36: unknown key 'tmp' in limits (did you mean 'tpm'?)"
	sed -i '/id: b/,$d' s.yaml
	run orch-plan s.yaml
	assert_success
	echo "$output" | jq -c '{step, attempt: 1, spec}' > in.json
	run orch-call --render in.json
	assert_success
	[ "$(echo "$output" | jq -c .limits)" = '{"rpm":500,"tpm":200000}' ]
	rreq m hi '{"rpm":-1}' > r.json
	run orch-call --render r.json
	[ "$status" -eq 2 ]
	run orch-call --rpm x r.json
	[ "$status" -eq 2 ]
}
