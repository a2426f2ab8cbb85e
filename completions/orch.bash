# completions/orch.bash: bash completion for orch(1). Completes the
# subcommands, each one's options, file names for `orch why`, job ids (the folders under
# ${ORCH_RUNS:-runs}), spec files for `orch run`, provider names, and after
# --step the step ids of the job named before it: the step column of
# `orch-plan --waves` on the run's inputs/spec.yaml, else of `orch-events
# stats`. Only those tools' plain-text tables are read, never JSON. The tools
# are the ones next to the orch being completed (build/bin/orch), else on
# PATH. Installed as $(PREFIX)/share/bash-completion/completions/orch.

# _orch_tool ORCH NAME: the orch tool NAME beside ORCH, else NAME.
_orch_tool() {
	case $1 in
	*/*) [ -x "${1%/*}/$2" ] && { printf '%s\n' "${1%/*}/$2"; return; } ;;
	esac
	printf '%s\n' "$2"
}

# _orch_jobs: the job ids, one per line.
_orch_jobs() {
	local d
	for d in "${ORCH_RUNS:-runs}"/*/; do
		[ -d "$d" ] || continue
		d=${d%/}
		printf '%s\n' "${d##*/}"
	done
}

# _orch_steps ORCH JOB: the step ids of JOB (an id or a run folder), one per
# line: the plan's steps, pending ones included, else those in its events.
_orch_steps() {
	local dir=$2 steps=
	case $dir in */*) ;; *) dir=${ORCH_RUNS:-runs}/$dir ;; esac
	[ -f "$dir/inputs/spec.yaml" ] &&
		steps=$("$(_orch_tool "$1" orch-plan)" --waves "$dir/inputs/spec.yaml" 2>/dev/null |
			awk 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "step") c = i; next } c { print $c }')
	[ -n "$steps" ] || [ ! -d "$dir" ] ||
		steps=$("$(_orch_tool "$1" orch-events)" --run "$dir" stats 2>/dev/null |
			awk '$1 == "step" && $2 == "status" { on = 1; next }
			     on && (NF == 0 || $1 ~ /:$/) { exit }
			     on && !($2 == "more" && $3 ~ /^steps?$/) { sub(/\[\*\]$/, "", $1); print $1 }')
	printf '%s\n' "$steps"
}

# _orch_specs CUR: the spec files (*.yaml, *.yml, *.json) and folders.
_orch_specs() {
	local f
	compopt -o filenames 2>/dev/null
	while IFS= read -r f; do
		[ -d "$f" ] && { COMPREPLY+=("$f"); continue; }
		case $f in *.yaml | *.yml | *.json) COMPREPLY+=("$f") ;; esac
	done < <(compgen -f -- "$1")
}

# _orch_add WORDS CUR: add the WORDS (blank-separated) that begin with CUR.
_orch_add() {
	local IFS=$' \t\n'
	mapfile -t -O "${#COMPREPLY[@]}" COMPREPLY < <(compgen -W "$1" -- "$2")
}

_orch() {
	local cword=$COMP_CWORD cur=${COMP_WORDS[COMP_CWORD]}
	local prev=${COMP_WORDS[COMP_CWORD-1]-} orch=${COMP_WORDS[0]} sub=${COMP_WORDS[1]-}
	COMPREPLY=()
	# --opt=value is split at the '=' (COMP_WORDBREAKS)
	[ "$cur" = = ] && { prev=${COMP_WORDS[cword-1]}; cur=; }
	[ "$prev" = = ] && prev=${COMP_WORDS[cword-2]}
	if [ "$cword" -eq 1 ]; then
		_orch_add "run show tail out ls cancel config step why --help --version" "$cur"
		return
	fi
	case $prev in
	--provider) _orch_add "ollama openai anthropic exec echo" "$cur"; return ;;
	--level) _orch_add "INFO WARN ERROR" "$cur"; return ;;
	--step) [ "$cword" -gt 3 ] && _orch_add "$(_orch_steps "$orch" "${COMP_WORDS[2]}")" "$cur"; return ;;
	--model | -j | --jobs | --type | --since | --jq | --budget | --budget-tokens) return ;;
	esac
	case $sub in
	run)
		case $cur in
		-*) _orch_add "--resume -n --dry-run -j --jobs -k --keep-going --wait --until -i --input --provider --model --budget --budget-tokens" "$cur" ;;
		*) _orch_specs "$cur" ;;
		esac ;;
	show | tail | cancel | out)
		if [ "$cword" -eq 2 ]; then
			_orch_add "$(_orch_jobs)" "$cur"
		elif [ "$sub" = out ]; then
			[ "$cword" -eq 3 ] && _orch_add "$(_orch_steps "$orch" "${COMP_WORDS[2]}")" "$cur"
			[ "$cword" -gt 3 ] && _orch_add "--json" "$cur"
		elif [ "$sub" = show ]; then
			_orch_add "--json --step" "$cur"
		elif [ "$sub" = tail ]; then
			_orch_add "-f --forever --json --text --type --step --level --since --jq" "$cur"
		fi ;;
	step) _orch_add "--extract --no-extract --provider --model" "$cur" ;;
	why)  # a file of a run's outputs/
		case $cur in
		-*) _orch_add "--json" "$cur" ;;
		*) compopt -o filenames 2>/dev/null; mapfile -t -O "${#COMPREPLY[@]}" COMPREPLY < <(compgen -f -- "$cur") ;;
		esac ;;
	esac
}
complete -F _orch orch
