#!/usr/bin/env bats
# orch-events' reports on real runs: cost, metrics, timeline.
load helper
load fake  # the fake provider, as 50-call and 51-providers start it

# A real run of three steps on three models: two with a price in the
# table, one without. Each answer ("fake: Plan"...) is 3 completion tokens.
priced_run() {
	fake_start
	cat > priced.yaml <<-'EOF'
	job: priced
	task: t
	provider: {name: openai, model: gpt-4o-mini}
	steps:
	  - id: plan
	    prompt: "Plan"
	  - id: build
	    needs: [plan]
	    provider: {name: anthropic, model: claude-3-5-haiku-latest}
	    prompt: "Build"
	  - id: test
	    needs: [plan]
	    provider: {name: openai, model: my-local-model}
	    prompt: "Test"
	EOF
	orch run priced.yaml > /dev/null
	R=$ORCH_RUNS/priced
}

# ---- cost ----

@test "cost: a real run priced from the shipped table, by model; an unknown model is unpriced, not guessed" {
	priced_run
	run orch-events cost --by model --json "$R"
	assert_success
	# gpt-4o-mini: 11 x 0.15 + 3 x 0.60 per million; claude-3-5-haiku: 11 x 0.80 + 3 x 4.00
	run jq -c '.rows | sort_by(.model)[] | [.model, .calls, .prompt_tokens, .completion_tokens, .cost_usd, .unpriced_calls]' <<< "$output"
	assert_output - <<-'EOF'
	["claude-3-5-haiku-latest",1,11,3,2.08e-05,0]
	["gpt-4o-mini",1,11,3,3.45e-06,0]
	["my-local-model",1,11,3,null,1]
	EOF
	run sh -c "orch-events cost --json '$R' | jq -c .total"
	assert_output '{"calls":3,"prompt_tokens":33,"cached_tokens":0,"completion_tokens":9,"cost_usd":2.425e-05,"unpriced_calls":1}'
}

@test "cost: text by step, the run from --run, and the total line" {
	priced_run
	run orch-events --run "$R" cost --by step
	assert_success
	assert_line --index 0 --regexp '^step +calls +prompt +cached +completion +cost_usd +unpriced$'
	assert_line --regexp '^plan +1 +11 +0 +3 +0\.000003 +0$'
	assert_line --regexp '^build +1 +11 +0 +3 +0\.000021 +0$'
	assert_line --regexp '^test +1 +11 +0 +3 +- +1$'
	assert_line --regexp '^total +3 +33 +0 +9 +0\.000024 +1$'
}

@test "cost: over many runs (runs/*), by job, by provider and by day" {
	priced_run
	orch run "$ORCH_SRC/examples/todo-app.yaml" > /dev/null
	run sh -c 'orch-events cost --by job --json "$ORCH_RUNS"/* | jq -c "[.rows[] | [.job, .calls]], .total.calls"'
	assert_output $'[["priced",3],["todo-app",4]]\n7'
	run sh -c 'orch-events cost --by provider --json "$ORCH_RUNS"/* | jq -c "[.rows | sort_by(.provider)[] | [.provider, .cost_usd, .unpriced_calls]]"'
	assert_output '[["anthropic",2.08e-05,0],["echo",0,0],["openai",3.45e-06,1]]'
	today=$(date -u +%F)
	run sh -c 'orch-events cost --by day --json "$ORCH_RUNS"/* | jq -r ".rows[].day"'
	assert_output "$today"
}

@test "cost: cost_usd in the event wins over the table; cached prompt tokens at the cached price" {
	priced_run
	orch-events --run "$R" emit llm.response --step plan --data '{"provider":"openai","model":"gpt-4o-mini","tokens":{"prompt":10,"completion":0},"success":true,"cost_usd":0.5}'
	orch-events --run "$R" emit llm.response --step plan --data '{"provider":"openai","model":"gpt-4o","tokens":{"prompt":1000000,"cache_read":400000,"completion":0},"success":true}'
	run sh -c "orch-events cost --by model --json '$R' | jq -c '[.rows[] | select(.model | startswith(\"gpt-4o\")) | [.model, .calls, .cached_tokens, .cost_usd]]'"
	# gpt-4o: 600,000 x 2.50 + 400,000 x 1.25 per million = 2.00
	assert_output '[["gpt-4o-mini",2,0,0.50000345],["gpt-4o",1,400000,2]]'
}

