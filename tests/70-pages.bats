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

@test "pages: each man page's .TH date is not older than the last commit touching it" {
	[ -e "$ORCH_SRC/.git" ] || skip "not a git checkout: no commit dates to compare the pages' dates with"
	command -v git >/dev/null || fail "git is needed to read the pages' commit dates (scripts/deps test installs it)"
	[ "$(git -C "$ORCH_SRC" rev-parse --is-shallow-repository)" = false ] ||
		skip "a shallow clone: the last commit touching a page is not known"
	n=0
	for page in "$ORCH_SRC"/man/*.[1-8]; do
		name=${page##*/}
		date=$(awk '/^\.TH / { print $4; exit }' "$page")
		[[ $date =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}$ ]] || fail "$name: .TH date '$date' is not YYYY-MM-DD"
		last=$(git -C "$ORCH_SRC" log -1 --format=%cs -- "man/$name")
		[[ -z $last || ! $date < $last ]] ||
			fail "$name: .TH date $date is older than its last commit, $last: set it to the date of the change"
		n=$((n + 1))
	done
	[ "$n" -ge 10 ]
}
