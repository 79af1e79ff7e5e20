#!/usr/bin/env bash
# san: yes
# A ledger writer killed with SIGKILL in the middle of its run loses at most
# the slot it was writing: 'erg ledger' reopens the journal with every slot
# the writer had reported durable (and at most one more), no damage, and a
# restarted writer carries on from there without a gap. Then one flipped
# byte in the middle must be found, reported and left out.
set -u
writer="$ERG_OUT/tools/ledger_writer"
for bin in "$ERG" "$writer"; do
	if [ ! -x "$bin" ]; then
		echo "FAIL: $bin is not built (run make)"
		exit 1
	fi
done
tmp=$(mktemp -d /tmp/erg-journal-kill.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
journal="$tmp/ledger.erg"

json_num() { # KEY FILE: the first "KEY": number in FILE
	grep -o "\"$1\":[[:space:]]*-\{0,1\}[0-9.e+-]*" "$2" | head -n1 | sed 's/.*:[[:space:]]*//'
}

fail() { echo "FAIL: $*"; exit 1; }

for round in 1 2 3; do
	out="$tmp/writer$round.out"
	"$writer" --supply-watts 100 --storage-joules 250 --journal "$journal" >"$out" 2>"$tmp/writer$round.err" &
	pid=$!
	# Let it write a few hundred slots (each one fsynced) before the kill.
	for _ in $(seq 1 400); do
		n=$(grep -c '^slots [0-9]* ok$' "$out" 2>/dev/null || true)
		[ "${n:-0}" -ge 200 ] && break
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	reported=$(grep '^slots [0-9]* ok$' "$out" | tail -n1 | awk '{print $2}')
	[ -n "$reported" ] || { cat "$tmp/writer$round.err"; fail "round $round: the writer reported no slot"; }

	"$ERG" ledger --json "$journal" >"$tmp/sum$round.json"
	rc=$?
	[ "$rc" = 0 ] || { cat "$tmp/sum$round.json"; fail "round $round: erg ledger exited $rc on a journal that was only killed"; }
	slots=$(json_num slots "$tmp/sum$round.json")
	runs=$(json_num runs "$tmp/sum$round.json")
	corrupt=$(json_num corrupt_regions "$tmp/sum$round.json")
	missing=$(json_num missing_slots "$tmp/sum$round.json")
	torn=$(json_num torn_tail_bytes "$tmp/sum$round.json")
	echo "round $round: writer reported $reported durable slots; journal has $slots in $runs run(s), torn tail $torn bytes, corrupt $corrupt, missing $missing"
	[ "$runs" = "$round" ] || fail "round $round: $runs runs in the journal"
	[ "$slots" -ge "$reported" ] || fail "round $round: lost slots ($slots < $reported reported durable)"
	[ "$slots" -le $((reported + 1)) ] || fail "round $round: $slots slots but only $reported reported"
	[ "$corrupt" = 0 ] && [ "$missing" = 0 ] || fail "round $round: damage after a kill"
	if [ "$round" -gt 1 ]; then
		grep -q "resumed after" "$tmp/writer$round.err" || fail "round $round: the writer did not resume the journal"
	fi
done

# --replay prints one line per slot, and agrees with the summary.
"$ERG" ledger --replay "$journal" >"$tmp/replay.txt" || fail "erg ledger --replay exited $?"
lines=$(grep -cE '^ +[0-9]+ +[0-9.]+ ' "$tmp/replay.txt")
[ "$lines" = "$slots" ] || fail "--replay printed $lines slot lines for $slots slots"
grep -q '^regime: ' "$tmp/replay.txt" || fail "no regime line in the summary"

# Flip one byte inside the 10th slot record (a 78-byte run record, then
# 84-byte slot records): detected, reported, not counted.
cp "$journal" "$tmp/bad.erg"
printf '\x5a' | dd of="$tmp/bad.erg" bs=1 seek=$((78 + 9 * 84 + 40)) conv=notrunc status=none
"$ERG" ledger "$tmp/bad.erg" >"$tmp/bad.txt"
rc=$?
cat "$tmp/bad.txt"
[ "$rc" = 1 ] || fail "erg ledger exited $rc on a corrupted journal (want 1)"
grep -q 'DAMAGED' "$tmp/bad.txt" || fail "corruption not reported"
"$ERG" ledger --json "$tmp/bad.erg" >"$tmp/bad.json"
[ "$(json_num slots "$tmp/bad.json")" = $((slots - 1)) ] || fail "the corrupted slot was counted"
[ "$(json_num corrupt_regions "$tmp/bad.json")" = 1 ] || fail "corrupt_regions != 1"
[ "$(json_num missing_slots "$tmp/bad.json")" = 1 ] || fail "missing_slots != 1"

# Not a journal, or no file: exit 2 with a message naming the file.
"$ERG" ledger "$ERG_ROOT/Makefile" >/dev/null 2>"$tmp/err.txt"
[ "$?" = 2 ] && grep -q 'not an erg journal' "$tmp/err.txt" || fail "a non-journal was not refused with exit 2"
"$ERG" ledger >/dev/null 2>&1
[ "$?" = 2 ] || fail "erg ledger without FILE did not exit 2"
echo "ok: at most one slot lost per kill over 3 kills, corruption detected"
exit 0
