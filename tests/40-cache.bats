#!/usr/bin/env bats
load helper
bats_require_minimum_version 1.5.0

# A fake provider: counts its calls, answers with the first message's text.
fake_provider() {
	mkdir -p stub
	cat > stub/fake-llm <<-'EOF'
	#!/bin/sh
	echo call >> "${CALLS:-calls}"
	jq -c '{provider, model, content: ("echo " + .messages[-1].content), finish_reason: "stop",
	        usage: {prompt_tokens: 3, completion_tokens: 2}, duration_s: 0.5}'
	EOF
	chmod +x stub/fake-llm
	PATH="$PWD/stub:$PATH"
}

req='{"provider":"ollama","model":"llama3","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"hi"}],"opts":{"temperature":0.1,"seed":{"b":2,"a":1}},"step":"architect"}'

setup() {
	orch_setup
	export ORCH_CACHE_DIR="$PWD/cache"
	fake_provider
}

@test "key: sha256 of the canonical key object, same as jq -S -c | sha256sum" {
	want=$(echo "$req" | jq -S -c '{provider: {name: .provider, model: .model, opts: .opts},
		step: .step, inputs: .messages, code_version: "0.1.0"}' | tr -d '\n' | sha256sum | cut -d' ' -f1)
	run orch-cache key <<< "$req"
	assert_success
	assert_output "$want"
}

@test "key: stable under key order and white space, nested objects included" {
	k1=$(orch-cache key <<< "$req")
	k2=$(echo "$req" | jq '{step, opts: {seed: {a: .opts.seed.a, b: .opts.seed.b}, temperature: .opts.temperature}, messages, model, provider}' | orch-cache key)
	[ "$k1" = "$k2" ]
	[[ "$k1" =~ ^[0-9a-f]{64}$ ]]
}

@test "key: numbers canonical as jq prints them (1.0 == 1, 1e2 == 100)" {
	a=$(orch-cache key <<< '{"messages":[],"opts":{"t":1.0,"n":1e2}}')
	b=$(orch-cache key <<< '{"messages":[],"opts":{"n":100,"t":1}}')
	want=$(jq -S -c '{provider: {name: null, model: null, opts: .opts}, step: null, inputs: .messages, code_version: "0.1.0"}' \
		<<< '{"messages":[],"opts":{"t":1.0,"n":1e2}}' | tr -d '\n' | sha256sum | cut -d' ' -f1)
	[ "$a" = "$b" ]
	[ "$a" = "$want" ]
}

@test "key: model, opts, messages, step, provider and code version each change it" {
	k=$(orch-cache key <<< "$req")
	for f in '.model="llama3.1"' '.opts.temperature=0.2' '.messages[1].content="hi!"' \
		'.step="builder"' '.provider="openai"' '.messages += [{"role":"user","content":"x"}]'; do
		k2=$(jq -c "$f" <<< "$req" | orch-cache key)
		[ "$k" != "$k2" ] || { echo "unchanged by $f"; false; }
	done
	k3=$(ORCH_CODE_VERSION=9 orch-cache key <<< "$req")
	[ "$k" != "$k3" ]
}

@test "key: no credential or base URL enters it; missing opts is {}" {
	k=$(orch-cache key <<< "$req")
	k2=$(jq -c '.api_key="sk-secret" | .base_url="http://u:pw@h/v1" | .headers={"Authorization":"Bearer x"}' <<< "$req" | orch-cache key)
	[ "$k" = "$k2" ]
	a=$(jq -c 'del(.opts)' <<< "$req" | orch-cache key)
	b=$(jq -c '.opts={}' <<< "$req" | orch-cache key)
	[ "$a" = "$b" ]
}

@test "key: provider exec, the command stands for a missing model" {
	a=$(orch-cache key <<< '{"provider":"exec","command":"./llm.sh","messages":[]}')
	b=$(orch-cache key <<< '{"provider":"exec","command":"./other.sh","messages":[]}')
	c=$(orch-cache key <<< '{"provider":"exec","model":"./llm.sh","messages":[]}')
	[ "$a" != "$b" ]
	[ "$a" = "$c" ]
}

@test "key: one key per request line; a request without messages is refused (2)" {
	printf '%s\n%s\n' "$req" "$req" | orch-cache key > keys
	[ "$(wc -l < keys)" -eq 2 ]
	[ "$(sort -u keys | wc -l)" -eq 1 ]
	run orch-cache key <<< '{"model":"x"}'
	assert_failure 2
	assert_output --partial "messages"
	run orch-cache key <<< '{"messages":'
	assert_failure 2
}

