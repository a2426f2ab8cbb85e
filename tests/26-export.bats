#!/usr/bin/env bats
# orch-events export --sqlite: real runs into a SQLite database, read back
# with the sqlite3 shell.
load helper
load fake  # the fake provider, for runs with priced calls

# A real run of three steps on three models: one answering from the
# provider's prompt cache (26 prompt tokens, 20 of them cached), one
# priced, one without a price (11 prompt tokens, 3 completion).
spend_run() {
	fake_start
	cat > spend.yaml <<-'EOF'
	job: spend
	provider: {name: anthropic, model: claude-3-5-haiku-cache}
	steps:
	  - {id: outline, prompt: Outline}
	  - {id: draft, needs: [outline], provider: {name: openai, model: gpt-4o-mini}, prompt: Draft}
	  - {id: check, needs: [outline], provider: {name: openai, model: my-local-model}, prompt: Check}
	EOF
	orch run spend.yaml > /dev/null
}

# A run with a step that fails once and is retried, one that fails, one
# that times out.
flaky_run() {
	cat > flaky.yaml <<-EOF
	job: flaky
	steps:
	  - {id: again, retries: 1, run: "if [ -e $PWD/tried ]; then echo ok; else touch $PWD/tried; exit 75; fi"}
	  - {id: broken, retries: 0, run: "exit 3"}
	  - {id: late, retries: 0, timeout_s: 1, run: "sleep 5"}
	EOF
	run orch run flaky.yaml
	assert_failure 1
}

todo_run() { orch run "$ORCH_SRC/examples/todo-app.yaml" > /dev/null; }

q() { sqlite3 "${DB:-h.db}" "$@"; }

counts() {
	q "SELECT (SELECT count(*) FROM jobs), (SELECT count(*) FROM steps), (SELECT count(*) FROM attempts),
	   (SELECT count(*) FROM llm_calls), (SELECT count(*) FROM files), (SELECT count(*) FROM cache)"
}

