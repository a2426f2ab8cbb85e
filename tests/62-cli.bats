#!/usr/bin/env bats
# orch: the command line: options checked before anything is touched,
# inputs and targets, tail, out, ls --json, and the README's recipes on a
# real failed run
load helper

EX=$ORCH_SRC/examples

# a -> b -> d, c alone; d is a prompt step reading inputs.lang
sel_spec() {
	printf '%s\n' 'job: sel' 'inputs: {lang: c}' 'steps:' \
		'  - {id: a, run: "echo a"}' \
		'  - {id: b, needs: [a], run: "echo b"}' \
		'  - {id: c, run: "echo c"}' \
		'  - {id: d, needs: [b], prompt: "in {{ .inputs.lang }} {{ .inputs.n // \"-\" }}"}' > sel.yaml
}

ran() { jq -sr '[.[] | select(.type == "step.succeeded") | .step] | sort | join(" ")' "$ORCH_RUNS/sel/events.jsonl"; }

@test "orch run: a bad --provider, or a provider with no model, exits 2 with nothing created" {
	run --separate-stderr orch run "$EX/todo-app.yaml" --provider nope
	[ "$status" -eq 2 ]
	[[ "$stderr" == *"unknown provider"*"ollama, openai, anthropic, exec, echo"* ]]
	run --separate-stderr orch run "$EX/todo-app.yaml" --provider openai
	[ "$status" -eq 2 ]
	[[ "$stderr" == *"provider openai needs a model"* ]]
	printf '%s\n' 'job: nm' 'provider: {name: anthropic}' 'steps:' '  - {id: a, prompt: hi}' > nm.yaml
	run --separate-stderr orch run nm.yaml
	[ "$status" -eq 2 ]
	[[ "$stderr" == *"nm.yaml:4:"*"provider anthropic needs a model"* ]]
	[ ! -e "$ORCH_RUNS" ]
	# a model from the command line or the environment will do
	run orch-plan --runnable nm.yaml --model m
	assert_success
	ORCH_MODEL=m run orch-plan --runnable nm.yaml
	assert_success
}

@test "orch: an unknown option or command is named, not answered with the usage" {
	run --separate-stderr orch run "$EX/todo-app.yaml" --resume=false
	[ "$status" -eq 2 ]
	[ "$stderr" = "orch: unknown option --resume=false (orch --help lists them)" ]
	run --separate-stderr orch frob
	[ "$status" -eq 2 ]
	[ "$stderr" = "orch: unknown command frob (orch --help lists them)" ]
	run --separate-stderr orch run "$EX/todo-app.yaml" -j
	[ "$status" -eq 2 ]
	[ "$stderr" = "orch: option -j needs an argument" ]
	[ ! -e "$ORCH_RUNS" ]
}

@test "orch run -i KEY=VALUE sets inputs; KEY:=JSON a JSON value" {
	sel_spec
	run orch run sel.yaml -i lang=python --input 'n:=[1,2]'
	assert_success
	run orch out sel d
	assert_output 'in python [1,2]'
	run orch run sel.yaml -i 'n:={'
	[ "$status" -eq 2 ]
	run orch run sel.yaml -i novalue
	[ "$status" -eq 2 ]
}

@test "orch run SPEC STEP... runs those steps and what they need; --until a wave" {
	sel_spec
	run orch run sel.yaml b
	assert_success
	run ran
	assert_output 'a b'
	rm -r "$ORCH_RUNS/sel"
	orch run sel.yaml c b > /dev/null
	run ran
	assert_output 'a b c'
	rm -r "$ORCH_RUNS/sel"
	# --until b: every step up to b's wave (1): a, c and b, not d
	orch run sel.yaml --until b > /dev/null
	run ran
	assert_output 'a b c'
	run --separate-stderr orch run sel.yaml nope
	[ "$status" -eq 2 ]
	[[ "$stderr" == *"--target nope: not a step"* ]]
}

