#!/usr/bin/env bats
# orch_emit (lib/event.c) when the disk is full: a write cut short leaves
# the log as it was, and the emitter says why and which file.
load helper

setup() {
	orch_setup
	export ORCH_RUN_DIR=$BATS_TEST_TMPDIR/runs/demo
}

teardown() {
	if [ -n "${MNT:-}" ] && mountpoint -q "$MNT"; then
		umount "$MNT"
	fi
}

# pad_to FILE SIZE: append one JSON line so that FILE is SIZE bytes long
pad_to() {
	local n=$(($2 - $(stat -c %s "$1") - 11))  # {"pad":""} and its newline
	printf '{"pad":"%s"}\n' "$(head -c "$n" /dev/zero | tr '\0' x)" >> "$1"
	[ "$(stat -c %s "$1")" -eq "$2" ]
}

# the log is whole: every line an object, the last line ended
whole() {
	[ "$(tail -c 1 "$1" | od -An -c | tr -d ' ')" = '\n' ]
	jq -e -s 'all(type == "object")' "$1" > /dev/null
}

DATA='{"needs":[],"attempt":1,"note":"a line long enough to cross the limit"}'

@test "emit: a write the file-size limit cuts short is taken back; the emitter says why and which file" {
	orch-events emit job.started
	log=$ORCH_RUN_DIR/events.jsonl
	pad_to "$log" $((8 * 1024 - 10))
	before=$(sha256sum < "$log")
	# RLIMIT_FSIZE: the write stops at 8 KiB (short), the next fails EFBIG
	run --separate-stderr bash -c 'trap "" XFSZ; ulimit -f 8; exec orch-events emit step.started --step a --data "$1"' - "$DATA"
	[ "$status" -eq 1 ]
	assert_equal "$stderr" "orch-events: cannot append to $log: File too large"
	[ "$(sha256sum < "$log")" = "$before" ]
	whole "$log"
	# the next writer, with room, appends one whole line
	orch-events emit step.started --step a --data "$DATA"
	whole "$log"
	[ "$(tail -n 1 "$log" | jq -r .step)" = a ]
	[ "$(wc -l < "$log")" -eq 3 ]
}

@test "emit: on a full file system the log keeps no torn line; the emitter says No space left on device" {
	[ "$(id -u)" -eq 0 ] || skip "mounting a small tmpfs needs root"
	MNT=$BATS_TEST_TMPDIR/full
	mkdir -p "$MNT"
	mount -t tmpfs -o size=64k tmpfs "$MNT" 2>/dev/null || { MNT=; skip "cannot mount a tmpfs here"; }
	export ORCH_RUN_DIR=$MNT/runs/demo
	orch-events emit job.started
	log=$ORCH_RUN_DIR/events.jsonl
	pad_to "$log" $((4096 - 10))  # the line to come needs a second page
	dd if=/dev/zero of="$MNT/filler" bs=4k 2>/dev/null || true  # until the disk is full
	before=$(sha256sum < "$log")
	run --separate-stderr orch-events emit step.started --step a --data "$DATA"
	[ "$status" -eq 1 ]
	assert_equal "$stderr" "orch-events: cannot append to $log: No space left on device"
	[ "$(sha256sum < "$log")" = "$before" ]
	whole "$log"
	rm "$MNT/filler"
	orch-events emit step.started --step a --data "$DATA"
	whole "$log"
	[ "$(wc -l < "$log")" -eq 3 ]
}

@test "emit: with ORCH_EVENTS_FILE in the run's logs/ (a launched step), the event goes there, one line, and not to events.jsonl" {
	mkdir -p "$ORCH_RUN_DIR/logs"
	own=$ORCH_RUN_DIR/logs/a.1.events.jsonl
	ORCH_EVENTS_FILE=$own orch-events emit llm.request --step a --data '{"n":1}'
	ORCH_EVENTS_FILE=$own orch-events emit llm.response --step a --data '{"n":2}'
	[ ! -e "$ORCH_RUN_DIR/events.jsonl" ]
	run jq -c '[.type, .step, .data.n]' "$own"
	assert_output $'["llm.request","a",1]\n["llm.response","a",2]'
	whole "$own"
	# a file anywhere else (a run started inside a step logs to its own run)
	ORCH_EVENTS_FILE=$BATS_TEST_TMPDIR/elsewhere.jsonl orch-events emit job.started
	ORCH_EVENTS_FILE=$ORCH_RUN_DIR/logs/sub/x.jsonl orch-events emit job.started
	[ ! -e "$BATS_TEST_TMPDIR/elsewhere.jsonl" ]
	[ "$(wc -l < "$ORCH_RUN_DIR/events.jsonl")" -eq 2 ]
}
