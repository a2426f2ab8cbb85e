#!/usr/bin/env bats
# Provenance on real runs of the echo provider: orch-events why PATH (which
# step wrote a file, from which prompt, by which model, at what cost),
# orch-events why-miss STEP (what changed in its latest cache miss), and
# orch why PATH from the driver.
load helper
load fake  # the fake provider, for a step that fails once

# app_spec TEXT [TEMPERATURE]: a job whose builder step writes app.py
# (the echo provider answers with the prompt, whose fenced block names
# the file) printing TEXT; plan writes nothing.
app_spec() {
	cat > app.yaml <<-'EOF'
	job: app
	task: t
	provider: {name: echo, opts: {temperature: TEMP}}
	steps:
	  - id: plan
	    prompt: Plan it.
	  - id: builder
	    needs: [plan]
	    files: true
	    system: You write Python.
	    prompt: |
	      Write app.py.
	      ```python title="app.py"
	      print("TEXT")
	      ```
	EOF
	sed -i "s/TEXT/$1/; s/TEMP/${2:-0.1}/" app.yaml
}

# events TYPE STEP JQ: JQ over the events of that type and step, one per line.
events() {
	jq -c "select(.type == \"$1\" and .step == \"$2\") | $3" "$R/events.jsonl"
}

# example PAGE WORDS: the number of PAGE's first example command holding
# WORDS (for man_example and man_expected, whatever examples come before).
example() {
	awk -v w="$2" '
		/^\.EX/ { ex = 1; next }
		/^\.EE/ { ex = 0; next }
		ex && /^\\?\$ / { i++; line = $0; gsub(/\\-/, "-", line); if (index(line, w)) { print i; exit } }
	' "$ORCH_SRC/man/$1"
}

setup() {
	orch_setup
	export NO_PROXY=127.0.0.1,localhost no_proxy=127.0.0.1,localhost
	unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy ORCH_PRICES
	R=$ORCH_RUNS/app
}

# ---- why PATH ----

@test "why: the builder of the todo app wrote todo.py: its step, attempt, cache key, model, tokens, cost, as on disk" {
	orch run "$ORCH_SRC/examples/todo-app.yaml" > /dev/null
	R=$ORCH_RUNS/todo-app
	key=$(events cache.miss builder .data.cache_key)
	tokens=$(events llm.response builder '[.data.tokens.prompt, .data.tokens.completion]')
	sum=$(sha256sum "$R/outputs/todo.py" | cut -d' ' -f1)
	run orch-events why "$R/outputs/todo.py" --json
	assert_success
	run jq -c '[.path, .job, .step, .attempt, .reason, .cache, .cache_key, .call.provider, .call.model,
		.call.calls, [.call.prompt_tokens, .call.completion_tokens], .call.cost_usd, .sha256, .on_disk, .earlier]' <<< "$output"
	assert_output "[\"todo.py\",\"todo-app\",\"builder\",1,\"created\",\"miss\",$key,\"echo\",\"echo\",1,$tokens,0,\"$sum\",\"same\",[]]"
	run orch-events why "$R/outputs/todo.py"
	assert_success
	assert_line --index 0 --regexp '^todo\.py: written by step builder \(attempt 1\) at 20[0-9-]{8}T[0-9:.]{12}Z, created$'
	assert_line --index 1 "  prompt:  cache key ${key//\"/} (a cache miss)"
	assert_line --index 2 "  model:   echo (provider echo)"
	assert_line --index 3 "  tokens:  $(jq -r '"\(.[0]) prompt (0 cached), \(.[1]) completion, in 1 call"' <<< "$tokens")"
	assert_line --index 4 '  cost:    $0.000000'
	assert_line --index 5 "  on disk: as written, sha256 $sum"
	assert_equal "${#lines[@]}" 6
}

@test "why: a file edited since says changed since; a removed one, gone since" {
	app_spec one
	orch run app.yaml > /dev/null
	echo '# mine' >> "$R/outputs/app.py"
	now=$(sha256sum "$R/outputs/app.py" | cut -d' ' -f1)
	run orch-events why "$R/outputs/app.py"
	assert_success
	assert_line --regexp "^  on disk: changed since \(sha256 written [0-9a-f]{64}, now $now\)$"
	run sh -c "orch-events why '$R/outputs/app.py' --json | jq -r .on_disk"
	assert_output changed
	rm "$R/outputs/app.py"
	run orch-events why "$R/outputs/app.py"
	assert_success
	assert_line --regexp '^  on disk: gone since \(sha256 written [0-9a-f]{64}\)$'
}

@test "why: PATH as RUN/outputs/P, or outputs/P or P with --run or ORCH_RUN_DIR, or from inside outputs/" {
	app_spec one
	orch run app.yaml > /dev/null
	want=$(orch-events why "$R/outputs/app.py" --json | jq -c '[.path, .step, .cache_key]')
	for how in "orch-events --run $R why outputs/app.py" "orch-events --run $R why app.py" \
		"env ORCH_RUN_DIR=$R orch-events why app.py" "cd $R && orch-events why outputs/app.py" \
		"cd $R/outputs && orch-events why app.py" "cd $R/outputs && orch-events why ./app.py" \
		"orch-events why runs/app/outputs/app.py"; do
		run sh -c "$how --json | jq -c '[.path, .step, .cache_key]'"
		assert_output "$want"
	done
}

