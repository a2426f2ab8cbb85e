#!/usr/bin/env bats
load helper

FIX="$ORCH_SRC/tests/fixtures/call"
load fake

# ---- rendering ----

@test "render: system and prompt templates become the request" {
	run orch-call --render "$FIX/step.json"
	assert_success
	assert_output '{"provider":"ollama","model":"llama3","messages":[{"role":"system","content":"You are a python architect."},{"role":"user","content":"Design a todo app. Files: a.py, b.py"}],"opts":{"temperature":0.1},"step":"architect"}'
}

@test "render: --provider/--model override the spec; the env fills gaps; echo by default" {
	run orch-call --render --provider openai --model gpt-4o-mini "$FIX/step.json"
	assert_success
	[ "$(echo "$output" | jq -c '[.provider,.model,.opts]')" = '["openai","gpt-4o-mini",{}]' ]
	echo '{"step":"x","spec":{"prompt":"hi"}}' > s.json
	ORCH_PROVIDER=anthropic ORCH_MODEL=claude-x run orch-call --render s.json
	assert_output '{"provider":"anthropic","model":"claude-x","messages":[{"role":"user","content":"hi"}],"opts":{},"step":"x"}'
	run orch-call --render s.json
	assert_output '{"provider":"echo","model":"echo","messages":[{"role":"user","content":"hi"}],"opts":{},"step":"x"}'
	run orch-call --render --provider exec --command 'wc -c' s.json
	assert_output --partial '"model":"wc -c","messages"'
	assert_output --partial '"command":"wc -c"'
}

@test "render: a request record is taken as it is" {
	run orch-call --render "$FIX/request.json"
	assert_success
	[ "$output" = "$(jq -c . "$FIX/request.json")" ]
}

@test "template errors name the field and the jq message; exit 2" {
	echo '{"step":"a","spec":{"system":"ok {{ .x | nosuchfn }}","prompt":"p"}}' > bad1.json
	run --separate-stderr orch-call --render bad1.json
	[ "$status" -eq 2 ]
	[ "$stderr" = "orch-call: step a: system: nosuchfn/0 is not defined" ]
	echo '{"step":"a","spec":{"prompt":"x {{ error(\"boom\") }}"}}' > bad2.json
	run --separate-stderr orch-call bad2.json
	[ "$status" -eq 2 ]
	[ "$stderr" = 'orch-call: step a: prompt: {{ error("boom") }}: boom' ]
	[ -z "$output" ]
}

@test "invalid input: no prompt, unknown provider, no model, not a record: exit 2" {
	run --separate-stderr orch-call <<< '{"step":"a","spec":{"system":"s"}}'
	[ "$status" -eq 2 ]
	assert_equal "$stderr" "orch-call: step a: spec.prompt: missing or not a string"
	run --separate-stderr orch-call <<< '{"provider":"gpt","messages":[{"role":"user","content":"x"}]}'
	[ "$status" -eq 2 ]
	[[ "$stderr" == *'unknown provider "gpt"'* ]]
	run --separate-stderr orch-call <<< '{"provider":"openai","messages":[{"role":"user","content":"x"}]}'
	[ "$status" -eq 2 ]
	[[ "$stderr" == *"provider openai needs a model"* ]]
	run orch-call <<< '[1,2]'
	[ "$status" -eq 2 ]
	run orch-call --bogus
	[ "$status" -eq 2 ]
}

# ---- echo and exec ----

@test "echo: the answer is the last user message; events in the run folder" {
	mkdir -p run
	run orch-call --run run <<< '{"messages":[{"role":"user","content":"first"},{"role":"assistant","content":"a"},{"role":"user","content":"second answer"}],"step":"e"}'
	assert_success
	[ "$(echo "$output" | jq -c 'del(.duration_s)')" = '{"provider":"echo","model":"echo","content":"second answer","finish_reason":"stop","usage":{"prompt_tokens":5,"completion_tokens":4}}' ]
	run jq -c 'select(.type|startswith("llm.")) | [.type,.step,.data.provider,.data.success]' run/events.jsonl
	assert_output $'["llm.request","e","echo",null]\n["llm.response","e","echo",true]'
	[ "$(jq -c 'select(.type=="llm.response") | .data.tokens' run/events.jsonl)" = '{"prompt":5,"completion":4}' ]
}

