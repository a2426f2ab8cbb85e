#!/usr/bin/env bats
# Failure kinds: a step names why it failed (orch-sched(1), "Failure
# kinds"); files: required; a full disk says so and names the file.
load helper

# step NAME CMD [SPEC_EXTRA_JSON]: one plan line, job "j", no needs
step() {
	jq -nc --arg s "$1" --arg run "$2" --argjson x "${3:-{\}}" \
		'{step: $s, needs: [], spec: ({id: $s, run: $run} + $x),
		  job: {job_id: "j", task: "T", inputs: {}}}'
}

ev() { jq -c "$@" runs/j/events.jsonl; }

@test "plan: files is true, false or required" {
	printf 'job: j\nsteps:\n  - id: a\n    prompt: hi\n    files: required\n  - id: b\n    prompt: hi\n    files: false\n' > ok.yaml
	run orch-plan ok.yaml
	assert_success
	[ "$(jq -sc 'map(.spec.files)' <<< "$output")" = '["required",false]' ]
	printf 'job: j\nsteps:\n  - id: a\n    prompt: hi\n    files: maybe\n' > bad.yaml
	run orch-plan bad.yaml
	assert_failure 2
	assert_output "orch-plan: bad.yaml:5:12: 'files' must be true, false or required, not a string"
}

@test "sched: a failed step's last stdout line names its kind and message; the exit status decides the retry" {
	cat > says.sh <<'SH'
echo "some output"
echo "says.sh: the details" >&2
printf '%s\n' "{\"failed\":{\"kind\":\"$1\",\"message\":\"$2\"}}"
exit "$3"
SH
	{ step t 'sh says.sh template "cannot render {{ .x }}" 2' '{"retries":2}'
	  step n 'sh says.sh no_files "no file named" 75' '{"retries":1}'
	  step k 'printf "{\"failed\":{\"kind\":\"schema\"}}" ; echo "k: bad json" >&2; exit 1'
	  step r 'sh says.sh interrupted "not mine" 1'
	  step x 'echo "{\"failed\":{\"kind\":\"Bad Kind!\"}}"; exit 1'
	  step o 'echo "{\"failed\":{\"kind\":\"schema\"}}"; echo later; exit 1'; } > plan
	run orch-sched -k --backoff-base 0.01 < plan
	assert_failure 1
	run ev -c 'select(.type == "step.failed") | [.step, .data.kind, .data.message, .data.attempt, .data.will_retry, .data.exit_code]'
	assert_line '["t","template","cannot render {{ .x }}",1,false,2]'
	assert_line '["n","no_files","no file named",1,true,75]'
	assert_line '["n","no_files","no file named",2,false,75]'
	assert_line '["k","schema","k: bad json (logs/k.log)",1,false,1]'
	# the scheduler's own kinds, a kind out of [a-z0-9_], a line not last: plain exit
	assert_line '["r","exit","exited with 1: says.sh: the details (logs/r.log)",1,false,1]'
	assert_line '["x","exit","exited with 1",1,false,1]'
	assert_line '["o","exit","exited with 1",1,false,1]'
	[ "$(ev 'select(.type == "step.failed")' | wc -l)" = 7 ]
}

@test "orch step: a template that cannot render fails with kind template, not retried" {
	cat > t.yaml <<-'EOF2'
	job: t
	provider: {name: exec, command: cat}
	defaults: {retries: 2}
	steps:
	  - id: a
	    prompt: "hello {{ .inputs.nope }}"
	EOF2
	run orch run t.yaml
	assert_failure 1
	run jq -c 'select(.type == "step.failed") | .data | [.kind, .attempt, .will_retry, .exit_code]' runs/t/events.jsonl
	assert_output '["template",1,false,2]'
	run jq -r 'select(.type == "step.failed") | .data.message' runs/t/events.jsonl
	assert_output 'orch-call: step a: prompt: {{ .inputs.nope }}: .inputs has no "nope" (null is never rendered: write {{ .inputs.nope // "" }} to make it optional) (logs/a.log)'
}

