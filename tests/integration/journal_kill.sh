#!/usr/bin/env bash
# san: yes
# A ledger writer killed with SIGKILL in the middle of its run loses at most
# the slot it was writing: 'erg ledger' reopens the journal with every slot
# the writer had reported durable (and at most one more), no damage, and a
# restarted writer carries on from there without a gap. Then one flipped
# byte in the middle must be found, reported and left out; flipped bits in
# the last 3 records are damage, not a torn tail: erg ledger names them by
# offset and exits 1, a writer refuses to append and changes nothing; a
# record with a valid checksum and a NaN slot length is damage too; a trace
# path with escape codes is replayed escaped; erg ledger's options go
# through the shared command-line layer.
set -u
writer="$ERG_OUT/tools/ledger_writer"
for bin in "$ERG" "$writer"; do
	if [ ! -x "$bin" ]; then
		echo "FAIL: $bin is not built (run make)"
		exit 1
	fi
done
tmp=$(mktemp -d "${TMPDIR:-/tmp}/erg-journal-kill.XXXXXX")
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

# One bit flipped in each of the last 3 slot records: 252 bytes that were 3
# whole records. The fault run saw "integrity: ok (... a torn last record of
# 252 bytes was ignored)", exit 0, and the next writer cut them.
cp "$journal" "$tmp/tail.erg"
size=$(stat -c %s "$tmp/tail.erg")
for k in 1 2 3; do
	printf '\x01' | dd of="$tmp/tail.erg" bs=1 seek=$((size - k * 84 + 48)) conv=notrunc status=none
done
want_offsets="$((size - 3 * 84)) $((size - 2 * 84)) $((size - 84))"
cp "$tmp/tail.erg" "$tmp/tail.orig"
"$ERG" ledger "$tmp/tail.erg" >"$tmp/tail.txt"
rc=$?
grep '^integrity' "$tmp/tail.txt"
[ "$rc" = 1 ] || fail "erg ledger exited $rc on 3 damaged last records (want 1)"
grep -q "integrity: DAMAGED: 3 damaged record(s) (checksum fails) at offsets $want_offsets" "$tmp/tail.txt" ||
	fail "the 3 damaged records are not named with offsets $want_offsets"
grep -q 'torn last record' "$tmp/tail.txt" && fail "damaged records reported as a torn tail"
"$ERG" ledger --json "$tmp/tail.erg" >"$tmp/tail.json"
[ "$(json_num torn_tail_bytes "$tmp/tail.json")" = 0 ] || fail "torn_tail_bytes is not 0 for damaged records"
[ "$(json_num unreadable_tail_bytes "$tmp/tail.json")" = 252 ] || fail "unreadable_tail_bytes is not 252"
[ "$(json_num damaged_records "$tmp/tail.json")" = 3 ] || fail "damaged_records is not 3"
"$writer" --supply-watts 100 --storage-joules 250 --journal "$tmp/tail.erg" --slots 5 >/dev/null 2>"$tmp/tail.err"
rc=$?
[ "$rc" != 0 ] || fail "a writer appended to a journal that ends in damaged records"
grep -q "ends in damage: 3 damaged record(s)" "$tmp/tail.err" || fail "no clear refusal: $(cat "$tmp/tail.err")"
grep -q "truncate -s $((size - 252))" "$tmp/tail.err" || fail "the refusal does not say how to keep the valid part"
cmp -s "$tmp/tail.erg" "$tmp/tail.orig" || fail "the refused journal was changed"
echo "ok: damaged last records reported by offset, exit 1, writer refused, file unchanged"

# A torn last record (a write cut short) is still only that: ignored,
# exit 0, and cut by the next writer without touching the records before.
cp "$journal" "$tmp/torn.erg"
truncate -s $((size - 30)) "$tmp/torn.erg"
"$ERG" ledger --json "$tmp/torn.erg" >"$tmp/torn.json" || fail "erg ledger exited $? on a torn last record"
[ "$(json_num torn_tail_bytes "$tmp/torn.json")" = 54 ] || fail "torn_tail_bytes is not 54"
head -c $((size - 84)) "$journal" >"$tmp/torn.prefix"
"$writer" --supply-watts 100 --storage-joules 250 --journal "$tmp/torn.erg" --slots 2 >/dev/null 2>"$tmp/torn.err" ||
	fail "the writer refused a torn last record: $(cat "$tmp/torn.err")"
