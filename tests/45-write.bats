#!/usr/bin/env bats
load helper
bats_require_minimum_version 1.5.0

FX="$BATS_TEST_DIRNAME/fixtures/write"

setup() {
	orch_setup
	mkdir -p runs/j/outputs
	export ORCH_RUN_DIR=$PWD/runs/j ORCH_STEP=builder
	OUT=$PWD/runs/j/outputs
}

rec() { jq -cn --arg p "$1" --arg c "$2" --arg m "${3:-}" '{path: $p, content: $c} + (if $m == "" then {} else {mode: $m} end)'; }
sha() { sha256sum "$1" | cut -d' ' -f1; }

@test "overwrite (default): created, nochange, overwritten; results and events" {
	run orch-write <<< "$(rec app/main.py $'print(1)\n')"
	assert_success
	assert_output "{\"path\":\"app/main.py\",\"sha256\":\"$(sha "$OUT/app/main.py")\",\"size_bytes\":9,\"wrote\":true,\"reason\":\"created\"}"
	[ "$(cat "$OUT/app/main.py")" = "print(1)" ]
	run orch-write <<< "$(rec app/main.py $'print(1)\n')"
	assert_output --partial '"wrote":false,"reason":"nochange"'
	run orch-write <<< "$(rec app/main.py $'print(2)\n' overwrite)"
	assert_output --partial '"wrote":true,"reason":"overwritten"'
	[ "$(cat "$OUT/app/main.py")" = "print(2)" ]
	run jq -c '[.type, .step, .data.path, .data.wrote, .data.reason, (.data.sha256|length), .data.size_bytes]' runs/j/events.jsonl
	assert_output "$(printf '%s\n' '["file.written","builder","app/main.py",true,"created",64,9]' \
		'["file.written","builder","app/main.py",false,"nochange",64,9]' \
		'["file.written","builder","app/main.py",true,"overwritten",64,9]')"
}

@test "create_new: created, nochange on same content, exit 1 and untouched on other" {
	run orch-write <<< "$(rec a.txt $'one\n' create_new)"
	assert_output --partial '"reason":"created"'
	run orch-write <<< "$(rec a.txt $'one\n' create_new)"
	assert_success
	assert_output --partial '"reason":"nochange"'
	run orch-write <<< "$(rec a.txt $'two\n' create_new)"
	assert_failure 1
	assert_output --partial "exists with other content"
	[ "$(cat "$OUT/a.txt")" = "one" ]
}

@test "append: created, appended (result covers the whole file), empty is nochange" {
	run orch-write <<< "$(rec log.txt $'a\n' append)"
	assert_output --partial '"reason":"created"'
	run orch-write <<< "$(rec log.txt $'b\n' append)"
	assert_output --partial '"size_bytes":4,"wrote":true,"reason":"appended"'
	assert_output --partial "$(printf 'a\nb\n' | sha256sum | cut -d' ' -f1)"
	run orch-write <<< "$(rec log.txt '' append)"
	assert_output --partial '"wrote":false,"reason":"nochange"'
	[ "$(cat "$OUT/log.txt")" = "$(printf 'a\nb')" ]
}

@test "--mode sets the default mode; a bad mode is refused (2)" {
	rec x $'1\n' | orch-write --mode append > /dev/null
	rec x $'2\n' | orch-write --mode append > /dev/null
	[ "$(cat "$OUT/x")" = "$(printf '1\n2')" ]
	run orch-write --mode clobber < /dev/null
	assert_failure 2
	run orch-write <<< '{"path":"y","content":"1","mode":"clobber"}'
	assert_failure 2
	run orch-write <<< '{"path":"y","content":"1","mode":3}'
	assert_failure 2
	[ ! -e "$OUT/y" ]
}

@test "nochange keeps the mtime; overwrite keeps the permission bits" {
	rec run.sh $'#!/bin/sh\necho hi\n' | orch-write > /dev/null
	chmod 755 "$OUT/run.sh"
	touch -d '2020-01-01 00:00:00' "$OUT/run.sh"
	before=$(stat -c '%Y %i' "$OUT/run.sh")
	rec run.sh $'#!/bin/sh\necho hi\n' | orch-write > /dev/null
	[ "$(stat -c '%Y %i' "$OUT/run.sh")" = "$before" ]
	rec run.sh $'#!/bin/sh\necho bye\n' | orch-write > /dev/null
	[ "$(stat -c %a "$OUT/run.sh")" = 755 ]
	[ "$(stat -c %Y "$OUT/run.sh")" != "${before% *}" ]
	[ -z "$(find "$OUT" -name '.*.tmp')" ]
}

