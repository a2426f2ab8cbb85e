#!/usr/bin/env bats
# orch-call against what real servers and faulty networks do (issue 13),
# and the secrets and failures of issues 11 and 12: each case is a fault
# that tests/fakeprovider plays, picked by a word in the model's name.
load helper
load fake

# ---- what real servers send ----

@test "gzip: a compressed answer is decoded, whole and streamed, for each provider" {
	fake_start
	for p in ollama openai anthropic; do
		req $p gzip > r.json
		run orch-call r.json
		assert_success
		assert_output --partial '"content":"fake: hello"'
		run orch-call --stream r.json
		assert_success
		assert_output --partial '"content":"fake: hello"'
	done
	# libcurl says what it can decode
	run jq -s 'length == 6 and all(.headers["accept-encoding"] // "" | test("gzip"))' reqs.jsonl
	assert_output true
}

# usage_whole_and_streamed USAGE: orch-call of r.json, whole then streamed,
# logging to run/: each succeeds and its answer's usage is USAGE
usage_whole_and_streamed() {
	local mode
	for mode in "" --stream; do
		run orch-call $mode --run run r.json
		assert_success
		[ "$(echo "$output" | jq -c .usage)" = "$1" ]
	done
}

@test "anthropic prompt caching: cached tokens count as prompt tokens, and are reported apart" {
	fake_start
	mkdir -p run
	req anthropic cache > r.json
	usage_whole_and_streamed '{"prompt_tokens":26,"completion_tokens":3,"cache_read_tokens":20,"cache_creation_tokens":5}'
	run jq -c 'select(.type=="llm.response") | .data.tokens' run/events.jsonl
	assert_output $'{"prompt":26,"completion":3,"cache_read":20,"cache_creation":5}\n{"prompt":26,"completion":3,"cache_read":20,"cache_creation":5}'
	# without caching, usage is as before
	req anthropic plain > r.json
	run orch-call r.json
	[ "$(echo "$output" | jq -c .usage)" = '{"prompt_tokens":11,"completion_tokens":3}' ]
}

@test "openai prompt caching: prompt_tokens_details.cached_tokens are reported apart and priced as cached input" {
	fake_start
	mkdir -p run
	req openai gpt-4o-cache > r.json  # gpt-4o*: USD 2.50 input, 1.25 cached, 10.00 output a million
	usage_whole_and_streamed '{"prompt_tokens":21,"completion_tokens":3,"cache_read_tokens":20,"cache_creation_tokens":0}'
	# 1 x 2.50 + 20 x 1.25 + 3 x 10.00 = 57.5 a million
	run jq -c 'select(.type=="llm.response") | [.data.tokens, (.data.cost_usd * 1e7 | round)]' run/events.jsonl
	assert_output $'[{"prompt":21,"completion":3,"cache_read":20,"cache_creation":0},575]\n[{"prompt":21,"completion":3,"cache_read":20,"cache_creation":0},575]'
	# without caching, usage is as before
	req openai gpt-4o-plain > r.json
	run orch-call r.json
	[ "$(echo "$output" | jq -c .usage)" = '{"prompt_tokens":11,"completion_tokens":3}' ]
}

@test "an SSE 'event: error' with a bare {code,message,type} is the server's message" {
	fake_start
	req openai sseerror > r.json
	run --separate-stderr orch-call --stream --backoff 0.01 r.json
	[ "$status" -eq 1 ]
	assert_equal "$stderr" "orch-call: step s1: openai: HTTP 200: invalid_request_error: the prompt is too long (fake)"
	[ "$(nreqs)" -eq 1 ]
}

@test "a spend cap is permanent however it is worded: exit 1, no retry" {
	fake_start
	call_fails anthropic spendcap 1 "orch-call: step s1: anthropic: HTTP 429: rate_limit_error: This workspace has reached its monthly budget."
	call_fails openai spendcap 1 "orch-call: step s1: openai: HTTP 429: billing_error: Budget exhausted."
	[ "$(nreqs)" -eq 2 ]
}

@test "an empty error body says 'no message'; a 4xx names the URL it was sent to" {
	fake_start
	req openai fail502-nobody > r.json
	run --separate-stderr orch-call --retries 1 --backoff 0.01 r.json
	[ "$status" -eq 75 ]
	assert_equal "$stderr" "orch-call: step s1: openai: HTTP 502: no message (after 2 attempts)"
	req openai fail404-nobody > r.json
	run --separate-stderr orch-call r.json
	[ "$status" -eq 1 ]
	assert_equal "$stderr" "orch-call: step s1: openai: HTTP 404: no message (POST http://127.0.0.1:$PORT/v1/chat/completions)"
	req anthropic fail400 > r.json
	run --separate-stderr orch-call r.json
	[ "$status" -eq 1 ]
	assert_equal "$stderr" "orch-call: step s1: anthropic: HTTP 400: server_error: fake failure 400 (request 1) (POST http://127.0.0.1:$PORT/v1/messages)"
}