@test "cost: prompt-cache writes (cache_creation) at 1.25 times the input price, as orch-call prices them" {
	R=runs/cw
	mkdir -p "$R"
	orch-events --run "$R" emit llm.response --step plan --data '{"provider":"anthropic","model":"claude-sonnet-4-5","tokens":{"prompt":26,"completion":3,"cache_read":20,"cache_creation":5},"success":true}'
	# 1 input token at $3/M, 5 written at $3.75/M, 20 read at $0.30/M, 3 out at $15/M
	run sh -c "orch-events cost --json '$R' | jq -c '[.total.cached_tokens, .total.cost_usd]'"
	assert_output '[20,7.275e-05]'
}

@test "cost: ORCH_PRICES overrides a row; a bad table is refused with file:line, exit 2" {
	priced_run
	printf 'openai\tmy-*\t1000\t-\t2000\t2025-01-01\n' > mine.tsv
	run sh -c "ORCH_PRICES=mine.tsv orch-events cost --by model --json '$R' | jq -c '(.rows[] | select(.model == \"my-local-model\") | [.model, .cost_usd]), .total.unpriced_calls'"
	# 11 x 1000 + 3 x 2000 per million
	assert_output $'["my-local-model",0.017]\n0'
	printf '# mine\nopenai\tmy-*\t1\t-\t2\t2025-01-01\nopenai\tx\tcheap\t-\t2\t2025-01-01\n' > bad.tsv
	run --separate-stderr env ORCH_PRICES=bad.tsv orch-events cost "$R"
	assert_failure 2
	assert_output ""
	[ "${stderr_lines[0]}" = "orch-events: bad.tsv:3:10: the input price is not a number >= 0" ]
	run orch-events cost --by week "$R"
	assert_failure 2
	assert_output "orch-events: --by week: not one of step, model, provider, day, job"
	run orch-events cost --svg "$R"
	assert_failure 2
}

@test "cost: a folder with no events is reported, the others still counted, exit 1" {
	priced_run
	mkdir empty
	run --separate-stderr sh -c "orch-events cost --json empty '$R' | jq -c .total.calls"
	assert_output 3
	assert_equal "$stderr" "orch-events: empty/events.jsonl: No such file or directory"
	run orch-events cost empty
	assert_failure 1
}

@test "stats: cost per step and in total, of the latest run" {
	priced_run
	run orch-events --run "$R" stats
	assert_success
	assert_line 'cost: $0.000024 in total, 1 call without a price'
	assert_line --regexp '^  plan +\$0\.000003$'
	assert_line --regexp '^  test +unknown$'
	run sh -c "orch-events --run '$R' stats --json | jq -cS .cost"
	assert_output '{"steps":{"build":2.08e-05,"plan":3.45e-06,"test":null},"unpriced_calls":1,"usd":2.425e-05}'
}

# ---- metrics ----

