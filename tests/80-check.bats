#!/usr/bin/env bats
# orch-check and lib/schema.c: the official JSON Schema Test Suite (Debian's
# json-schema-test-suite, draft 7), then the tool's lines, records and exit
# codes, and its man page's examples.
load helper

F="$BATS_TEST_DIRNAME/fixtures/check"
SUITE=/usr/share/json-schema-test-suite/tests/draft7

# Left out on purpose, each with why (FILE, or FILE:group description):
#  - refRemote.json, and the groups below that $ref a URL (the draft 7
#    meta-schema included): references are local only, nothing is fetched.
#  - "Recursive references between schemas": resolves "node" against $id;
#    $id is an annotation here, never a base for references.
#  - "escaped pointer ref": its refs point to members such as "tilda~field"
#    that are no keyword; unknown keywords are refused by design.
#  - "ref overrides any sibling keywords": draft 7 ignores $ref's siblings,
#    draft 2020-12 (which orch follows) applies them.
#  - dependencies.json: draft 7's keyword, split in 2020-12 into
#    dependentRequired and dependentSchemas; none of them is supported.
#  - optional/ (format, bignum, ECMAScript regex details): optional by the
#    suite's own terms; format is an annotation here.
SKIP='refRemote.json
dependencies.json
definitions.json:valid definition
definitions.json:invalid definition
ref.json:remote ref, containing refs itself
ref.json:Recursive references between schemas
ref.json:escaped pointer ref
ref.json:ref overrides any sibling keywords'

@test "check: every case of the JSON Schema Test Suite (draft 7) for the supported keywords passes" {
	[ -d "$SUITE" ] || fail "no $SUITE: run scripts/deps (package json-schema-test-suite)"
	# shellcheck disable=SC2046
	run env SKIP="$SKIP" "$F/suite.sh" "$SUITE" $(cd "$SUITE" && echo *.json)
	assert_success
	echo "# schema suite (draft 7): ${lines[-1]}" >&3
	[ "${#lines[@]}" -eq 1 ]  # no FAIL line
	[[ ${lines[0]} =~ ^([0-9]+)/([0-9]+)\ cases ]]
	[ "${BASH_REMATCH[1]}" -eq "${BASH_REMATCH[2]}" ] && [ "${BASH_REMATCH[1]}" -ge 350 ]
}

@test "check: one line per error, FILE:RECORD: POINTER: message; exit 1 on any invalid record, 0 when all are valid" {
	printf '{"defects":[]}\n' > good.ndjson
	run orch-check --schema "$F/defects.json" good.ndjson good.ndjson
	assert_success
	assert_output ''
	cp "$F/answers.ndjson" .
	run -1 orch-check --schema "$F/defects.json" good.ndjson answers.ndjson
	assert_output "$(printf '%s\n' \
		'answers.ndjson:3: /defects/0/line: must be integer, not string' \
		'answers.ndjson:3: /defects/0/severity: must be one of ["low","medium","high"]' \
		'answers.ndjson:4: /defect: is not allowed (not one of the properties)' \
		'answers.ndjson:4: (root): "defects" is required')"
	run -1 orch-check --schema "$F/defects.json" < answers.ndjson
	assert_line --index 0 '-:3: /defects/0/line: must be integer, not string'
}

@test "check: --json prints each error as a record; --quiet prints nothing and stops at the first" {
	run -1 orch-check --json --schema "$F/defects.json" "$F/answers.ndjson"
	assert_line --index 0 "{\"file\":\"$F/answers.ndjson\",\"record\":3,\"path\":\"/defects/0/line\",\"keyword\":\"type\",\"message\":\"must be integer, not string\"}"
	assert_line --index 3 "{\"file\":\"$F/answers.ndjson\",\"record\":4,\"path\":\"\",\"keyword\":\"required\",\"message\":\"\\\"defects\\\" is required\"}"
	[ "${#lines[@]}" -eq 4 ]
	run -1 orch-check --quiet --schema "$F/defects.json" "$F/answers.ndjson" no-such-file
	assert_output ''
	run -2 orch-check --quiet --json --schema "$F/defects.json" "$F/answers.ndjson"
}

