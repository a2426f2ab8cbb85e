#!/usr/bin/env bats
# Structured output: a step's schema: planned, sent each provider's way,
# the answer checked, asked again, cached only when valid, in .json.
load helper
load fake

DEFECTS='{"type":"object","required":["defects"],"additionalProperties":false,"properties":{"defects":{"type":"array","items":{"type":"object","required":["file","line"],"additionalProperties":false,"properties":{"file":{"type":"string"},"line":{"type":"integer"}}}}}}'
LOOSE='{"type":"object","required":["title"],"properties":{"title":{"type":"string"},"n":{"type":"integer"}}}'

# sreq P M SCHEMA [REPAIR]: a request for provider P, model M, with SCHEMA.
sreq() {
	req "$1" "$2" "list defects" | jq -c --argjson s "$3" --argjson r "${4:-1}" '.schema=$s | .repair=$r'
}

# answers JSON ARGS...: orch-call ARGS succeeds, and its answer's .json is JSON.
answers() {
	local want=$1
	shift
	run orch-call "$@"
	assert_success
	assert_equal "$(jq -c .json <<< "$output")" "$want"
}

# ---- orch-plan ----

@test "plan: an inline schema and a file's are in spec.schema; repair is kept" {
	echo "$LOOSE" > title.json
	cat > s.yaml <<-'EOF'
	job: t
	steps:
	  - id: a
	    prompt: hi
	    schema: {type: object, properties: {n: {type: integer}}}
	  - id: b
	    prompt: hi
	    schema: title.json
	    repair: 3
	EOF
	run orch-plan s.yaml
	assert_success
	assert_line --index 0 --partial '"schema":{"type":"object","properties":{"n":{"type":"integer"}}}'
	run jq -c 'select(.step == "b") | [.spec.schema, .spec.repair]' <<< "$output"
	assert_output "[$LOOSE,3]"
}

@test "plan: an invalid schema is refused at the keyword's line and column; exit 2" {
	cat > s.yaml <<-'EOF'
	job: t
	steps:
	  - id: a
	    prompt: hi
	    schema:
	      type: object
	      properties:
	        n: {requried: [x]}
	EOF
	run --separate-stderr orch-plan s.yaml
	[ "$status" -eq 2 ]
	assert_equal "$stderr" 'orch-plan: s.yaml:8:13: schema: /properties/n/requried: unknown keyword "requried"'
	[ -z "$output" ]
}

@test "plan: a schema file that is invalid, missing or outside the spec's folder is refused" {
	mkdir d
	echo '{"type":"strin"}' > d/bad.json
	echo '{}' > outside.json
	printf 'job: t\nsteps:\n  - {id: a, prompt: p, schema: bad.json}\n  - {id: b, prompt: p, schema: nope.json}\n  - {id: c, prompt: p, schema: ../outside.json}\n  - {id: e, run: x, schema: bad.json, repair: 2}\n  - {id: f, prompt: p, repair: 2}\n' > d/s.yaml
	run --separate-stderr orch-plan d/s.yaml
	[ "$status" -eq 2 ]
	assert_equal "$stderr" "$(printf '%s\n' \
		'orch-plan: d/s.yaml:3:32: schema: bad.json: /type: "strin" is not a type (null, boolean, object, array, number, string, integer)' \
		'orch-plan: d/s.yaml:4:32: schema: cannot read nope.json' \
		"orch-plan: d/s.yaml:5:32: schema: '../outside.json' is outside the spec's folder" \
		"orch-plan: d/s.yaml:6:29: 'schema' is for a step with 'prompt': an answer to check" \
		"orch-plan: d/s.yaml:7:32: 'repair' needs a 'schema'")"
}

# ---- orch-call: the request ----

@test "render: the schema, a name and repair go into the request" {
	echo "{\"step\":\"qa.1\",\"spec\":{\"prompt\":\"p\",\"schema\":$LOOSE}}" > in.json
	run orch-call --render in.json
	assert_success
	assert_output "{\"provider\":\"echo\",\"model\":\"echo\",\"messages\":[{\"role\":\"user\",\"content\":\"p\"}],\"opts\":{},\"step\":\"qa.1\",\"schema\":$LOOSE,\"schema_name\":\"qa_1\",\"repair\":1}"
	run --separate-stderr orch-call --render <<< '{"step":"a","spec":{"prompt":"p","schema":{"type":"objec"}}}'
	[ "$status" -eq 2 ]
	assert_equal "$stderr" 'orch-call: step a: schema: /type: "objec" is not a type (null, boolean, object, array, number, string, integer)'
}