@test "a redirect is followed on the same origin only; the key never goes elsewhere" {
	fake_start
	req openai redirsame > r.json
	run orch-call r.json
	assert_success
	assert_output --partial '"content":"fake: hello"'
	run jq -c '[.path, .headers.authorization]' reqs.jsonl
	assert_output "[\"/v1/chat/completions\",\"Bearer $KEY_OPENAI\"]
[\"/r/v1/chat/completions\",\"Bearer $KEY_OPENAI\"]"
	rm reqs.jsonl
	req anthropic redirother > r.json
	run --separate-stderr orch-call --backoff 0.01 r.json
	[ "$status" -eq 1 ]
	assert_equal "$stderr" "orch-call: step s1: anthropic: HTTP 307: redirected to another origin, not followed: http://localhost:$PORT/x/v1/messages (POST http://127.0.0.1:$PORT/v1/messages)"
	run jq -r .path reqs.jsonl
	assert_output /v1/messages
}

@test "a whole JSON answer to a streamed request is taken" {
	fake_start
	for p in ollama openai anthropic; do
		req $p jsonstream > r.json
		run orch-call --stream r.json
		assert_success
		assert_output --partial '"content":"fake: hello","finish_reason":"stop"'
	done
	[ "$(nreqs)" -eq 3 ]
}

@test "--idle-timeout: a stall is cut after N s with no byte, and retried" {
	fake_start
	mkdir -p run
	req openai stallx1 > r.json
	start=$(date +%s.%N)
	run orch-call --stream --idle-timeout 0.5 --backoff 0.01 --run run r.json
	assert_success
	assert_output --partial '"content":"fake: hello"'
	[ "$(echo "$(date +%s.%N) - $start < 2.9" | bc)" = 1 ]
	[ "$(nreqs)" -eq 2 ]
	run jq -r 'select(.type=="llm.response") | .data.error // "ok"' run/events.jsonl
	assert_output $'no byte for 0.5s (--idle-timeout)\nok'
	req anthropic stall > r.json
	run --separate-stderr orch-call --stream --idle-timeout 0.5 --retries 0 r.json
	[ "$status" -eq 75 ]
	assert_equal "$stderr" "orch-call: step s1: anthropic: HTTP 200: no byte for 0.5s (--idle-timeout)"
	run orch-call --idle-timeout x r.json
	[ "$status" -eq 2 ]
}

@test "408, 409 and 520-524 are retried, as the providers' SDKs do" {
	fake_start
	for code in 408 409 520 521 522 523 524; do
		req openai "fail${code}x1" > r.json
		run orch-call --backoff 0.01 r.json
		assert_success
	done
	[ "$(nreqs)" -eq 14 ]
}

@test "x-should-retry is honoured both ways" {
	fake_start
	req openai fail400x1-xretry > r.json
	run orch-call --backoff 0.01 r.json
	assert_success
	[ "$(nreqs)" -eq 2 ]
	req anthropic fail500-xnoretry > r.json
	run --separate-stderr orch-call --backoff 0.01 r.json
	[ "$status" -eq 1 ]
	[ "$(nreqs)" -eq 3 ]
}

@test "openai: a refusal is an error naming it; reasoning_content is kept apart" {
	fake_start
	req openai refusal > r.json
	for mode in "" --stream; do
		run --separate-stderr orch-call $mode r.json
		[ "$status" -eq 1 ]
		assert_equal "$stderr" "orch-call: step s1: openai: HTTP 200: the model refused: I can't help with that."
	done
	req openai reasoning > r.json
	for mode in "" --stream; do
		run orch-call $mode r.json
		assert_success
		[ "$(echo "$output" | jq -c '[.content, .reasoning]')" = '["fake: hello","Let me think."]' ]
	done
}

@test "openai: max_tokens is sent as max_completion_tokens to the o1, o3, o4 and gpt-5 families" {
	fake_start
	for m in o1 o3-mini o4-mini-2025-04-16 gpt-5 gpt-5-nano gpt-4o o10x; do
		jq -cn --arg m "$m" '{provider:"openai", model:$m, messages:[{role:"user",content:"x"}], opts:{max_tokens:100}}'
	done > many.jsonl
	run orch-call many.jsonl
	assert_success
	run jq -c '[.body.model, .body.max_tokens, .body.max_completion_tokens]' reqs.jsonl
	assert_output '["o1",null,100]
["o3-mini",null,100]
["o4-mini-2025-04-16",null,100]
["gpt-5",null,100]
["gpt-5-nano",null,100]
["gpt-4o",100,null]
["o10x",100,null]'
}

@test "ollama: truncate, shift, logprobs, top_logprobs and keep_alive go at the top level" {
	fake_start
	jq -cn '{provider:"ollama", model:"m", messages:[{role:"user",content:"x"}],
	         opts:{truncate:false, shift:false, logprobs:true, top_logprobs:3, keep_alive:"5m", temperature:0.2}}' > r.json
	run orch-call r.json
	assert_success
	run jq -c '.body | [.truncate, .shift, .logprobs, .top_logprobs, .keep_alive, .options]' reqs.jsonl
	assert_output '[false,false,true,3,"5m",{"temperature":0.2}]'
}