@test "put and get; get of a missing key exits 1; bad key exits 2" {
	k=$(orch-cache key <<< "$req")
	echo '{"content":"stored","usage":{"prompt_tokens":1}}' | orch-cache put "$k"
	run orch-cache get "$k"
	assert_success
	assert_output '{"content":"stored","usage":{"prompt_tokens":1}}'
	run orch-cache get 0000000000000000000000000000000000000000000000000000000000000000
	assert_failure 1
	assert_output ""
	run orch-cache get ../../etc/passwd
	assert_failure 2
	run orch-cache put "$k" <<< 'not json'
	assert_failure 2
}

@test "no cache folder: exit 2 with a clear message" {
	unset ORCH_CACHE_DIR
	run orch-cache get 0000000000000000000000000000000000000000000000000000000000000000
	assert_failure 2
	assert_output --partial "ORCH_CACHE_DIR"
}

@test "run folder: RUN/.cache, cache.miss then cache.hit events with the key and step" {
	unset ORCH_CACHE_DIR
	mkdir -p runs/j
	export ORCH_RUN_DIR=$PWD/runs/j ORCH_STEP=architect
	run orch-cache -- fake-llm <<< "$req"
	assert_success
	k=$(orch-cache key <<< "$req")
	[ -f "runs/j/.cache/$k.json" ]
	run orch-cache -- fake-llm <<< "$req"
	assert_success
	run jq -c '[.type, .step, .data.cache_key == "'"$k"'", .job_id]' runs/j/events.jsonl
	assert_output "$(printf '%s\n' '["cache.miss","architect",true,"j"]' '["cache.hit","architect",true,"j"]')"
}

@test "wrapper: runs the command once for two equal requests; marks miss then hit" {
	run orch-cache -- fake-llm <<< "$req"
	assert_success
	assert_output --partial '"content":"echo hi"'
	assert_output --partial '"cache":"miss"'
	# same request, other key order and spacing
	run orch-cache -- fake-llm < <(jq '.' <<< "$req")
	assert_success
	assert_output --partial '"cache":"hit"'
	[ "$(wc -l < calls)" -eq 1 ]
	first=$(jq -c 'del(.cache)' <<< "$output")
	[ "$first" = '{"provider":"ollama","model":"llama3","content":"echo hi","finish_reason":"stop","usage":{"prompt_tokens":3,"completion_tokens":2},"duration_s":0.5}' ]
	# what is stored has no cache field
	run orch-cache get "$(orch-cache key <<< "$req")"
	refute_output --partial '"cache"'
}

@test "wrapper: the command gets the request byte for byte on stdin" {
	run orch-cache -- sh -c 'cat > got; echo "{\"ok\":true}"' <<< "$req"
	assert_success
	[ "$(cat got)" = "$req" ]
}

@test "wrapper: non-zero exit passed on, nothing stored; signal is 128+N" {
	run orch-cache -- sh -c 'echo "{\"partial\":1}"; exit 3' <<< "$req"
	assert_failure 3
	[ ! -e cache ] || [ -z "$(ls cache)" ]
	run orch-cache -- sh -c 'kill -TERM $$' <<< "$req"
	assert_failure 143
	run -127 orch-cache -- ./no-such-command <<< "$req"
	[ ! -e cache ] || [ -z "$(ls cache)" ]
}

@test "wrapper: output that is not exactly one JSON value is not stored (exit 1)" {
	for out in 'not json' '{"a":1} {"b":2}' '' '{"a":'; do
		run orch-cache -- printf '%s' "$out" <<< "$req"
		assert_failure 1
	done
	[ ! -e cache ] || [ -z "$(ls cache)" ]
	run orch-cache -- fake-llm <<< '{"messages":'
	assert_failure 2
	[ ! -e calls ]
}

corrupt_case() {
	k=$(orch-cache key <<< "$req")
	orch-cache -- fake-llm <<< "$req" > /dev/null
	"$@" "cache/$k.json"
	mkdir -p runs/j
	run env ORCH_RUN_DIR=$PWD/runs/j orch-cache -- fake-llm <<< "$req"
	assert_success
	assert_output --partial '"cache":"miss"'
	[ "$(wc -l < calls)" -eq 2 ]
	grep -q '"level":"WARN","job_id":"j","type":"cache.corrupt"' runs/j/events.jsonl
	# refilled: a hit again
	run orch-cache -- fake-llm <<< "$req"
	assert_output --partial '"cache":"hit"'
}

