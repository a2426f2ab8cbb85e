#!/bin/sh
# bench/plan.sh BINDIR: orch-plan on 10,000 and 100,000 steps (a chain with
# fan-in, run: and prompt steps), wall time and peak memory, best of 3.
# Targets (issue 2): 10,000 steps < 50 ms, 100,000 < 0.5 s, < 100 MB.
set -eu
bin=${1:?usage: bench/plan.sh BINDIR}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
gen() {  # gen N: N steps; every 4th needs the two before it
	awk -v n="$1" 'BEGIN { print "job: bench"; print "steps:"
		for (i = 0; i < n; i++) {
			printf "  - id: s%d\n", i
			if (i % 10 == 0) printf "    prompt: \"step {{ .inputs.n }} of %d\"\n", n
			else printf "    run: \"echo %d\"\n", i
			if (i >= 2 && i % 4 == 0) printf "    needs: [s%d, s%d]\n", i - 1, i - 2
			else if (i >= 1) printf "    needs: [s%d]\n", i - 1
		} }'
}
best() {  # best CMD...: min wall seconds and max RSS of 3 runs
	for r in 1 2 3; do
		/usr/bin/time -f '%e %M' -o "$tmp/t" "$@" > /dev/null
		cat "$tmp/t"
	done | sort -n | head -n 1
}
printf '%-28s %10s %10s %12s\n' "what" "wall s" "peak MB" "target"
for n in 10000 100000; do
	gen $n > "$tmp/spec.yaml"
	set -- $(best "$bin/orch-plan" "$tmp/spec.yaml")
	t=$([ $n -eq 10000 ] && echo "< 0.050 s" || echo "< 0.5 s")
	printf '%-28s %10s %10.1f %12s\n' "orch-plan $n steps" "$1" "$(echo "$2 / 1024" | bc -l)" "$t"
	set -- $(best "$bin/orch-plan" --check "$tmp/spec.yaml")
	printf '%-28s %10s %10.1f %12s\n' "orch-plan --check $n" "$1" "$(echo "$2 / 1024" | bc -l)" ""
done
# wide, not long: one step of 40,000 keys over 40,000 defaults (x- keys);
# a line costs the size of the step plus that of the defaults
awk 'BEGIN { n = 40000; printf "job: wide\ndefaults: {"
	for (i = 0; i < n; i++) printf "%sx-k%d: %d", i ? ", " : "", i, i
	printf "}\nsteps:\n  - {id: a, run: x"
	for (i = 0; i < n; i += 2) printf ", x-k%d: o%d", i, i
	for (i = 0; i < n; i++) printf ", x-j%d: %d", i, i
	print "}" }' > "$tmp/wide.yaml"
set -- $(best "$bin/orch-plan" "$tmp/wide.yaml")
printf '%-28s %10s %10.1f %12s\n' "orch-plan 1 step, 100k keys" "$1" "$(echo "$2 / 1024" | bc -l)" "linear"
printf '(peer for scale: python3 yaml.safe_load of the 100,000-step spec) '
if python3 -c 'import yaml' 2>/dev/null; then
	python3 - "$tmp/spec.yaml" <<'PY'
import sys, time, yaml
t = time.time(); yaml.load(open(sys.argv[1]), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)); print("%.3f s" % (time.time() - t))
PY
else
	echo "not installed"
fi
