# tests/helper.bash: loaded by every tests/NN-*.bats file.
# Each test runs in its own fresh folder ($BATS_TEST_TMPDIR) with the
# programs under test from $ORCH_BIN (default: build/bin), so the same
# files test the sanitizer build (tests/run does both).
load /usr/lib/bats/bats-support/load
load /usr/lib/bats/bats-assert/load
bats_require_minimum_version 1.5.0

ORCH_SRC=$(cd "$BATS_TEST_DIRNAME/.." && pwd)
: "${ORCH_BIN:=$ORCH_SRC/build/bin}"
export ORCH_BIN ORCH_SRC

orch_setup() {
	PATH="$ORCH_BIN:$PATH"
	cd "$BATS_TEST_TMPDIR" || return 1
	unset ORCH_RUN_DIR ORCH_JOB_ID ORCH_STEP ORCH_ATTEMPT ORCH_CACHE_DIR \
		ORCH_PROVIDER ORCH_MODEL ORCH_CODE_VERSION OPENAI_API_KEY \
		ANTHROPIC_API_KEY OPENAI_BASE_URL ANTHROPIC_BASE_URL OLLAMA_HOST \
		XDG_CONFIG_HOME XDG_CACHE_HOME  # HOME is the test's: no config file
	export ORCH_RUNS="$BATS_TEST_TMPDIR/runs"
	export HOME="$BATS_TEST_TMPDIR/home"
	mkdir -p "$HOME"
	# leaks are failures; libjq/libonig internals are not ours. For a full
	# stack through libjq (no frame pointers), add fast_unwind_on_malloc=0.
	export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:exitcode=99"
	export LSAN_OPTIONS="suppressions=$ORCH_SRC/tests/lsan.supp:print_suppressions=0"
	export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
}

setup() { orch_setup; }

# man_example PAGE N: the Nth command shown as "$ command" inside an
# .EX/.EE block of man/PAGE (the man page examples are run by the tests).
man_example() {
	awk -v n="$2" '
		/^\.EX/ { ex = 1; next }
		/^\.EE/ { ex = 0; next }
		ex && /^\\?\$ / { sub(/^\\?\$ /, ""); gsub(/\\-/, "-"); gsub(/\\e/, "\\"); if (++i == n) { print; exit } }
	' "$ORCH_SRC/man/$1"
}

# man_expected PAGE N: the output the page shows under its Nth "$ " command
# (the lines up to the next command or .EE), for comparing with the real one.
man_expected() {
	awk -v n="$2" '
		/^\.EX/ { ex = 1; next }
		/^\.EE/ { ex = 0; if (on) exit; next }
		ex && /^\\?\$ / { if (on) exit; if (++i == n) on = 1; next }
		ex && on { gsub(/\\-/, "-"); gsub(/\\e/, "\\"); gsub(/\\&/, ""); print }
	' "$ORCH_SRC/man/$1"
}

# kill9_once_b_runs PID: kill -9 the orch-sched PID (of job j, in the
# background) once step b has started and written its pid to b.pid (its
# pid may come a moment before step.started); then reap it.
kill9_once_b_runs() {
	for _ in $(seq 250); do
		[ -s b.pid ] && grep -q '"step.started","step":"b"' runs/j/events.jsonl 2>/dev/null && break
		sleep 0.02
	done
	kill -9 "$1"
	wait "$1" || true
}

# jq over a file of JSON lines, for assertions
jqf() { jq -c "$@"; }
