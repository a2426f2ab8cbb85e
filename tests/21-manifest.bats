#!/usr/bin/env bats
# manifest.json (lib/manifest.c): the fold of the events, byte for byte as
# a jv object would hold it, though steps are kept as C records: a key set
# again keeps its place, a deleted one set again goes last, a step first
# named by llm.response has provider_calls first; files.paths once each.
load helper

setup() {
	orch_setup
	mkdir -p runs/demo
}

@test "manifest: keys in the order the events set them; paths counted once; a resumed start keeps the steps" {
	cat > runs/demo/events.jsonl <<'EVENTS'
{"ts":"2026-01-01T00:00:00.000Z","level":"INFO","job_id":"demo","type":"job.started","data":{"project":"demo","task":"t","provider":"echo","resume":false,"steps":4}}
{"ts":"2026-01-01T00:00:01.000Z","level":"INFO","job_id":"demo","type":"llm.response","step":"a","data":{"tokens":{"prompt":1,"completion":2},"success":true,"duration_s":0.5}}
{"ts":"2026-01-01T00:00:02.000Z","level":"INFO","job_id":"demo","type":"step.started","step":"a","data":{"attempt":1}}
{"ts":"2026-01-01T00:00:03.000Z","level":"INFO","job_id":"demo","type":"step.succeeded","step":"a","data":{"duration_s":1.5}}
{"ts":"2026-01-01T00:00:04.000Z","level":"INFO","job_id":"demo","type":"step.skipped","step":"b","data":{"reason":"condition"}}
{"ts":"2026-01-01T00:00:05.000Z","level":"INFO","job_id":"demo","type":"step.started","step":"b"}
{"ts":"2026-01-01T00:00:06.000Z","level":"WARN","job_id":"demo","type":"step.failed","step":"b","data":{"kind":"exit","message":"exit 75","will_retry":true,"duration_s":0.25}}
{"ts":"2026-01-01T00:00:07.000Z","level":"INFO","job_id":"demo","type":"step.started","step":"b","data":{"attempt":2}}
{"ts":"2026-01-01T00:00:08.000Z","level":"ERROR","job_id":"demo","type":"step.failed","step":"b","data":{"kind":"timeout","message":"timed out \"b\"","reason":"slow"}}
{"ts":"2026-01-01T00:00:09.000Z","level":"INFO","job_id":"demo","type":"step.skipped","step":"c","data":{"reason":"upstream_failed"}}
{"ts":"2026-01-01T00:00:10.000Z","level":"INFO","job_id":"demo","type":"file.written","step":"a","data":{"path":"x.py","wrote":true}}
{"ts":"2026-01-01T00:00:11.000Z","level":"INFO","job_id":"demo","type":"file.written","step":"a","data":{"path":"y.py","wrote":false}}
{"ts":"2026-01-01T00:00:12.000Z","level":"INFO","job_id":"demo","type":"file.written","step":"b","data":{"path":"x.py","wrote":true}}
not an event
{"ts":"2026-01-01T00:00:13.000Z","level":"ERROR","job_id":"demo","type":"job.failed","data":{"duration_s":13,"error":"step b failed","artifacts":1}}
{"ts":"2026-01-01T00:00:14.000Z","level":"INFO","job_id":"demo","type":"job.started","data":{"resume":true,"steps":4}}
{"ts":"2026-01-01T00:00:15.000Z","level":"INFO","job_id":"demo","type":"step.started","step":"b","data":{"attempt":3}}
{"ts":"2026-01-01T00:00:16.000Z","level":"INFO","job_id":"demo","type":"step.retrying","step":"d"}
EVENTS
	run orch-events --run runs/demo manifest
	assert_success
	assert_output 'orch-events: runs/demo/events.jsonl:14: not an event, skipped'
	run sed 's/,"updated":"[^"]*"//' runs/demo/manifest.json
	assert_output '{"job_id":"demo","status":"running","project":"demo","task":"t","provider":"echo","started":"2026-01-01T00:00:14.000Z","ended":null,"duration_s":null,"error":null,"steps_total":4,"steps":{"a":{"provider_calls":1,"status":"succeeded","started":"2026-01-01T00:00:02.000Z","attempts":1,"ended":"2026-01-01T00:00:03.000Z","duration_s":1.5,"artifact":"artifacts/a.json"},"b":{"status":"running","attempts":3,"provider_calls":0,"ended":"2026-01-01T00:00:08.000Z","started":"2026-01-01T00:00:15.000Z","duration_s":0.25,"error_kind":"timeout"},"c":{"status":"skipped","attempts":0,"provider_calls":0,"ended":"2026-01-01T00:00:09.000Z","reason":"upstream_failed"},"d":{"status":"retrying","attempts":0,"provider_calls":0}},"llm":{"calls":1,"failures":0,"prompt_tokens":1,"completion_tokens":2,"duration_s":0.5},"cache":{"hits":0,"misses":0,"hit_rate":0},"files":{"written":2,"unchanged":1,"paths":["x.py","y.py"]},"events":17,"artifacts":1}'
	run sh -c 'orch-events --run runs/demo stats --json 2>/dev/null | jq -c "del(.updated, .cost)"'
	assert_output "$(jq -c 'del(.updated)' runs/demo/manifest.json)"
}