@test "a Makefile's second make does nothing after an unchanged rewrite" {
	write_all() {
		{ rec Makefile $'out.txt: in.txt\n\tcp in.txt out.txt\n'; rec in.txt $'data\n'; } | orch-write > /dev/null
	}
	write_all
	touch -d '1 minute ago' "$OUT/Makefile" "$OUT/in.txt"
	run make -C "$OUT"
	assert_output --partial "cp in.txt out.txt"
	write_all
	run make -C "$OUT"
	assert_success
	assert_output --partial "'out.txt' is up to date"
}

@test "records: invalid ones refused with exit 2 and nothing written" {
	for bad in '[1]' '"x"' '{"content":"x"}' '{"path":1,"content":"x"}' '{"path":"x","content":1}' \
		'{"path":"x"}' '{"path":"x","content":"x"' ; do
		run orch-write <<< "{\"path\":\"ok.txt\",\"content\":\"ok\"} $bad"
		assert_failure 2
	done
	[ -z "$(ls -A "$OUT")" ]
}

@test "no outputs folder: exit 2; --outputs works without a run" {
	unset ORCH_RUN_DIR
	run orch-write <<< "$(rec a x)"
	assert_failure 2
	assert_output --partial "no outputs folder"
	run orch-write --outputs elsewhere/out <<< "$(rec a/b.txt x)"
	assert_success
	[ "$(cat elsewhere/out/a/b.txt)" = x ]
}

@test "./ components are dropped from the path" {
	run orch-write <<< "$(rec ./app/./x.py 'x')"
	assert_success
	assert_output --partial '"path":"app/x.py"'
	[ -f "$OUT/app/x.py" ]
}

# Each hostile path, after a good record in the same batch: exit 2, and
# nothing written anywhere (no new file under this test's folder).
hostile_setup() {
	mkdir -p outside "$OUT/inside" "$OUT/dir"
	ln -s ../../../outside "$OUT/up"
	ln -s "$PWD/outside" "$OUT/tmp"
	ln -s "$PWD/outside/target" "$OUT/abs-file"
	ln -s ../../outside/newfile "$OUT/dangling"
	ln -s ../../../../outside "$OUT/inside/deep"
	ln -s inside "$OUT/rel-inside"
	ln -s loop "$OUT/loop"
	ln -s / "$OUT/inside/root"
	echo secret > outside/target
	mkfifo "$OUT/fifo"
	echo plain > "$OUT/plain"
	# everything so far is older than the marker, which is older than now
	find . -exec touch -h -d '1 minute ago' {} +
	touch -d '30 seconds ago' marker
}

@test "at least 30 hostile paths are refused, nothing written anywhere" {
	hostile_setup
	long=$(printf 'a%.0s' $(seq 240))
	verylong=$(printf 'abcdefgh/%.0s' $(seq 460))x
	paths=(/etc/passwd /tmp/x //etc/passwd ../x ../../etc/passwd a/../../x a/.. .. a/b/../../../x
		"a/./../x" "" . ./ "a//b" "a/" $'a\nb' $'a\tb' $'a\rb' $'\e[31mred' $'x\x7f' $'a/\x01'
		"$long" "a/$long/b" "$verylong"
		up/x up tmp/x abs-file dangling inside/deep/x rel-inside/x loop/x inside/root/etc/x
		fifo dir plain/x "dir/../../x" "~/../x")
	[ "${#paths[@]}" -ge 30 ]
	for p in "${paths[@]}"; do
		run orch-write <<< "$(rec ok.txt fine)"$'\n'"$(rec "$p" 'pwned')"
		[ "$status" -eq 2 ] || { echo "not refused ($status): $p"; false; }
		[ ! -e "$OUT/ok.txt" ] || { echo "wrote the batch for: $p"; false; }
	done
	# a NUL inside the path
	run orch-write <<< '{"path":"a\u0000b","content":"x"}'
	assert_failure 2
	run orch-write --mode append <<< '{"path":"abs-file","content":"x"}'
	assert_failure 2
	[ "$(cat outside/target)" = secret ]
	[ -z "$(find . -newer marker -type f ! -path ./marker)" ]
	[ -z "$(find . -newer marker -type d ! -path .)" ] || find . -newer marker
	[ ! -e outside/newfile ] && [ ! -e outside/x ]
}

