# Shell helpers for integration tests (sourced).
ok() { echo "ok: $*"; }
fail() { echo "FAIL: $*"; exit 1; }
skip() { echo "SKIP: $*"; exit 77; }
require_bpf() {
	[ "$(id -u)" = 0 ] || skip "needs root to load BPF programs (CI runs as root)"
	[ -e /sys/kernel/btf/vmlinux ] || skip "kernel has no BTF (/sys/kernel/btf/vmlinux)"
}

# make_tmp: one private scratch directory for the test in $tmp (under
# $TMPDIR), removed when the test exits, whether it passes, fails or is
# stopped by SIGINT/SIGTERM (bash runs the EXIT trap then too). A test that
# sets its own EXIT trap calls rm_tmp from it.
make_tmp() {
	tmp=$(mktemp -d "${TMPDIR:-/tmp}/erg-test.XXXXXX") || fail "cannot make a scratch directory in ${TMPDIR:-/tmp}; set TMPDIR to a writable directory"
	trap rm_tmp EXIT
}
rm_tmp() {
	[ -n "${tmp:-}" ] && rm -rf "$tmp"
	return 0
}