# promcheck FILE: a strict reader of the Prometheus text format 0.0.4:
# names and labels as the format allows, values as Go's ParseFloat reads
# them, HELP and TYPE once a family and before its samples, a family's
# samples together, no series twice, histograms with cumulative buckets
# ending in le="+Inf" equal to _count, counters named *_total.
promcheck() {
	python3 - "$1" <<-'PY'
	import math, re, sys
	NAME = r'[a-zA-Z_:][a-zA-Z0-9_:]*'
	LABEL = r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"'
	SAMPLE = re.compile(r'^(%s)(?:\{((?:%s)(?:,%s)*)?\})? (\S+)(?: (-?[0-9]+))?$' % (NAME, LABEL, LABEL))
	text = open(sys.argv[1]).read()
	assert text.endswith("\n"), "no final newline"
	help_, type_, done, seen, cur = {}, {}, set(), set(), None
	hist = {}
	def family(name):
	    for suf in ("_bucket", "_sum", "_count"):
	        base = name[:-len(suf)]
	        if name.endswith(suf) and type_.get(base) == "histogram":
	            return base
	    return name
	for n, line in enumerate(text.split("\n")[:-1], 1):
	    where = "line %d: %r" % (n, line)
	    m = re.match(r'^# (HELP|TYPE) (%s) (.*)$' % NAME, line)
	    if m:
	        kind, name, rest = m.groups()
	        table = help_ if kind == "HELP" else type_
	        assert name not in table, "second %s: %s" % (kind, where)
	        assert name not in done and name != cur, "%s after samples: %s" % (kind, where)
	        if kind == "TYPE":
	            assert rest in ("counter", "gauge", "histogram", "summary", "untyped"), where
	            assert rest != "counter" or name.endswith("_total"), "counter not *_total: " + where
	        else:
	            assert re.match(r'^(?:[^\\]|\\[\\n])*$', rest), "bad HELP escape: " + where
	        table[name] = rest
	        continue
	    assert not line.startswith("#") or line.startswith("# ") and not re.match(r'# (HELP|TYPE)', line), where
	    if line.startswith("#"):
	        continue
	    m = SAMPLE.match(line)
	    assert m, "not a sample: " + where
	    parts = re.match(r'^(%s)(?:\{(.*)\})? (\S+)(?: (-?[0-9]+))?$' % NAME, line)
	    name, labels, value = parts.group(1), parts.group(2) or "", parts.group(3)
	    assert re.match(r'^([+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?|[+-]Inf|NaN)$', value), "bad value: " + where
	    v = float(value.replace("Inf", "inf"))
	    fam = family(name)
	    assert fam in type_, "sample before its TYPE: " + where
	    if fam != cur:
	        assert fam not in done, "family split: " + where
	        if cur: done.add(cur)
	        cur = fam
	    pairs = re.findall(LABEL, labels)
	    names = [k for k, _ in pairs]
	    assert len(names) == len(set(names)), "a label twice: " + where
	    key = (name, tuple(sorted(pairs)))
	    assert key not in seen, "series twice: " + where
	    seen.add(key)
	    if type_[fam] == "counter": assert v >= 0, "negative counter: " + where
	    if type_[fam] == "histogram":
	        rest = tuple(sorted(p for p in pairs if p[0] != "le"))
	        h = hist.setdefault((fam, rest), {"b": [], "count": None})
	        if name.endswith("_bucket"):
	            le = dict(pairs)["le"]
	            h["b"].append((float(le.replace("Inf", "inf")), v))
	        elif name.endswith("_count"):
	            h["count"] = v
	for (fam, rest), h in hist.items():
	    les = [le for le, _ in h["b"]]
	    assert les == sorted(les) and les[-1] == math.inf, "buckets out of order: %s" % fam
	    counts = [c for _, c in h["b"]]
	    assert counts == sorted(counts), "buckets not cumulative: %s" % fam
	    assert counts[-1] == h["count"], "+Inf bucket != _count: %s" % fam
	print("ok %d series" % len(seen))
	PY
}

@test "metrics: the strict parser refuses what promtool check metrics would" {
	printf '# TYPE a_total counter\na_total{x="1"} 1\n# TYPE b gauge\nb 1\na_total{x="2"} 1\n' > split.prom
	printf '# TYPE a gauge\na{x="\\q"} 1\n' > escape.prom
	printf '# TYPE a gauge\na{x="1"} 1\na{x="1"} 2\n' > twice.prom
	printf '# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_count 1\nh_sum 1\n' > hist.prom
	printf '# TYPE a counter\na 1\n' > name.prom
	for f in split escape twice hist name; do
		run promcheck $f.prom
		assert_failure
	done
}