@test "orch tail: a missing job says so; -f ends when the job ends, --forever does not" {
	run --separate-stderr orch tail nope
	[ "$status" -eq 1 ]
	[[ "$stderr" == *"no run folder"* ]]
	sel_spec
	orch run sel.yaml > /dev/null
	run timeout 5 orch tail sel -f --type job.succeeded
	assert_success
	assert_line --partial job.succeeded
	run timeout 1 orch tail sel -f --forever
	[ "$status" -eq 124 ]
	# a resumed job (job.started after its end) is followed to its new end
	printf '%s\n' 'job: sl' 'steps:' '  - {id: a, run: "sleep 0.5"}' > sl.yaml
	orch run sl.yaml > /dev/null
	orch run sl.yaml > /dev/null &
	wait_started() { [ "$(grep -c '"type":"job.started"' "$ORCH_RUNS/sl/events.jsonl")" -eq 2 ]; }
	for i in $(seq 100); do wait_started && break; sleep 0.05; done
	run timeout 5 orch tail sl -f --type 'job.*'
	assert_success
	[ "${#lines[@]}" -eq 4 ]
	wait
}

@test "orch out JOB STEP prints the step's output text; --json its result record" {
	sel_spec
	orch run sel.yaml > /dev/null
	run orch out sel b
	assert_success
	assert_output b
	run orch out sel b --json
	assert_success
	run jq -r '[.step, .exit_code] | join(" ")' <<<"$output"
	assert_output 'b 0'
	run --separate-stderr orch out sel nope
	[ "$status" -eq 1 ]
	[[ "$stderr" == *"no result for step nope"* ]]
	run orch out nojob a
	[ "$status" -eq 1 ]
}

@test "orch ls --json: one object per run" {
	run orch ls --json
	assert_success
	assert_output ''
	sel_spec
	orch run sel.yaml > /dev/null
	run orch ls --json
	assert_success
	run jq -r '[.job, .status, .done, .steps, (.age_s | type), .dir] | join(" ")' <<<"$output"
	assert_output "sel succeeded 4 4 number $ORCH_RUNS/sel"
}

# the README's event recipes (the indented lines of its "Events" section)
readme_recipes() {
	awk '/^### Events/ { on = 1; next } /^### / { on = 0 } on && /^    / { sub(/^    /, ""); print }' \
		"$ORCH_SRC/README.md"
}

@test "README: every event recipe prints something useful on a real failed run" {
	# a writes a file; b's provider fails; c is skipped for it
	cat > fail.yaml <<-'EOF'
	job: todo-app
	provider: {name: exec, command: cat}
	steps:
	  - id: a
	    files: true
	    prompt: |
	      ```text title="a.txt"
	      design
	      ```
	  - {id: b, needs: [a], provider: {name: exec, command: "echo overloaded >&2; exit 3"}, prompt: "build"}
	  - {id: c, needs: [b], prompt: "test"}
	EOF
	run orch run fail.yaml
	[ "$status" -eq 1 ]
	n=0
	while IFS= read -r recipe; do
		n=$((n + 1))
		run sh -c "$recipe"
		echo "$recipe: $output"
		[ -n "$output" ]
		[[ "$output" != *null* ]]
	done < <(readme_recipes)
	[ "$n" -ge 4 ]
	# the problems recipe names the failed step and why
	run sh -c "$(readme_recipes | grep 'level')"
	assert_line --partial 'b: '
	# and those of orch-events(5), run in the run folder
	cd "$ORCH_RUNS/todo-app"
	for k in 1 2 3; do
		run sh -c "$(man_example orch-events.5 "$k")"
		[ -n "$output" ]
		[[ "$output" != *null* ]]
	done
}

@test "orch run -n: what each step would do and why, and nothing changes" {
	printf '%s\n' 'job: dr' 'task: t' 'steps:' '  - {id: a, run: "echo a"}' '  - {id: b, needs: [a], run: "echo b"}' > dr.yaml
	run orch run dr.yaml -n
	assert_success
	assert_line --regexp '^a	run'
	assert_line --regexp '^b	run'
	[ ! -e "$ORCH_RUNS/dr/events.jsonl" ]
	run orch run dr.yaml
	assert_success
	sed -i 's/echo b/echo B/' dr.yaml
	run orch run dr.yaml --resume -n
	assert_success
	assert_line --regexp '^a	skip \(completed\)'
	assert_line --regexp '^b	run \(spec changed\)'
	run grep -c '"type":"job.started"' "$ORCH_RUNS/dr/events.jsonl"
	assert_output 1
}
