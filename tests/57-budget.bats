#!/usr/bin/env bats
# Budgets and prices: budget: and prices: in specs, --budget on orch run
# and orch-call, RUN/.spent, a call past budget refused (kind budget, not
# retried), cache hits free, overspend bounded by the calls in flight;
# prices from the spec and the config over the table.
load helper
load fake

# Each call to the fake provider as openai:gpt-4o asking "say N" (N one
# digit) costs 11 prompt tokens at $2.50/M and 3 completion tokens at
# $10/M: $0.0000575.
CALL=0.0000575

# spec JOB N [MORE-YAML]: a job of N independent openai steps "say 1"...
spec() {
	{
		printf 'job: %s\nprovider: {name: openai, model: %s}\n' "$1" "${MODEL:-gpt-4o}"
		printf '%s\n' "${3:-}"
		echo 'steps:'
		for i in $(seq "$2"); do
			printf '  - {id: s%s, prompt: "say %s"}\n' "$i" "$((i % 10))"
		done
	} > "$1.yaml"
}

# events R TYPE: the data of R's events of TYPE, one JSON line each.
events() { jq -c --arg t "$2" 'select(.type == $t) | .data' "$1/events.jsonl"; }

# spent R: what R's llm.response events cost, in total.
spent() { jq -s '[.[] | select(.type == "llm.response") | .data.cost_usd // 0] | add // 0' "$1/events.jsonl"; }

# ---- orch-plan ----

@test "plan: budget and prices go into the plan's job record" {
	cat > s.yaml <<-'EOF'
	job: t
	budget: {usd: 5, tokens: 2e6}
	prices:
	  - {provider: openai, model: "gpt-4o*", input: 1, cached_input: 0.5, output: 2}
	steps:
	  - {id: a, prompt: hi}
	EOF
	run orch-plan s.yaml
	assert_success
	run jq -c '[.job.budget, .job.prices]' <<< "$output"
	assert_output '[{"usd":5,"tokens":2000000},[{"provider":"openai","model":"gpt-4o*","input":1,"cached_input":0.5,"output":2}]]'
}

@test "plan: a bad budget or price row is refused, every problem at its file:line:col; exit 2" {
	cat > s.yaml <<-'EOF'
	job: t
	budget: {usd: 0, tokens: -3, dollars: 4}
	prices:
	  - {provider: openai, model: "gpt-x*", input: 1, output: -2, foo: 1}
	  - {provider: openai, input: 1, output: 2}
	steps:
	  - {id: a, prompt: hi}
	EOF
	run --separate-stderr orch-plan s.yaml
	[ "$status" -eq 2 ]
	[ -z "$output" ]
	assert_equal "$stderr" "orch-plan: s.yaml:2:15: 'usd' must be a number above 0
orch-plan: s.yaml:2:26: 'tokens' must be a number above 0
orch-plan: s.yaml:2:30: unknown key 'dollars' in budget
orch-plan: s.yaml:4:59: prices: 'output' must be a number >= 0 (USD per million tokens)
orch-plan: s.yaml:4:63: prices: 'foo' is no key of a price (provider, model, input, cached_input, output)
orch-plan: s.yaml:5:5: prices: a price needs 'model' (provider, model, input, output)"
}

# ---- orch run ----

@test "orch run: past the spec's budget a step is refused: budget.exceeded, kind budget, exit 1, not retried" {
	fake_start
	spec b 6 'budget: {usd: 0.0002}
defaults: {retries: 2}'
	run --separate-stderr orch run b.yaml -j 1
	[ "$status" -eq 1 ]
	R=runs/b
	# 4 calls ($0.00023) pass the budget; the 5th is refused before it calls
	run events "$R" llm.response
	[ "${#lines[@]}" -eq 4 ]
	[ "$(nreqs)" -eq 4 ]
	run events "$R" budget.exceeded
	assert_output '{"provider":"openai","model":"gpt-4o","spent_usd":0.00023,"budget_usd":0.0002,"spent_tokens":56,"budget_tokens":null,"calls":4}'
	run jq -c 'select(.type == "step.failed") | [.step, .data.kind, .data.will_retry, .data.exit_code, .data.message]' $R/events.jsonl
	assert_output '["s5","budget",false,1,"budget: the run has spent $0.00023 of its $0.0002; not calling openai"]'
	run jq -c 'select(.type == "step.started" and .step == "s5") | .data.attempt' $R/events.jsonl
	assert_output 1  # retries: 2, and no second attempt
	assert_equal "$(jq -c . $R/.spent | jq -c '[.usd, .tokens, .calls]')" '[0.00023,56,4]'
}

