#!/usr/bin/env bash
# Benchmark: ferry's user-space WireGuard vs wireguard-go (the anchor), same two
# network namespaces joined by a veth, alternating, ROUNDS rounds each.
# Prints medians of iperf3 (1 stream, 4 streams), ping RTT, CPU seconds per GB moved,
# and the ratios ferry / wireguard-go.
#
#   sudo bench/wireguard/run.sh            # ROUNDS=3 SECS=8 by default
#   ROUNDS=5 SECS=10 sudo bench/wireguard/run.sh
#   FERRY_UP="target/release/ferry tools wg up --config" sudo bench/wireguard/run.sh
#
# Addresses: 198.19.250.0/24 underlay, 100.64.250.0/24 tunnel; no default routes.
set -euo pipefail

ROUNDS=${ROUNDS:-3}
SECS=${SECS:-8}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
if [[ -z "${FERRY_UP:-}" ]]; then
  (cd "$ROOT" && cargo build --release -q -p ferry-wireguard --example wg_up)
  FERRY_UP="$ROOT/target/release/examples/wg_up --config"
fi
command -v wireguard-go >/dev/null || { echo "wireguard-go not installed"; exit 1; }
[[ $EUID -eq 0 ]] || { echo "run as root"; exit 1; }

NA=fwb-$$-a NB=fwb-$$-b
TMP=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]:-}"; do [[ -n "$p" ]] && kill "$p" 2>/dev/null || true; done
  sleep 0.3
  ip netns del "$NA" 2>/dev/null || true
  ip netns del "$NB" 2>/dev/null || true
  rm -f /var/run/wireguard/fwbf*.sock /var/run/wireguard/fwbg*.sock
  rm -rf "$TMP"
}
trap cleanup EXIT
# sweep leftovers of earlier runs whose shell is gone
for ns in $(ip netns list | awk '{print $1}' | grep '^fwb-' || true); do
  pid=${ns#fwb-}; pid=${pid%%-*}
  [[ -d /proc/$pid ]] || ip netns del "$ns" 2>/dev/null || true
done

ip netns add "$NA"; ip netns add "$NB"
ip link add fwbva netns "$NA" type veth peer name fwbvb netns "$NB"
ip -n "$NA" addr add 198.19.250.1/24 dev fwbva
ip -n "$NB" addr add 198.19.250.2/24 dev fwbvb
for n in "$NA" "$NB"; do ip -n "$n" link set lo up; done
ip -n "$NA" link set fwbva up; ip -n "$NB" link set fwbvb up

KA=$(wg genkey); KB=$(wg genkey)
PA=$(echo "$KA" | wg pubkey); PB=$(echo "$KB" | wg pubkey)
umask 077
echo "$KA" > "$TMP/ka"; echo "$KB" > "$TMP/kb"
cat > "$TMP/a.conf" <<C
[Interface]
Name = fwbf$$a
PrivateKeyFile = $TMP/ka
ListenPort = 51820
Address = 100.64.250.1/24
[Peer]
PublicKey = $PB
Endpoint = 198.19.250.2:51820
AllowedIPs = 100.64.250.2/32
C
cat > "$TMP/b.conf" <<C
[Interface]
Name = fwbf$$b
PrivateKeyFile = $TMP/kb
ListenPort = 51820
Address = 100.64.250.2/24
[Peer]
PublicKey = $PA
Endpoint = 198.19.250.1:51820
AllowedIPs = 100.64.250.1/32
C
sed -i "s/fwbf$$/fwbf$(( $$ % 10000 ))/" "$TMP/a.conf" "$TMP/b.conf"

DPIDS=()
start_ferry() {
  ip netns exec "$NA" $FERRY_UP "$TMP/a.conf" >"$TMP/fa.log" 2>&1 & DPIDS=($!)
  ip netns exec "$NB" $FERRY_UP "$TMP/b.conf" >"$TMP/fb.log" 2>&1 & DPIDS+=($!)
  PIDS+=("${DPIDS[@]}")
}
start_wggo() {
  local ia="fwbga" ib="fwbgb"
  ip netns exec "$NA" env WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD=1 wireguard-go -f $ia >/dev/null 2>&1 & DPIDS=($!)
  ip netns exec "$NB" env WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD=1 wireguard-go -f $ib >/dev/null 2>&1 & DPIDS+=($!)
  PIDS+=("${DPIDS[@]}")
  for i in $(seq 100); do [[ -S /var/run/wireguard/$ia.sock && -S /var/run/wireguard/$ib.sock ]] && break; sleep 0.05; done
  ip netns exec "$NA" wg set $ia listen-port 51820 private-key "$TMP/ka" peer "$PB" endpoint 198.19.250.2:51820 allowed-ips 100.64.250.2/32
  ip netns exec "$NB" wg set $ib listen-port 51820 private-key "$TMP/kb" peer "$PA" endpoint 198.19.250.1:51820 allowed-ips 100.64.250.1/32
  ip -n "$NA" addr add 100.64.250.1/24 dev $ia; ip -n "$NA" link set $ia mtu 1420 up
  ip -n "$NB" addr add 100.64.250.2/24 dev $ib; ip -n "$NB" link set $ib mtu 1420 up
}
stop_daemons() {
  kill "${DPIDS[@]}" 2>/dev/null || true
  wait "${DPIDS[@]}" 2>/dev/null || true
  DPIDS=()
  sleep 0.3
}
cpu_ticks() { # utime+stime of the daemons, in clock ticks
  local t=0
  for p in "${DPIDS[@]}"; do
    read -r -a f < "/proc/$p/stat"; t=$(( t + f[13] + f[14] ))
  done
  echo $t
}
HZ=$(getconf CLK_TCK)

measure() { # impl round -> appends a line to results
  local impl=$1
  for i in $(seq 50); do ip netns exec "$NA" ping -c1 -W1 -q 100.64.250.2 >/dev/null 2>&1 && break; sleep 0.1; done
  local line="$impl"
  for streams in 1 4; do
    ip netns exec "$NB" iperf3 -s -1 -p 5299 >/dev/null 2>&1 & local s=$!
    sleep 0.3
    local c0; c0=$(cpu_ticks)
    ip netns exec "$NA" iperf3 -c 100.64.250.2 -p 5299 -t "$SECS" -P "$streams" -J > "$TMP/ip.json" || true
    local c1; c1=$(cpu_ticks)
    wait $s 2>/dev/null || true
    local r
    r=$(python3 -c 'import json,sys; e=json.load(open(sys.argv[1]))["end"]["sum_received"]; print(e["bits_per_second"], e["bytes"])' "$TMP/ip.json" 2>/dev/null || echo "0 0")
    line="$line $r $(( c1 - c0 ))"
  done
  local rtt
  rtt=$(ip netns exec "$NA" ping -c 200 -i 0.01 -q 100.64.250.2 | awk -F/ '/^rtt/{print $5}')
  echo "$line ${rtt:-0}" >> "$TMP/results"
}

for r in $(seq "$ROUNDS"); do
  for impl in ferry wireguard-go; do
    if [[ $impl == ferry ]]; then start_ferry; else start_wggo; fi
    measure "$impl"
    stop_daemons
    echo "round $r $impl: $(tail -1 "$TMP/results")" >&2
  done
done

python3 - "$TMP/results" "$HZ" <<'PY'
import sys, statistics as st
hz = float(sys.argv[2])
rows = {}
for line in open(sys.argv[1]):
    f = line.split()
    impl = f[0]
    bps1, by1, cpu1, bps4, by4, cpu4, rtt = map(float, f[1:8])
    rows.setdefault(impl, []).append(dict(
        s1=bps1 / 1e9, s4=bps4 / 1e9, rtt=rtt,
        cpu1=(cpu1 / hz) / (by1 / 1e9) if by1 else float("nan"),
        cpu4=(cpu4 / hz) / (by4 / 1e9) if by4 else float("nan")))
def med(impl, k):
    return st.median(r[k] for r in rows[impl])
keys = [("s1", "iperf3 1 stream, Gbit/s"), ("s4", "iperf3 4 streams, Gbit/s"),
        ("rtt", "ping RTT avg, ms"), ("cpu1", "daemon CPU s/GB, 1 stream"),
        ("cpu4", "daemon CPU s/GB, 4 streams")]
n = len(rows.get("ferry", []))
print(f"\nmedians over {n} rounds (alternating ferry / wireguard-go)")
print(f"{'metric':30} {'ferry':>10} {'wg-go':>10} {'ferry/wg-go':>12}")
for k, name in keys:
    a, b = med("ferry", k), med("wireguard-go", k)
    print(f"{name:30} {a:10.3f} {b:10.3f} {a / b if b else float('nan'):12.2f}")
PY