truncate_half() { truncate -s $(( $(stat -c %s "$1") / 2 )) "$1"; }
flip_byte() { sed -i 's/echo hi/echo HI/' "$1"; }
emptyit() { : > "$1"; }
drop_last() { truncate -s -1 "$1"; }

@test "a truncated entry is a miss and a WARN event" { corrupt_case truncate_half; }
@test "an entry with one byte off is a miss (checksum)" { corrupt_case flip_byte; }
@test "an empty entry is a miss" { corrupt_case emptyit; }
@test "an entry missing its last newline is a miss" { corrupt_case drop_last; }

@test "a foreign entry (another key's file) is a miss, never a wrong answer" {
	other=$(jq -c '.messages[1].content="other"' <<< "$req")
	orch-cache -- fake-llm <<< "$other" > /dev/null
	k=$(orch-cache key <<< "$req") ko=$(orch-cache key <<< "$other")
	cp "cache/$ko.json" "cache/$k.json"
	run orch-cache get "$k"
	assert_failure 1
	assert_output --partial "foreign"
	run orch-cache -- fake-llm <<< "$req"
	assert_output --partial '"content":"echo hi"'
}

@test "concurrent fills of one key all succeed with the same answer" {
	for i in 1 2 3 4 5 6; do
		orch-cache -- fake-llm <<< "$req" > "out$i" &
	done
	wait
	for i in 1 2 3 4 5 6; do
		[ "$(jq -c 'del(.cache)' "out$i")" = "$(jq -c 'del(.cache)' out1)" ]
	done
	[ "$(ls cache | grep -v '^steps$' | wc -l)" -eq 1 ]
	[ "$(ls -A cache/steps | wc -l)" -eq 1 ]  # the step's index, whole
	run orch-cache get "$(orch-cache key <<< "$req")"
	assert_success
	assert_output --partial '"content":"echo hi"'
}