@test "orch run --resume --budget raises the budget: the run finishes, what succeeded is not run again" {
	fake_start
	spec b 6 'budget: {usd: 0.0002}'
	run orch run b.yaml -j 1
	[ "$status" -eq 1 ]
	run orch run b.yaml -j 1 --resume --budget 0.001
	assert_success
	[ "$(nreqs)" -eq 6 ]
	run jq -r 'select(.type == "step.skipped") | .step' runs/b/events.jsonl
	assert_output "$(printf 's%s\n' 1 2 3 4)"
	# the resumed run counts on from what the first spent
	assert_equal "$(jq -c '[.usd, .calls]' runs/b/.spent)" '[0.000345,6]'
	# a budget-tokens below what a resume finds spent refuses at once
	spec b 7 'budget: {usd: 0.0002}'
	run --separate-stderr orch run b.yaml --resume --budget 1 --budget-tokens 50
	[ "$status" -eq 1 ]
	assert_output --partial 'runs/b'
	run events runs/b budget.exceeded
	assert_line --index 1 '{"provider":"openai","model":"gpt-4o","spent_usd":0.000345,"budget_usd":1,"spent_tokens":84,"budget_tokens":50,"calls":6}'
}

@test "orch run --resume after raising the spec's budget: what succeeded stays done (budget is not in a fingerprint)" {
	fake_start
	spec b 3 'budget: {usd: 0.0001}'
	run orch run b.yaml -j 1
	[ "$status" -eq 1 ]
	spec b 3 'budget: {usd: 1, tokens: 1000}
prices: [{provider: openai, model: "*", input: 1, output: 1}]'
	run orch run b.yaml -j 1 --resume
	assert_success
	[ "$(nreqs)" -eq 3 ]
	run jq -r 'select(.type == "step.skipped") | .step' runs/b/events.jsonl
	assert_output "$(printf 's%s\n' 1 2)"
}

@test "orch run: --budget takes a number above 0; exit 2, nothing run" {
	spec b 1
	for bad in 0 -1 abc 1e; do
		run --separate-stderr orch run b.yaml --budget "$bad"
		[ "$status" -eq 2 ]
		assert_equal "$stderr" "orch: --budget takes a number above 0: $bad"
	done
	[ ! -e runs/b ]
}

@test "orch run: cache hits cost nothing and are never refused, even past the budget" {
	fake_start
	spec c 3
	orch run c.yaml -j 1
	[ "$(nreqs)" -eq 3 ]
	# a fresh run counts from zero: "new" spends past the budget, then
	# the three steps are answered from the cache
	{
		printf 'job: c\nprovider: {name: openai, model: gpt-4o}\nbudget: {usd: 0.00001}\nsteps:\n'
		printf '  - {id: new, prompt: "say 0"}\n'
		for i in 1 2 3; do printf '  - {id: s%s, prompt: "say %s", needs: [new]}\n' $i $i; done
	} > c.yaml
	run orch run c.yaml -j 1
	assert_success
	[ "$(nreqs)" -eq 4 ]
	run events runs/c budget.exceeded
	assert_output ''
	run jq -c 'select(.type == "cache.hit") | .step' runs/c/events.jsonl
	[ "${#lines[@]}" -eq 3 ]
	assert_equal "$(jq .usd runs/c/.spent)" 5.75e-05
}

@test "orch run -j 8: 20 steps against a budget overspend by at most the 8 calls in flight" {
	fake_start
	MODEL=gpt-4o-delay300 spec j 20 'budget: {usd: 0.0003}'
	run orch run j.yaml -j 8 -k
	[ "$status" -eq 1 ]
	R=runs/j
	max=$(jq -s '[.[] | select(.type == "llm.response") | .data.cost_usd] | max' $R/events.jsonl)
	run jq -n --argjson s "$(spent $R)" --argjson m "$max" '$s > 0.0003 and $s <= 0.0003 + 8 * $m'
	assert_output true
	refused=$(events $R budget.exceeded | wc -l)
	[ "$refused" -ge 1 ]
	run jq -s '[.[] | select(.type == "step.failed")] | (length == '"$refused"') and all(.data.kind == "budget")' $R/events.jsonl
	assert_output true
	called=$(events $R llm.response | wc -l)
	[ $((called + refused)) -eq 20 ]
	# RUN/.spent holds what the events say
	run jq -n --argjson f "$(jq .usd $R/.spent)" --argjson s "$(spent $R)" '($f - $s) | fabs < 1e-12'
	assert_output true
}

