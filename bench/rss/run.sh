#!/usr/bin/env bash
# Idle RSS of ferry's daemons (issue #19 item 5: <= 20 MB each).
#
#   sudo bench/rss/run.sh                  # builds ferry (release), 60 s idle
#   sudo IDLE=10 FERRY=/path/to/ferry bench/rss/run.sh
#
# Two sandbox clusters (rss<pid>a, rss<pid>b; 2 nodes each, the demo's
# shape): the broker on the first, both joined over WireGuard with node0 as
# gateway, examples/nginx.yaml running in the second and exported. After IDLE
# seconds it prints VmRSS (and peak VmHWM) of every agent, dns, gateway and
# route agent of both clusters, the largest per daemon and its ratio to the
# 20 MB target, and the CPU each used over the idle window in millicores
# (deploy/ manifests take their requests from these). The clusters are
# deleted on exit (also on ^C).
set -euo pipefail

IDLE=${IDLE:-60}
TARGET_MB=20
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"

if [ -z "${FERRY:-}" ]; then
  cargo build --release -q -p ferry
  FERRY="${CARGO_TARGET_DIR:-$root/target}/release/ferry"
fi
# The sandbox restarts pods from these binaries; a rebuild must not swap
# them. The manifests run the per-daemon binaries beside ferry (ferry-agent,
# ...); a ferry built before they existed runs `ferry <daemon>` instead.
work=$(mktemp -d)
cp "$FERRY" "$work/ferry"
for d in agent dns gateway route-agent; do
  if [ -e "$(dirname "$FERRY")/ferry-$d" ]; then cp "$(dirname "$FERRY")/ferry-$d" "$work/"; fi
done
FERRY="$work/ferry"

a="rss$$a"
b="rss$$b"
cleanup() {
  "$FERRY" sandbox delete "$a" >/dev/null 2>&1 || true
  "$FERRY" sandbox delete "$b" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

setup() {
  "$FERRY" sandbox create "$a"
  "$FERRY" sandbox create "$b"
  KA=$("$FERRY" sandbox kubeconfig "$a")
  KB=$("$FERRY" sandbox kubeconfig "$b")
  "$FERRY" deploy-broker --kubeconfig "$KA" -o "$work/broker-info.ferry"
  "$FERRY" join "$work/broker-info.ferry" --clusterid "$a" --kubeconfig "$KA"
  "$FERRY" join "$work/broker-info.ferry" --clusterid "$b" --kubeconfig "$KB"
  kubectl --kubeconfig "$KA" label node "$a-node0" ferry.dev/gateway=true
  kubectl --kubeconfig "$KB" label node "$b-node0" ferry.dev/gateway=true
  kubectl --kubeconfig "$KB" apply -f examples/nginx.yaml
  "$FERRY" export service nginx -n nginx-test --wait 30s --kubeconfig "$KB"
}
if ! setup >"$work/setup.log" 2>&1; then
  cat "$work/setup.log" >&2
  exit 1
fi

# Daemons of our clusters: the sandbox sets FERRY_SANDBOX=<cluster> in each.
ours() {
  for pid in $(pgrep -f "^$FERRY[- ](agent|dns|gateway|route-agent)" || true); do
    cluster=$(tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | sed -n 's/^FERRY_SANDBOX=//p' || true)
    if [ "$cluster" = "$a" ] || [ "$cluster" = "$b" ]; then echo "$pid"; fi
  done
}
# CPU ticks (user + system) of a process so far.
ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }

echo "clusters $a and $b up; idle for $IDLE s" >&2
declare -A start_ticks
for pid in $(ours); do start_ticks[$pid]=$(ticks "$pid"); done
sleep "$IDLE"
hz=$(getconf CLK_TCK)

declare -A max max_cpu
printf '%-10s %-12s %-16s %8s %8s %8s %8s %8s %8s %8s\n' cluster daemon node "RSS MB" "anon" "file" "shmem" "peak" threads "CPU m"
for pid in $(ours); do
  env=$(tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null || true)
  cluster=$(sed -n 's/^FERRY_SANDBOX=//p' <<<"$env")
  node=$(sed -n 's/^NODE_NAME=//p' <<<"$env")
  # `ferry-agent …` or `ferry agent …`
  daemon=$(tr '\0' ' ' <"/proc/$pid/cmdline" | awk '{n = split($1, p, "/"); b = p[n]; print (b == "ferry") ? $2 : substr(b, 7)}')
  field() { awk -v f="$1:" '$1 == f {printf "%.1f", $2/1024}' "/proc/$pid/status"; }
  rss=$(field VmRSS)
  threads=$(awk '$1 == "Threads:" {print $2}' "/proc/$pid/status")
  # Millicores over the idle window (a daemon restarted meanwhile: since its start).
  cpu=$(awk -v t0="${start_ticks[$pid]:-0}" -v t1="$(ticks "$pid")" -v hz="$hz" -v s="$IDLE" \
    'BEGIN{printf "%.1f", (t1 - t0) / hz / s * 1000}')
  printf '%-10s %-12s %-16s %8s %8s %8s %8s %8s %8s %8s\n' "$cluster" "$daemon" "$node" "$rss" \
    "$(field RssAnon)" "$(field RssFile)" "$(field RssShmem)" "$(field VmHWM)" "$threads" "$cpu"
  if [ -z "${max[$daemon]:-}" ] || awk "BEGIN{exit !($rss > ${max[$daemon]})}"; then
    max[$daemon]=$rss
  fi
  if [ -z "${max_cpu[$daemon]:-}" ] || awk "BEGIN{exit !($cpu > ${max_cpu[$daemon]})}"; then
    max_cpu[$daemon]=$cpu
  fi
done
echo
echo "(anon: heap and stacks; file: pages of the daemon's binary and libraries mapped by"
echo " this process, shared with every process of that binary but counted in each VmRSS)"
echo "largest idle RSS per daemon after $IDLE s (target <= $TARGET_MB MB; ratio = RSS / target, <= 1 meets it):"
for d in agent dns gateway route-agent; do
  r=${max[$d]:-}
  if [ -z "$r" ]; then
    echo "  $d: not running"
    continue
  fi
  awk -v d="$d" -v r="$r" -v t="$TARGET_MB" -v c="${max_cpu[$d]:-0}" \
    'BEGIN{printf "  %-12s %6.1f MB (ratio %.2f), idle CPU %.1f millicores\n", d, r, r/t, c}'
done
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