@test "why: a path the run never wrote exits 1; one in no run folder exits 2; each says why" {
	app_spec one
	orch run app.yaml > /dev/null
	run --separate-stderr orch-events why "$R/outputs/nope.py"
	assert_failure 1
	assert_output ""
	[[ $stderr == *"runs/app/outputs/nope.py: not written by run"*"no file.written with wrote:true for outputs/nope.py"* ]]
	run orch-events --run "$R" why plan.md
	assert_failure 1
	touch stray.py
	run orch-events why stray.py
	assert_failure 2
	assert_output "orch-events: stray.py: in no run folder (no events.jsonl above it); give --run DIR"
	run orch-events why "$R/logs/builder.log"
	assert_failure 2
	assert_output --partial "not in the outputs/ of run"
	run orch-events --run "$R" why
	assert_failure 2
}

@test "why: an edited prompt writes anew from a new key; the earlier write is listed" {
	app_spec one
	orch run app.yaml > /dev/null
	app_spec two
	orch run app.yaml > /dev/null
	run sh -c "orch-events why '$R/outputs/app.py' --json | jq -c '[.reason, .cache, .cache_key, [.earlier[] | [.step, .reason]]]'"
	assert_output "[\"overwritten\",\"miss\",$(events cache.miss builder .data.cache_key | tail -1),[[\"builder\",\"created\"]]]"
	run orch-events why "$R/outputs/app.py"
	assert_line --regexp '^  earlier: 20[0-9-]{8}T[0-9:.]{12}Z by builder, created$'
}

@test "why: a write from a cache hit names the call that filled the entry" {
	app_spec one
	orch run app.yaml > /dev/null
	echo 'print("mine")' > "$R/outputs/app.py"  # the rerun writes the answer again
	orch run app.yaml > /dev/null
	want=$(events llm.response builder '["overwritten", "hit", .ts, .data.tokens.prompt, "same"]')
	run sh -c "orch-events why '$R/outputs/app.py' --json | jq -c '[.reason, .cache, .call.ts, .call.prompt_tokens, .on_disk]'"
	assert_output "$want"
	run orch-events why "$R/outputs/app.py"
	assert_line "  model:   echo (provider echo), its answer from the call at $(events llm.response builder .ts | tr -d '"')"
}

@test "why: a step that failed once names the attempt that wrote the file, and that attempt's call alone" {
	fake_start
	cat > retry.yaml <<-'EOF'
	job: retry
	task: t
	provider: {name: ollama, model: fail500x2}
	steps:
	  - id: builder
	    retries: 1
	    files: true
	    prompt: |
	      Write it.
	      ```text title="out.txt"
	      hello
	      ```
	EOF
	# attempt 1: two HTTP 500s, exit 75; attempt 2: one call, answered
	ORCH_CALL_FLAGS="--retries 1 --backoff 0.01" orch run retry.yaml > /dev/null
	R=$ORCH_RUNS/retry
	run jq -c 'select(.type == "llm.response") | .data.success' "$R/events.jsonl"
	assert_output $'false\nfalse\ntrue'
	run sh -c "orch-events why '$R/outputs/out.txt' --json | jq -c '[.step, .attempt, .cache, .call.calls, .call.model, .call.prompt_tokens]'"
	assert_output '["builder",2,"miss",1,"fail500x2",11]'
}

@test "why: cost from the price table when the event has no cost_usd, as orch-events cost prices it" {
	app_spec one
	orch run app.yaml > /dev/null
	jq -c 'del(.data.cost_usd)' "$R/events.jsonl" > e && mv e "$R/events.jsonl"  # an older log
	printf 'echo\techo\t1.00\t-\t2.00\t2025-11-01\n' > mine.tsv
	want=$(ORCH_PRICES=mine.tsv orch-events cost --by step --json "$R" | jq -c '.rows[] | select(.step == "builder") | .cost_usd')
	[ "$want" != 0 ]
	run sh -c "ORCH_PRICES=mine.tsv orch-events why '$R/outputs/app.py' --json | jq -c .call.cost_usd"
	assert_output "$want"
	printf 'echo\techo\tlots\n' > bad.tsv
	run env ORCH_PRICES=bad.tsv orch-events why "$R/outputs/app.py"
	assert_failure 2
}

# ---- why-miss STEP ----