# ---- orch-call ----

@test "orch-call: 8 processes at once against --budget: some refused, the overspend at most 8 calls" {
	fake_start
	mkdir -p run
	for i in $(seq 40); do req openai gpt-4o-delay200 "say $((i % 10))" | jq -c --arg s "s$i" '.step = $s'; done > all.ndjson
	split -l 5 all.ndjson part.
	ls part.* | xargs -P 8 -I{} sh -c 'orch-call --run run --budget 0.0004 {} > {}.out 2> {}.err; echo $? > {}.rc'
	max=$(jq -s '[.[] | select(.type == "llm.response") | .data.cost_usd] | max' run/events.jsonl)
	run jq -n --argjson s "$(spent run)" --argjson m "$max" '$s >= 0.0004 and $s <= 0.0004 + 8 * $m'
	assert_output true
	refused=$(cat part.*.out | grep -c '^{"failed":{"kind":"budget"')
	[ "$refused" -ge 1 ]
	[ "$refused" -eq "$(events run budget.exceeded | wc -l)" ]
	[ "$((refused + $(events run llm.response | wc -l)))" -eq 40 ]
	[ "$(nreqs)" -eq "$(events run llm.response | wc -l)" ]
	grep -l '"failed"' part.*.out | while read -r f; do [ "$(cat "${f%.out}.rc")" -eq 1 ]; done
}

@test "orch-call: a refused request's line comes in its turn; the others are answered; exit 1" {
	fake_start
	mkdir -p run
	{ req openai gpt-4o "say 1"; req openai gpt-4o "say 2"; } > two.ndjson
	run --separate-stderr orch-call --run run --budget 0.00005 two.ndjson
	[ "$status" -eq 1 ]
	assert_line --index 0 --partial '"content":"fake: say 1"'
	assert_line --index 1 '{"failed":{"kind":"budget","message":"budget: the run has spent $5.75e-05 of its $5e-05; not calling openai"}}'
	assert_equal "$stderr" 'orch-call: step s1: budget: the run has spent $5.75e-05 of its $5e-05; not calling openai'
}

@test "orch-call: --budget over \$ORCH_BUDGET over the request's budget; bad values exit 2" {
	fake_start
	mkdir -p run
	req openai gpt-4o "say 1" | jq -c '.budget = {usd: 0.00001}' > r.json
	orch-call --run run r.json > /dev/null
	run orch-call --run run r.json
	[ "$status" -eq 1 ]
	run env ORCH_BUDGET=1 orch-call --run run r.json
	assert_success
	run env ORCH_BUDGET=0.00001 orch-call --run run --budget 1 r.json
	assert_success
	run env ORCH_BUDGET=1 orch-call --run run --budget-tokens 20 r.json
	[ "$status" -eq 1 ]
	run --separate-stderr orch-call --budget 0 r.json
	[ "$status" -eq 2 ]
	assert_equal "$stderr" 'orch-call: --budget: not a number > 0: 0'
	run --separate-stderr env ORCH_BUDGET_TOKENS=x orch-call r.json
	[ "$status" -eq 2 ]
	run --separate-stderr orch-call --run run <<< "$(jq -c '.budget = {usd: 1, cents: 3}' r.json)"
	[ "$status" -eq 2 ]
	assert_equal "$stderr" 'orch-call: step s1: budget: unknown key (usd, tokens)'
}

@test "orch-call: RUN/.spent missing or corrupt is folded again from the events; a fresh job.started starts at zero" {
	fake_start
	mkdir -p run
	for i in 1 2 3; do req openai gpt-4o "say $i"; done > three.ndjson
	orch-call --run run --budget 1 three.ndjson > /dev/null
	assert_equal "$(jq -c '[.usd, .tokens, .calls]' run/.spent)" '[0.0001725,42,3]'
	echo 'garbage' > run/.spent
	run --separate-stderr orch-call --run run --budget 0.0001 three.ndjson
	[ "$status" -eq 1 ]
	assert_line --index 0 '{"failed":{"kind":"budget","message":"budget: the run has spent $0.0001725 of its $0.0001; not calling openai"}}'
	rm run/.spent
	orch-call --run run --budget 0.0001 three.ndjson > /dev/null || true
	assert_equal "$(jq -c '.calls' run/.spent)" 3
	orch-events --run run emit job.started --data '{"resume":false}'
	run --separate-stderr orch-call --run run --budget 0.0001 three.ndjson
	[ "$status" -eq 1 ]
	assert_line --index 0 --partial '"content":"fake: say 1"'
	assert_line --index 1 --partial '"content":"fake: say 2"'
	assert_line --index 2 --partial '"kind":"budget"'
	assert_equal "$(jq -c '[.usd, .calls]' run/.spent)" '[0.000115,2]'
}