@test "openai: response_format json_schema, strict only for a strict schema; .json parsed" {
	fake_start
	sreq openai m "$DEFECTS" > strict.json
	sreq openai m "$LOOSE" > loose.json
	answers '{"defects":[{"file":"x","line":1}]}' --stream strict.json
	answers '{"title":"x","n":1}' loose.json
	run jq -c '.body.response_format | [.type, .json_schema.name, .json_schema.strict, .json_schema.schema == $s]' \
		--argjson s "$DEFECTS" reqs.jsonl
	assert_line --index 0 '["json_schema","s1",true,true]'
	assert_line --index 1 '["json_schema","s1",false,false]'
}

@test "ollama: the schema is format; the answer's json comes back" {
	fake_start
	sreq ollama m "$LOOSE" > r.json
	answers '{"title":"x","n":1}' --stream r.json
	run jq -c '.body.format == $s' --argjson s "$LOOSE" reqs.jsonl
	assert_output true
}

@test "anthropic: one forced tool; its input is the answer, streamed or whole" {
	fake_start
	sreq anthropic m "$DEFECTS" > r.json
	run orch-call --stream r.json
	assert_success
	assert_equal "$(jq -c '[.json, .content]' <<< "$output")" '[{"defects":[{"file":"x","line":1}]},"{\"defects\": [{\"file\": \"x\", \"line\": 1}]}"]'
	answers '{"defects":[{"file":"x","line":1}]}' r.json
	run jq -c '.body | [.tools[0].name, .tools[0].input_schema == $s, .tool_choice, (.tools | length)]' \
		--argjson s "$DEFECTS" reqs.jsonl
	assert_line --index 0 '["s1",true,{"type":"tool","name":"s1"},1]'
}

@test "echo and exec: the schema is appended to the prompt; a fenced JSON answer counts" {
	echo "{\"step\":\"e\",\"spec\":{\"prompt\":\"Report.\\n\`\`\`json\\n{\\\"title\\\":\\\"t\\\"}\\n\`\`\`\",\"schema\":$LOOSE}}" > in.json
	run orch-call in.json
	assert_success
	assert_equal "$(jq -c .json <<< "$output")" '{"title":"t"}'
	jq -r .content <<< "$output" | grep -A1 '^Answer with one JSON' > tail.txt
	assert_equal "$(cat tail.txt)" "$(printf '%s\n%s' 'Answer with one JSON value, and nothing else, that satisfies this JSON Schema:' "$LOOSE")"
	run orch-call --provider exec --command 'cat > prompt.txt; echo "{\"title\": \"from exec\"}"' in.json
	assert_success
	assert_equal "$(jq -c .json <<< "$output")" '{"title":"from exec"}'
	grep -qF "$LOOSE" prompt.txt
}

# ---- asking again ----

@test "repair: an invalid first answer is asked again with the answer and the errors" {
	fake_start
	mkdir run
	sreq openai invalidx1 "$DEFECTS" > r.json
	run orch-call --run run r.json
	assert_success
	assert_equal "$(jq -c .json <<< "$output")" '{"defects":[{"file":"x","line":1}]}'
	[ "$(nreqs)" -eq 2 ]
	run jq -c '.body.messages[2:] | map(.role)' <<< "$(sed -n 2p reqs.jsonl)"
	assert_output '["assistant","user"]'
	run jq -r '.body.messages[2].content' <<< "$(sed -n 2p reqs.jsonl)"
	assert_output '{"defects": "x"}'
	run jq -r '.body.messages[3].content' <<< "$(sed -n 2p reqs.jsonl)"
	assert_line --index 1 '- /defects: must be array, not string'
	run jq -c 'select(.type == "llm.response") | [.level, .data.valid, .data.errors, .data.will_retry]' run/events.jsonl
	assert_line --index 0 '["WARN",false,[{"path":"/defects","keyword":"type","message":"must be array, not string"}],true]'
	assert_line --index 1 '["INFO",true,null,null]'
}

