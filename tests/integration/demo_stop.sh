#!/usr/bin/env bash
# `make run` (tests/demo/run.sh) stopped the ways a user stops it: SIGINT to
# its whole process group (what Ctrl-C in a terminal sends), SIGTERM to the
# group, and `timeout -s INT`. Each time the summary prints (erg's final view
# and J/token per model), the script exits 0, and nothing it started is left:
# no process of its tree, none of erg's BPF programs or links, no scratch
# files. Synthetic workers (no npm, no models), load long enough that the
# signal always lands while requests flow.
set -u
. "$ERG_ROOT/tests/integration/testlib.bash"
require_bpf
OUT=${ERG_OUT:-build}
for b in erg demo/demo_worker demo/loadgen; do
	[ -x "$OUT/$b" ] || fail "$OUT/$b is not built (run make)"
done
make_tmp
run=
pids=
# a failing run leaves nothing either: its tree is in sessions of its own
trap 'rm_tmp; [ -n "$run" ] && kill -KILL -- "-$run" 2>/dev/null; for p in $pids; do kill -KILL "${p%%:*}" 2>/dev/null; done; true' EXIT

# PID:STARTTIME of every descendant of $1 (the demo puts its children in
# sessions of their own, so the group alone does not find them).
tree() {
	local todo=("$1") p c st
	while [ ${#todo[@]} -gt 0 ]; do
		p=${todo[0]}
		todo=("${todo[@]:1}")
		for c in $(cat /proc/"$p"/task/*/children 2>/dev/null); do
			st=$(awk '{ sub(/.*\) /, ""); print $20 }' "/proc/$c/stat" 2>/dev/null) || continue
			echo "$c:$st"
			todo+=("$c")
		done
	done
}
alive() { # PID:STARTTIME -> still the same process (and not a zombie)
	local st
	st=$(awk '{ sub(/.*\) /, ""); print $1, $20 }' "/proc/${1%%:*}/stat" 2>/dev/null) || return 1
	[ "${st#* }" = "${1#*:}" ] && [ "${st%% *}" != Z ]
}
# BPF program and link ids held open by PID.
bpf_ids() {
	local f
	for f in /proc/"$1"/fdinfo/*; do
		sed -n 's/^prog_id:[[:space:]]*\([0-9]*\)/prog \1/p; s/^link_id:[[:space:]]*\([0-9]*\)/link \1/p' "$f" 2>/dev/null
	done | sort -u
}

# demo NAME SIG HOW: start the demo in a group of its own, wait until erg
# has printed 3 views with requests flowing, then stop it HOW (group: kill
# -SIG -PGID; timeout: it was started under `timeout -s SIG`).
demo() {
	local name=$1 sig=$2 how=$3 out="$tmp/$1.out" rc views erg ids t0 x p
	local -a cmd=(bash "$ERG_ROOT/tests/demo/run.sh" "$OUT")
	mkdir -p "$tmp/$name.tmp"
	t0=$SECONDS
	[ "$how" = timeout ] && cmd=(timeout --preserve-status -s "$sig" "$TIMEOUT_S" "${cmd[@]}")
	# job control: the demo gets a process group of its own, and SIGINT is
	# not ignored in it (bash ignores it in a script's background commands)
	set -m
	TMPDIR="$tmp/$name.tmp" ERG_DEMO_ENGINE=synthetic ERG_DEMO_DURATION=600 ERG_DEMO_RATE=2 \
		"${cmd[@]}" >"$out" 2>&1 &
	run=$!
	set +m
	for _ in $(seq 3000); do
		views=$(grep -c '^erg serve - ' "$out")
		[ "$views" -ge 3 ] && break
		kill -0 "$run" 2>/dev/null || fail "$name: the demo ended before its third view: $(cat "$out")"
		sleep 0.1
	done
	[ "$views" -ge 3 ] || fail "$name: no third view from erg in 300 s: $(tail -n 20 "$out")"
	STARTUP_S=$((SECONDS - t0))
	grep -q '^loadgen: ' "$out" || fail "$name: no loadgen line before the views"
	pids=$(tree "$run")
	erg=$(for p in $pids; do
		[ "$(cat "/proc/${p%%:*}/comm" 2>/dev/null)" = erg ] && echo "${p%%:*}"
	done | head -n 1)
	[ -n "$erg" ] || fail "$name: no erg among the demo's processes"
	ids=$(bpf_ids "$erg")
	[ -n "$ids" ] || fail "$name: erg (pid $erg) holds no BPF program or link"
	for x in demo_worker loadgen erg; do
		for p in $pids; do [ "$(cat "/proc/${p%%:*}/comm" 2>/dev/null)" = "$x" ] && continue 2; done
		fail "$name: no $x among the demo's processes"
	done
	[ "$how" = group ] && kill -"$sig" -- "-$run"
	rc=0
	wait "$run" || rc=$?
	run=
	[ "$rc" = 0 ] || fail "$name: exit status $rc, want 0: $(tail -n 20 "$out")"
	grep -q "^make run: stopped by SIG$sig" "$out" || fail "$name: no 'stopped by SIG$sig' line: $(tail -n 20 "$out")"
	grep -q '^MODEL .*AVG/S' "$out" || fail "$name: erg's summary view is missing: $(tail -n 20 "$out")"
	grep -qE '^  qwen-[0-9.]+b +[0-9]+ requests: J/request min' "$out" ||
		fail "$name: no J/request from erg's request log: $(sed -n '/^Per request/,$p' "$out")"
	grep -q '^J/token ' "$out" || fail "$name: the J/token section is missing: $(tail -n 20 "$out")"
	[ "$(grep -cE '^  qwen-[0-9.]+b +[0-9.]+ J .* J/token' "$out")" = 3 ] ||
		fail "$name: want a J/token figure for each of the 3 models: $(sed -n '/^J\/token/,$p' "$out")"
	for p in $pids; do
		alive "$p" && fail "$name: $(cat "/proc/${p%%:*}/comm") (pid ${p%%:*}) still runs after the demo exited"
	done
	while read -r kind id; do
		bpftool "$kind" show id "$id" >/dev/null 2>&1 && fail "$name: BPF $kind $id of erg is still loaded"
	done <<<"$ids"
	[ -z "$(ls -A "$tmp/$name.tmp")" ] || fail "$name: scratch files left: $(ls -A "$tmp/$name.tmp")"
	x=$(wc -w <<<"$pids")
	pids=
	ok "$name: summary printed, exit 0, $x processes and $(wc -l <<<"$ids") BPF objects gone, no files left"
}

demo int-group INT group
demo term-group TERM group
# timeout's own clock: twice what the demo took to get going here, plus 5 s
TIMEOUT_S=$((2 * STARTUP_S + 5))
demo timeout-int INT timeout