# ---- secrets and failures that explain themselves ----

@test "a password in a base URL is never printed, for each provider variable" {
	fake_start
	mkdir -p run
	export OLLAMA_HOST="u:hunter2-SECRET@127.0.0.1:$PORT"
	export OPENAI_BASE_URL="http://u:hunter2-SECRET@127.0.0.1:$PORT/v1"
	export ANTHROPIC_BASE_URL="http://u:hunter2-SECRET@127.0.0.1:$PORT"
	for p in ollama openai anthropic; do
		req $p ok > r.json
		orch-call --verbose --stream --run run r.json >> out.json 2>> err.txt
		req $p fail404 > r.json
		orch-call --verbose --stream --run run r.json >> out.json 2>> err.txt || true
	done
	[ "$(jq -r .content out.json | sort -u)" = "fake: hello" ]
	grep -q "> POST http://127.0.0.1:$PORT/v1/chat/completions" err.txt
	grep -q "HTTP 404: .* (POST http://127.0.0.1:$PORT/api/chat)" err.txt
	run grep -rl "hunter2" run err.txt out.json
	assert_failure
}

@test "no key for the provider's own URL: nothing is sent, and the variable to set is named" {
	fake_start
	# a request that went out would land at the fake, through the proxy
	export http_proxy="http://127.0.0.1:$PORT" https_proxy="http://127.0.0.1:$PORT"
	unset NO_PROXY no_proxy OPENAI_BASE_URL ANTHROPIC_BASE_URL OPENAI_API_KEY ANTHROPIC_API_KEY
	mkdir -p run
	req openai gpt-4o > r.json
	run --separate-stderr orch-call --run run r.json
	[ "$status" -eq 1 ]
	assert_equal "$stderr" "orch-call: step s1: openai: OPENAI_API_KEY is not set"
	OPENAI_BASE_URL=http://API.openai.com/v1/ run --separate-stderr orch-call r.json
	[ "$status" -eq 1 ]
	assert_equal "$stderr" "orch-call: step s1: openai: OPENAI_API_KEY is not set"
	req anthropic claude-x > r.json
	OPENAI_API_KEY=k ANTHROPIC_BASE_URL=http://api.anthropic.com/ run --separate-stderr orch-call r.json
	[ "$status" -eq 1 ]
	assert_equal "$stderr" "orch-call: step s1: anthropic: ANTHROPIC_API_KEY is not set"
	[ "$(nreqs)" -eq 0 ]
	run jq -c 'select(.type=="llm.response") | [.level, .data.success, .data.error]' run/events.jsonl
	assert_output '["ERROR",false,"OPENAI_API_KEY is not set"]'
}

@test "no key for another server: sent without one; its 401 names the variable" {
	fake_start
	unset OPENAI_API_KEY
	req openai ok > r.json
	run orch-call r.json
	assert_success
	req openai fail401 > r.json
	run --separate-stderr orch-call r.json
	[ "$status" -eq 1 ]
	assert_equal "$stderr" "orch-call: step s1: openai: HTTP 401: authentication_error: fake failure 401 (request 1) (POST http://127.0.0.1:$PORT/v1/chat/completions; OPENAI_API_KEY is not set)"
	run jq -r '.headers.authorization // "none"' reqs.jsonl
	assert_output $'none\nnone'
}