@test "export: real runs into a new database; exported again, each row is there once, with the same run_id" {
	spend_run
	todo_run
	todo_run
	run orch-events export --sqlite h.db "$ORCH_RUNS"/*
	assert_success
	assert_output ""
	# runs: spend, todo-app twice; steps 3 + 5 + 5, one attempt each;
	# calls 3 + 4 (the second todo-app from the cache); files 3 + 3
	# (nochange the second time); cache rows: 3 + 4 + 4
	run counts
	assert_output "3|13|13|7|6|11"
	before=$(q "SELECT run_id, job_id, started FROM jobs ORDER BY run_id")
	run orch-events export --sqlite h.db "$ORCH_RUNS"/spend "$ORCH_RUNS"/todo-app
	assert_success
	run counts
	assert_output "3|13|13|7|6|11"
	assert_equal "$(q "SELECT run_id, job_id, started FROM jobs ORDER BY run_id")" "$before"
	run q "SELECT job_id, status, resumes, started < ended, duration_s > 0, run_dir = '$ORCH_RUNS/' || job_id FROM jobs ORDER BY run_id"
	assert_output $'spend|succeeded|0|1|1|1\ntodo-app|succeeded|0|1|1|1\ntodo-app|succeeded|0|1|1|1'
	run q "PRAGMA application_id; PRAGMA user_version"
	assert_output $'1869767528\n1'
}

@test "export: a new run of a folder is added beside the earlier one; the folder from --run" {
	todo_run
	orch-events --run "$ORCH_RUNS/todo-app" export --sqlite h.db
	assert_equal "$(q 'SELECT count(*) FROM jobs')" 1
	todo_run
	orch-events --run "$ORCH_RUNS/todo-app" export --sqlite h.db
	run q "SELECT run_id, (SELECT sum(hits) FROM cache c WHERE c.run_id = j.run_id), llm_calls FROM jobs j ORDER BY started"
	assert_output $'1|0|4\n2|4|0'
	# the starts are those of the two fresh job.started events
	run q "SELECT started FROM jobs ORDER BY started"
	assert_output "$(grep '"type":"job.started"' "$ORCH_RUNS/todo-app/events.jsonl" | jq -r .ts)"
}

@test "export: retries, a failure and a timeout as attempts and steps; a resume updates the run, not adds one" {
	flaky_run
	orch-events export --sqlite h.db "$ORCH_RUNS/flaky"
	run q "SELECT step, attempt, status, kind, message, started <= ended FROM attempts ORDER BY step, attempt"
	assert_output - <<-'EOF'
	again|1|failed|exit|exited with 75 (temporary failure)|1
	again|2|succeeded|||1
	broken|1|failed|exit|exited with 3|1
	late|1|failed|timeout|timed out after 1s|1
	EOF
	run q "SELECT step, status, attempts, kind, round(duration_s) FROM steps WHERE step <> 'again' ORDER BY step"
	assert_output $'broken|failed|1|exit|0.0\nlate|failed|1|timeout|1.0'
	run q "SELECT step, status, attempts, kind IS NULL FROM steps WHERE step = 'again'"
	assert_output "again|succeeded|2|1"
	run q "SELECT status, resumes FROM jobs"
	assert_output "failed|0"
	run orch run flaky.yaml --resume
	assert_failure 1
	orch-events export --sqlite h.db "$ORCH_RUNS/flaky"
	run q "SELECT count(*), status, resumes FROM jobs"
	assert_output "1|failed|1"
	# broken and late ran again (attempt 1 of the resume); again was
	# skipped as completed
	run q "SELECT step, count(*), max(attempt), sum(status = 'failed') FROM attempts GROUP BY step ORDER BY step"
	assert_output $'again|2|2|1\nbroken|2|1|2\nlate|2|1|2'
	run q "SELECT step, status, attempts, reason FROM steps ORDER BY step"
	assert_output $'again|succeeded|2|\nbroken|failed|2|\nlate|failed|2|'
}

@test "export: the files rows are the file.written events; the llm_calls and the totals are orch-events cost's" {
	spend_run
	todo_run
	todo_run
	orch-events export --sqlite h.db "$ORCH_RUNS"/*
	want=$(jq -r 'select(.type == "file.written") | [.ts, .step, .data.path, .data.sha256, .data.size_bytes, (if .data.wrote then 1 else 0 end), .data.reason] | join("|")' \
		"$ORCH_RUNS"/*/events.jsonl | sort)
	[ "$(wc -l <<< "$want")" -eq 6 ]
	run q "SELECT ts, step, path, sha256, size_bytes, wrote, reason FROM files ORDER BY ts, step, path"
	assert_output "$(sort <<< "$want")"
	run q "SELECT step, attempt, provider, model, prompt_tokens, cached_tokens, completion_tokens, cost_usd, success FROM llm_calls WHERE run_id = (SELECT run_id FROM jobs WHERE job_id = 'spend') ORDER BY step"
	# claude-3-5-haiku: 6 x 0.80 + 20 x 0.08 + 4 x 4.00 per million
	assert_output - <<-'EOF'
	check|1|openai|my-local-model|11|0|3||1
	draft|1|openai|gpt-4o-mini|11|0|3|3.45e-06|1
	outline|1|anthropic|claude-3-5-haiku-cache|26|20|4|2.34e-05|1
	EOF
	cost=$(orch-events cost --by job --json "$ORCH_RUNS"/* | jq -r '.rows[] | [.job, .calls, .prompt_tokens, .cached_tokens, .completion_tokens, (.cost_usd * 1e9 | round), .unpriced_calls] | join("|")')
	[ "$(wc -l <<< "$cost")" -eq 2 ]
	run q "SELECT job_id, sum(llm_calls), sum(prompt_tokens), sum(cached_tokens), sum(completion_tokens), CAST(round(sum(cost_usd) * 1e9) AS INTEGER), sum(unpriced_calls) FROM jobs GROUP BY job_id ORDER BY min(run_id)"
	assert_output "$cost"
}

@test "export: a run exported while it runs is brought up to date by the next export" {
	todo_run
	mkdir -p live
	log=$ORCH_RUNS/todo-app/events.jsonl
	head -n 20 "$log" > live/events.jsonl  # the log as it was, half way
	# what it held then: LLM calls; steps, those still running
	calls=$(grep -c '"type":"llm.response"' live/events.jsonl)
	steps=$(jq -rs '[.[] | select(.type | startswith("step."))] | group_by(.step) | map(last.type)
		| "\(length)|\(map(select(. == "step.started")) | length)"' live/events.jsonl)
	[ "$calls" -lt 4 ]
	orch-events export --sqlite h.db live
	run q "SELECT status, ended IS NULL, llm_calls FROM jobs"
	assert_output "running|1|$calls"
	run q "SELECT count(*), sum(status = 'running') FROM steps"
	assert_output "$steps"
	[[ $steps != *"|0" ]]  # some step was running
	cp "$log" live/events.jsonl
	orch-events export --sqlite h.db live
	run q "SELECT count(*), status, ended IS NOT NULL, llm_calls FROM jobs"
	assert_output "1|succeeded|1|4"
	run counts
	assert_output "1|5|5|4|3|4"
	run q "SELECT count(*) FROM attempts WHERE status <> 'succeeded'"
	assert_output 0
}

@test "export: two exports into one new database at once both land, whole" {
	spend_run
	todo_run
	orch-events export --sqlite h.db "$ORCH_RUNS/spend" & a=$!
	orch-events export --sqlite h.db "$ORCH_RUNS/todo-app" & b=$!
	orch-events export --sqlite h.db "$ORCH_RUNS/todo-app" "$ORCH_RUNS/spend" & c=$!
	wait $a
	wait $b
	wait $c
	run q "SELECT job_id, count(*) FROM jobs GROUP BY job_id ORDER BY job_id"
	assert_output $'spend|1\ntodo-app|1'
	run counts
	assert_output "2|8|8|7|3|7"
}

@test "export: a bad database path, a database not orch's, a file not SQLite, no log: exit 2, nothing written" {
	todo_run
	R=$ORCH_RUNS/todo-app
	run --separate-stderr orch-events export --sqlite nowhere/h.db "$R"
	assert_failure 2
	assert_equal "$stderr" "orch-events: nowhere/h.db: cannot open: unable to open database file"
	[ ! -e nowhere ]
	sqlite3 theirs.db "CREATE TABLE jobs (name TEXT); INSERT INTO jobs VALUES ('mine')"
	cp theirs.db theirs.orig
	run --separate-stderr orch-events export --sqlite theirs.db "$R"
	assert_failure 2
	assert_equal "$stderr" "orch-events: theirs.db: not an orch database (it has tables of its own, and application_id 0)"
	cmp theirs.db theirs.orig
	printf 'not a database\n' > text.db
	run --separate-stderr orch-events export --sqlite text.db "$R"
	assert_failure 2
	assert_equal "$stderr" "orch-events: text.db: not a database orch can write: file is not a database"
	assert_equal "$(cat text.db)" "not a database"
	run --separate-stderr orch-events export --sqlite h.db "$R" nolog
	assert_failure 2
	assert_equal "${stderr_lines[0]}" "orch-events: nolog/events.jsonl: No such file or directory"
	[ ! -e h.db ]
	run orch-events export "$R"
	assert_failure 2
	assert_output --partial "--sqlite DB is needed"
	run orch-events export --sqlite "" "$R"
	assert_failure 2
	run orch-events export --sqlite . "$R"
	assert_failure 2
}

# The page's spend and hit-rate examples are exact; the month is this one.
# The slowest steps: the first is the 1 s timeout (a few ms more under
# load), the rest vary.
@test "orch-events(1): the export examples run on real runs and print what the page shows" {
	spend_run
	flaky_run
	todo_run
	todo_run
	cd "$ORCH_RUNS/.."
	cmd=$(man_example orch-events.1 12)
	[[ $cmd == "orch-events export --sqlite orch.db runs/*" ]]
	run sh -c "$cmd"
	assert_success
	month=$(date -u +%Y-%m)
	for n in 13 14 15 16 17; do
		cmd=$(man_example orch-events.1 $n)
		[[ $cmd == "sqlite3 -header orch.db "* ]]
		run sh -c "$cmd"
		assert_success
		want=$(man_expected orch-events.1 $n | sed "s/^2026-11|/$month|/")
		if [ "$n" -eq 14 ]; then
			assert_equal "${#lines[@]}" 4
			assert_equal "${lines[0]}" "$(sed -n 1p <<< "$want")"
			# flaky|late|1|1.0|1.0: the timeout, a little over 1 s under load
			[[ ${lines[1]} =~ ^flaky\|late\|1\|1(\.[0-9]+)?\|1(\.[0-9]+)?$ ]]
			[[ $(sed -n 2p <<< "$want") =~ ^flaky\|late\|1\|1\.0\|1\.0$ ]]
			cut -d'|' -f4 <<< "$output" | tail -n +2 | sort -rn -c
		else
			assert_output "$want"
		fi
	done
}

@test "export: a run killed with kill -9 mid-step, then resumed: the attempt running then, then lost; the run once" {
	plan() {  # a, then b, whose first attempt hangs (its pid in b.pid)
		jq -nc '{step: "a", needs: [], spec: {id: "a", run: "echo A"}, job: {job_id: "j"}}'
		jq -nc --arg run 'echo $ORCH_ATTEMPT >> attempts; [ "$ORCH_ATTEMPT" -gt 1 ] || { echo $$ > b.pid; exec sleep 30; }' \
			'{step: "b", needs: ["a"], spec: {id: "b", run: $run}, job: {job_id: "j"}}'
	}
	plan > plan
	orch-sched -q < plan > /dev/null 3>&- &
	kill9_once_b_runs $!
	orch-events export --sqlite h.db runs/j
	run q "SELECT status, ended IS NULL, resumes FROM jobs"
	assert_output "running|1|0"
	run q "SELECT step, attempt, status, ended IS NULL FROM attempts ORDER BY step, attempt"
	assert_output $'a|1|succeeded|0\nb|1|running|1'
	run orch-sched -q --resume < plan
	kill "$(cat b.pid)" 2>/dev/null || true
	assert_success
	orch-events export --sqlite h.db runs/j
	run q "SELECT count(*), status, ended IS NOT NULL, resumes FROM jobs"
	assert_output "1|succeeded|1|1"
	run q "SELECT step, attempt, status, kind FROM attempts ORDER BY step, attempt"
	assert_output $'a|1|succeeded|\nb|1|failed|lost\nb|2|succeeded|'
	run q "SELECT step, status, attempts FROM steps ORDER BY step"
	assert_output $'a|succeeded|1\nb|succeeded|2'
}
