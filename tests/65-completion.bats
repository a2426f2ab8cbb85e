#!/usr/bin/env bats
# The shell completions, completions/orch.bash and completions/_orch:
# subcommands, options, job ids (the folders under $ORCH_RUNS), spec files,
# and a job's step ids after --step (from its plan, else its events).
load helper

# complete_bash WORD...: the bash completion of the command line WORD...
# (the cursor at the end of the last word): COMPREPLY, sorted, on one line.
complete_bash() {
	# shellcheck source=/dev/null
	source "$ORCH_SRC/completions/orch.bash"
	COMP_WORDS=("$@")
	COMP_CWORD=$(($# - 1))
	_orch
	printf '%s\n' "${COMPREPLY[@]}" | sort | paste -sd ' '
}

# complete_zsh LINE WANT: type LINE and a tab in an interactive zsh that
# loads completions/_orch by compinit; succeeds once the screen shows WANT.
complete_zsh() {
	mkdir -p zfn && cp "$ORCH_SRC/completions/_orch" zfn/
	cat > complete.zsh <<-'ZSH'
		zmodload zsh/zpty || exit 3
		zpty z 'zsh -f -i'
		zpty -w z "PROMPT='> '; fpath=($PWD/zfn \$fpath); autoload -Uz compinit; compinit -u -D; print READY-\$((6 * 7))"
		zpty -r z out '*READY-42*' || exit 4
		zpty -n -w z "$1"$'\t'
		zpty -r z out "*$2*" || exit 5
		zpty -d z
	ZSH
	timeout 30 zsh -f complete.zsh "$1" "$2"
}

# a finished run of the example job, and a second job folder
two_jobs() {
	orch run "$ORCH_SRC/examples/todo-app.yaml" > /dev/null
	mkdir -p runs/other
}

@test "bash: the subcommands, then those a prefix names" {
	run complete_bash orch ""
	assert_output "--help --version cancel config ls out run show step tail why"
	run complete_bash orch s
	assert_output "show step"
}

@test "bash: job ids are the folders under \$ORCH_RUNS" {
	two_jobs
	run complete_bash orch show ""
	assert_output "other todo-app"
	run complete_bash orch cancel to
	assert_output "todo-app"
	ORCH_RUNS=nowhere run complete_bash orch tail ""
	assert_output ""
}

@test "bash: each subcommand's options and their values" {
	run complete_bash orch run --re
	assert_output "--resume"
	run complete_bash orch tail todo-app --l
	assert_output "--level"
	run complete_bash orch tail todo-app --level W
	assert_output "WARN"
	run complete_bash orch run x.yaml --provider o
	assert_output "ollama openai"
	run complete_bash orch run x.yaml --provider = an
	assert_output "anthropic"
	run complete_bash orch step --no
	assert_output "--no-extract"
	run complete_bash orch run x.yaml --bu
	assert_output "--budget --budget-tokens"
	run complete_bash orch run x.yaml --budget ""
	assert_output ""
	run complete_bash orch ls ""
	assert_output ""
}

@test "bash: orch run completes spec files and folders, not other files" {
	mkdir specs
	touch a.yaml b.yml c.json d.txt specs/e.yaml
	run complete_bash orch run ""
	assert_output "a.yaml b.yml c.json home specs"
	run complete_bash orch run specs/
	assert_output "specs/e.yaml"
}

@test "bash: --step completes the job's steps from its plan, pending ones included" {
	mkdir -p runs/planned/inputs
	cp "$ORCH_SRC/examples/todo-app.yaml" runs/planned/inputs/spec.yaml
	run complete_bash orch tail planned --step ""
	assert_output "architect builder docs qa triage"
	run complete_bash orch tail "$ORCH_RUNS/planned" --step b
	assert_output "builder"
	# the tools beside the orch being completed, when not on PATH
	PATH=/usr/bin:/bin run complete_bash "$ORCH_BIN/orch" tail planned --step d
	assert_output "docs"
	# orch out JOB STEP [--json]
	run complete_bash orch out planned a
	assert_output "architect"
	run complete_bash orch out planned qa -
	assert_output "--json"
}

@test "bash: --step falls back on the steps in the job's events" {
	two_jobs
	rm runs/todo-app/inputs/spec.yaml
	run complete_bash orch tail todo-app --step ""
	assert_output "architect builder docs qa triage"
	run complete_bash orch tail nosuchjob --step ""
	assert_output ""
	# a fan-out's row in the table, s[*] 3 instances, is its step s
	mkdir fan && printf '%s\n' 'job: fan' 'task: t' 'provider: {name: echo}' 'steps:' \
		'  - {id: s, foreach: "[1, 2, 3]", prompt: "x {{ .item }}"}' > fan/fan.yaml
	orch run fan/fan.yaml > /dev/null
	rm runs/fan/inputs/spec.yaml
	run complete_bash orch show fan --step ""
	assert_output "s"
	run complete_bash orch show fan --
	assert_output "--json --step"
	# a job stopped early: its "2 more steps of the plan not started" is no step
	mkdir -p runs/cut && orch-events --run runs/cut emit job.started --data '{"steps":3}'
	orch-events --run runs/cut emit step.started --step a
	run complete_bash orch show cut --step ""
	assert_output "a"
}

@test "zsh: completions/_orch parses" {
	command -v zsh > /dev/null || skip "zsh is not installed (scripts/deps test installs it)"
	run zsh -n "$ORCH_SRC/completions/_orch"
	assert_success
	assert_output ""
}

@test "zsh: subcommands, job ids and a job's step ids, in an interactive zsh" {
	command -v zsh > /dev/null || skip "zsh is not installed (scripts/deps test installs it)"
	two_jobs
	run complete_zsh 'orch ' 'summarize a job'
	assert_success
	run complete_zsh 'orch show ' 'other'
	assert_success
	run complete_zsh 'orch tail todo-app --step ' 'architect'
	assert_success
	run complete_zsh 'orch show todo-app --' 'each instance of a fan-out'
	assert_success
	run complete_zsh 'orch run --' 'skip the steps that succeeded'
	assert_success
}
