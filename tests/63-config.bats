#!/usr/bin/env bats
# The user's config file, $XDG_CONFIG_HOME/orch/config.yaml (issue 12):
# the default provider and model, model aliases, where keys come from
# (read at call time, never stored), the shared cache, and `orch config`.
# HOME and XDG_CONFIG_HOME are the test's folder; the provider is
# tests/fakeprovider.
load helper
load fake

KEY_FILE="sk-cfg-FILEKEY-9d1e4b"
KEY_CMD="sk-ant-CMDKEY-77c0aa"

eval "fake_$(declare -f setup)"  # fake.bash's setup, as fake_setup
setup() {
	fake_setup
	export XDG_CONFIG_HOME="$BATS_TEST_TMPDIR/xdg"
	mkdir -p "$XDG_CONFIG_HOME/orch"
}

# config LINE...: the config file, one YAML line an argument.
config() { printf '%s\n' "$@" > "$XDG_CONFIG_HOME/orch/config.yaml"; }

# spec [PROVIDER_LINE]: a one-step job "cfg" asking "hello", with that
# provider line (none by default).
spec() {
	printf 'job: cfg\n%s\nsteps:\n  - id: ask\n    prompt: hello\n' "${1:-}" > spec.yaml
}

# a key file holding $KEY_FILE, with mode $1
key_file() {
	mkdir -p "$HOME/.secrets"
	printf '%s\n' "$KEY_FILE" > "$HOME/.secrets/openai"
	chmod "$1" "$HOME/.secrets/openai"
}

# no file under the run folder (nor the cache) holds the key $1
key_nowhere() {
	run grep -rlF -- "$1" "$ORCH_RUNS"
	assert_output ""
	[ ! -d "$HOME/.cache" ] || ! grep -rqF -- "$1" "$HOME/.cache"
}

@test "the config's provider and model are a spec's with none, under orch run" {
	fake_start
	config 'provider: {name: ollama, model: cfgmodel}'
	spec
	run orch run spec.yaml
	assert_success
	run jq -r '"\(.path) \(.body.model)"' reqs.jsonl
	assert_output "/api/chat cfgmodel"
	run jq -r 'select(.type == "llm.request") | "\(.data.provider) \(.data.model)"' "$ORCH_RUNS/cfg/events.jsonl"
	assert_output "ollama cfgmodel"
	# the spec, the environment and the command line come first
	ORCH_MODEL=envmodel run orch-call --render <<< '{"messages":[{"role":"user","content":"x"}]}'
	assert_output --partial '"provider":"ollama","model":"envmodel"'
	run orch-call --render --provider echo <<< '{"messages":[{"role":"user","content":"x"}]}'
	assert_output --partial '"provider":"echo","model":"echo"'
}

@test "a spec naming the config's provider without a model gets the config's model" {
	fake_start
	config 'provider: ollama:cfgmodel'
	spec 'provider: {name: ollama}'
	run orch run spec.yaml
	assert_success
	run jq -r .body.model reqs.jsonl
	assert_output cfgmodel
	# without the config, orch run refuses it before it starts
	rm "$XDG_CONFIG_HOME/orch/config.yaml"
	rm -rf "$ORCH_RUNS"
	run orch run spec.yaml
	assert_failure 2
	assert_output --partial "provider ollama needs a model"
	[ ! -e "$ORCH_RUNS" ]
}

@test "a model alias names the model, and the provider when it says one" {
	fake_start
	config 'provider: {name: ollama, model: llama3}' \
		'aliases: {smart: "openai:gpt-smart", tiny: tinymodel}'
	spec
	run orch run spec.yaml --model smart
	assert_success
	run jq -r '"\(.path) \(.body.model)"' reqs.jsonl
	assert_output "/v1/chat/completions gpt-smart"
	# in a spec: an alias without a provider keeps the spec's
	rm reqs.jsonl
	spec 'provider: {name: ollama, model: tiny}'
	run orch run spec.yaml
	assert_success
	run jq -r '"\(.path) \(.body.model)"' reqs.jsonl
	assert_output "/api/chat tinymodel"
}

@test "api_key_file: the key is read when the call is made, sent, and written nowhere" {
	fake_start
	unset OPENAI_API_KEY
	key_file 600
	config 'keys:' '  openai: {api_key_file: ~/.secrets/openai}'
	spec 'provider: {name: openai, model: gpt-x}'
	run orch run spec.yaml
	assert_success
	run jq -r '.headers.authorization' reqs.jsonl
	assert_output "Bearer $KEY_FILE"
	key_nowhere "$KEY_FILE"
	# a provider that echoes the key in its error: the message is redacted
	rm -rf "$ORCH_RUNS" reqs.jsonl
	spec 'provider: {name: openai, model: echokey}'
	run orch run spec.yaml
	assert_failure 1
	refute_output --partial "$KEY_FILE"
	assert_output --partial "[REDACTED]"
	key_nowhere "$KEY_FILE"
	# $OPENAI_API_KEY comes first: the file is not read (it would be refused)
	rm reqs.jsonl
	chmod 644 "$HOME/.secrets/openai"
	OPENAI_API_KEY="$KEY_OPENAI" run orch-call <<< "$(req openai gpt-x)"
	assert_success
	run jq -r '.headers.authorization' reqs.jsonl
	assert_output "Bearer $KEY_OPENAI"
}