@test "echo: an empty answer is an error, not an empty success" {
	run --separate-stderr orch-call <<< '{"messages":[{"role":"user","content":""}]}'
	[ "$status" -eq 1 ]
	[ -z "$output" ]
	assert_equal "$stderr" "orch-call: step -: echo: the answer has no content"
}

@test "exec: the prompt on stdin, the system prompt also in ORCH_SYSTEM, stdout the answer" {
	run orch-call --provider exec --model m1 --command 'printf "[%s|%s]" "$ORCH_SYSTEM" "$ORCH_MODEL"; tr a-z A-Z' "$FIX/step.json"
	assert_success
	[ "$(echo "$output" | jq -r .content)" = "$(printf '[You are a python architect.|m1]YOU ARE A PYTHON ARCHITECT.\n\nDESIGN A TODO APP. FILES: A.PY, B.PY')" ]
	[ "$(echo "$output" | jq -r .provider)" = exec ]
}

@test "exec: a failing command is exit 1 with its status; a slow one times out" {
	run --separate-stderr orch-call --provider exec --command 'cat >/dev/null; echo partial; exit 3' <<< '{"messages":[{"role":"user","content":"x"}]}'
	[ "$status" -eq 1 ]
	assert_equal "$stderr" "orch-call: step -: exec: the command exited with status 3"
	run --separate-stderr orch-call --timeout 0.2 --provider exec --command 'exec sleep 5' <<< '{"messages":[{"role":"user","content":"x"}]}'
	[ "$status" -eq 1 ]
	[[ "$stderr" == *"exec: the command timed out after 0.2s"* ]]
}

# ---- the three wire formats ----

@test "ollama: /api/chat, not streamed and streamed, usage from its counts" {
	fake_start
	run orch-call "$FIX/step.json"
	assert_success
	assert_output '{"provider":"ollama","model":"llama3","content":"fake: Design a todo app. Files: a.py, b.py","finish_reason":"stop","usage":{"prompt_tokens":11,"completion_tokens":11},"duration_s":'"$(echo "$output" | jq .duration_s)"'}'
	run orch-call --stream "$FIX/step.json"
	assert_success
	[ "$(echo "$output" | jq -r .content)" = "fake: Design a todo app. Files: a.py, b.py" ]
	run jq -c '[.path, .body.stream, .body.options, .body.messages[0].role]' reqs.jsonl
	assert_output $'["/api/chat",false,{"temperature":0.1},"system"]\n["/api/chat",true,{"temperature":0.1},"system"]'
}

