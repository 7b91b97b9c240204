#!/usr/bin/env bash
# Benchmarks of `ferry apiserver` against etcd 3.4 on the same disk, measured
# in the same run (issue #2, point 5). Builds ferry and the benchmark in
# release mode, installs etcd-server if it is missing, and runs everything.
#
#   bench/apiserver/run.sh            # full run (~10 minutes on 2 cores)
#   bench/apiserver/run.sh --quick    # shorter run (~2-3 minutes)
#   bench/apiserver/run.sh --help     # every knob
#
# Data directories go under --dir (default /tmp; must be a disk, not tmpfs)
# and are removed at the end, also on failure or Ctrl-C.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"

if ! command -v etcd >/dev/null 2>&1; then
    echo "etcd not found: installing the Debian package etcd-server" >&2
    apt-get update -qq
    apt-get install -y -qq etcd-server >/dev/null
fi

cargo build --release -p ferry -p ferry-bench-apiserver

export FERRY_BENCH_COMMAND="bench/apiserver/run.sh${*:+ $*}"
exec "$root/target/release/ferry-bench-apiserver" \
    --ferry-bin "$root/target/release/ferry" \
    --etcd-bin "$(command -v etcd)" \
    "$@"