@test "api_key_file open to group or others is refused, and nothing is sent" {
	fake_start
	unset OPENAI_API_KEY
	key_file 644
	config 'keys:' '  openai: {api_key_file: ~/.secrets/openai}'
	run --separate-stderr orch-call <<< "$(req openai gpt-x)"
	assert_failure 1
	assert_equal "$stderr" "orch-call: step s1: openai: api_key_file $HOME/.secrets/openai: open to group or others (mode 0644); chmod 600 it"
	[ "$(nreqs)" = 0 ]
}

@test "api_key_cmd: the command's first line is the key; its failure is a clear error" {
	fake_start
	unset ANTHROPIC_API_KEY
	config 'keys:' "  anthropic: {api_key_cmd: \"touch ran; printf '%s\\\\nsecond line\\\\n' $KEY_CMD\"}"
	spec 'provider: {name: anthropic, model: claude-x}'
	run orch run spec.yaml
	assert_success
	[ -e ran ]
	run jq -r '.headers["x-api-key"]' reqs.jsonl
	assert_output "$KEY_CMD"
	key_nowhere "$KEY_CMD"
	# the command fails: said so, and no request goes out
	rm reqs.jsonl
	config 'keys:' '  anthropic: {api_key_cmd: "echo no such secret >&2; exit 3"}'
	run --separate-stderr orch-call <<< "$(req anthropic claude-x)"
	assert_failure 1
	assert_equal "$stderr" $'no such secret\norch-call: step s1: anthropic: api_key_cmd \'echo no such secret >&2; exit 3\': exited with 3'
	[ "$(nreqs)" = 0 ]
}

@test "an invalid config is refused with file:line:col, exit 2, nothing run" {
	config 'provider: {name: echo}' 'bogus: 1' 'keys:' '  openai: {api_key_fil: x}'
	F="$XDG_CONFIG_HOME/orch/config.yaml"
	run --separate-stderr orch config
	assert_failure 2
	assert_equal "$stderr" "orch-call: $F:2:1: unknown key 'bogus' (provider, aliases, keys, cache, prices)
orch-call: $F:4:12: keys.openai: unknown key 'api_key_fil' (api_key_file, api_key_cmd)"
	spec
	run orch run spec.yaml
	assert_failure 2
	assert_output --partial "$F:2:1: unknown key 'bogus'"
	[ ! -e "$ORCH_RUNS" ]
	config 'aliases: [a, b]'
	run orch-call --render <<< '{"messages":[{"role":"user","content":"x"}]}'
	assert_failure 2
	assert_output "orch-call: $F:1:10: aliases: expected a mapping"
}

@test "orch config prints the effective settings, and never a key" {
	config 'provider: {name: ollama, model: llama3}' 'aliases: {fast: "ollama:tiny"}' \
		'keys:' '  anthropic: {api_key_cmd: "touch ran; echo sk-never-shown"}' 'cache: shared'
	export OPENAI_API_KEY="$KEY_OPENAI" XDG_CACHE_HOME="$BATS_TEST_TMPDIR/xc"
	run orch config
	assert_success
	assert_output "config	$XDG_CONFIG_HOME/orch/config.yaml
provider	ollama (config)
model	llama3 (config)
alias.fast	ollama:tiny
key.openai	OPENAI_API_KEY (env, set)
key.anthropic	api_key_cmd touch ran; echo sk-never-shown (config)
cache	$XDG_CACHE_HOME/orch (config)"
	refute_output --partial "$KEY_OPENAI"
	[ ! -e ran ]  # the key command is not run to print where keys come from
	# no config file: the built-in defaults
	rm "$XDG_CONFIG_HOME/orch/config.yaml"
	unset OPENAI_API_KEY
	run orch config
	assert_output "config	$XDG_CONFIG_HOME/orch/config.yaml (none)
provider	echo (built-in)
model	echo (built-in)
key.openai	none (OPENAI_API_KEY is not set)
key.anthropic	none (ANTHROPIC_API_KEY is not set)
cache	RUN/.cache (built-in)"
}

@test "cache: shared keeps the answers in \$XDG_CACHE_HOME/orch, for every run" {
	export XDG_CACHE_HOME="$BATS_TEST_TMPDIR/xc"
	config 'cache: shared'
	spec
	run orch run spec.yaml
	assert_success
	ls "$XDG_CACHE_HOME"/orch/*.json
	[ ! -d "$ORCH_RUNS/cfg/.cache" ] || [ -z "$(ls "$ORCH_RUNS/cfg/.cache")" ]
	# another run folder, the same answer: a hit
	ORCH_RUNS=$BATS_TEST_TMPDIR/other run orch run spec.yaml
	assert_success
	run jq -r 'select(.type | startswith("cache.")) | .type' "$BATS_TEST_TMPDIR/other/cfg/events.jsonl"
	assert_output cache.hit
	# $ORCH_CACHE_DIR comes first
	ORCH_CACHE_DIR=$PWD/mine run orch-cache stats
	assert_output --partial "\"dir\":\"$PWD/mine\""
	# a folder of one's own, relative to the config file's
	config 'cache: cachedir'
	run orch-cache stats
	assert_output --partial "\"dir\":\"$XDG_CONFIG_HOME/orch/cachedir\""
}