@test "manifest: a fresh job.started forgets the steps, files and event count before it" {
	printf '%s\n' '{"ts":"2026-01-01T00:00:00.000Z","level":"INFO","job_id":"demo","type":"step.started","step":"old","data":{"attempt":1}}' \
		'{"ts":"2026-01-01T00:00:01.000Z","level":"INFO","job_id":"demo","type":"file.written","step":"old","data":{"path":"x.py"}}' \
		'{"ts":"2026-01-01T00:00:02.000Z","level":"INFO","job_id":"demo","type":"job.started","data":{"steps":1}}' \
		'{"ts":"2026-01-01T00:00:03.000Z","level":"INFO","job_id":"demo","type":"file.written","step":"new","data":{"path":"x.py","wrote":false}}' > runs/demo/events.jsonl
	run orch-events --run runs/demo manifest
	assert_success
	run jq -c '[(.steps | keys), .files, .events]' runs/demo/manifest.json
	assert_output '[[],{"written":0,"unchanged":1,"paths":["x.py"]},2]'
}

@test "manifest: orch-sched's, folded from its own events as it wrote them, is what the log derives" {
	cat > j.yaml <<'SPEC'
job: j
task: t
provider: {name: echo}
steps:
  - id: s
    foreach: "[range(8)]"
    files: true
    prompt: "Here:\n```out/{{ .key }}.txt\nitem {{ .item }}\n```\n"
  - id: flaky
    retries: 1
    run: "if [ -e once ]; then echo ok; else touch once; exit 75; fi"
  - id: talk
    run: "orch-events emit note --data '{\"x\":1}'; orch-events emit llm.response --data '{\"tokens\":{\"prompt\":3,\"completion\":4},\"success\":true,\"duration_s\":0.25}'"
  - id: bad
    needs: [flaky]
    run: "exit 3"
  - id: after
    needs: [bad]
    run: "true"
  - id: many
    foreach: "[range(700)]"
    run: "true"
SPEC
	# many: more of its own events between two writes than orch-sched
	# keeps for the fold (512), so some are folded as they come.
	# derived SAVED: the manifest orch-events rebuilds from the log, beside
	# the one orch-sched wrote (both without their "updated" time)
	derived() {
		rm -rf copy && mkdir copy && cp -r runs/j copy/j
		orch-events --run copy/j manifest
		diff <(jq -c 'del(.updated)' "$1") <(jq -c 'del(.updated)' copy/j/manifest.json)
	}
	run orch run j.yaml -j 3 -k
	assert_failure 1
	cp runs/j/manifest.json first.json
	derived first.json
	[ "$(jq -r '.steps["s[7]"].status, .steps.flaky.attempts, .steps.after.status, .llm.calls, .steps["many[699]"].status' first.json | tr '\n' ' ')" = "succeeded 2 skipped 9 succeeded " ]
	run orch run j.yaml -j 3 --resume
	assert_failure 1
	derived runs/j/manifest.json
	[ "$(jq -r '.events' runs/j/manifest.json)" -gt "$(jq -r '.events' first.json)" ]
}

@test "manifest: orch-events reads manifest.json when it folded the whole log, and folds the log again when it did not" {
	printf '%s\n' 'job: f' 'task: t' 'provider: {name: echo}' 'steps:' \
		'  - {id: s, foreach: "[1, 2, 3]", prompt: "x {{ .item }}"}' '  - {id: bad, run: "exit 3"}' > f.yaml
	run orch run f.yaml -k
	assert_failure 1
	# the same answers from the manifest as from the log (status without
	# its AGE, which may tick between the two)
	answers() {
		for c in stats failed completed cost; do
			orch-events --run runs/f $c
		done
		orch-events --run runs/f status | cut -f 1,3,4
	}
	answers > read.txt
	mv runs/f/manifest.json kept.json
	answers | diff read.txt -
	# a manifest whose count of events is the log's count of lines is read,
	# not rebuilt: an edit to it shows ...
	jq -c '.status = "edited"' kept.json > runs/f/manifest.json
	run orch-events --run runs/f status
	assert_output --regexp '^edited'
	# ... until one more line is in the log (or a torn one), then the log is
	# folded again
	printf '{"torn":' >> runs/f/events.jsonl
	run orch-events --run runs/f status
	assert_output --regexp '^edited'  # not a whole line yet: nothing new
	printf '\n' >> runs/f/events.jsonl
	run --separate-stderr orch-events --run runs/f status
	assert_output --regexp '^failed'
	jq -c '.status = "edited"' kept.json > runs/f/manifest.json
	orch-events --run runs/f emit note
	run --separate-stderr orch-events --run runs/f status
	assert_output --regexp '^failed'
}
