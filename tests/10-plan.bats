#!/usr/bin/env bats
# orch-plan: job spec -> validated, ordered plan
load helper

F=$BATS_TEST_DIRNAME/fixtures/plan

@test "plan: the contract's example spec gives four lines in order, with waves and priorities" {
	run orch-plan "$F/todo.yaml"
	assert_success
	run jq -sc 'map([.step, .wave, .priority, .index, .needs])' <<<"$output"
	assert_output '[["architect",0,2,0,[]],["builder",1,1,1,["architect"]],["docs",1,1,2,["architect"]],["qa",2,0,3,["builder","docs"]]]'
}

@test "plan: defaults and the job's provider are resolved into each step's spec" {
	run orch-plan "$F/todo.yaml"
	assert_success
	run jq -c 'select(.step=="docs") | [.spec.retries, .spec.timeout_s, .spec.provider]' <<<"$output"
	assert_output '[2,600,{"name":"ollama","model":"mistral","opts":{"temperature":0.1,"top_p":0.5}}]'
	run orch-plan "$F/todo.yaml"
	run jq -c 'select(.step=="qa") | .job | [.job_id, .task, .inputs, .concurrency, .pools]' <<<"$output"
	assert_output '["todo-app","A command-line todo app in Python with add, list and done",{"language":"python"},4,{"llm":2}]'
}

@test "plan: a step naming another provider takes nothing else from the job's" {
	cat > s.yaml <<-'EOF'
	job: p
	provider: {name: ollama, model: llama3, opts: {temperature: 0.1}}
	steps:
	  - {id: a, prompt: hi, provider: {name: anthropic, model: claude}}
	  - {id: b, prompt: hi, provider: echo}
	EOF
	run orch-plan s.yaml
	assert_success
	run jq -c '.spec.provider' <<<"$output"
	assert_output $'{"name":"anthropic","model":"claude"}\n{"name":"echo"}'
}

@test "plan: JSON specs plan the same as YAML, tabs and all" {
	orch-plan "$F/todo.yaml" | jq -c 'del(.job.spec_file)' > yaml.plan
	yq_json=$(python3 -c 'import json,sys; print(json.dumps({"job":"todo-app","task":"A command-line todo app in Python with add, list and done","inputs":{"language":"python"},"provider":{"name":"ollama","model":"llama3","opts":{"temperature":0.1}},"concurrency":4,"pools":{"llm":2},"defaults":{"retries":2,"timeout_s":600},"steps":[{"id":"architect","system":"You are a software architect.","prompt":"Design {{ .task }}. List every file with its purpose."},{"id":"builder","needs":["architect"],"prompt":"Implement this design:\n{{ .steps.architect.output }}","files":True},{"id":"docs","needs":["architect"],"prompt":"Write README.md for:\n{{ .steps.architect.output }}","files":True,"provider":{"model":"mistral","opts":{"top_p":0.5}}},{"id":"qa","needs":["builder","docs"],"prompt":"Review these files and report defects:\n{{ .steps.builder.files | map(.path) | join(\", \") }}"}]}, indent="\t"))')
	printf '%s\n' "$yq_json" > spec.json
	grep -q "$(printf '\t')" spec.json
	orch-plan spec.json | jq -c 'del(.job.spec_file)' > json.plan
	run diff yaml.plan json.plan
	assert_success
	orch-plan - < spec.json | jq -c 'del(.job.spec_file)' > stdin.plan
	run diff yaml.plan stdin.plan
	assert_success
}