@test "orch-call: a run folder not made yet is made, and its first call counted" {
	fake_start
	req openai gpt-4o "say 1" > r.json
	orch-call --run new/run --budget 0.00001 r.json > /dev/null
	run orch-call --run new/run --budget 0.00001 r.json
	[ "$status" -eq 1 ]
	assert_equal "$(jq -c '[.usd, .calls]' new/run/.spent)" '[5.75e-05,1]'
}

@test "orch-call: a budget with no run folder is not checked, and says so once" {
	fake_start
	{ req openai gpt-4o "say 1"; req openai gpt-4o "say 2"; } > two.ndjson
	run --separate-stderr orch-call --budget 0.00001 two.ndjson
	assert_success
	[ "${#lines[@]}" -eq 2 ]
	assert_equal "$stderr" 'orch-call: a budget needs a run folder (--run or ORCH_RUN_DIR) to count what was spent; not checked'
}

# ---- prices ----

# cost_of R: the cost_usd of R's last llm.response.
cost_of() { jq -s -c '[.[] | select(.type == "llm.response")] | last | .data.cost_usd' "$1/events.jsonl"; }

@test "prices: the spec's prices: change cost_usd (cached_input defaults to input); the first matching row wins" {
	fake_start
	spec p 1 'prices:
  - {provider: openai, model: "gpt-4o-mini*", input: 1000, output: 1000}
  - {provider: openai, model: "gpt-4o*", input: 100, output: 1000}
  - {provider: openai, model: "*", input: 5, output: 5}'
	run orch run p.yaml
	assert_success
	assert_equal "$(cost_of runs/p)" 0.0041  # 11 * 100 + 3 * 1000 per million
}

@test "prices: the config file's prices: change cost_usd, the spec's come first; orch-call --config shows them" {
	fake_start
	mkdir -p "$HOME/.config/orch" run
	cat > "$HOME/.config/orch/config.yaml" <<-'EOF'
	prices:
	  - {provider: openai, model: "gpt-4o*", input: 1, cached_input: 0.5, output: 2}
	EOF
	req openai gpt-4o "say 1" > r.json
	orch-call --run run r.json > /dev/null
	assert_equal "$(cost_of run)" 1.7e-05  # 11 * 1 + 3 * 2 per million
	jq -c '.prices = [{provider: "openai", model: "gpt-4o", input: 0, output: 10}]' r.json | orch-call --run run > /dev/null
	assert_equal "$(cost_of run)" 3e-05
	run orch-call --config
	assert_line 'price.openai.gpt-4o*	input 1 cached 0.5 output 2 USD/M (config)'
	spec p 1
	run orch run p.yaml
	assert_success
	assert_equal "$(cost_of runs/p)" 1.7e-05
}

@test "prices: a bad price row in the config file is refused at its line and column; exit 2" {
	mkdir -p "$HOME/.config/orch"
	cat > "$HOME/.config/orch/config.yaml" <<-'EOF'
	prices:
	  - {provider: openai, model: "gpt-4o*", input: x, output: 2, wat: 1}
	  - {provider: openai, output: 2}
	EOF
	run --separate-stderr orch-call --config
	[ "$status" -eq 2 ]
	assert_equal "$stderr" "orch-call: $HOME/.config/orch/config.yaml:2:49: prices: 'input' must be a number >= 0 (USD per million tokens)
orch-call: $HOME/.config/orch/config.yaml:2:63: prices: 'wat' is no key of a price (provider, model, input, cached_input, output)
orch-call: $HOME/.config/orch/config.yaml:3:5: prices: a row needs 'model' (provider, model, input, output)"
}

@test "prices: anthropic's cache writes cost 1.25 times the input price, reads the cached price" {
	fake_start
	mkdir -p run
	req anthropic claude-sonnet-4-cache "say 1" > r.json
	orch-call --run run r.json > /dev/null
	run jq -c 'select(.type == "llm.response") | .data | [.tokens, .cost_usd]' run/events.jsonl
	# 1 input token at $3/M, 5 written at $3.75/M, 20 read at $0.30/M, 3 out at $15/M
	assert_output '[{"prompt":26,"completion":3,"cache_read":20,"cache_creation":5},7.275e-05]'
}