cmp -s "$tmp/torn.prefix" <(head -c $((size - 84)) "$tmp/torn.erg") || fail "cutting the torn record touched earlier records"
"$ERG" ledger "$tmp/torn.erg" >/dev/null || fail "erg ledger exited $? after the torn record was cut"

# A run record whose checksum is valid but whose slot length is NaN.
python3 - "$tmp/nan.erg" <<'PY' || fail "could not write the NaN journal"
import struct, sys, zlib
def frame(t, payload):
    head = struct.pack("<HH", t, len(payload))
    return b"ERGJ" + head + payload + struct.pack("<I", zlib.crc32(head + payload))
run = struct.pack("<IIQqddddQH", 1, 0, 0, 0, float("nan"), 0.0, 0.0, 100.0, 0, 0)
slot = struct.pack("<Q8d", 0, 0.0, 1.0, 0.0, 100.0, 100.0, 0.0, 0.0, 0.0)
open(sys.argv[1], "wb").write(frame(1, run) + frame(2, slot))
PY
"$ERG" ledger "$tmp/nan.erg" >"$tmp/nan.txt"
rc=$?
[ "$rc" = 1 ] || fail "erg ledger exited $rc on a NaN slot length (want 1)"
grep -q "1 record(s) with impossible values (NaN, infinite or negative) though their checksum matches, at offset 0" "$tmp/nan.txt" ||
	fail "the NaN record is not reported: $(grep integrity "$tmp/nan.txt")"
echo "ok: a NaN slot length under a valid checksum is damage"

# A trace path with escape codes, replayed: escaped, never raw.
esc=$(printf '\033')
trace="$tmp/sun${esc}[31m${esc}]0;owned.csv"
printf '0,90\n10,110\n' >"$trace"
"$writer" --supply-trace "$trace" --journal "$tmp/esc.erg" --slots 3 >/dev/null 2>"$tmp/esc.err" ||
	fail "writer with a trace: $(cat "$tmp/esc.err")"
"$ERG" ledger --replay "$tmp/esc.erg" >"$tmp/esc.txt" || fail "erg ledger --replay exited $?"
grep -q "$esc" "$tmp/esc.txt" && fail "--replay printed a raw escape character"
grep -qF 'sun\x1b[31m\x1b]0;owned.csv' "$tmp/esc.txt" || fail "--replay does not show the escaped path"

# Options: permuted, --json=3 refused naming the option, one file only.
"$ERG" ledger "$journal" --json >/dev/null || fail "options after the file were refused"
"$ERG" ledger --json=3 "$journal" >/dev/null 2>"$tmp/opt.txt"
[ "$?" = 2 ] && grep -q "option '--json' takes no value" "$tmp/opt.txt" || fail "--json=3: $(cat "$tmp/opt.txt")"
"$ERG" ledger --frobnicate "$journal" >/dev/null 2>"$tmp/opt.txt"
[ "$?" = 2 ] && grep -q "'--frobnicate'" "$tmp/opt.txt" || fail "unknown option: $(cat "$tmp/opt.txt")"
"$ERG" ledger "$journal" "$journal" >/dev/null 2>&1
[ "$?" = 2 ] || fail "two journals were not refused"

# Not a journal, or no file: exit 2 with a message naming the file.
"$ERG" ledger "$ERG_ROOT/Makefile" >/dev/null 2>"$tmp/err.txt"
[ "$?" = 2 ] && grep -q 'not an erg journal' "$tmp/err.txt" || fail "a non-journal was not refused with exit 2"
"$ERG" ledger >/dev/null 2>&1
[ "$?" = 2 ] || fail "erg ledger without FILE did not exit 2"
echo "ok: at most one slot lost per kill over 3 kills, corruption detected, damage never taken for a torn tail"
exit 0