@test "without openat2 (the O_NOFOLLOW walk) symlinks are refused too" {
	hostile_setup
	export ORCH_NO_OPENAT2=1
	for p in up/x up tmp/x abs-file dangling inside/deep/x rel-inside/x loop/x inside/root/etc/x fifo dir plain/x; do
		run orch-write <<< "$(rec ok/ok.txt fine)"$'\n'"$(rec "$p" 'pwned')"
		[ "$status" -eq 2 ] || { echo "not refused ($status): $p"; false; }
	done
	[ ! -e "$OUT/ok" ] && [ ! -e outside/newfile ] && [ "$(cat outside/target)" = secret ]
	run orch-write <<< "$(rec inside/new/x.txt fine)"
	assert_success
	[ -f "$OUT/inside/new/x.txt" ]
}

@test "a symlinked outputs folder is refused" {
	rm -r "$OUT"
	mkdir elsewhere
	ln -s "$PWD/elsewhere" "$OUT"
	run orch-write <<< "$(rec a x)"
	assert_failure 2
	[ -z "$(ls elsewhere)" ]
}

@test "append to a file with other hard links is refused" {
	mkdir -p outside
	echo secret > outside/f
	ln outside/f "$OUT/hl" || skip "no hard links here"
	run orch-write <<< "$(rec hl x append)"
	assert_failure 2
	[ "$(cat outside/f)" = secret ]
	# overwrite replaces the name only
	run orch-write <<< "$(rec hl x)"
	assert_success
	[ "$(cat outside/f)" = secret ]
}

@test "concurrent appenders never interleave" {
	for w in a b c d; do
		line=$(printf "$w%.0s" $(seq 3000))
		for i in $(seq 25); do rec log.txt "$line"$'\n' append; done > "in.$w"
	done
	for w in a b c d; do orch-write < "in.$w" > "out.$w" & done
	wait
	[ "$(wc -l < "$OUT/log.txt")" -eq 100 ]
	run grep -cvxE 'a{3000}|b{3000}|c{3000}|d{3000}' "$OUT/log.txt"
	assert_output 0
	for w in a b c d; do [ "$(grep -c "^$w" "$OUT/log.txt")" -eq 25 ]; done
}

@test "concurrent overwriters: the file is always one whole version" {
	for w in a b c d; do
		head -c 200000 /dev/zero | tr '\0' "$w" > "c.$w"
		for i in $(seq 10); do jq -cRs '{path: "big.txt", content: .}' "c.$w"; done > "in.$w"
	done
	for w in a b c d; do orch-write < "in.$w" > /dev/null & done
	for i in $(seq 20); do
		cp "$OUT/big.txt" snap 2> /dev/null || continue  # one open: one version
		[ "$(wc -c < snap)" -eq 200000 ] && [ "$(tr -d "$(head -c1 snap)" < snap | wc -c)" -eq 0 ]
	done
	wait
	[ "$(wc -c < "$OUT/big.txt")" -eq 200000 ]
	[ -z "$(find "$OUT" -name '.*.tmp')" ]
}

@test "concurrent create_new: exactly one creator wins" {
	for w in a b c d e f; do
		(if rec once.txt "$w" create_new | orch-write > "out.$w"; then echo 0; else echo $?; fi > "rc.$w") &
	done
	wait
	[ "$(cat rc.* | grep -c '^0$')" -eq 1 ]
	[ "$(cat rc.* | grep -c '^1$')" -eq 5 ]
	[ "$(cat out.* | jq -r .sha256)" = "$(sha "$OUT/once.txt")" ]
}

