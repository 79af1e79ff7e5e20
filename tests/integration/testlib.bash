# Shell helpers for integration tests (sourced).
ok() { echo "ok: $*"; }
fail() { echo "FAIL: $*"; exit 1; }
skip() { echo "SKIP: $*"; exit 77; }
require_bpf() {
	[ "$(id -u)" = 0 ] || skip "needs root to load BPF programs (CI runs as root)"
	[ -e /sys/kernel/btf/vmlinux ] || skip "kernel has no BTF (/sys/kernel/btf/vmlinux)"
}