@test "a final failure is an llm.response at level ERROR; a retried one is WARN" {
	fake_start
	mkdir -p run
	req openai fail500 > r.json
	run orch-call --run run --retries 1 --backoff 0.01 r.json
	[ "$status" -eq 75 ]
	req openai fail401 > r.json
	run orch-call --run run r.json
	[ "$status" -eq 1 ]
	run jq -c 'select(.type=="llm.response") | [.level, .data.will_retry]' run/events.jsonl
	assert_output $'["WARN",true]\n["ERROR",false]\n["ERROR",false]'
}

# ---- model fallback ----

@test "fallback: -p a,b and a provider list render as the first provider and a fallback list" {
	# openai keeps the opts of the request, whose provider it is
	run orch-call --render -p anthropic:claude-x,openai:gpt-4o,ollama:llama3:8b "$BATS_TEST_DIRNAME/fixtures/call/request.json"
	assert_success
	[ "$(echo "$output" | jq -c '[.provider, .model, .fallback]')" = '["anthropic","claude-x",[{"provider":"openai","model":"gpt-4o","opts":{"temperature":0}},{"provider":"ollama","model":"llama3:8b","opts":{}}]]' ]
	echo '{"step":"x","spec":{"prompt":"hi","provider":[{"name":"openai","model":"m1","opts":{"temperature":0}},"echo"]}}' > s.json
	run orch-call --render s.json
	assert_success
	assert_output '{"provider":"openai","model":"m1","messages":[{"role":"user","content":"hi"}],"opts":{"temperature":0},"step":"x","fallback":[{"provider":"echo","model":"echo","opts":{}}]}'
	# every provider of the list is checked
	run orch-call --render -p openai:m,nosuch s.json
	[ "$status" -eq 2 ]
	# the cache key is the first provider's
	k1=$(orch-call --render s.json | orch-cache key)
	k2=$(orch-call --render -p openai s.json | orch-cache key)
	k3=$(jq -c '.spec.provider' s.json | jq -c --slurpfile r <(orch-call --render s.json) '$r[0] + {provider: .}' | orch-cache key)
	[ "$k1" = "$k2" ] && [ "$k1" = "$k3" ]
}

@test "fallback: when the first's retries run out the next answers, and says so" {
	fake_start
	mkdir -p run
	jq -cn '{provider:["openai", "anthropic:ok-claude"], model:"fail500",
	         messages:[{role:"user",content:"hello"}], step:"s1"}' > r.json
	run --separate-stderr orch-call --run run --retries 1 --backoff 0.01 r.json
	assert_success
	[ "$(echo "$output" | jq -c '[.provider, .model, .content]')" = '["anthropic","ok-claude","fake: hello"]' ]
	assert_equal "$stderr" "orch-call: step s1: openai: HTTP 500: server_error: fake failure 500 (request 2) (after 2 attempts); falling back to anthropic (ok-claude)"
	run jq -c 'select(.type|startswith("llm.")) | [.type, .level, .data.provider, .data.success, .data.next_provider]' run/events.jsonl
	assert_output '["llm.request","INFO","openai",null,null]
["llm.response","WARN","openai",false,null]
["llm.request","INFO","openai",null,null]
["llm.response","WARN","openai",false,null]
["llm.fallback","WARN","openai",null,"anthropic"]
["llm.request","INFO","anthropic",null,null]
["llm.response","INFO","anthropic",true,null]'
}

@test "fallback: a spend cap or an overload moves on at once; a 401 does not" {
	fake_start
	for first in spendcap fail529; do
		jq -cn --arg m "$first" '{provider:["anthropic", "openai:ok"], model:$m,
		         messages:[{role:"user",content:"hello"}], step:"s1"}' > r.json
		run --separate-stderr orch-call --backoff 0.01 r.json
		assert_success
		[ "$(echo "$output" | jq -r .provider)" = openai ]
	done
	run jq -r .path reqs.jsonl
	assert_output $'/v1/messages\n/v1/chat/completions\n/v1/messages\n/v1/chat/completions'
	jq -cn '{provider:["anthropic", "openai:ok"], model:"fail401",
	         messages:[{role:"user",content:"hello"}], step:"s1"}' > r.json
	run orch-call --backoff 0.01 r.json
	[ "$status" -eq 1 ]
	[ "$(nreqs)" -eq 5 ]
	# the last of the list fails as one provider would
	jq -cn '{provider:["anthropic", "openai"], model:"fail529",
	         messages:[{role:"user",content:"hello"}], step:"s1"}' > r.json
	run --separate-stderr orch-call -p anthropic,openai:fail500 --retries 0 r.json
	[ "$status" -eq 75 ]
	[[ "$stderr" == *"openai: HTTP 500: "* ]]
}