@test "plan: every problem is listed with file:line:col, exit 2, nothing on stdout" {
	run --separate-stderr orch-plan "$F/bad.yaml"
	assert_failure 2
	assert_equal "$output" ""
	output=$stderr lines=("${stderr_lines[@]}")
	assert_line "orch-plan: $F/bad.yaml:1:6: job id 'bad job!' must be 1 to 64 of A-Z a-z 0-9 . _ -"
	assert_line "orch-plan: $F/bad.yaml:2:1: unknown key 'taks' in the job (did you mean 'task'?)"
	assert_line "orch-plan: $F/bad.yaml:3:14: 'concurrency' must be a whole number from 1 to 1e+06"
	assert_line "orch-plan: $F/bad.yaml:4:14: 'llm' must be a whole number from 1 to 1e+06"
	assert_line "orch-plan: $F/bad.yaml:7:5: unknown key 'neeeds' in a step (did you mean 'needs'?)"
	assert_line --regexp "^orch-plan: $F/bad.yaml:8:13: prompt: syntax error"
	assert_line "orch-plan: $F/bad.yaml:9:9: duplicate step id 'a' (first at line 6)"
	assert_line "orch-plan: $F/bad.yaml:11:5: step 'b' has neither 'prompt' nor 'run'"
	assert_line "orch-plan: $F/bad.yaml:12:16: step 'b' needs itself"
	assert_line "orch-plan: $F/bad.yaml:12:19: step 'b' needs 'zz', which is not a step"
	assert_line "orch-plan: $F/bad.yaml:13:5: a step has no 'id'"
	assert_line "orch-plan: $F/bad.yaml:16:10: step 'c' has both 'prompt' and 'run': choose one"
	assert_line "orch-plan: $F/bad.yaml:18:11: unknown pool 'lmm' (did you mean 'llm'?)"
	assert_line "orch-plan: $F/bad.yaml:19:5: cycle: d -> c -> d"
	assert_line "orch-plan: $F/bad.yaml:21:10: 'run' must be a string, not a boolean (quote it: \"true\")"
	assert_line --regexp "^orch-plan: $F/bad.yaml:22:11: when: syntax error"
	assert_line "orch-plan: $F/bad.yaml:23:22: unknown provider 'olama' (did you mean 'ollama'?)"
	assert_line "orch-plan: $F/bad.yaml:24:14: 'retries' must be a whole number from 0 to 100"
	assert_equal "${#lines[@]}" 18
}

@test "plan: cycles are printed step by step, one per cycle" {
	cat > c.yaml <<-'EOF'
	job: c
	steps:
	  - {id: a, run: "true", needs: [c]}
	  - {id: b, run: "true", needs: [a]}
	  - {id: c, run: "true", needs: [b]}
	  - {id: d, run: "true", needs: [a]}
	  - {id: e, run: "true", needs: [f]}
	  - {id: f, run: "true", needs: [e]}
	EOF
	run orch-plan c.yaml
	assert_failure 2
	assert_line "orch-plan: c.yaml:4:5: cycle: b -> c -> a -> b"
	assert_line "orch-plan: c.yaml:8:5: cycle: f -> e -> f"
	assert_equal "${#lines[@]}" 2
}

@test "plan: missing pieces and wrong shapes" {
	printf 'task: x\n' > a.yaml
	run orch-plan a.yaml
	assert_failure 2
	assert_line "orch-plan: a.yaml:1:1: missing 'job' (the job id)"
	assert_line "orch-plan: a.yaml:1:1: missing 'steps'"
	printf 'job: x\nsteps: []\n' > b.yaml
	run orch-plan b.yaml
	assert_failure 2
	assert_output "orch-plan: b.yaml:2:8: 'steps' is empty: a job needs at least one step"
	printf -- '- just\n- a list\n' > l.yaml
	run orch-plan l.yaml
	assert_failure 2
	assert_output --partial "l.yaml:1:1: a job spec is a mapping"
	: > e.yaml
	run orch-plan e.yaml
	assert_failure 2
	assert_output --partial "empty spec"
	printf 'job: x\nsteps: [{id: a, run: x}]\njob: y\n' > d.yaml
	run orch-plan d.yaml
	assert_failure 2
	assert_output "orch-plan: d.yaml:3:1: duplicate key 'job'"
	printf 'job: x\nsteps: [{id: a, run: "unterminated}]\n' > y.yaml
	run orch-plan y.yaml
	assert_failure 2
	assert_output --regexp '^orch-plan: y\.yaml:[0-9]+:[0-9]+: '
	run orch-plan missing.yaml
	assert_failure 2
	assert_output "orch-plan: cannot read missing.yaml: No such file or directory"
}

@test "plan: anchors, aliases and merge keys work; x- keys hold anchors" {
	run orch-plan "$F/anchors.yaml"
	assert_success
	run jq -c '.spec | [.id, .retries, .timeout_s, .prompt // .run]' <<<"$output"
	assert_output $'["a",3,60,"echo a"]\n["b",1,60,"shared text"]'
}