@test "stats and prune: --older-than, --max-size drops the least recently used" {
	run orch-cache stats
	assert_output --partial '"entries":0'
	for i in 1 2 3 4; do
		jq -c ".messages[1].content=\"m$i\"" <<< "$req" | orch-cache -- fake-llm > /dev/null
	done
	ls cache/*.json > before
	touch -d '40 days ago' "$(sed -n 1p before)"
	touch -d '2 days ago' "$(sed -n 2p before)"
	touch -d '1 day ago' "$(sed -n 3p before)"
	touch cache/.stray-notes.txt
	run orch-cache stats
	assert_success
	[ "$(jq .entries <<< "$output")" -eq 4 ]
	[ "$(jq .bytes <<< "$output")" -eq "$(cat cache/*.json | wc -c)" ]
	[ "$(jq -r .oldest <<< "$output" | cut -c1-10)" = "$(date -u -d '40 days ago' +%F)" ]
	run orch-cache prune --older-than 30d
	assert_success
	[ "$(jq .removed <<< "$output")" -eq 1 ]
	[ ! -e "$(sed -n 1p before)" ]
	size=$(stat -c %s "$(sed -n 4p before)")
	run orch-cache prune --max-size "$size"
	[ "$(jq .removed <<< "$output")" -eq 2 ]
	[ -e "$(sed -n 4p before)" ]
	[ -e cache/.stray-notes.txt ]
	run orch-cache prune --max-size 10X
	assert_failure 2
	run orch-cache prune
	assert_failure 2
}

@test "prune --older-than also removes step indexes not written for that long; --max-size leaves them; stale temporary files go at any prune" {
	for s in a b; do
		jq -c ".step=\"$s\" | .messages[1].content=\"$s\"" <<< "$req" | ORCH_JOB_ID=j orch-cache -- fake-llm > /dev/null
	done
	ls cache/steps > ix
	[ "$(wc -l < ix)" -eq 2 ]
	old=cache/steps/$(sed -n 1p ix) new=cache/steps/$(sed -n 2p ix)
	touch -d '40 days ago' "$old"
	tmp=cache/steps/.$(sed -n 2p ix).0123456789abcdef.tmp
	echo torn > "$tmp"
	touch -d '2 hours ago' "$tmp"
	touch cache/steps/notes.txt
	run orch-cache prune --max-size 1G  # a stale temporary file goes at any prune
	[ "$(jq .indexes_removed <<< "$output")" -eq 0 ]
	[ -e "$old" ] && [ ! -e "$tmp" ]
	run orch-cache prune --older-than 30d
	assert_success
	[ "$(jq -c '[.removed, .indexes_removed]' <<< "$output")" = "[0,1]" ]
	[ ! -e "$old" ] && [ -e "$new" ] && [ -e cache/steps/notes.txt ]
}

@test "a hit refreshes the entry's age" {
	orch-cache -- fake-llm <<< "$req" > /dev/null
	f=$(ls cache/*.json)
	touch -d '40 days ago' "$f"
	orch-cache -- fake-llm <<< "$req" > /dev/null
	run orch-cache prune --older-than 30d
	[ "$(jq .removed <<< "$output")" -eq 0 ]
}

@test "usage errors exit 2; --help and --version exit 0" {
	run orch-cache
	assert_failure 2
	run orch-cache frobnicate
	assert_failure 2
	run orch-cache --
	assert_failure 2
	run orch-cache --help
	assert_success
	assert_output --partial "orch-cache"
	run orch-cache --version
	assert_success
	assert_output "orch-cache 0.1.0"
}

@test "man page examples run" {
	run sh -c "$(man_example orch-cache.1 1)"
	assert_success
	assert_output "$(jq -S -c '{provider:{name:.provider,model:.model,opts:{}},step:null,inputs:.messages,code_version:"0.1.0"}' \
		<<< '{"provider":"ollama","model":"llama3","messages":[{"role":"user","content":"hi"}]}' | tr -d '\n' | sha256sum | cut -d' ' -f1)"
	cp stub/fake-llm stub/orch-call
	echo "$req" > request.json
	run sh -c "$(man_example orch-cache.1 2)"
	assert_success
	assert_output --partial '"cache":"miss"'
	run sh -c "$(man_example orch-cache.1 2)"
	assert_output --partial '"cache":"hit"'
	mkdir -p "$HOME/.cache/orch"
	cp cache/*.json "$HOME/.cache/orch/"
	run sh -c "$(man_example orch-cache.1 3)"
	assert_success
	[ "$(jq .entries <<< "$output")" -eq 1 ]
	run sh -c "$(man_example orch-cache.1 4)"
	assert_success
	[ "$(jq .removed <<< "$output")" -eq 0 ]
}

@test "wrap: a failing command's output is passed on, and nothing is stored" {
	printf '%s\n' '{"provider":"exec","model":"m","messages":[{"role":"user","content":"x"}],"step":"s"}' > req.json
	run --separate-stderr orch-cache --run r -- sh -c 'cat > /dev/null; echo "{\"failed\":{\"kind\":\"k\"}}"; exit 3' < req.json
	[ "$status" -eq 3 ]
	assert_output '{"failed":{"kind":"k"}}'
	[ -z "$(ls r/.cache 2>/dev/null | grep -v '^ratelimit$')" ]
}

# ---- changed: what a miss changed since the step's last answered call ----

# changed_after JQ: run req, then req changed by the jq filter JQ, through
# the cache; print the second cache.miss's changed (and changed_more).
changed_after() {
	orch-cache -- fake-llm <<< "$req" > /dev/null
	jq -c "$1" <<< "$req" | orch-cache -- fake-llm > /dev/null
	jq -c 'select(.type == "cache.miss") | .data | [.changed, .changed_more]' runs/j/events.jsonl | tail -1
}

@test "changed: a miss names each changed, added or removed leaf in jq path notation" {
	mkdir -p runs/j
	export ORCH_RUN_DIR=$PWD/runs/j ORCH_STEP=architect
	run changed_after '.messages[1].content = "hi!"'
	assert_output '[["messages[1].content"],null]'
	run changed_after '.opts.temperature = 0.7 | .model = "llama3.1"'
	assert_output '[["model","opts.temperature"],null]'
	run changed_after '.messages += [{"role":"user","content":"more"}] | del(.opts.seed.a) | .opts["top-p"] = 1'
	assert_output '[["messages[2]","opts.seed.a","opts[\"top-p\"]"],null]'
	run changed_after '.provider = "openai" | .messages[0] = "plain"'
	assert_output '[["messages[0]","provider"],null]'
}

@test "changed: none on a step's first miss; [] when the request is its last answered one whose entry is gone" {
	mkdir -p runs/j
	export ORCH_RUN_DIR=$PWD/runs/j ORCH_STEP=architect
	orch-cache -- fake-llm <<< "$req" > /dev/null
	run jq -c 'select(.type == "cache.miss") | .data | has("changed")' runs/j/events.jsonl
	assert_output false
	rm cache/*.json  # pruned: the same request misses
	orch-cache -- fake-llm <<< "$req" > /dev/null
	run jq -c 'select(.type == "cache.miss") | .data.changed' runs/j/events.jsonl
	assert_output $'null\n[]'
	# the index is per step: another step's first miss has nothing to compare with
	jq -c '.step = "builder" | .messages[1].content = "x"' <<< "$req" | orch-cache -- fake-llm > /dev/null
	run sh -c "jq -c 'select(.type == \"cache.miss\") | .data | has(\"changed\")' runs/j/events.jsonl | tail -1"
	assert_output false
}

@test "changed: a hit makes its request the one the next miss is compared with; a failed call does not" {
	mkdir -p runs/j
	export ORCH_RUN_DIR=$PWD/runs/j ORCH_STEP=architect
	orch-cache -- fake-llm <<< "$req" > /dev/null                                   # A
	jq -c '.opts.temperature = 0.5' <<< "$req" | orch-cache -- fake-llm > /dev/null  # B
	orch-cache -- fake-llm <<< "$req" > /dev/null                                   # A again: a hit
	jq -c '.model = "m2"' <<< "$req" | orch-cache -- sh -c 'cat >/dev/null; exit 3' > /dev/null || true
	jq -c '.model = "m2"' <<< "$req" | orch-cache -- fake-llm > /dev/null
	run jq -c 'select(.type | startswith("cache.")) | [.type, .data.changed]' runs/j/events.jsonl
	assert_output - <<-'EOF'
	["cache.miss",null]
	["cache.miss",["opts.temperature"]]
	["cache.hit",null]
	["cache.miss",["model"]]
	["cache.miss",["model"]]
	EOF
}

@test "changed: at most 20 paths, the others counted in changed_more" {
	mkdir -p runs/j
	export ORCH_RUN_DIR=$PWD/runs/j ORCH_STEP=architect
	run changed_after '.opts = ([range(25) | {key: "o\(. + 10)", value: .}] | from_entries)'
	assert_output '[["opts.o10","opts.o11","opts.o12","opts.o13","opts.o14","opts.o15","opts.o16","opts.o17","opts.o18","opts.o19","opts.o20","opts.o21","opts.o22","opts.o23","opts.o24","opts.o25","opts.o26","opts.o27","opts.o28","opts.o29"],7]'
}

@test "changed: a secret-looking option is kept in the step index as its hash, never its value" {
	mkdir -p runs/j
	export ORCH_RUN_DIR=$PWD/runs/j ORCH_STEP=architect
	jq -c '.opts.api_key = "sk-SECRET1"' <<< "$req" | orch-cache -- fake-llm > /dev/null
	jq -c '.opts.api_key = "sk-SECRET2" | .opts.max_tokens = 9' <<< "$req" | orch-cache -- fake-llm > /dev/null
	run jq -c 'select(.type == "cache.miss") | .data.changed' runs/j/events.jsonl
	assert_output $'null\n["opts.api_key","opts.max_tokens"]'
	[ -n "$(ls cache/steps)" ]
	run grep -r SECRET cache runs/j
	assert_failure
	run sh -c "sed -n 2p cache/steps/* | jq -c '.opts | [.api_key[:7], .max_tokens]'"
	assert_output '["sha256:",9]'
}

@test "changed: real runs of the echo provider, an edited prompt then an edited temperature" {
	cat > s.yaml <<-'EOF'
	job: s
	task: t
	provider: {name: echo, opts: {temperature: 0.1}}
	steps:
	  - id: a
	    system: Be brief.
	    prompt: Say one.
	EOF
	orch run s.yaml > /dev/null
	sed -i 's/Say one/Say two/' s.yaml
	orch run s.yaml > /dev/null
	sed -i 's/0.1/0.5/' s.yaml
	orch run s.yaml > /dev/null
	orch run s.yaml > /dev/null
	run jq -c 'select(.type | startswith("cache.")) | [.type, .step, .data.changed]' runs/s/events.jsonl
	assert_output - <<-'EOF'
	["cache.miss","a",null]
	["cache.miss","a",["messages[1].content"]]
	["cache.miss","a",["opts.temperature"]]
	["cache.hit","a",null]
	EOF
}