@test "metrics: two real runs in the exposition format, read by a strict parser" {
	priced_run
	orch run "$ORCH_SRC/examples/todo-app.yaml" > /dev/null
	orch-events metrics "$ORCH_RUNS"/* > m.prom
	run promcheck m.prom
	assert_success
	assert_output --regexp '^ok [0-9]+ series$'
	run grep -E '^orch_(llm_(cost_usd|tokens|calls)_total\{job="priced",step="plan"|steps\{job="todo-app",status="succeeded"|job_succeeded)' m.prom
	assert_output - <<-'EOF'
	orch_job_succeeded{job="priced"} 1
	orch_job_succeeded{job="todo-app"} 1
	orch_steps{job="todo-app",status="succeeded"} 5
	orch_llm_calls_total{job="priced",step="plan",provider="openai"} 1
	orch_llm_tokens_total{job="priced",step="plan",provider="openai",kind="prompt"} 11
	orch_llm_tokens_total{job="priced",step="plan",provider="openai",kind="cached"} 0
	orch_llm_tokens_total{job="priced",step="plan",provider="openai",kind="completion"} 3
	orch_llm_cost_usd_total{job="priced",step="plan",provider="openai"} 3.45e-06
	EOF
	run grep -c '^orch_step_duration_seconds_bucket{job="todo-app",le=' m.prom
	assert_output 14
	run grep '^orch_step_duration_seconds_count' m.prom
	assert_output $'orch_step_duration_seconds_count{job="priced"} 3\norch_step_duration_seconds_count{job="todo-app"} 5'
}

@test "metrics: retries, a failed step, cache hits of the latest run only; label values escaped" {
	cat > flaky.yaml <<-EOF
	job: flaky
	steps:
	  - id: again
	    retries: 1
	    run: "if [ -e $PWD/tried ]; then echo ok; else touch $PWD/tried; exit 75; fi"
	  - id: broken
	    retries: 0
	    run: "exit 3"
	EOF
	run orch run flaky.yaml
	assert_failure 1
	orch run "$ORCH_SRC/examples/todo-app.yaml" > /dev/null
	orch run "$ORCH_SRC/examples/todo-app.yaml" > /dev/null
	orch-events --run "$ORCH_RUNS/todo-app" emit llm.response --step qa --data '{"provider":"we\"ird\\one\n","model":"m","tokens":{"prompt":1,"completion":1},"success":false}'
	orch-events metrics "$ORCH_RUNS/flaky" "$ORCH_RUNS/todo-app" > m.prom
	run promcheck m.prom
	assert_success
	run grep -E '^orch_(step_retries_total|steps\{job="flaky",status="(failed|succeeded)"|job_succeeded\{job="flaky"|cache_(hits|misses)_total\{job="todo-app",step="qa"|llm_failures_total\{job="todo-app",step="qa",provider="we)' m.prom
	assert_output - <<-'EOF'
	orch_job_succeeded{job="flaky"} 0
	orch_steps{job="flaky",status="succeeded"} 1
	orch_steps{job="flaky",status="failed"} 1
	orch_step_retries_total{job="flaky",step="again"} 1
	orch_llm_failures_total{job="todo-app",step="qa",provider="we\"ird\\one\n"} 1
	orch_cache_hits_total{job="todo-app",step="qa"} 1
	EOF
}

@test "metrics: the crontab example writes the file atomically after the run" {
	line=$(grep '^[^#].*orch-events metrics' "$ORCH_SRC/examples/crontab")
	cmd=$(printf '%s\n' "$line" | sed -E 's/^([^ ]+ +){5}//')
	mkdir -p home/jobs textfile
	cp "$ORCH_SRC/examples/todo-app.yaml" home/jobs/
	unset ORCH_RUNS
	HOME=$PWD/home TEXTFILE=$PWD/textfile sh -c "$cmd"
	run ls -A textfile
	assert_output orch.prom
	run promcheck textfile/orch.prom
	assert_success
	run grep '^orch_job_succeeded' textfile/orch.prom
	assert_output 'orch_job_succeeded{job="todo-app"} 1'
}

# ---- timeline ----

# A real run with every kind of bar: two cached LLM steps (a first run
# put them in the cache), a step retried once, three that wait for a pool
# of one, one failed at the end (so on the critical path), one skipped
# after it, one skipped by when.
kinds_run() {
	cat > kinds0.yaml <<-'EOF'
	job: kinds
	provider: {name: echo}
	steps:
	  - id: ask
	    prompt: "Name three colours"
	  - id: answer
	    needs: [ask]
	    prompt: "Use {{ .steps.ask.output }}"
	EOF
	sed -n '1,2p' kinds0.yaml > kinds.yaml
	cat >> kinds.yaml <<-EOF
	pools: {one: 1}
	$(sed -n '3,$p' kinds0.yaml)
	  - id: flaky
	    retries: 1
	    run: "sleep 0.1; if [ -e $PWD/tried ]; then echo ok; else touch $PWD/tried; exit 75; fi"
	  - id: never
	    when: "false"
	    run: "true"
	  - {id: slot-1, pool: one, run: "sleep 0.2"}
	  - {id: slot-2, pool: one, run: "sleep 0.2"}
	  - {id: slot-3, pool: one, needs: [answer], run: "sleep 0.2"}
	  - {id: last, needs: [slot-1, slot-2, flaky], run: "sleep 0.1"}
	  - {id: broken, needs: [last, slot-3], retries: 0, run: "sleep 0.05; exit 3"}
	  - {id: after-broken, needs: [broken], run: "true"}
	EOF
	orch run kinds0.yaml > /dev/null
	run orch run kinds.yaml
	assert_failure 1
	R=$ORCH_RUNS/kinds
}

# png_size FILE: "WIDTH HEIGHT" of a valid PNG (signature, IHDR, IEND), else fails.
png_size() {
	python3 - "$1" <<-'PY'
	import struct, sys, zlib
	d = open(sys.argv[1], "rb").read()
	assert d[:8] == b"\x89PNG\r\n\x1a\n", "no PNG signature"
	pos, chunks = 8, []
	while pos < len(d):
	    n, kind = struct.unpack(">I4s", d[pos:pos + 8])
	    body, crc = d[pos + 8:pos + 8 + n], struct.unpack(">I", d[pos + 8 + n:pos + 12 + n])[0]
	    assert zlib.crc32(kind + body) == crc, "bad CRC in " + kind.decode()
	    chunks.append((kind, body))
	    pos += 12 + n
	assert chunks[0][0] == b"IHDR" and chunks[-1][0] == b"IEND", "no IHDR or IEND"
	zlib.decompress(b"".join(b for k, b in chunks if k == b"IDAT"))
	print("%d %d" % struct.unpack(">II", chunks[0][1][:8]))
	PY
}

need_rsvg() {
	command -v rsvg-convert > /dev/null || skip "rsvg-convert is not installed (Debian: librsvg2-bin)"
}

@test "timeline: text, a row per step, each kind of bar, the critical path starred" {
	kinds_run
	run orch-events --run "$R" timeline
	assert_success
	assert_line --index 0 --regexp '^kinds: [0-9.]+s, 10 steps; \* marks the critical path$'
	assert_line --regexp '^ask +\*? \| *\.*c+ *\| '  # waiting first, under load
	# a wait may come first under load; a short backoff may show no wait
	assert_line --regexp '^flaky +\*? \| *\.*r+\.*#+ +\| '
	assert_line --regexp '^slot-2 +\*? \|\.+#+ +\| '
	assert_line --regexp '^last +\*? \| +\.*#+ +\| '
	assert_line --regexp '^broken +\* \| +\.*x+\| '
	assert_line --regexp '^never +\| *- +\| '
	assert_line --regexp '^after-broken +\| +-\| '
	assert_line --regexp '^ +\. waiting  # running  r retried  c cached  x failed  - skipped$'
	run orch-events timeline "$R" "$R"
	assert_failure 2
	run orch-events timeline --by step "$R"
	assert_failure 2
}

@test "timeline --svg: 10 steps, well-formed, every colour, rendered by rsvg-convert at 1000 x 280" {
	kinds_run
	orch-events --run "$R" timeline --svg > t.svg
	run python3 -c '
import sys, xml.etree.ElementTree as ET
ns = "{http://www.w3.org/2000/svg}"
root = ET.parse("t.svg").getroot()
assert root.tag == ns + "svg", root.tag
print(root.get("width"), root.get("height"))
print(" ".join(sorted({c for r in root.iter(ns + "rect") for c in (r.get("class") or "").split()})))
crit = {r.find(ns + "title").text.split(":")[0] for r in root.iter(ns + "rect") if "k" in (r.get("class") or "").split() and r.find(ns + "title") is not None}
print("broken" in crit, "never" in crit, "after-broken" in crit)
'
	assert_success
	# classes: w waiting, r running, y retried, c cached, f failed, s skipped,
	# k the critical path (broken ends last; what it waited for depends on timing)
	assert_output $'1000 280\nc f k r s w y\nTrue False False'
	need_rsvg
	rsvg-convert t.svg -o t.png
	run png_size t.png
	assert_success
	assert_output "1000 280"
}

@test "timeline --svg: 1,000 steps stay a few hundred KB, rows of 3 px, every 4th labelled" {
	{
		echo 'job: big'
		echo 'steps:'
		for i in $(seq 0 999); do
			echo "  - id: s$i"
			[ "$i" -gt 0 ] && echo "    needs: [s$(( (i - 1) / 2 ))]"
			echo '    run: "true"'
		done
	} > big.yaml
	orch run big.yaml -j 8 > /dev/null
	orch-events --run "$ORCH_RUNS/big" timeline --svg > big.svg
	size=$(wc -c < big.svg)
	[ "$size" -lt 400000 ]
	run python3 -c '
import xml.etree.ElementTree as ET
ns = "{http://www.w3.org/2000/svg}"
root = ET.parse("big.svg").getroot()
labels = [t.text for t in root.iter(ns + "text") if t.get("text-anchor") == "end"]
print(root.get("height"), len(labels), labels[0], labels[1], labels[-1])
'
	assert_output "3080 250 s0 s4 s996"
	run orch-events --run "$ORCH_RUNS/big" timeline
	assert_equal "${#lines[@]}" 1002
	need_rsvg
	rsvg-convert big.svg -o big.png
	run png_size big.png
	assert_output "1000 3080"
}

# ---- the manual ----

@test "orch-events(1): the reports' examples print what the page shows, on a real run" {
	orch run "$ORCH_SRC/examples/todo-app.yaml" > /dev/null
	cd "$ORCH_RUNS/.."
	for n in 8 9 10 11; do  # the reports' four, after the log's seven
		cmd=$(man_example orch-events.1 $n)
		[ -n "$cmd" ]
		run sh -c "$cmd"
		assert_success
		assert_output "$(man_expected orch-events.1 $n)"
	done
	run head -c 5 todo.svg
	assert_output "<svg "
}

@test "orch-call: each answered llm.response carries cost_usd, from the table, or null" {
	fake_start
	printf '%s\n' '{"provider":"openai","model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"step":"s"}' \
		'{"provider":"openai","model":"my-local-model","messages":[{"role":"user","content":"hi"}],"step":"t"}' > two.ndjson
	mkdir -p run
	orch-call --run run < two.ndjson > /dev/null
	run jq -c 'select(.type == "llm.response") | [.step, (.data.cost_usd | type)]' run/events.jsonl
	assert_line '["s","number"]'
	assert_line '["t","null"]'
	run orch-events --run run cost --json
	assert_success
}