@test "why-miss: an edited prompt names messages[1].content; an edited temperature, opts.temperature" {
	app_spec one
	orch run app.yaml > /dev/null
	run orch-events --run "$R" why-miss builder
	assert_success
	assert_line --index 0 --regexp '^builder: a cache miss at .*Z \(key [0-9a-f]{64}\): the step had no answered call in the cache to compare with$'
	app_spec two
	orch run app.yaml > /dev/null
	run orch-events --run "$R" why-miss builder
	assert_success
	assert_line --index 0 --regexp "^builder: a cache miss at .*Z \(key $(events cache.miss builder .data.cache_key | tail -1 | tr -d '"')\), changed since its last answered call:$"
	assert_line --index 1 "  messages[1].content"
	assert_equal "${#lines[@]}" 2
	app_spec two 0.7
	orch run app.yaml > /dev/null
	run sh -c "ORCH_RUN_DIR='$R' orch-events why-miss builder --json | jq -c '[.step, .changed]'"
	assert_output '["builder",["opts.temperature"]]'
	run orch-events why-miss plan --run "$R"  # the temperature is the job's: plan's key changed too
	assert_line "  opts.temperature"
	run orch-events why-miss plan
	assert_failure 2
	assert_output "orch-events: no run folder: give --run DIR or set ORCH_RUN_DIR"
}

@test "why-miss: exit 1 when the step's last call was a hit, or it made none" {
	app_spec one
	orch run app.yaml > /dev/null
	orch run app.yaml > /dev/null
	run --separate-stderr orch-events --run "$R" why-miss builder
	assert_failure 1
	assert_output ""
	[[ $stderr =~ ^orch-events:\ builder:\ its\ last\ call\ was\ a\ cache\ hit,\ at\ .*Z\ \(key\ [0-9a-f]{64}\)$ ]]
	run orch-events --run "$R" why-miss nosuch
	assert_failure 1
	assert_output "orch-events: nosuch: made no cached call in $R"
	run orch-events --run "$R" why-miss '../x'
	assert_failure 2
}

@test "why-miss: a fan-out step, each instance that missed and a summary" {
	cat > f.yaml <<-'EOF'
	job: f
	task: t
	inputs: {xs: [a, b, c]}
	provider: {name: echo}
	steps:
	  - id: gen
	    foreach: .inputs.xs
	    prompt: "Write {{ .item }} {{ if .item == \"b\" then \"now\" else \"\" end }}"
	EOF
	orch run f.yaml > /dev/null
	sed -i 's/now/later/' f.yaml  # only gen[b]'s prompt changes
	orch run f.yaml > /dev/null
	run orch-events --run runs/f why-miss gen
	assert_success
	assert_line --index 0 --regexp '^gen\[b\]: a cache miss at .*, changed since its last answered call:$'
	assert_line --index 1 "  messages[0].content"
	assert_line --index 2 "gen: 1 of 3 instances missed; messages[0].content in 1"
	sed -i 's/Write/Draw/' f.yaml
	orch run f.yaml > /dev/null
	run sh -c "orch-events --run runs/f why-miss gen --json | jq -c '[.step, .changed]'"
	assert_output $'["gen[a]",["messages[0].content"]]\n["gen[b]",["messages[0].content"]]\n["gen[c]",["messages[0].content"]]'
	run orch-events --run runs/f why-miss gen
	assert_line "gen: 3 of 3 instances missed; messages[0].content in 3"
	run orch-events --run runs/f why-miss 'gen[c]'
	assert_success
	assert_line --index 1 "  messages[0].content"
}

# ---- orch why ----

@test "orch why: finds the run above the path, text and --json; no run above it exits 2" {
	app_spec one
	orch run app.yaml > /dev/null
	run orch why runs/app/outputs/app.py
	assert_success
	assert_line --index 0 --regexp '^app\.py: written by step builder \(attempt 1\) at .*, created$'
	run sh -c "cd runs/app/outputs && orch why --json app.py | jq -c '[.step, .cache, .call.model]'"
	assert_output '["builder","miss","echo"]'
	run orch why runs/app/outputs/nope.py
	assert_failure 1
	assert_output --partial "not written by run"
	touch stray.py
	run orch why stray.py
	assert_failure 2
	assert_output "orch: stray.py: in no run folder (no events.jsonl above it)"
	run orch why
	assert_failure 2
	run orch why a b
	assert_failure 2
}

# ---- the manual ----

# check PAGE N: PAGE's Nth example prints what the page shows.
check() {
	run sh -c "$(man_example "$1" "$2")"
	assert_success
	assert_output "$(man_expected "$1" "$2")"
}

@test "orch-events(1), orch(1): the why and why-miss examples print what the pages show, on a real run" {
	ln -s "$ORCH_SRC/examples" examples
	export ORCH_RUNS=runs  # as the pages show the run folder
	orch run examples/todo-app.yaml > /dev/null
	n=$(example orch-events.1 "orch-events why ")
	[ -n "$n" ]
	check orch-events.1 "$n"
	n=$(example orch.1 "orch why ")
	[ -n "$n" ]
	check orch.1 "$n"
	n=$(example orch-events.1 "todo2.yaml")  # edit, run, why-miss
	[ -n "$n" ]
	for i in 0 1 2; do
		check orch-events.1 $((n + i))
	done
	[[ $(man_example orch-events.1 $((n + 2))) == *why-miss* ]]
	cd runs/todo-app  # orch-events(5): what the last miss changed
	check orch-events.5 "$(example orch-events.5 cache.miss)"
}
