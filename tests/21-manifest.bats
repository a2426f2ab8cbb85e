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