@test "check: an invalid schema is refused with exit 2 and the JSON Pointer of the bad keyword, before any record is read" {
	echo '{"type":"object","properties":{"a":{"type":"strin"}}}' > s.json
	run -2 orch-check --schema s.json /dev/null
	assert_output 'orch-check: s.json: /properties/a/type: "strin" is not a type (null, boolean, object, array, number, string, integer)'
	echo '{"items":{"minItems":-1}}' > s.json
	run -2 orch-check --schema s.json /dev/null
	assert_output 'orch-check: s.json: /items/minItems: must be a non-negative integer'
	echo '{"pattern":"a("}' > s.json
	run -2 orch-check --schema s.json /dev/null
	assert_output --regexp '^orch-check: s.json: /pattern: invalid regular expression: '
	echo '{"$ref":"#/$defs/nothing"}' > s.json
	run -2 orch-check --schema s.json /dev/null
	assert_output 'orch-check: s.json: (root): $ref "#/$defs/nothing" points to nothing'
	echo '{"$ref":"other.json#/a"}' > s.json
	run -2 orch-check --schema s.json /dev/null
	assert_output --partial 's.json: /$ref: only local references are supported'
	echo '[1]' > s.json
	run -2 orch-check --schema s.json /dev/null
	assert_output 'orch-check: s.json: (root): a schema must be an object, true or false'
	echo '{"type":' > s.json
	run -2 orch-check --schema s.json /dev/null
	assert_output --regexp '^orch-check: s.json:'
}

@test "check: an unknown keyword is refused, not ignored, wherever it is (a typo checks nothing)" {
	echo '{"properties":{"a":{"items":{"requried":["x"]}}}}' > s.json
	run -2 orch-check --schema s.json /dev/null
	assert_output 'orch-check: s.json: /properties/a/items/requried: unknown keyword "requried"'
	echo '{"$defs":{"a/b~c":{"minimum":"1"}}}' > s.json
	run -2 orch-check --schema s.json /dev/null
	assert_output 'orch-check: s.json: /$defs/a~1b~0c/minimum: must be a number'
	echo '{"properties":{"a":{"$id":"x"}}}' > s.json
	run -2 orch-check --schema s.json /dev/null
	assert_output 'orch-check: s.json: /properties/a/$id: only supported at the root of the schema'
	# annotations are accepted
	echo '{"$schema":"https://json-schema.org/draft/2020-12/schema","$id":"x","title":"t","description":"d","$comment":"c","properties":{"a":{"format":"email","default":1,"examples":[2]}}}' > s.json
	run orch-check --schema s.json <<< '{"a":"not an email"}'
	assert_success
}

@test "check: JSON equality (1 == 1.0, key order), lengths in code points, refs by pointer, a \$ref loop cut short" {
	echo '{"enum":[1,{"a":1,"b":[2]}],"not":{"const":"x"}}' > s.json
	run orch-check --schema s.json <<< '1.0 {"b":[2.0],"a":1}'
	assert_success
	run -1 orch-check --schema s.json <<< '{"a":1} "x"'
	assert_output "$(printf '%s\n' '-:1: (root): must be one of [1,{"a":1,"b":[2]}]' \
		'-:2: (root): must be one of [1,{"a":1,"b":[2]}]' '-:2: (root): must not match the schema of not')"
	echo '{"minLength":3,"maxLength":3}' > s.json
	run orch-check --schema s.json <<< '"été" "日本語"'
	assert_success
	echo '{"$defs":{"t~/%":{"type":"integer"}},"items":{"$ref":"#/$defs/t~0~1%25"}}' > s.json
	run -1 orch-check --schema s.json <<< '[1,"2"]'
	assert_output '-:1: /1: must be integer, not string'
	echo '{"$defs":{"a":{"$ref":"#/$defs/b"},"b":{"allOf":[{"$ref":"#/$defs/a"}]}},"$ref":"#/$defs/a"}' > s.json
	run -1 orch-check --schema s.json <<< '1'
	assert_output '-:1: (root): more than 64 $refs in a row without reaching a value'
	echo '{"properties":{"kids":{"items":{"$ref":"#"}}},"required":["n"]}' > s.json
	run -1 orch-check --schema s.json <<< '{"n":1,"kids":[{"n":2,"kids":[{"kids":[]}]}]}'
	assert_output '-:1: /kids/0/kids/0: "n" is required'
}

@test "check: bad usage, input that is not JSON, and a file that cannot be opened exit 2" {
	run -2 orch-check /dev/null
	assert_output 'orch-check: no schema: give --schema FILE'
	run -2 orch-check --schema no-such.json /dev/null
	assert_output --partial 'cannot open no-such.json'
	echo true > s.json
	run -2 orch-check --schema s.json <<< '{"a": 1} {"a":'
	assert_output --regexp '^orch-check: -:1:'
	run -2 orch-check --schema s.json no-such.ndjson
	run orch-check --version
	assert_output --regexp '^orch-check [0-9]'
	run orch-check --help
	assert_output --partial 'usage: orch-check --schema FILE'
	echo false > s.json
	run -1 orch-check --schema s.json <<< '0'
	assert_output '-:1: (root): no value is allowed here (the schema is false)'
}

@test "check: the man page's examples run and print what the page shows" {
	cp "$F/defects.json" "$F/answers.ndjson" "$F/typo.json" .
	for n in 1 2 3 4; do
		cmd=$(man_example orch-check.1 $n)
		[ -n "$cmd" ]
		run sh -c "$cmd 2>&1"
		assert_output "$(man_expected orch-check.1 $n)"
	done
}