@test "orch step: files: required and no file named: kind no_files, retried; files: true warns in orch show" {
	cat > t.yaml <<-'EOF2'
	job: t
	provider: {name: exec, command: cat}
	steps:
	  - id: req
	    prompt: "no code here"
	    files: required
	    retries: 1
	  - id: soft
	    prompt: "no code here either"
	    files: true
	EOF2
	run orch run t.yaml -k
	assert_failure 1
	run jq -c 'select(.type == "step.failed") | [.step, .data.kind, .data.attempt, .data.will_retry, .data.exit_code]' runs/t/events.jsonl
	assert_output $'["req","no_files",1,true,75]\n["req","no_files",2,false,75]'
	run jq -r 'select(.type == "step.failed") | .data.message' runs/t/events.jsonl
	assert_line 'the answer names no file, and the step has files: required (0 code blocks, none named a file)'
	run jq -sc 'map(select(.type == "files.none") | [.step, .level, .data.required]) | sort' runs/t/events.jsonl
	assert_output '[["req","WARN",true],["req","WARN",true],["soft","WARN",false]]'
	run orch show t
	assert_line 'warning: soft: files: true, but its answer named no file (files.none)'
	assert_line 'warning: req: files: required, but its answer named no file (files.none)'
}

# ---- a full disk says so, and names the file ----

# full_fs: a 64 KB tmpfs at ./fs, the runs folder in it (root only)
full_fs() {
	[ "$(id -u)" = 0 ] || skip "mounting a tmpfs needs root"
	mkdir fs
	mount -t tmpfs -o size=64k tmpfs fs || skip "cannot mount a tmpfs here"
	export ORCH_RUNS=$PWD/fs/runs
}

teardown() {
	if mountpoint -q fs 2>/dev/null; then umount fs; fi
}

@test "full disk: a run: step that fills it says No space left on device and which file" {
	full_fs
	cat > t.yaml <<-'EOF2'
	job: t
	steps:
	  - id: fill
	    run: cd "$ORCH_RUN_DIR/outputs" 2>/dev/null || cd "$ORCH_RUN_DIR"; dd if=/dev/zero of=big.bin bs=1k count=200
	EOF2
	run orch run t.yaml
	assert_failure 1
	run jq -r 'select(.type == "step.failed") | .data.message' fs/runs/t/events.jsonl
	assert_output "exited with 1: dd: error writing 'big.bin': No space left on device (logs/fill.log)"
}

@test "full disk: orch-write's file, a step's artifact and an event append each say why and which" {
	full_fs
	cat > w.yaml <<-'EOF2'
	job: w
	provider: {name: exec, command: "cat >/dev/null; printf '```text title=\"x.txt\"\\n'; head -c 40000 /dev/zero | tr '\\0' a; printf '\\n```\\n'"}
	steps:
	  - {id: gen, prompt: hi, files: true}
	EOF2
	run orch run w.yaml
	assert_failure 1
	run jq -r 'select(.type == "step.failed") | .data.message' fs/runs/w/events.jsonl
	assert_output "exited with 1: orch-write: x.txt: No space left on device (logs/gen.log)"
	rm -r fs/runs
	# a run: step's stdout fits, the result record wrapping it (every
	# newline escaped: twice the size) does not
	cat > a.yaml <<-'EOF2'
	job: a
	steps:
	  - id: lines
	    run: free=$(df --output=avail -B1 "$ORCH_RUN_DIR" | tail -1); head -c $((free * 2 / 3)) /dev/zero | tr '\0' '\n'
	EOF2
	run orch run a.yaml
	assert_failure 1
	run jq -r 'select(.type == "step.failed") | [.data.kind, .data.message] | join(" ")' fs/runs/a/events.jsonl
	assert_output "artifact cannot store artifacts/lines.json: No space left on device"
	rm -r fs/runs
	mkdir fs/r
	head -c 100000 /dev/zero > fs/fill 2>/dev/null || true
	run orch-events --run fs/r emit x.y
	assert_failure 1
	assert_output "orch-events: cannot append to fs/r/events.jsonl: No space left on device"
}
