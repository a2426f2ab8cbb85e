# tests/fake.bash: loaded by the tests that talk to a provider (50-call,
# 51-providers, 25-report...):
# the fake provider (tests/fakeprovider) on a free port, every provider
# variable pointing at it, and request records to send it.
KEY_OPENAI="sk-test-0penai-SECRET-7f3a9c"
KEY_ANTHROPIC="sk-ant-test-SECRET-51be02"

setup() {
	orch_setup
	export NO_PROXY=127.0.0.1,localhost no_proxy=127.0.0.1,localhost
	unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy
	unset ORCH_PRICES  # prices from the shipped table only
}

teardown() {
	if [ -f fake.pid ]; then
		kill "$(cat fake.pid)" 2>/dev/null || true
	fi
}

# Start the fake provider on a free port; point every provider at it.
fake_start() {
	"$ORCH_SRC/tests/fakeprovider" --portfile port --log reqs.jsonl "$@" 3>&- &
	echo $! > fake.pid
	for _ in $(seq 100); do
		[ -s port ] && break
		sleep 0.05
	done
	PORT=$(cat port)
	export OLLAMA_HOST="127.0.0.1:$PORT"
	export OPENAI_BASE_URL="http://127.0.0.1:$PORT/v1"
	export ANTHROPIC_BASE_URL="http://127.0.0.1:$PORT"
	export OPENAI_API_KEY="$KEY_OPENAI" ANTHROPIC_API_KEY="$KEY_ANTHROPIC"
}

# A request record for provider $1 and model $2 asking "$3".
req() {
	jq -cn --arg p "$1" --arg m "$2" --arg q "${3:-hello}" \
		'{provider:$p, model:$m, messages:[{role:"system",content:"Be brief."},{role:"user",content:$q}], step:"s1"}'
}

nreqs() { [ -f reqs.jsonl ] && wc -l < reqs.jsonl | tr -d ' ' || echo 0; }

# call_fails P M STATUS STDERR: a request to provider P with model M ends
# with exit STATUS and the one line STDERR.
call_fails() {
	req "$1" "$2" > r.json
	run --separate-stderr orch-call --backoff 0.01 r.json
	[ "$status" -eq "$3" ]
	assert_equal "$stderr" "$4"
}