@test "extract: headings name files; unnamed blocks are skipped and listed" {
	run --separate-stderr orch-write --extract --result < "$FX/headings.md"
	assert_success
	[ "$(jq -c '[.files[].path]' <<< "$output")" = '["app/main.py","app/store.py"]' ]
	[ "$(jq -c '[.skipped[] | [.line, .info, .reason]]' <<< "$output")" = '[[4,"","unnamed"],[54,"bash","unnamed"]]' ]
	[ "$(jq -r .step <<< "$output")" = builder ]
	[ "$(jq -r .output <<< "$output")" = "$(cat "$FX/headings.md")" ]
	grep -q '^        print(f"{i}. \[' "$OUT/app/main.py"
	[ "$(tail -n1 "$OUT/app/store.py")" = '        json.dump(todos, f)' ]
	[ "$(ls "$OUT")" = app ]
}

@test "extract: bold, code span, File: labels and info-string names" {
	run --separate-stderr orch-write --extract < "$FX/labels.md"
	assert_success
	run jq -r .path <<< "$output"
	assert_output "$(printf '%s\n' requirements.txt setup.cfg tests/test_store.py docs/usage.md Makefile \
		app/__init__.py pyproject.toml app/cli.sh app/config.py config/settings.yaml)"
	[ "$(cat "$OUT/requirements.txt")" = "click==8.1.7" ]
	[ "$(cat "$OUT/app/config.py")" = "DEBUG = False" ]
	[ "$(cat "$OUT/config/settings.yaml")" = "debug: false" ]
	[ "$(sed -n 2p "$OUT/Makefile")" = $'\tpython -m pytest' ]
	[ ! -e "$OUT/text" ]
	# a URL before a fence names nothing (and refuses nothing)
	printf 'https://example.com/src/app.py\n```python\nx = 1\n```\n' | orch-write --extract --result > url.json 2>/dev/null
	[ "$(jq -c '[.files, .skipped[0].reason]' url.json)" = '[[],"unnamed"]' ]
}

@test "extract: longer fences hold shorter ones, ~~~ fences, indented fences" {
	run --separate-stderr orch-write --extract < "$FX/nested.md"
	assert_success
	run jq -r .path <<< "$output"
	assert_output "$(printf '%s\n' README.md scripts/dev.sh app/indented.py)"
	diff <(printf '%s\n' '# todo' '' 'Install:' '' '```sh' 'pip install .' '```' '' 'Run:' '' '~~~' 'todo add "buy milk"' '~~~') "$OUT/README.md"
	[ "$(sed -n 4p "$OUT/scripts/dev.sh")" = 'not a fence that closes anything' ]
	diff <(printf '%s\n' 'def f():' '    return 1') "$OUT/app/indented.py"
}

@test "extract: CRLF answers and a missing final newline" {
	sed 's/$/\r/' "$FX/headings.md" > crlf.md
	run orch-write --extract --outputs crlf < crlf.md
	assert_success
	diff crlf/app/main.py <(orch-write --extract --outputs lf < "$FX/headings.md" > /dev/null; cat lf/app/main.py)
	! grep -q $'\r' crlf/app/store.py
	printf '### a.txt\n```\nlast line```\n```' > nofinal.md
	printf '### b.txt\n```\nb\n```' > nofinal2.md
	orch-write --extract < nofinal.md > /dev/null
	orch-write --extract < nofinal2.md > /dev/null
	[ "$(cat "$OUT/a.txt")" = 'last line```' ]
	[ "$(od -c "$OUT/b.txt" | head -1)" = "$(printf 'b\n' | od -c | head -1)" ]
}

@test "extract: a cut-off block is not written; a later block supersedes an earlier one" {
	run --separate-stderr orch-write --extract --result < "$FX/truncated.md"
	assert_success
	[ -f "$OUT/app/done.py" ] && [ ! -e "$OUT/app/cut.py" ]
	[ "$(jq -c '.skipped' <<< "$output")" = '[{"line":7,"info":"python","path":"app/cut.py","reason":"unclosed"}]' ]
	printf '### x.txt\n```\none\n```\n### x.txt\n```\ntwo\n```\n' | orch-write --extract > out
	[ "$(cat "$OUT/x.txt")" = two ]
	[ "$(wc -l < out)" -eq 1 ]
}

@test "extract: a hostile name refuses the whole answer" {
	run orch-write --extract < "$FX/hostile.md"
	assert_failure 2
	assert_output --partial "refused"
	[ -z "$(ls -A "$OUT")" ]
	[ ! -e /tmp/owned.sh ]
}