@test "openai: /chat/completions with a bearer key; SSE with include_usage up to [DONE]" {
	fake_start
	run orch-call "$FIX/request.json"
	assert_success
	assert_output --partial '"provider":"openai","model":"qwen2.5","content":"fake: What is 2+2?","finish_reason":"stop","usage":{"prompt_tokens":11,"completion_tokens":5}'
	run orch-call --stream "$FIX/request.json"
	assert_success
	assert_output --partial '"content":"fake: What is 2+2?","finish_reason":"stop","usage":{"prompt_tokens":11,"completion_tokens":5}'
	run jq -c '[.path, .headers.authorization, .body.stream, .body.stream_options, .body.temperature]' reqs.jsonl
	assert_output "[\"/v1/chat/completions\",\"Bearer $KEY_OPENAI\",false,null,0]
[\"/v1/chat/completions\",\"Bearer $KEY_OPENAI\",true,{\"include_usage\":true},0]"
}

@test "anthropic: /v1/messages, x-api-key, version, system on top, max_tokens; SSE events" {
	fake_start
	req anthropic claude-test "hi there" > r.json
	run orch-call r.json
	assert_success
	assert_output --partial '"content":"fake: hi there","finish_reason":"stop","usage":{"prompt_tokens":11,"completion_tokens":4}'
	run orch-call --stream r.json
	assert_success
	assert_output --partial '"content":"fake: hi there","finish_reason":"stop","usage":{"prompt_tokens":11,"completion_tokens":4}'
	run jq -c '[.path, .headers["x-api-key"], .headers["anthropic-version"], .body.system, .body.max_tokens, (.body.messages|map(.role)), .body.stream]' reqs.jsonl
	assert_output "[\"/v1/messages\",\"$KEY_ANTHROPIC\",\"2023-06-01\",\"Be brief.\",4096,[\"user\"],false]
[\"/v1/messages\",\"$KEY_ANTHROPIC\",\"2023-06-01\",\"Be brief.\",4096,[\"user\"],true]"
}

@test "--stream writes the text to logs/<step>.log as it arrives" {
	fake_start
	mkdir -p run
	req openai slow "typing slowly" > r.json
	run orch-call --stream --run run r.json
	assert_success
	[ "$(cat run/logs/s1.log)" = "fake: typing slowly" ]
}

# ---- faults ----

@test "429 with Retry-After is honoured, then the answer comes" {
	fake_start
	mkdir -p run
	req openai fail429x1-ra1 > r.json
	run orch-call --run run --backoff 0.01 r.json
	assert_success
	assert_output --partial '"content":"fake: hello"'
	[ "$(nreqs)" -eq 2 ]
	run jq -c 'select(.type=="llm.response") | [.data.success, .data.status, .data.will_retry, .data.retry_in_s >= 1]' run/events.jsonl
	assert_output $'[false,429,true,true]\n[true,null,null,false]'
	# a Retry-After beyond --timeout: no retry, exit 75 at once
	req openai fail429-ra30 > r.json
	run --separate-stderr orch-call --timeout 5 r.json
	[ "$status" -eq 75 ]
	assert_equal "$stderr" "orch-call: step s1: openai: HTTP 429: rate_limit_error: fake failure 429 (request 1) (after 1 attempt; no time left to retry)"
}

@test "retry schedule: exponential backoff with full jitter, within bounds; exhausted 5xx is exit 75" {
	fake_start
	mkdir -p run
	req ollama fail500 > r.json
	run --separate-stderr orch-call --run run --retries 3 --backoff 0.04 r.json
	[ "$status" -eq 75 ]
	[ "$(nreqs)" -eq 4 ]
	assert_equal "$stderr" "orch-call: step s1: ollama: HTTP 500: fake failure 500 (request 4) (after 4 attempts)"
	# attempt n waits a random time in [0, 0.04 * 2^(n-1)]
	run jq -c 'select(.type=="llm.response") | [.data.attempt, .data.will_retry, (.data.retry_in_s // 0) <= 0.04 * pow(2; .data.attempt - 1)]' run/events.jsonl
	assert_output $'[1,true,true]\n[2,true,true]\n[3,true,true]\n[4,false,true]'
}

@test "500 twice then fine: retried to success" {
	fake_start
	req anthropic fail500x2 > r.json
	run orch-call --backoff 0.01 r.json
	assert_success
	assert_output --partial '"content":"fake: hello"'
	[ "$(nreqs)" -eq 3 ]
}

@test "anthropic 529 overloaded: retried, then one line naming provider, status, message" {
	fake_start
	req anthropic fail529 > r.json
	run --separate-stderr orch-call --retries 1 --backoff 0.01 r.json
	[ "$status" -eq 75 ]
	assert_equal "$stderr" "orch-call: step s1: anthropic: HTTP 529: overloaded_error: fake failure 529 (request 2) (after 2 attempts)"
}

@test "401 and quota errors are not retried: exit 1 after one request" {
	fake_start
	req openai fail401 > r.json
	run --separate-stderr orch-call --backoff 0.01 r.json
	[ "$status" -eq 1 ]
	assert_equal "$stderr" "orch-call: step s1: openai: HTTP 401: authentication_error: fake failure 401 (request 1) (POST http://127.0.0.1:$PORT/v1/chat/completions)"
	req openai quota > r.json
	run --separate-stderr orch-call --backoff 0.01 r.json
	[ "$status" -eq 1 ]
	assert_equal "$stderr" "orch-call: step s1: openai: HTTP 429: insufficient_quota: You exceeded your current quota."
	req anthropic quota > r.json
	run --separate-stderr orch-call --backoff 0.01 r.json
	[ "$status" -eq 1 ]
	[[ "$stderr" == *"anthropic: HTTP 400: invalid_request_error: Your credit balance is too low"* ]]
	[ "$(nreqs)" -eq 3 ]
}

@test "an error inside a 200 stream is an error, for each provider" {
	fake_start
	for p in ollama openai anthropic; do
		req $p errstream > r.json
		run --separate-stderr orch-call --stream --backoff 0.01 r.json
		[ "$status" -eq 1 ]
		[[ "$stderr" == "orch-call: step s1: $p: HTTP 200: "*"fake error inside the stream" ]]
		[ -z "$output" ]
	done
}

@test "a stream cut before its end marker is retried" {
	fake_start
	for p in ollama openai anthropic; do
		req $p truncx1 > r.json
		run orch-call --stream --backoff 0.01 r.json
		assert_success
		assert_output --partial '"content":"fake: hello"'
	done
	[ "$(nreqs)" -eq 6 ]
	req openai trunc > r.json
	run --separate-stderr orch-call --stream --retries 1 --backoff 0.01 r.json
	[ "$status" -eq 75 ]
	assert_equal "$stderr" "orch-call: step s1: openai: HTTP 200: the stream ended before its end marker (after 2 attempts)"
}

@test "invalid JSON from the server: exit 1" {
	fake_start
	req anthropic badjson > r.json
	run --separate-stderr orch-call r.json
	[ "$status" -eq 1 ]
	assert_equal "$stderr" "orch-call: step s1: anthropic: HTTP 200: invalid JSON in the response"
	req ollama badjson > r.json
	run --separate-stderr orch-call --stream r.json
	[ "$status" -eq 1 ]
	assert_equal "$stderr" "orch-call: step s1: ollama: HTTP 200: invalid JSON in the stream"
}

@test "slow bytes arrive whole; --timeout bounds the whole call" {
	fake_start
	req ollama slow > r.json
	run orch-call --stream r.json
	assert_success
	assert_output --partial '"content":"fake: hello"'
	req openai slow-delay300 > r.json
	run --separate-stderr orch-call --timeout 0.15 r.json
	[ "$status" -eq 75 ]
	[[ "$stderr" == "orch-call: step s1: openai: timed out"* ]]
}

@test "connection refused is retried, then exit 75" {
	export OLLAMA_HOST=127.0.0.1:1
	req ollama m > r.json
	run --separate-stderr orch-call --retries 2 --backoff 0.01 r.json
	[ "$status" -eq 75 ]
	[[ "$stderr" == "orch-call: step s1: ollama: "*"(after 3 attempts)" ]]
}

@test "the standard proxy variables are honoured" {
	fake_start
	export OPENAI_BASE_URL=http://192.0.2.1:9/v1 http_proxy="http://127.0.0.1:$PORT"
	unset NO_PROXY no_proxy
	req openai ok viaproxy > r.json
	run orch-call --connect-timeout 2 r.json
	assert_success
	assert_output --partial '"content":"fake: viaproxy"'
	run jq -r .path reqs.jsonl
	assert_output "http://192.0.2.1:9/v1/chat/completions"
}

# ---- concurrency ----

@test "-j: requests in flight at once, answers in input order" {
	fake_start
	for i in 1 2 3 4 5 6; do
		d=$(( (7 - i) * 40 ))
		req openai "delay$d" "n$i"
	done > many.jsonl
	run orch-call -j 6 many.jsonl
	assert_success
	run jq -r .content <<< "$output"
	assert_output $'fake: n1\nfake: n2\nfake: n3\nfake: n4\nfake: n5\nfake: n6'
	# all six were in flight at once: the last arrived before the first
	# (answered after 240 ms) could have been answered
	[ "$(nreqs)" -eq 6 ]
	run jq -s '(map(.t) | max - min) < 0.24' reqs.jsonl
	assert_output true
	run orch-call -j 2 --provider echo many.jsonl
	assert_success
	[ "$(echo "$output" | jq -r .content | tr '\n' ' ')" = "n1 n2 n3 n4 n5 n6 " ]
}

@test "-j: a failed request is reported, the others are printed" {
	fake_start
	{ req openai ok a; req openai fail401 b; req openai ok c; } > mix.jsonl
	run --separate-stderr orch-call -j 3 mix.jsonl
	[ "$status" -eq 1 ]
	[ "$(echo "$output" | jq -r .content | tr '\n' ' ')" = "fake: a fake: c " ]
	[[ "$stderr" == *"openai: HTTP 401"* ]]
}

@test "-j: exec commands run side by side; answers in input order" {
	# each command waits until all three have started: run one at a time,
	# the first would wait for the others until its --timeout
	for i in 1 2 3; do
		jq -cn --arg q "n$i" '{provider:"exec", messages:[{role:"user",content:$q}]}'
	done > three.jsonl
	wait_all='touch "started.$$"; while [ "$(ls started.* | wc -l)" -lt 3 ]; do sleep 0.02; done; cat'
	run --separate-stderr orch-call -j 3 --timeout 30 --command "$wait_all" three.jsonl
	assert_success
	[ "$(echo "$output" | jq -r .content | tr -s '\n' ' ')" = "n1 n2 n3 " ]
	[ "$(ls started.* | wc -l)" -eq 3 ]
}

@test "-j: an exec command runs beside an HTTP request" {
	fake_start
	# the command answers once the HTTP request has reached the server,
	# which only happens while orch-call waits on both at once
	{
		req openai ok a
		jq -cn '{provider:"exec", command:"while [ ! -s reqs.jsonl ]; do sleep 0.02; done; echo b",
		         messages:[{role:"user",content:"x"}]}'
	} > mix.jsonl
	run --separate-stderr orch-call -j 2 --timeout 30 mix.jsonl
	assert_success
	[ "$(echo "$output" | jq -r .content | tr -s '\n' ' ')" = "fake: a b " ]
}

@test "-j: an exec command that times out fails alone; one that closes stdout first is waited for" {
	{
		jq -cn '{provider:"exec", command:"exec sleep 30", messages:[{role:"user",content:"x"}]}'
		jq -cn '{provider:"exec", command:"echo early; exec >&-; sleep 0.3; exit 4", messages:[{role:"user",content:"x"}]}'
		jq -cn '{provider:"exec", command:"cat", messages:[{role:"user",content:"fine"}]}'
	} > three.jsonl
	run --separate-stderr orch-call -j 3 --timeout 2 three.jsonl
	[ "$status" -eq 1 ]
	[ "$(echo "$output" | jq -r .content)" = fine ]
	[[ "$stderr" == *"exec: the command timed out after 2s"* ]]
	[[ "$stderr" == *"exec: the command exited with status 4"* ]]
}

# ---- secrets ----

@test "redaction: no API key in the run folder or on stderr, even with --verbose" {
	fake_start
	mkdir -p run
	for p in openai anthropic; do
		req $p ok > r.json
		orch-call --verbose --stream --run run r.json > out.json 2>> err.txt
		req $p echokey > r.json
		orch-call --verbose --stream --run run r.json >> out.json 2>> err.txt || true
	done
	grep -q "Bearer $KEY_OPENAI" reqs.jsonl   # the key was sent...
	grep -q "$KEY_ANTHROPIC" reqs.jsonl
	grep -q '> Authorization: \[REDACTED\]' err.txt   # ...shown redacted
	grep -q '> x-api-key: \[REDACTED\]' err.txt
	grep -q 'Incorrect API key provided: Bearer \[REDACTED\]' err.txt
	run grep -rlE "$KEY_OPENAI|$KEY_ANTHROPIC|SECRET" run err.txt out.json
	assert_failure
	assert_output ''
}

# ---- the man page ----

@test "man page examples run" {
	run sh -c "$(man_example orch-call.1 1)"
	assert_success
	assert_output '{"provider":"echo","model":"echo","messages":[{"role":"user","content":"Say hello"}],"opts":{},"step":"hi"}'
	run sh -c "$(man_example orch-call.1 2)"
	assert_success
	[ "$(echo "$output" | jq -r .content)" = ping ]
	run sh -c "$(man_example orch-call.1 3)"
	assert_success
	[ "$(echo "$output" | jq -r .content)" = "PING" ]
	fake_start
	cp "$FIX/request.json" request.json
	run sh -c "$(man_example orch-call.1 4) | jq -r .content"
	assert_success
	assert_output "fake: What is 2+2?"
	man -l "$ORCH_SRC/man/orch-call.1" > /dev/null 2>&1
}

@test "--help and --version" {
	run orch-call --help
	assert_success
	assert_output --partial "usage: orch-call"
	run orch-call --version
	assert_output "orch-call 0.1.0"
}

@test "templates cannot read the environment: no key reaches a prompt, a log or the cache" {
	export OPENAI_API_KEY=sk-SECRET-in-env
	printf '%s\n' '{"job_id":"j","step":"s","inputs":{},"task":"t","spec":{"id":"s","prompt":"k={{ $ENV.OPENAI_API_KEY // \"-\" }} e={{ env.OPENAI_API_KEY // \"-\" }} h={{ $ENV | length }}","provider":{"name":"echo"}},"steps":{}}' > in.json
	run orch-call --render < in.json
	assert_success
	run jq -r '.messages[-1].content' <<<"$output"
	assert_output "k=- e=- h=0"
	refute_output --partial SECRET
}

@test "exec: the command inherits no descriptor beyond stdin, stdout and stderr" {
	run orch-call --provider exec --command 'cat >/dev/null; ls /proc/self/fd | sort -n | tr "\n" " "' <<< '{"messages":[{"role":"user","content":"x"}]}'
	assert_success
	# 0 1 2, and the fd ls itself opened to read the folder
	run jq -r .content <<<"$output"
	assert_output --regexp '^0 1 2 [0-9]+ $'
}

@test "--serve: requests taken as they come, each answer printed when done with its id, before stdin ends; a failure its own line" {
	mkfifo in
	orch-call --serve -j 4 < in > out 2> err &
	pid=$!
	exec 5> in
	jq -cn '{id: 7, provider: "exec", command: "sleep 2; cat", model: "slow", messages: [{role: "user", content: "late"}], step: "a"}' >&5
	jq -cn '{id: "x", provider: "echo", messages: [{role: "user", content: "now"}], step: "b"}' >&5
	for _ in $(seq 50); do [ -s out ] && break; sleep 0.05; done
	# the echo answer is out while stdin is open and the slow one still runs
	run jq -c '[.id, .content]' out
	assert_output '["x","now"]'
	jq -cn '{id: 8, provider: "exec", command: "exit 3", model: "f", messages: [{role: "user", content: "q"}], step: "c"}' >&5
	exec 5>&-
	wait "$pid" || true
	run jq -c '[.id, .step, .content, .failed.message, .exit_code]' out
	assert_line --index 0 '["x",null,"now",null,null]'
	assert_line --index 1 '[8,"c",null,"step c: exec: the command exited with status 3",1]'
	assert_line --index 2 '[7,null,"late\n",null,null]'
	[ "${#lines[@]}" -eq 3 ]
	run grep -c '"id"' <(orch-call < /dev/null; jq -cn '{provider: "echo", messages: [{role: "user", content: "q"}]}' | orch-call)
	assert_output 0  # without --serve: no id, as before
}
