#!/usr/bin/env bash
# san: yes
# The files erg is handed (erg top --config and --supply-trace, erg sim
# --scenario and the traces it names, erg ledger FILE) are untrusted input:
# - a FIFO, a device or a directory is refused at once by kind (the fault
#   run: /dev/zero grew 1 GB in 6 s or spun forever, a FIFO blocked, a
#   directory was an empty config);
# - a file over the size cap is refused with the cap in the message;
# - a 300-character comment is a comment, and a syntax error after it is
#   reported on its own line (it was "line 2" in erg top, "longer than 199
#   characters" in erg sim);
# - supply CSV: "0,nan" and "0,inf" are errors, not a header; 1e308 W a range
#   error; [power] watts out of the command line's range are refused;
# - nothing echoed from a file name or a file puts raw escape codes on the
#   terminal.
set -u
. "$ERG_ROOT/tests/integration/testlib.bash"

[ "$(id -u)" = 0 ] || skip "erg top checks its targets as root; run as root (CI does)"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/erg-file-inputs.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
esc=$(printf '\033')

# expect WANT CMD...: exit 2 within 20 s (a hang or a spin is a failure),
# one line on stderr holding WANT and no escape character.
expect() {
	local want=$1 out rc args
	shift
	args=$(printf '%q ' "$@")	# the test's own log shows no raw escapes either
	out=$(timeout 20 "$ERG" "$@" 2>&1 >/dev/null)
	rc=$?
	[ "$rc" = 124 ] && fail "erg $args: still running after 20 s (blocked or spinning)"
	case "$out" in *"$esc"*) fail "erg $args: raw escape character in: $(printf '%q' "$out")" ;; esac
	[ "$rc" = 2 ] || fail "erg $args: exit $rc, want 2 (stderr: $out)"
	[ "$(printf '%s\n' "$out" | wc -l)" = 1 ] || fail "erg $args: want one line, got: $out"
	case "$out" in *"$want"*) ok "erg $args: $out" ;; *) fail "erg $args: message lacks '$want': $out" ;; esac
}

# 1. Special files, for every reader.
mkfifo "$tmp/fifo"
mkdir "$tmp/dir"
for f in /dev/zero "$tmp/fifo" "$tmp/dir"; do
	case $f in
	/dev/zero) kind="is a character device, not a regular file" ;;
	*fifo) kind="is a FIFO, not a regular file" ;;
	*) kind="is a directory, not a regular file" ;;
	esac
	expect "config file '$f' $kind" top --config "$f"
	expect "supply trace '$f' $kind" top --pid $$ --supply-trace "$f"
	expect "scenario '$f' $kind" sim --scenario "$f"
	expect "journal '$f' $kind" ledger "$f"
done

# A trace named inside a scenario goes through the same reader.
sed '/^\[supply\]/,$d' "$ERG_ROOT/scenarios/reference.ini" >"$tmp/zero.ini"
printf '[supply]\ntrace = /dev/zero\n' >>"$tmp/zero.ini"
grep -q '^\[model' "$tmp/zero.ini" || fail "reference.ini changed shape: no [model] before [supply]"
expect "'/dev/zero' is a character device" sim --scenario "$tmp/zero.ini"

# 2. Size caps, said in the message (sparse files: nothing is written).
truncate -s 2M "$tmp/big.ini"
expect "larger than 1048576 bytes" top --config "$tmp/big.ini"
expect "larger than 1048576 bytes" sim --scenario "$tmp/big.ini"
truncate -s 200M "$tmp/big.csv"
expect "larger than 134217728 bytes" top --pid $$ --supply-trace "$tmp/big.csv"

# 3. Long lines: a comment of 300 characters, then a syntax error on line 3.
long=$(printf ';%0300d' 0)
printf '%s\n[model a]\nno equals sign here\n' "$long" >"$tmp/long.ini"
expect "long.ini:3: cannot parse this line" top --config "$tmp/long.ini"
printf '%s\n[scaling]\nno equals sign here\n' "$long" >"$tmp/long-sim.ini"
expect "long-sim.ini:3: cannot parse this line" sim --scenario "$tmp/long-sim.ini"
# ... and a long comment in front of a good scenario changes nothing.
{ echo "$long"; cat "$ERG_ROOT/scenarios/reference.ini"; } >"$tmp/long-ref.ini"
timeout 120 "$ERG" sim --scenario "$tmp/long-ref.ini" --slots 200 >"$tmp/long-ref.out" 2>&1 ||
	fail "erg sim on reference.ini behind a 300-character comment: exit $? ($(tail -n 2 "$tmp/long-ref.out"))"
ok "erg sim reads a scenario behind a 300-character comment"
# A [power] value padded past inih's 200 characters is read whole.
printf '[power]\nsource = model\nidle_watts = %0300d7\n[gpu]\nx = 1\n' 0 >"$tmp/longval.ini"
expect "longval.ini:5: unknown section [gpu]" top --config "$tmp/longval.ini"

# 4. Supply CSV values.
printf '0,nan\n10,5\n' >"$tmp/nan.csv"
expect "nan.csv:1: watts 'nan': expected watts, a finite number from 0 to 1e+12" top --pid $$ --supply-trace "$tmp/nan.csv"
printf '0,inf\n10,5\n' >"$tmp/inf.csv"
expect "inf.csv:1: watts 'inf'" top --pid $$ --supply-trace "$tmp/inf.csv"
printf 'seconds,watts\n0,5\n10,1e308\n' >"$tmp/huge.csv"
expect "huge.csv:3: watts '1e308': expected watts, a finite number from 0 to 1e+12" top --pid $$ --supply-trace "$tmp/huge.csv"
printf '0,5\n10,5 5\n' >"$tmp/junk.csv"
expect "junk.csv:2: watts '5 5'" top --pid $$ --supply-trace "$tmp/junk.csv"

# 5. [power] values: the command line's range, with file and line.
for v in inf 1e300 nan -1; do
	printf '[power]\nsource = model\nidle_watts = %s\n' "$v" >"$tmp/power.ini"
	expect "power.ini:3: [power] idle_watts '$v': expected watts, a finite number above 0, at most 1e+06" top --config "$tmp/power.ini"
	printf '[power]\nwatts_per_busy_core = %s\n' "$v" >"$tmp/power.ini"
	expect "power.ini:2: [power] watts_per_busy_core '$v'" top --config "$tmp/power.ini"
done

# 6. Escape codes in names and values are escaped.
expect 'red\x1b[31m.ini' top --config "$tmp/red${esc}[31m.ini"
expect 'red\x1b[31m.csv' top --pid $$ --supply-trace "$tmp/red${esc}[31m.csv"
expect 'red\x1b[31m.ini' sim --scenario "$tmp/red${esc}[31m.ini"
printf '[model a]\n%s[2J = 1\n' "$esc" >"$tmp/key.ini"
expect "unknown key '\\x1b[2J'" top --config "$tmp/key.ini"
printf '0,5\n10,%s]0;title\a\n' "$esc" >"$tmp/title.csv"
expect "title.csv:2: watts '\\x1b]0;title\\x07'" top --pid $$ --supply-trace "$tmp/title.csv"
echo "ok: every reader refuses special files at once, caps sizes, reads long lines, checks values, escapes what it echoes"
exit 0