@test "--result from a response copies cache and usage; plain markdown has none" {
	jq -Rs '{provider: "ollama", model: "llama3", content: ., finish_reason: "stop",
		usage: {prompt_tokens: 10, completion_tokens: 20}, duration_s: 1.5, cache: "hit"}' "$FX/headings.md" > response.json
	run --separate-stderr orch-write --extract --result --step coder < response.json
	assert_success
	[ "$(jq -c '[.step, .cache, .usage, (.files|length), (.output|length > 100)]' <<< "$output")" = '["coder","hit",{"prompt_tokens":10,"completion_tokens":20},2,true]' ]
	run --separate-stderr orch-write --extract --result <<< 'no code here'
	assert_success
	[ "$(jq -c . <<< "$output")" = '{"step":"builder","output":"no code here\n","files":[]}' ]
	run orch-write --extract <<< '{"text":"x"}'
	assert_failure 2
}

@test "--no-files --result: the step result, nothing written, no outputs folder needed" {
	jq -Rs '{content: ., usage: {prompt_tokens: 1}, cache: "miss"}' "$FX/labels.md" > response.json
	rm -r "$OUT"
	run --separate-stderr orch-write --no-files --result < response.json
	assert_success
	[ "$(jq -c '[.step, .files, .cache, .usage, (.output | startswith("I'"'"'ll create"))]' <<< "$output")" = '["builder",[],"miss",{"prompt_tokens":1},true]' ]
	[ ! -e "$OUT" ]
	[ -z "$stderr" ]
}

@test "--input: the step input record's spec.files decides; --extract or --no-files wins; its step fills in" {
	printf '%s\n' '{"job_id":"j","step":"coder","attempt":1,"spec":{"id":"coder","files":true},"steps":{"a":{"output":"```x\n"}}}' > in1.json
	sed 's/"files":true/"files":false/' in1.json > in0.json
	sed 's/,"files":true//' in1.json > none.json
	run --separate-stderr orch-write --input in1.json --result < "$FX/headings.md"
	assert_success
	[ "$(jq -c '[.step, [.files[].path]]' <<< "$output")" = '["builder",["app/main.py","app/store.py"]]' ]
	rm -r "$OUT"
	for f in in0.json none.json; do
		run --separate-stderr orch-write --input $f --result < "$FX/headings.md"
		assert_success
		[ "$(jq -c .files <<< "$output")" = '[]' ]
		[ ! -e "$OUT" ]
	done
	run --separate-stderr orch-write --input in1.json --no-files --result < "$FX/headings.md"
	[ "$(jq -c .files <<< "$output")" = '[]' ]
	[ ! -e "$OUT" ]
	run --separate-stderr orch-write --input in0.json --extract --result < "$FX/headings.md"
	[ "$(jq -c '.files | length' <<< "$output")" = 2 ]
	# the step: --step, else $ORCH_STEP, else the record's; a descriptor as FILE
	unset ORCH_STEP
	run --separate-stderr sh -c 'orch-write --input /dev/fd/3 --result < "$1" 3< in0.json' sh "$FX/headings.md"
	assert_success
	[ "$(jq -r .step <<< "$output")" = coder ]
	run --separate-stderr orch-write --input in0.json --step other --result < "$FX/headings.md"
	[ "$(jq -r .step <<< "$output")" = other ]
}

@test "--input: a missing or invalid record exits 2 and writes nothing" {
	echo '[1]' > arr.json
	echo '{"step":' > torn.json
	for f in nope.json arr.json torn.json; do
		run orch-write --input $f --extract --result < "$FX/headings.md"
		assert_failure 2
		assert_output --partial "$f"
	done
	[ -z "$(ls -A "$OUT")" ]
}

@test "--result with write records: files and a null output" {
	run orch-write --result <<< "$(rec a x)"
	assert_success
	[ "$(jq -c '[.step, .output, .files[0].path, .files[0].reason]' <<< "$output")" = '["builder",null,"a","created"]' ]
}

@test "usage: --help, --version, unknown option, stray argument" {
	run orch-write --help
	assert_success
	assert_output --partial "--extract"
	run orch-write --version
	assert_output "orch-write 0.1.0"
	run orch-write --frob
	assert_failure 2
	run orch-write stray
	assert_failure 2
}