@test "fallback: orch run with a spec's provider list falls back, says who answered, caches under the first's key" {
	fake_start
	cat > fb.yaml <<-'EOF'
	job: fb
	provider: [{name: openai, model: quota}, {name: anthropic, model: ok-claude}]
	steps:
	  - {id: s1, prompt: hello}
	EOF
	run --separate-stderr orch run fb.yaml
	assert_success
	R=$ORCH_RUNS/fb
	run jq -c 'select(.type == "llm.fallback") | [.step, .data.provider, .data.model, .data.next_provider, .data.next_model]' "$R/events.jsonl"
	assert_output '["s1","openai","quota","anthropic","ok-claude"]'
	[ "$(jq -r .output "$R/artifacts/s1.json")" = "fake: hello" ]
	# the response says who answered
	key=$(jq -r 'select(.type == "cache.miss") | .data.cache_key' "$R/events.jsonl")
	run orch-cache --run "$R" get "$key"
	assert_success
	[ "$(jq -c '[.provider, .model, .content]' <<<"$output")" = '["anthropic","ok-claude","fake: hello"]' ]
	# the key is the first provider's: the request to it alone has the same
	one='{"step":"s1","spec":{"prompt":"hello","provider":{"name":"openai","model":"quota"}}}'
	[ "$(echo "$one" | orch-call --render | orch-cache key)" = "$key" ]
	# a second run is a cache hit: nothing is sent
	n=$(nreqs)
	[ "$n" -eq 2 ]
	run orch run fb.yaml
	assert_success
	[ "$(nreqs)" -eq "$n" ]
	run jq -r 'select(.type | startswith("cache.")) | .type' "$R/events.jsonl"
	assert_output $'cache.miss\ncache.hit'
}

# ---- a spec's provider.base_url ----

@test "base_url: the spec's provider.base_url is where the call goes, fallbacks each to their own" {
	fake_start
	mkdir -p run
	printf '%s\n' 'job: bu' 'steps:' '  - id: s' "    provider: [{name: openai, model: fail500, base_url: \"http://127.0.0.1:$PORT/one/v1\"}, {name: openai, model: ok, base_url: \"http://127.0.0.1:$PORT/two/v1/\"}]" '    prompt: hello' > bu.yaml
	run orch-plan bu.yaml
	assert_success
	jq -c '{job_id: "bu", step: "s", spec: .spec}' <<< "$output" > s.json
	run orch-call --render s.json
	assert_success
	[ "$(jq -c '[.base_url, .fallback[0].base_url]' <<< "$output")" = "[\"http://127.0.0.1:$PORT/one/v1\",\"http://127.0.0.1:$PORT/two/v1/\"]" ]
	# the cache key is the provider's name, model and opts: where it answers is not
	[ "$(orch-cache key <<< "$output")" = "$(jq -c 'del(.base_url, .fallback)' <<< "$output" | orch-cache key)" ]
	run --separate-stderr orch-call --run run --retries 0 s.json
	assert_success
	[ "$(jq -r .content <<< "$output")" = "fake: hello" ]
	run jq -r .path reqs.jsonl
	assert_output $'/one/v1/chat/completions\n/two/v1/chat/completions'
}

@test "base_url: a key goes only to the provider's own host or its *_BASE_URL's; a spec's other host gets none" {
	fake_start
	jq -cn '{step: "s", spec: {provider: {name: "openai", model: "ok", base_url: $u}, prompt: "hi"}}' \
		--arg u "http://127.0.0.1:$PORT/same" > same.json
	jq -cn '{step: "s", spec: {provider: {name: "openai", model: "fail401", base_url: $u}, prompt: "hi"}}' \
		--arg u "http://localhost:$PORT/other" > other.json
	run orch-call same.json
	assert_success
	run --separate-stderr orch-call --retries 0 other.json
	assert_failure 1
	[[ $stderr == *"(POST http://localhost:$PORT/other/chat/completions; OPENAI_API_KEY is not sent to a spec's base_url on another host)"* ]]
	run jq -r '[.path, .headers.authorization // "none"] | join(" ")' reqs.jsonl
	assert_output "/same/chat/completions Bearer $KEY_OPENAI
/other/chat/completions none"
	# and no message shows the key
	! grep -q SECRET <<< "$stderr"
}
