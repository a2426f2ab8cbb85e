#!/usr/bin/env bats
# fan-out (CONTRACT §9, orch-plan(1) FOREACH): foreach:, key:, pairing,
# gather:, max_items:, prompt_file:, confinement, resume of instances
load helper

# spec NAME LINE...: a job spec NAME.yaml (job NAME) with the steps given
spec() {
	local name=$1
	shift
	{ printf 'job: %s\ntask: t\ninputs: {urls: [b, a, c]}\nsteps:\n' "$name"; printf '%s\n' "$@"; } > "$name.yaml"
}

# started JOB: the steps the last run of JOB started, sorted
started() {
	jq -rs '(map(.type == "job.started") | rindex(true)) as $i | .[$i:][]
		| select(.type == "step.started") | .step' "runs/$1/events.jsonl" | sort | paste -sd' '
}

# kill_part_way JOB N: run JOB's plan with orch-sched in the background and
# kill -9 it at a random moment once some instances of s succeeded (a
# loaded machine is slow); then check that it was part way through N
kill_part_way() {
	orch-plan "$1.yaml" > plan
	orch-sched --run "runs/$1" -j 8 -q < plan > /dev/null &
	echo $! > sched.pid
	for _ in $(seq 300); do
		[ "$(grep -c '"step.succeeded","step":"s\[' "runs/$1/events.jsonl" 2>/dev/null)" -ge 10 ] && break
		sleep 0.1
	done
	sleep "0.$((RANDOM % 9))"
	kill -KILL "$(cat sched.pid)"
	wait "$(cat sched.pid)" || true
	n=$(jq -rs 'map(select(.type == "step.succeeded" and (.step | startswith("s[")))) | length' "runs/$1/events.jsonl")
	[ "$n" -gt 0 ] && [ "$n" -lt "$2" ]
}

# succeeded_twice JOB: how many steps of JOB succeeded more than once
succeeded_twice() {
	jq -rs 'map(select(.type == "step.succeeded") | .step) | group_by(.) | map(select(length > 1)) | length' \
		"runs/$1/events.jsonl"
}

teardown() {
	[ -s sched.pid ] && kill -KILL "$(cat sched.pid)" 2>/dev/null
	return 0
}

@test "fanout: a jq expression over the job: one instance per item, key the item, its index" {
	spec j '  - id: s' '    foreach: .inputs.urls' '    run: "jq -r .item"'
	run orch-plan j.yaml
	assert_success
	run jq -c '[.step, .group, .key, .item_index, .item]' <<< "$output"
	assert_output $'["s[b]","s","b",0,"b"]\n["s[a]","s","a",1,"a"]\n["s[c]","s","c",2,"c"]'
	run orch run j.yaml
	assert_success
	run orch out j 's[a]'
	assert_output a
}

@test "fanout: a list in the spec; {lines: FILE}, one JSON value a line, keyed by a hash" {
	printf '{"n":1}\n\n{"n":2}\n' > items.jsonl
	spec l '  - id: s' '    foreach: {lines: items.jsonl}' '    run: "jq -c .item"' \
		'  - id: t' '    foreach: [x, 7]' '    run: "jq -c .item"'
	run orch-plan l.yaml
	assert_success
	run jq -r 'select(.group == "s") | .key | test("^[0-9a-f]{12}$")' <<< "$output"
	assert_output $'true\ntrue'
	run orch run l.yaml
	assert_success
	run jq -c '.json' runs/l/artifacts/t\[x\].json runs/l/artifacts/t\[7\].json
	assert_output $'"x"\n7'
	printf '{"n":1}\nnot json\n' > items.jsonl
	run orch-plan l.yaml
	assert_failure 2
	assert_output --partial 'l.yaml:6:22: items.jsonl:2: not JSON'
}

@test "fanout: {glob:} items are {path, name, size}; content is read when the instance starts" {
	mkdir docs
	printf 'one\n' > docs/a.md
	printf 'two!\n' > docs/b.md
	spec g '  - id: s' '    foreach: {glob: "docs/*.md"}' '    key: .name' \
		'    run: "jq -c \"[.item.path, .item.name, .item.size, .item.content, .key]\""'
	run orch-plan g.yaml
	assert_success
	run jq -c '[.step, .item]' <<< "$output"
	assert_output $'["s[a.md]",{"path":"docs/a.md","name":"a.md","size":4}]\n["s[b.md]",{"path":"docs/b.md","name":"b.md","size":5}]'
	run orch run g.yaml
	assert_success
	run orch out g 's[b.md]'
	assert_output '["docs/b.md","b.md",5,"two!\n","b.md"]'
	# an edited file reruns its instance alone
	printf 'ONE\n' > docs/a.md
	run orch run g.yaml --resume
	assert_success
	run started g
	assert_output 's[a.md]'
	printf 'x\0y' > docs/c.md
	run orch-plan g.yaml
	assert_failure 2
	assert_output --partial 'glob: file docs/c.md is binary'
}

@test "fanout: keys are stable when the list is reordered; added items alone run on --resume" {
	printf '"b"\n"a"\n"c"\n' > items
	spec k '  - id: s' '    foreach: {lines: items}' '    run: "jq -r .item"' \
		'  - id: t' '    foreach: [b, a, c]' '    run: "jq -r .item"'
	orch run k.yaml > /dev/null
	printf '"c"\n"b"\n"a"\n' > items
	sed -i 's/foreach: \[b, a, c\]/foreach: [c, b, a]/' k.yaml
	run orch run k.yaml --resume
	assert_success
	run started k
	assert_output ''
	seq 0 9 | sed 's/.*/"n&"/' >> items
	run orch run k.yaml --resume
	assert_success
	run started k
	assert_output "$(orch-plan k.yaml | jq -r 'select(.item | tostring | startswith("n")) | .step' | sort | paste -sd' ')"
	[ "$(started k | wc -w)" -eq 10 ]
}

@test "fanout: a failed instance with -k lets the others finish; --resume runs it alone" {
	spec f '  - id: s' '    foreach: [a, b, c, d]' \
		'    run: "k=$(jq -r .key); [ $k != c ] || [ -e fixed ] || exit 3; echo $k"'
	run orch run f.yaml -k
	assert_failure 1
	run jq -rs 'map(select(.type == "step.succeeded") | .step) | sort | join(" ")' runs/f/events.jsonl
	assert_output 's[a] s[b] s[d]'
	touch fixed
	run orch run f.yaml --resume
	assert_success
	run started f
	assert_output 's[c]'
}

@test "fanout: dependants see .steps.<step> as the array of results in item order" {
	spec d '  - id: s' '    foreach: [z, a, m]' '    run: "k=$(jq -r .key); case $k in z) sleep 0.4 ;; m) sleep 0.2 ;; esac; echo $k"' \
		'  - id: merge' '    needs: [s]' '    run: "jq -c \"[.steps.s[].output]\""'
	run orch-plan d.yaml
	run jq -c 'select(.step == "merge") | .needs' <<< "$output"
	assert_output '["s[z]","s[a]","s[m]"]'
	run orch run d.yaml
	assert_success
	run orch out d merge
	assert_output '["z\n","a\n","m\n"]'
}

@test "fanout: foreach: .steps.X pairs instance to instance, with no barrier; gather: true waits" {
	spec p '  - id: s' '    foreach: [slow, fast]' \
		'    run: "k=$(jq -r .key); [ $k = fast ] || sleep 1.5; echo $k"' \
		'  - id: r' '    foreach: .steps.s' '    run: "printf R; jq -r .item.output"' \
		'  - id: g' '    foreach: .steps.s' '    gather: true' '    run: "jq -r .item.output"'
	run orch-plan p.yaml
	run jq -c '[.step, .needs, .item_step]' <<< "$output"
	assert_output --partial '["r[fast]",["s[fast]"],"s[fast]"]'
	assert_output --partial '["g[fast]",["s[slow]","s[fast]"],"s[fast]"]'
	run orch run p.yaml -j 4
	assert_success
	run orch out p 'r[slow]'
	assert_output 'Rslow'
	# r[fast] started before s[slow] ended; g[fast] after
	t() { jq -r --arg s "$1" --arg t "$2" 'select(.step == $s and .type == $t) | .ts' runs/p/events.jsonl; }
	[[ $(t 'r[fast]' step.started) < $(t 's[slow]' step.succeeded) ]]
	[[ $(t 'g[fast]' step.started) > $(t 's[slow]' step.succeeded) ]]
}

@test "fanout: max_items refuses a runaway expansion at the foreach's place" {
	spec m '  - id: s' '    foreach: "[range(5)]"' '    max_items: 4' '    run: "true"'
	run orch-plan m.yaml
	assert_failure 2
	assert_output 'orch-plan: m.yaml:6:14: foreach gives 5 items, more than max_items (4)'
	run orch run m.yaml
	assert_failure 2
	[ ! -e runs/m ]
	spec m '  - id: s' '    foreach: .inputs' '    run: "true"'
	run orch-plan m.yaml
	assert_failure 2
	assert_output --partial 'gives object, not an array'
}

@test "fanout: glob and prompt_file are confined to the spec's folder: ../ and symlinks out refused" {
	mkdir -p in out
	echo secret > out/s.txt
	ln -s ../out/s.txt in/link.txt
	printf 'Hi {{ .item }}\n' > in/p.txt
	cd in
	spec c '  - id: s' '    foreach: [a]' '    provider: echo' '    prompt_file: p.txt'
	run orch run c.yaml
	assert_success
	run orch out c 's[a]'
	assert_output 'Hi a'
	for bad in '../out/s.txt' 'link.txt' '/etc/passwd'; do
		spec c '  - id: s' '    provider: echo' "    prompt_file: \"$bad\""
		run orch-plan c.yaml
		assert_failure 2
		assert_output --regexp 'outside the spec|relative to the spec'
	done
	for bad in '../out/*.txt' '*.txt'; do
		spec c '  - id: s' "    foreach: {glob: \"$bad\"}" '    run: "true"'
		run orch-plan c.yaml
		assert_failure 2
		assert_output --partial 'is outside the spec'
	done
}

@test "fanout: kill -9 during a 500-item fan-out; --resume ends with the same outputs, none twice" {
	spec big '  - id: s' '    foreach: "[range(500)]"' '    run: "k=$(jq -r .key); sleep 0.0$((k % 5 + 5)); echo \"[$k,\\\"$k\\\"]\""' \
		'  - id: all' '    needs: [s]' '    run: "jq -c \"[.steps.s[].output] | length\""'
	kill_part_way big 500
	run orch run big.yaml --resume -j 8
	assert_success
	run orch out big all
	assert_output 500
	run succeeded_twice big
	assert_output 0
	run sh -c 'for i in 0 7 499; do jq -c .json "runs/big/artifacts/s[$(jq -nr --argjson i $i "\$i | tostring")].json"; done'
	assert_output $'[0,"0"]\n[7,"7"]\n[499,"499"]'
}

# ---- dynamic: items from an upstream step's answer ----

@test "fanout: foreach: .steps.X.json is one plan line, expanded when X succeeds, one instance per item" {
	spec y '  - id: list' "    run: \"echo '[\\\"b\\\", \\\"a\\\", 7]'\"" \
		'  - id: s' '    foreach: .steps.list.json' '    run: "jq -c [.item,.key]"' \
		'  - id: merge' '    needs: [s]' '    run: "jq -c \"[.steps.s[].json]\""'
	run orch-plan y.yaml
	assert_success
	run jq -c '[.step, .needs, .expand_after]' <<< "$output"
	assert_output $'["list",[],null]\n["s",["list"],["list"]]\n["merge",["s"],null]'
	run orch-plan --waves y.yaml
	assert_line --regexp '^1 +s\[\*\] +1 +list$'
	run orch-plan --dot y.yaml
	assert_output --partial '"s" [label="s[*]"]'
	run orch run -n y.yaml
	assert_line $'s[*]\texpand (items from the answer of list)'
	run orch run y.yaml
	assert_success
	run orch out y merge
	assert_output '[["b","b"],["a","a"],[7,"7"]]'
	run jq -c 'select(.type == "fanout.expanded") | [.step, .data.items]' runs/y/events.jsonl
	assert_output '["s",3]'
	run orch show y
	assert_line --regexp '^s\[\*\] +3 instances .* 3/3 succeeded$'
}

@test "fanout: a path into an upstream object, with key:; its instances do not need the upstream" {
	spec o '  - id: list' "    run: 'echo \"{\\\"docs\\\": [{\\\"id\\\": \\\"x\\\"}, {\\\"id\\\": \\\"y\\\"}], \\\"n\\\": 2}\"'" \
		'  - id: s' '    foreach: .steps.list.json.docs' '    key: .id' '    run: "jq -c \"[.item.id, .steps]\""'
	run orch run o.yaml
	assert_success
	run orch out o 's[y]'
	assert_output '["y",{}]'
	# a template that reads what only foreach: reads is refused: add it to needs
	spec o '  - id: list' '    run: "echo []"' \
		'  - id: s' '    foreach: .steps.list.json' '    provider: echo' '    prompt: "{{ .steps.list.output }}"'
	run orch-plan o.yaml
	assert_failure 2
	assert_output --partial 'step s reads .steps.list but does not need it (only its foreach: does): add list to needs'
	spec o '  - id: s' '    foreach: .steps.nope.json' '    run: "true"'
	run orch-plan o.yaml
	assert_failure 2
	assert_output --partial 'foreach: .steps.nope.json reads .steps.nope, which is not a step'
	spec o '  - id: list' '    run: "true"' '  - id: s' '    foreach: .steps.list' '    run: "true"'
	run orch-plan o.yaml
	assert_failure 2
	assert_output 'orch-plan: o.yaml:8:14: foreach: .steps.list is a result record, not a list: did you mean .steps.list.json?'
}

@test "fanout: an upstream answer that is not an array fails the fan-out step (kind foreach); -k goes on" {
	spec n '  - id: list' "    run: 'echo \"{\\\"a\\\": 1}\"'" \
		'  - id: s' '    foreach: .steps.list.json' '    run: "true"' \
		'  - id: after' '    needs: [s]' '    run: "true"' \
		'  - id: other' '    needs: [list]' '    run: "echo fine"'
	run orch run n.yaml -k
	assert_failure 1
	assert_output --partial 's: foreach: .steps.list.json gives object {"a":1}, not an array'
	run jq -c 'select(.step == "s" and .type == "step.failed") | [.data.kind, .data.will_retry]' runs/n/events.jsonl
	assert_output '["foreach",false]'
	run jq -c 'select(.step == "after") | [.type, .data.reason]' runs/n/events.jsonl
	assert_output '["step.skipped","upstream_failed"]'
	run orch out n other
	assert_output fine
	# a run: step that prints no JSON has no .json: null is no array either
	spec n '  - id: list' '    run: "echo hello"' '  - id: s' '    foreach: .steps.list.json' '    run: "true"'
	run orch run n.yaml
	assert_failure 1
	assert_output --partial 's: foreach: .steps.list.json gives null, not an array'
}

@test "fanout: an upstream answer over max_items, or with two items of one key, fails the fan-out step" {
	spec x '  - id: list' '    run: "jq -nc \"[range(5)]\""' \
		'  - id: s' '    foreach: .steps.list.json' '    max_items: 4' '    run: "true"'
	run orch run x.yaml
	assert_failure 1
	assert_output --partial 's: foreach: .steps.list.json gives 5 items, more than max_items (4)'
	[ ! -e "runs/x/artifacts/s[0].json" ]
	spec x '  - id: list' '    run: "jq -nc \"[range(5)]\""' \
		'  - id: s' '    foreach: .steps.list.json' '    key: "\"k\""' '    run: "true"'
	run orch run x.yaml
	assert_failure 1
	assert_output --partial "s: foreach: items 1 and 2 have the same key 'k'"
	spec x '  - id: list' '    run: "true"' \
		'  - id: s' '    foreach: .steps.list.json' '    max_items: 0' '    run: "true"'
	run orch-plan x.yaml
	assert_failure 2
	assert_output --partial "'max_items' must be a whole number"
}

@test "fanout: --resume after items are added to the upstream's answer runs only the new instances" {
	spec a '  - id: list' "    run: \"echo '[\\\"a\\\", \\\"b\\\"]'\"" \
		'  - id: s' '    foreach: .steps.list.json' '    run: "jq -r .key"' \
		'  - id: merge' '    needs: [s]' '    run: "jq -c \"[.steps.s[].output]\""'
	orch run a.yaml > /dev/null
	# -n expands it from the stored answer that --resume would use
	run orch run -n --resume a.yaml
	assert_output $'list\tskip (completed)\ns[a]\tskip (completed)\ns[b]\tskip (completed)\nmerge\tskip (completed)'
	run orch run a.yaml --resume
	assert_success
	run started a
	assert_output ''
	sed -i 's/\\"b\\"\]/\\"b\\", \\"c\\", \\"d\\"]/' a.yaml
	run orch run -n --resume a.yaml
	assert_line $'s[*]\texpand (items from the answer of list)'
	run orch run a.yaml --resume
	assert_success
	run started a
	assert_output 'list merge s[c] s[d]'
	run orch out a merge
	assert_output '["a\n","b\n","c\n","d\n"]'
}

@test "fanout: paired with a dynamic fan-out, instance to instance with no barrier; .steps.X in item order" {
	spec q '  - id: list' "    run: \"echo '[\\\"slow\\\", \\\"fast\\\", \\\"mid\\\"]'\"" \
		'  - id: s' '    foreach: .steps.list.json' \
		'    run: "k=$(jq -r .key); case $k in slow) sleep 1.5 ;; mid) sleep 0.3 ;; esac; echo $k"' \
		'  - id: r' '    foreach: .steps.s' '    run: "printf R; jq -j .item.output"' \
		'  - id: g' '    foreach: .steps.s' '    gather: true' '    run: "jq -j .item.output"' \
		'  - id: merge' '    needs: [r]' '    run: "jq -c \"[.steps.r[].output]\""'
	run orch-plan q.yaml
	run jq -c 'select(.step == "r" or .step == "g") | [.step, .needs, .expand_with]' <<< "$output"
	assert_output $'["r",["s"],"s"]\n["g",["s"],"s"]'
	run orch run -n q.yaml
	assert_line $'r[*]\texpand (with s[*])'
	run orch run q.yaml -j 4
	assert_success
	run orch out q merge
	assert_output '["Rslow\n","Rfast\n","Rmid\n"]'
	run orch run -n --resume q.yaml
	assert_line $'r[mid]\tskip (completed)'
	assert_line $'g[fast]\tskip (completed)'
	refute_output --partial 'run ('
	run jq -c 'select(.step == "r[mid]" and .type == "step.started") | .data.needs' runs/q/events.jsonl
	assert_output '["s[mid]"]'
	t() { jq -r --arg s "$1" --arg t "$2" 'select(.step == $s and .type == $t) | .ts' runs/q/events.jsonl; }
	[[ $(t 'r[fast]' step.started) < $(t 's[slow]' step.succeeded) ]]
	[[ $(t 'g[fast]' step.started) > $(t 's[slow]' step.succeeded) ]]
}

@test "fanout: kill -9 during a dynamic 300-item fan-out; --resume ends with the same outputs, none twice" {
	spec dk '  - id: list' '    run: "jq -nc \"[range(300)]\""' \
		'  - id: s' '    foreach: .steps.list.json' '    run: "k=$(jq -r .key); sleep 0.0$((k % 5 + 5)); echo \"[$k,\\\"$k\\\"]\""' \
		'  - id: all' '    needs: [s]' '    run: "jq -c \"[.steps.s[].json[0]] | add\""'
	kill_part_way dk 300
	run orch run dk.yaml --resume -j 8
	assert_success
	run orch out dk all
	assert_output 44850
	run succeeded_twice dk
	assert_output 0
	run jq -rs '[.[] | select(.type == "step.succeeded" and (.step | startswith("s[")))] | length' runs/dk/events.jsonl
	assert_output 300
	run sh -c 'for i in 0 7 299; do jq -c .json "runs/dk/artifacts/s[$i].json"; done'
	assert_output $'[0,"0"]\n[7,"7"]\n[299,"299"]'
}

@test "fanout: dynamic over dynamic; an empty answer makes no instance and its dependant sees []" {
	spec c '  - id: st' '    foreach: [1, 2]' '    run: "jq -c \"[.item, .item * 10]\""' \
		'  - id: d1' '    foreach: .steps.st | map(.json) | add' '    run: "jq -c .item"' \
		'  - id: d2' '    foreach: "[.steps.d1[].json] | map(. + 1)"' '    when: .item != 3' \
		'    provider: echo' '    prompt: "{{ .key }}: {{ .item }}"' \
		'  - id: none' '    foreach: "[.steps.d2[] | select(.json > 100)]"' '    run: "true"' \
		'  - id: m' '    needs: [d2, none]' '    run: "jq -c \"[(.steps.d2 | map(.output)), .steps.none]\""'
	run orch-plan c.yaml
	run jq -c 'select(.expand_after) | [.step, .expand_after]' <<< "$output"
	assert_output $'["d1",["st[1]","st[2]"]]\n["d2",["d1"]]\n["none",["d2"]]'
	run orch run -n c.yaml
	assert_line $'d2[*]\texpand (items from the answer of d1)'
	run orch run c.yaml
	assert_success
	run orch out c m
	assert_output '[["2: 2","11: 11",null,"21: 21"],[]]'
	run jq -c 'select(.type == "fanout.expanded") | [.step, .data.items]' runs/c/events.jsonl
	assert_output $'["d1",4]\n["d2",4]\n["none",0]'
}

@test "fanout: a when: shared by 20,000 instances is one condition (libjq refused 20,000 copies as one program)" {
	spec w '  - id: s' '    foreach: "[range(20000)]"' '    when: ".item % 2 == 0"' '    run: "true"'
	orch-plan w.yaml > w.plan
	run orch-sched --run runs/w -n < w.plan
	assert_success
	[ "${#lines[@]}" -eq 20000 ]
	# and each instance's condition is its own item's
	spec v '  - id: s' '    foreach: "[range(6)]"' '    when: ".item % 2 == 0"' '    run: "echo {{ .item }}"'
	run orch run v.yaml
	assert_success
	run jq -r 'select(.type == "step.skipped") | .step' "$ORCH_RUNS/v/events.jsonl"
	assert_output $'s[1]\ns[3]\ns[5]'
}

@test "fanout: spec_hash is the sha256 of {code_version, command, inputs, item, spec, step, task}, canonical, for each instance and a plain step" {
	spec h '  - id: s' '    foreach: [{n: 1, w: "x y"}, {n: 2}, 3]' '    max_items: 9' '    retries: 2' \
		'    run: "jq -c .item"' '  - id: t' '    needs: [s]' '    timeout_s: 30' '    run: "echo t"'
	orch-plan h.yaml > plan
	ORCH_CODE_VERSION=cv1 orch-sched --run runs/h -q < plan > /dev/null
	# what each step is asked: its plan line's spec less the scheduling
	# and fan-out keys, its run:, the job's inputs and task, its item
	jq -c '{code_version: "cv1", command: .spec.run, inputs: .job.inputs, step, task: .job.task,
		spec: (.spec | del(.priority, .pool, .retries, .timeout_s, .foreach, .max_items, .gather, .key))}
		+ (if has("item") then {item} else {} end)' plan |
		while IFS= read -r w; do
			printf '%s %s\n' "$(jq -r .step <<< "$w")" \
				"$(jq -S -c . <<< "$w" | tr -d '\n' | sha256sum | cut -d' ' -f1)"
		done > want
	jq -r 'select(.type == "step.succeeded") | "\(.step) \(.data.spec_hash)"' runs/h/events.jsonl | sort > got
	[ "$(wc -l < want)" -eq 4 ]
	run diff <(sort want) got
	assert_success
}

@test "fanout: a failed instance of a dynamic fan-out: the count on stderr is of instances, not of the step they stand for" {
	spec c '  - id: list' '    run: "echo [1,2,3]"' '  - id: each' '    foreach: .steps.list.json' \
		"    run: 'n=\$(jq .item); [ \"\$n\" != 2 ] || exit 3; echo \$n'" \
		'  - id: after' '    needs: [each]' '    run: "echo done"'
	run --separate-stderr orch run -k c.yaml
	assert_failure 1
	# list, each[1], each[2], each[3], after: five (each itself is not a sixth)
	[ "$stderr" = "orch-sched: c: 1 of 5 steps failed: each[2]: exited with 3" ]
	run orch show c
	assert_line --regexp '^each\[\*\] +3 instances .* 2/3 succeeded, 1 failed$'
}

@test "fanout: orch show JOB --step STEP lists the instances, a row and a cost each; orch show gives them one row and one cost line" {
	spec v '  - id: list' '    run: "echo [1,2,3]"' '  - id: each' '    foreach: .steps.list.json' \
		'    prompt: "item {{ .item }}"' '  - id: after' '    needs: [each]' '    run: "cat > /dev/null"'
	cat >> v.yaml <<'SPEC'
prices:
  - {provider: echo, model: "*", input: 1000000, output: 2000000}
SPEC
	run orch run v.yaml
	assert_success
	# each instance's echo: 2 prompt and 2 completion tokens, $2 + $4
	run orch show v
	assert_line --regexp '^each\[\*\] +3 instances +3 .* 3 +3/3 succeeded$'
	refute_line --regexp '^each\[3\] '  # a count there would read as the instance each[3]
	assert_line --regexp '^  each\[\*\] +\$18\.000000 \(3 instances\)$'
	refute_line --regexp '^  each\[1\]'
	run orch show v --step each
	assert_success
	assert_line --index 0 'job v: succeeded'
	assert_line --index 2 --regexp '^each\[1\] +succeeded +1 .* 1$'
	assert_line --index 4 --regexp '^each\[3\] +succeeded +1 .* 1$'
	assert_line --index 5 'cost: $18.000000 for each'
	assert_line --index 6 --regexp '^  each\[1\] +\$6\.000000$'
	[ "${#lines[@]}" -eq 9 ]
	run orch show v --step 'each[2]'
	assert_line --index 2 --regexp '^each\[2\] +succeeded'
	[ "${#lines[@]}" -eq 5 ]
	run orch show v --step list
	assert_line --index 2 --regexp '^list +succeeded'
	assert_line --index 3 'cost: $0.000000 for list'
	run -0 orch show v --step each --json
	[ "$(jq -c '[(.steps | keys), .cost.steps["each[2]"], .status]' <<< "$output")" = '[["each[1]","each[2]","each[3]"],6,"succeeded"]' ]
	run orch show v --step nope
	assert_failure 1
	assert_output --partial 'no step nope has begun, nor any instance nope[KEY]'
	run orch show v --step
	assert_failure 2
}

@test "fanout: the progress line counts a fan-out's instances, GROUP done/total and its failures, instead of naming each" {
	command -v script > /dev/null || skip "no script(1)"
	spec p '  - id: s' '    foreach: "[range(30)]"' "    run: 'sleep 0.1; [ \$(jq .item) != 3 ]'" \
		'  - id: lone' '    run: "sleep 0.3"'
	orch-plan p.yaml > plan
	run script -qc "orch-sched --run runs/p -k -j 4 < plan > /dev/null" /dev/null
	assert_success  # script's own status
	lines=$(tr '\r' '\n' <<< "$output" | sed 's/\x1b\[K//g' | grep -a '^\[')
	# one summary for the 30 instances, the plain step by its name, never s[N]
	grep -Eq '^\[[0-9]+/31 done, [0-9]+ running, 0 failed\] [0-9.]+s( lone)? s [0-9]+/30$' <<< "$lines"
	grep -Eq '^\[[0-9]+/31 done, [0-9]+ running, 1 failed\] [0-9.]+s( lone)? s [0-9]+/30, 1 failed$' <<< "$lines"
	! grep -q 's\[' <<< "$lines"
}