@test "man page examples run" {
	unset ORCH_RUN_DIR
	run sh -c "$(man_example orch-write.1 1)"
	assert_success
	[ "$(cat out/hello.txt)" = hi ]
	export ORCH_RUN_DIR=$PWD/runs/j
	jq -Rs '{content: ., usage: {prompt_tokens: 1, completion_tokens: 2}}' "$FX/labels.md" > response.json
	run --separate-stderr sh -c "$(man_example orch-write.1 2)"
	assert_success
	[ "$(jq '.files | length' <<< "$output")" -eq 10 ]
	# the pipeline, with a stand-in provider call
	mkdir stub
	printf '#!/bin/sh\ncat %s/response.json\n' "$PWD" > stub/orch-call
	chmod +x stub/orch-call
	echo '{"provider":"ollama","model":"llama3","messages":[{"role":"user","content":"go"}]}' > request.json
	PATH=$PWD/stub:$PATH run --separate-stderr sh -c "$(man_example orch-write.1 3)"
	assert_success
	[ "$(jq -c '[.cache, (.files | map(.reason) | unique)]' <<< "$output")" = '["miss",["nochange"]]' ]
	PATH=$PWD/stub:$PATH run --separate-stderr sh -c "$(man_example orch-write.1 3)"
	[ "$(jq -r .cache <<< "$output")" = hit ]
}

@test "modes: a new file follows the umask; a replaced one keeps its bits" {
	mkdir -p runs/u/outputs
	export ORCH_RUN_DIR=$PWD/runs/u
	(umask 077 && printf '%s\n' '{"path":"a.txt","content":"one"}' | orch-write)
	run stat -c %a runs/u/outputs/a.txt
	assert_output 600
	chmod 640 runs/u/outputs/a.txt
	printf '%s\n' '{"path":"a.txt","content":"two","mode":"overwrite"}' | orch-write
	run stat -c %a runs/u/outputs/a.txt
	assert_output 640
	(umask 022 && printf '%s\n' '{"path":"b.txt","content":"x","mode":"create_new"}' | orch-write)
	run stat -c %a runs/u/outputs/b.txt
	assert_output 644
}

@test "files: true and an answer that names no file: a files.none warning, still a success" {
	printf '%s\n' '{"job_id":"j","step":"coder","attempt":1,"spec":{"id":"coder","files":true}}' > in1.json
	printf 'No code here.\n\n```\nunnamed\n```\n' > plain.md
	run --separate-stderr orch-write --input in1.json --result < plain.md
	assert_success
	[ "$(jq -c .files <<< "$output")" = '[]' ]
	run jq -c 'select(.type == "files.none") | [.level, .step, .data.blocks, .data.required]' runs/j/events.jsonl
	assert_output '["WARN","builder",1,false]'
	# an answer with a named file: no warning
	run --separate-stderr orch-write --input in1.json --result < "$FX/headings.md"
	assert_success
	[ "$(grep -c files.none runs/j/events.jsonl)" = 1 ]
	# files: false: nothing was asked, nothing to warn of
	sed 's/"files":true/"files":false/' in1.json > in0.json
	run --separate-stderr orch-write --input in0.json --result < plain.md
	[ "$(grep -c files.none runs/j/events.jsonl)" = 1 ]
}

@test "files: required and an answer that names no file: exit 75 (worth a retry), kind no_files on stdout, nothing written" {
	printf '%s\n' '{"job_id":"j","step":"coder","attempt":1,"spec":{"id":"coder","files":"required"}}' > req.json
	printf 'No code here.\n' > plain.md
	run --separate-stderr orch-write --input req.json --result < plain.md
	assert_failure 75
	[ "$(jq -c '.failed.kind' <<< "$output")" = '"no_files"' ]
	[ "$(wc -l <<< "$output")" = 1 ]
	[[ $stderr == *"orch-write: the answer names no file, and the step has files: required"* ]]
	run jq -c 'select(.type == "files.none") | [.level, .data.required]' runs/j/events.jsonl
	assert_output '["WARN",true]'
	# required and named files: written as with true
	run --separate-stderr orch-write --input req.json --result < "$FX/headings.md"
	assert_success
	[ "$(jq -c '.files | length' <<< "$output")" = 2 ]
	# --no-files wins over required
	run --separate-stderr orch-write --input req.json --no-files --result < plain.md
	assert_success
}
