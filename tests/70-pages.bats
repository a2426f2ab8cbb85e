#!/usr/bin/env bats
# The shared conventions page, orch-run(5): its examples on a real run of
# the README's example job.
load helper

@test "orch-run(5): the examples print what the page shows, on a real run" {
	run orch run "$ORCH_SRC/examples/todo-app.yaml"
	assert_success
	for n in 1 2 3; do
		cmd=$(man_example orch-run.5 $n)
		[ -n "$cmd" ]
		run sh -c "$cmd"
		assert_success
		assert_output "$(man_expected orch-run.5 $n)"
	done
	run stat -c %a runs/todo-app
	assert_output 700
}