@test "plan: a billion-laughs alias bomb is refused fast in bounded memory" {
	{
		echo 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]'
		for i in b c d e f g h i j; do
			p=$(echo abcdefghij | sed "s/$i.*//;s/.*\(.\)$/\1/")
			echo "x-$i: &$i [*$p,*$p,*$p,*$p,*$p,*$p,*$p,*$p,*$p]"
		done
		echo 'job: x'
		echo 'steps: [{id: a, run: "true"}]'
	} | sed 's/^a:/x-a:/' > bomb.yaml
	run timeout 10 orch-plan bomb.yaml
	assert_failure 2
	assert_output --regexp 'bomb\.yaml:[0-9]+:[0-9]+: aliases here expand to more than [0-9]+ nodes'
}

@test "plan: nesting deep enough to overflow a stack is refused" {
	python3 -c "print('job: x\nsteps: ' + '['*200000 + ']'*200000)" > deep.yaml
	run orch-plan deep.yaml
	assert_failure 2
	assert_output "orch-plan: deep.yaml:2:135: nested deeper than 128 levels"
	python3 -c "print('{\"job\": \"x\", \"steps\": ' + '{\"a\":'*100000 + '1' + '}'*100000 + '}')" > deep.json
	run orch-plan deep.json
	assert_failure 2
	assert_output --partial "nested deeper than 128 levels"
}

@test "plan: aliases cannot nest past the limit by reuse" {
	{
		printf 'x-a: &a '; python3 -c "print('['*120 + ']'*120)"
		printf 'x-b: &b '; python3 -c "print('['*120 + '*a' + ']'*120)"
		printf 'x-c: &c '; python3 -c "print('['*120 + '*b' + ']'*120)"
		printf 'job: x\nsteps: [{id: s, run: "true"}]\n'
	} > reuse.yaml
	run orch-plan reuse.yaml
	assert_failure 2
	assert_output --partial "aliases here nest deeper than 256 levels"
}

@test "plan: templates are compiled at plan time; errors name the field" {
	cat > t.yaml <<-'EOF'
	job: t
	steps:
	  - id: a
	    system: "{{ .x | nosuchfn }}"
	    prompt: "ok {{ .task }} and {{ {a: 1} | .a }} and {{ \"}}\" }}"
	  - id: b
	    prompt: "{{ .task"
	  - id: c
	    run: "true"
	    when: ".inputs.go == true"
	EOF
	run orch-plan t.yaml
	assert_failure 2
	assert_line "orch-plan: t.yaml:4:13: system: nosuchfn/0 is not defined"
	assert_line "orch-plan: t.yaml:7:13: prompt: unterminated {{ at offset 0"
	assert_equal "${#lines[@]}" 2
}

@test "plan: a template or when: reading a step it does not need is refused, naming what to add" {
	cat > r.yaml <<-'EOF'
	job: r
	steps:
	  - {id: builder, prompt: build}
	  - {id: docs, prompt: write}
	  - id: qa
	    needs: [docs]
	    prompt: "Review {{ .steps.builder.files | map(.path) | join(\", \") }} and {{ .steps.docs.output }}"
	    system: "{{ .steps.buider.output }}"
	  - id: check
	    run: "true"
	    when: '.steps["qa"].output != "" and .steps.check.output == null'
	EOF
	run --separate-stderr orch-plan r.yaml
	assert_failure 2
	assert_equal "$output" ""
	output=$stderr lines=("${stderr_lines[@]}")
	assert_line "orch-plan: r.yaml:7:13: step qa reads .steps.builder but does not need it: add builder to needs"
	assert_line "orch-plan: r.yaml:8:13: step qa reads .steps.buider, which is not a step (did you mean builder?)"
	assert_line "orch-plan: r.yaml:11:11: step check reads .steps.check, its own result: a step reads only what it needs"
	assert_line "orch-plan: r.yaml:11:11: step check reads .steps.qa but does not need it: add qa to needs"
	assert_equal "${#lines[@]}" 4
}

