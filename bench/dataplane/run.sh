#!/usr/bin/env bash
# Benchmark: ferry's data plane between sandbox clusters against its anchors,
# in one run (see README.md):
#   - pod -> pod throughput (iperf3, 1 and 4 streams) and RTT (ping) over ferry's
#     wireguard cable vs wireguard-go, and over ferry's vxlan cable vs bare
#     kernel VXLAN, between the same two gateway namespaces, alternating;
#   - the same over ferry's ipsec cable vs wireguard-go, and ipsec vs ferry wireguard;
#   - failover: kill -9 of the active gateway -> first reply through the standby;
#   - cable cut -> the remote cluster leaves ferry dns answers;
#   - globalnet: identical-CIDR clusters through global IPs vs the plain wireguard
#     pair, and ServiceExport -> resolvable, reachable global IP.
# Prints a table with ratios and PASS/FAIL against the targets of issue #7.
#
#   sudo bench/dataplane/run.sh                                # everything, defaults
#   sudo bench/dataplane/run.sh --only wireguard --rounds 5 --secs 10
#   sudo bench/dataplane/run.sh --only failover,dns --kills 20 --cuts 10
#   FERRY=/path/to/ferry sudo -E bench/dataplane/run.sh   # that binary, not a fresh build
#
# Sandbox clusters are named bd-<this shell's pid>-{w,v,i,g}{k,a,b} and deleted on
# exit, whatever happens. Addresses: 100.64.0.0/10 and 198.18.0.0/15 only.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
[[ $EUID -eq 0 ]] || { echo "run as root" >&2; exit 1; }
for t in iperf3 wireguard-go wg kubectl ping ip; do
  command -v "$t" >/dev/null || { echo "$t is not installed (scripts/setup.sh installs it)" >&2; exit 1; }
done

TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
if [[ -z "${FERRY:-}" ]]; then
  (cd "$ROOT" && cargo build --release -q -p ferry -p ferry-bench-dataplane)
  FERRY="$TARGET/release/ferry"
else
  (cd "$ROOT" && cargo build --release -q -p ferry-bench-dataplane)
fi
PREFIX="bd-$$"
TAG=$(( $$ % 100000 ))   # the benchmark names its wireguard-go devices bdg${TAG}a/b
cleanup() {
  # The benchmark cleans up itself; this covers a kill or ^C.
  for pid in $(pgrep -f "^wireguard-go -f bdg${TAG}[ab]\$" || true); do kill "$pid" 2>/dev/null || true; done
  rm -f "/var/run/wireguard/bdg${TAG}a.sock" "/var/run/wireguard/bdg${TAG}b.sock"
  for n in $("$FERRY" sandbox list 2>/dev/null | awk -v p="$PREFIX-" 'index($1, p) == 1 {print $1}'); do
    "$FERRY" sandbox delete "$n" >/dev/null 2>&1 || true
  done
  [[ -n "${WORK:-}" ]] && rm -rf "$WORK"
}
trap cleanup EXIT

# A private copy: the sandbox restarts gateways from this path during the run,
# and a rebuild in the shared checkout must not swap the binary under it.
WORK=$(mktemp -d /tmp/ferry-bench-dataplane.XXXXXX)
cp "$FERRY" "$WORK/ferry"
FERRY="$WORK/ferry"

echo "uptime: $(uptime)" >&2
"$TARGET/release/ferry-bench-dataplane" --ferry "$FERRY" --prefix "$PREFIX" "$@"
echo "uptime: $(uptime)" >&2