@test "repair: when the tries run out, exit 1 with the errors, the schema line last" {
	fake_start
	mkdir run
	sreq anthropic invalid "$DEFECTS" 2 > r.json
	run --separate-stderr orch-call --run run r.json
	[ "$status" -eq 1 ]
	# the only record printed names the step's failure kind (orch-sched(1))
	assert_output '{"failed":{"kind":"schema","message":"schema: /defects: must be array, not string"}}'
	[ "$(nreqs)" -eq 3 ]
	assert_equal "$stderr" "$(printf '%s\n' 'orch-call: step s1: /defects: must be array, not string' \
		'orch-call: step s1: anthropic: the answer is invalid after 3 tries; schema: /defects: must be array, not string')"
	run jq -c 'select(.type == "llm.response") | [.level, .data.valid, .data.will_retry, .data.repair]' run/events.jsonl
	assert_output "$(printf '%s\n' '["WARN",false,true,null]' '["WARN",false,true,1]' '["ERROR",false,false,2]')"
	sreq ollama notjson "$LOOSE" 0 > r0.json
	run --separate-stderr orch-call r0.json
	[ "$status" -eq 1 ]
	[ "$(nreqs)" -eq 4 ]
	[[ "${stderr_lines[0]}" == 'orch-call: step s1: (root): the answer is not JSON: '* ]]
}

# ---- the cache ----

@test "cache: the schema is part of the key; a request without one keeps its key" {
	r='{"provider":"ollama","model":"m","messages":[{"role":"user","content":"x"}],"opts":{},"step":"s"}'
	want=$(jq -S -c '{provider: {name: .provider, model: .model, opts: .opts}, step, inputs: .messages,
		code_version: "0.1.0"}' <<< "$r" | tr -d '\n' | sha256sum | cut -d' ' -f1)
	assert_equal "$(orch-cache key <<< "$r")" "$want"
	rs=$(jq -c --argjson s "$LOOSE" '.schema=$s | .schema_name="s" | .repair=1' <<< "$r")
	want=$(jq -S -c '{provider: {name: .provider, model: .model, opts: .opts}, step, inputs: .messages,
		code_version: "0.1.0", schema, schema_name}' <<< "$rs" | tr -d '\n' | sha256sum | cut -d' ' -f1)
	assert_equal "$(orch-cache key <<< "$rs")" "$want"
	assert_equal "$(jq -c '.repair=3' <<< "$rs" | orch-cache key)" "$want"
}

@test "cache: an invalid answer is never stored; the valid one is" {
	fake_start
	export ORCH_CACHE_DIR=$PWD/cache
	sreq openai invalid "$LOOSE" 0 | orch-call --render > bad.json
	run orch-cache -- orch-call < bad.json
	[ "$status" -eq 1 ]
	[ -z "$(ls cache 2>/dev/null)" ]
	sreq openai invalidx1 "$LOOSE" 1 | orch-call --render > good.json
	orch-cache -- orch-call < good.json > first.json
	[ "$(ls cache/*.json | wc -l)" -eq 1 ]  # one entry (and the step's index in steps/)
	run orch-cache -- orch-call < good.json
	assert_success
	assert_equal "$(jq -c '[.cache, .json]' <<< "$output")" '["hit",{"title":"x","n":1}]'
}

# ---- orch run: .json in the step result ----

@test "orch run: a step's .json reaches templates and run: steps; a failed check fails the step" {
	cat > s.yaml <<-'EOF'
	job: sj
	provider: echo
	steps:
	  - id: extract
	    prompt: |
	      ```json
	      {"title": "Hello", "tags": ["a", "b"]}
	      ```
	    schema: {type: object, required: [title], properties: {title: {type: string}, tags: {type: array}}}
	    repair: 0
	  - id: use
	    needs: [extract]
	    prompt: "title={{ .steps.extract.json.title }}"
	  - id: count
	    needs: [extract]
	    run: jq '.steps.extract.json.tags | length'
	EOF
	run orch run s.yaml
	assert_success
	R=$ORCH_RUNS/sj
	assert_equal "$(jq -c .json "$R/artifacts/extract.json")" '{"title":"Hello","tags":["a","b"]}'
	assert_equal "$(jq -r .output "$R/artifacts/use.json")" 'title=Hello'
	assert_equal "$(jq -r .output "$R/artifacts/count.json")" '2'
	sed -i 's/"Hello"/7/' s.yaml
	run --separate-stderr orch run s.yaml
	[ "$status" -eq 1 ]
	[[ "$stderr" == *'extract: schema: /title: must be string, not number'* ]]
	run jq -r 'select(.type == "step.failed") | [.data.kind, .data.message] | @tsv' "$R/events.jsonl"
	assert_output --partial 'schema	schema: /title: must be string, not number'
}