@test "plan: .steps reads are found in every static form; dynamic ones and other inputs are allowed" {
	for e in '.steps.a.output' '.steps["a"].output' '.steps."a"' '.steps?.a' '."steps".a' \
		'.["steps"]["a"]' '.steps | .a.output' '[.x, (.steps.a | length)]' '{k: .x | .y, v: .steps.a}' \
		'"\(.steps.a.output)"' 'if .x then .steps.a else "" end' '. as $r | .steps.a' \
		'any(.steps.a.files[]; .path == "x")' 'select(.steps.a) | 1' '.x[.steps.a.output]'; do
		printf 'job: d\nsteps:\n  - {id: a, prompt: hi}\n  - {id: b, prompt: "{{ %s }}"}\n' "$(sed 's/[\\"]/\\&/g' <<<"$e")" > d.yaml
		run orch-plan --check d.yaml
		assert_failure 2
		assert_output "orch-plan: d.yaml:4:21: step b reads .steps.a but does not need it: add a to needs"
	done
	for e in '.steps[.inputs.k]' '.steps[]' '.steps | keys' '.inputs.k as $k | .steps | .[$k]' \
		'.inputs | .steps.a' '. as $r | .x | $r.steps.a' 'map(.steps.a)' 'any(.steps.a)' \
		'def f: .steps.a; 1' '.x |= .steps.a' '.inputs.steps.a' '$__loc__' '"{{ .steps.a }}"'; do
		printf 'job: d\nsteps:\n  - {id: a, prompt: hi}\n  - {id: b, prompt: "{{ %s }}"}\n' "$(sed 's/[\\"]/\\&/g' <<<"$e")" > d.yaml
		run orch-plan --check d.yaml
		assert_success
	done
	for f in "$ORCH_SRC"/examples/*.yaml "$F"/todo.yaml; do
		orch-plan --check "$f"
	done
}

@test "plan: a NUL, control or invalid UTF-8 byte is reported at its own line and column" {
	printf 'job: t\nsteps:\n  - id: a\n    prompt: "x\377 y"\n' > u.yaml
	printf 'job: t\r\nsteps:\r\n  - id: a\r\n    prompt: \303\251x\0 y\r\n' > n.yaml
	run orch-plan u.yaml
	assert_failure 2
	assert_output "orch-plan: u.yaml:4:15: invalid leading UTF-8 octet (byte 0xff)"
	run orch-plan n.yaml
	assert_failure 2
	assert_output "orch-plan: n.yaml:4:15: control characters are not allowed (byte 0x00)"
}

@test "plan: a provider's option or key written on a step or the job says where it belongs" {
	cat > o.yaml <<-'EOF'
	job: o
	model: llama3
	steps:
	  - id: a
	    prompt: hi
	    temperature: 0.2
	    tempreture: 0.2
	    seed: 7
	    neeeds: []
	    provider: {name: ollama, top_p: 0.5}
	EOF
	run orch-plan o.yaml
	assert_failure 2
	assert_line "orch-plan: o.yaml:2:1: unknown key 'model' in the job (did you mean provider.model?)"
	assert_line "orch-plan: o.yaml:6:5: unknown key 'temperature' in a step (did you mean provider.opts.temperature?)"
	assert_line "orch-plan: o.yaml:7:5: unknown key 'tempreture' in a step (did you mean provider.opts.temperature?)"
	assert_line "orch-plan: o.yaml:8:5: unknown key 'seed' in a step (did you mean provider.opts.seed?)"
	assert_line "orch-plan: o.yaml:9:5: unknown key 'neeeds' in a step (did you mean 'needs'?)"
	assert_line "orch-plan: o.yaml:10:30: unknown key 'top_p' in provider (did you mean opts.top_p?)"
	assert_equal "${#lines[@]}" 6
}

@test "plan: a template's jq syntax error comes without jq's shell-quoting hint" {
	printf 'job: q\nsteps:\n  - {id: a, prompt: "{{ .x | }}", when: ".y +"}\n' > q.yaml
	run orch-plan q.yaml
	assert_failure 2
	assert_line "orch-plan: q.yaml:3:21: prompt: syntax error, unexpected \$end"
	assert_line "orch-plan: q.yaml:3:41: when: syntax error, unexpected \$end"
	refute_output --partial "quoting"
	assert_equal "${#lines[@]}" 2
}

@test "plan: --check, --waves and --dot" {
	run orch-plan --check "$F/todo.yaml"
	assert_success
	assert_output ""
	run orch-plan --waves "$F/todo.yaml"
	assert_success
	assert_line --index 0 --regexp '^wave +step +priority +needs$'
	assert_line --index 2 --regexp '^1 +builder +1 +architect$'
	assert_line --index 4 --regexp '^2 +qa +0 +builder, docs$'
	run orch-plan --dot "$F/todo.yaml"
	assert_success
	assert_line --index 0 'digraph "todo-app" {'
	assert_line '	{ rank=same; "builder"; "docs"; }'
	assert_line '	"docs" -> "qa";'
	run orch-plan --check "$F/bad.yaml"
	assert_failure 2
}

@test "plan: a step's own priority is the one --waves shows and the plan carries" {
	cat > s.yaml <<-'EOF'
	job: p
	steps:
	  - {id: a, run: "true"}
	  - {id: b, run: "true", needs: a, priority: 7}
	  - {id: c, run: "true", needs: b}
	EOF
	run orch-plan s.yaml
	assert_success
	run jq -c '[.step, .priority]' <<<"$output"
	assert_output $'["a",2]\n["b",7]\n["c",0]'
	run orch-plan --waves s.yaml
	assert_success
	assert_line --index 1 --regexp '^0 +a +2 +-$'
	assert_line --index 2 --regexp '^1 +b +7 +a$'
}

@test "plan: random DAGs: every edge goes forward, waves and priorities are longest paths" {
	for seed in 1 2 3 4 5 6 7 8; do
		awk -v seed=$seed 'BEGIN { srand(seed); n = 30 + int(rand() * 60)
			print "job: r" seed; print "steps:"
			for (i = n - 1; i >= 0; i--) {   # listed in reverse, so order matters
				printf "  - {id: s%d, run: \"true\", needs: [", i; sep = ""
				for (j = 0; j < i; j++) if (rand() < 0.08) { printf "%ss%d", sep, j; sep = ", " }
				print "]}"
			} }' > r.yaml
		orch-plan r.yaml > r.plan
		run jq -rs '
			(reduce .[] as $l ({}; .[$l.step] = $l)) as $by
			| (to_entries | map({key: .value.step, value: .key}) | from_entries) as $pos
			| [ .[] | . as $l | $l.needs[] | select($pos[.] >= $pos[$l.step]) ] as $back
			| [ .[] | select(.wave != ([.needs[] | $by[.].wave + 1] | max // 0)) ] as $badwave
			| [ .[] | .step as $s | select(.priority != ([$by[] | select(.needs | index($s)) | .priority + 1] | max // 0)) ] as $badprio
			| "\($back | length) \($badwave | length) \($badprio | length) \(length)"' r.plan
		assert_output --regexp '^0 0 0 [0-9]+$'
		[ "$(wc -l < r.plan)" -eq "$(grep -c '^  - ' r.yaml)" ]
	done
}

@test "plan: a 10 MB spec plans fine" {
	awk 'BEGIN { print "job: big"; print "steps:"
		for (i = 0; i < 60000; i++) {
			printf "  - id: step%06d\n    run: \"echo %0150d\"\n", i, i
			if (i) printf "    needs: [step%06d]\n", i - 1 }
	}' > big.yaml
	[ "$(stat -c %s big.yaml)" -gt 10000000 ]
	run --separate-stderr orch-plan --check big.yaml
	assert_success
	run sh -c 'orch-plan big.yaml | tail -n 1 | jq -c "[.step, .wave, .priority]"'
	assert_output '["step059999",59999,0]'
}

@test "plan: usage, --help, --version" {
	run orch-plan --help
	assert_success
	assert_output --partial "usage: orch-plan"
	run orch-plan --version
	assert_success
	assert_output --regexp '^orch-plan [0-9]+\.[0-9]+\.[0-9]+$'
	run orch-plan --bogus
	assert_failure 2
	run orch-plan a b
	assert_failure 2
}

@test "plan: the man page's examples run and print what the page shows" {
	cp "$F/todo.yaml" spec.yaml
	printf 'job: t\nsteps:\n  - id: a\n    neeeds: [b]\n    run: "true"\n' > typo.yaml
	for n in 1 2 3 4 5; do
		cmd=$(man_example orch-plan.1 $n)
		[ -n "$cmd" ]
		run sh -c "$cmd 2>&1"
		assert_output "$(man_expected orch-plan.1 $n)"
	done
	grep -q '^digraph "todo-app"' plan.dot
}

@test "plan: fuzz finding: holes counted before an unterminated {{ are dropped with it" {
	run orch-plan "$BATS_TEST_DIRNAME/fixtures/fuzz/spec-holes-then-unterminated.yaml"
	assert_failure 2
	assert_output --regexp ':7:13: prompt: unterminated \{\{ at offset 56$'
}

@test "plan: the job comes before the spec, so a spec's strings cannot pose as the job id" {
	cat > forge.yaml <<-'EOF'
	job: real
	provider: {name: echo, opts: {job: {job_id: other}, x: '"job":{"job_id":"other2"'}}
	steps:
	  - {id: a, prompt: hi}
	EOF
	run orch-plan forge.yaml
	assert_success
	line=$output
	first=${line#*'"job":{"job_id":"'}
	assert_equal "${first%%\"*}" real
	run jq -r '.job.job_id' <<<"$line"
	assert_output real
	run jq -r 'keys_unsorted | join(" ")' <<<"$line"
	assert_output "step needs wave priority index job spec"
}

@test "plan: each spec is jq's defaults + step, needs and provider merged, in the same key order" {
	# orch-plan writes lines from the spec's tree, not through jv; this is
	# the same plan computed by jq from the same file
	cat > oracle.jq <<-'EOF'
	def prov: if . == null then null elif type == "string" then {name: .} else . end;
	def merged($j; $s):
	  if $s == null then $j
	  elif $j == null then $s
	  elif ($s.name | type) == "string" and $s.name != $j.name then $s
	  else ($j + $s) | if ($j.opts | type) == "object" and ($s.opts | type) == "object"
	                   then .opts = ($j.opts + $s.opts) else . end
	  end;
	(.provider | prov) as $jp | (.defaults // {}) as $d
	| .steps[]
	| (.needs // [] | if type == "string" then [.] else . end) as $n
	| merged($jp; .provider | prov) as $p
	| $d + (.needs = $n) | if $p != null then .provider = $p else . end
	EOF
	orch-plan "$F/merge.json" > plan
	jq -c -f oracle.jq "$F/merge.json" > want
	jq -sc 'sort_by(.index)[] | .spec' plan > got
	run diff want got
	assert_success
	# and each line is already what jq itself prints for it
	jq -c . plan > again
	run diff plan again
	assert_success
}

@test "plan: a step's values are written as the job's are (YAML scalars resolved alike)" {
	cat > s.yaml <<-'EOF'
	job: scalars
	inputs: &v
	  plain: [yes, No, "yes", ~, null, '', 0x1F, -12, 1e3, 1.5, +7, .5, 007, -0, 1e400]
	  text: ["tab\there", "q \" b \\ \x01 \x7f \e \u2028", héllo, "\U0001F600", {a: {b: [[]]}}]
	  empty: {}
	steps:
	  - id: a
	    run: "true"
	    x-v: *v
	EOF
	run orch-plan s.yaml
	assert_success
	job=${output#*\"inputs\":}
	job=${job%%,\"spec_file\"*}
	spec=${output#*\"x-v\":}
	spec=${spec%%,\"needs\":*}
	assert_equal "$spec" "$job"
	# and what both should be, as jq prints it
	want=$(jq -c . <<-'EOF'
	{"plain": [true, false, "yes", null, null, "", 31, -12, 1000, 1.5, 7, 0.5, 7, -0, 1.7976931348623157e+308],
	 "text": ["tab\there", "q \" b \\ \u0001 \u007f \u001b \u2028", "h\u00e9llo", "\ud83d\ude00", {"a": {"b": [[]]}}],
	 "empty": {}}
	EOF
	)
	assert_equal "$spec" "$want"
}

@test "plan: --id prints the job id alone, and refuses an invalid spec" {
	printf 'job: idjob\ntask: t\nsteps:\n  - {id: a, run: "true"}\n' > s.yaml
	run orch-plan --id s.yaml
	assert_success
	assert_output idjob
	printf 'job: idjob\ntask: t\nsteps:\n  - {id: a, needs: [b], run: "true"}\n' > bad.yaml
	run orch-plan --id bad.yaml
	assert_failure 2
	assert_output --partial "bad.yaml:4:"
}

@test "plan: --id leaves the templates' jq to the plan's own check (the driver plans right after)" {
	printf 'job: j1\ntask: t\nsteps:\n  - {id: a, prompt: "{{ .x | }}"}\n' > s.yaml
	run orch-plan --id s.yaml
	assert_success
	assert_output j1
	run orch-plan --check s.yaml
	assert_failure 2
	assert_output --partial "s.yaml:4:"
}
