#!/usr/bin/env bash
# Benchmark: ferry's user-space IPsec vs strongSwan's user-space IPsec (charon with
# kernel-libipsec, the anchor) and vs ferry's user-space WireGuard, on the same two
# network namespaces joined by a veth, alternating, ROUNDS rounds each.
# Prints medians of iperf3 (1 stream, 4 streams), ping RTT, daemon CPU seconds per GB
# moved, and the ratios ferry-ipsec / strongswan and ferry-ipsec / ferry-wg.
#
#   sudo bench/ipsec/run.sh            # ROUNDS=3 SECS=8 by default
#   ROUNDS=5 SECS=10 sudo bench/ipsec/run.sh
#
# Addresses: 198.19.251.0/24 underlay, 100.64.251.0/24 tunnel; no default routes.
# IPsec on both sides: IKEv2 PSK, aes256gcm16-prfsha256-x25519, ESP aes256gcm16 in UDP 4500.
set -euo pipefail

ROUNDS=${ROUNDS:-3}
SECS=${SECS:-8}
IMPLS=${IMPLS:-"ferry-ipsec strongswan ferry-wg"}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
if [[ -z "${IPSEC_UP:-}" ]]; then
  (cd "$ROOT" && cargo build --release -q -p ferry-bench-ipsec --bin ipsec_up)
  IPSEC_UP="$TARGET/release/ipsec_up"
fi
if [[ -z "${WG_UP:-}" && $IMPLS == *ferry-wg* ]]; then
  (cd "$ROOT" && cargo build --release -q -p ferry-wireguard --example wg_up)
  WG_UP="$TARGET/release/examples/wg_up --config"
fi
[[ -x /usr/lib/ipsec/charon ]] || { echo "strongSwan not installed (scripts/setup.sh)"; exit 1; }
[[ $EUID -eq 0 ]] || { echo "run as root"; exit 1; }

NA=fib-$$-a NB=fib-$$-b
TMP=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]:-}"; do [[ -n "$p" ]] && kill "$p" 2>/dev/null || true; done
  sleep 0.5
  ip netns del "$NA" 2>/dev/null || true
  ip netns del "$NB" 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT
for ns in $(ip netns list | awk '{print $1}' | grep '^fib-' || true); do
  pid=${ns#fib-}; pid=${pid%%-*}
  [[ -d /proc/$pid ]] || ip netns del "$ns" 2>/dev/null || true
done

ip netns add "$NA"; ip netns add "$NB"
ip link add fibva netns "$NA" type veth peer name fibvb netns "$NB"
ip -n "$NA" addr add 198.19.251.1/24 dev fibva
ip -n "$NB" addr add 198.19.251.2/24 dev fibvb
for n in "$NA" "$NB"; do ip -n "$n" link set lo up; done
ip -n "$NA" link set fibva up; ip -n "$NB" link set fibvb up

umask 077
PSK=ferry-bench-ipsec-preshared-key-0123456789
echo "$PSK" > "$TMP/psk"

# strongSwan: one charon per namespace, each with its own config, /run (for its pid
# file) and vici socket.
swan_conf() { # side local remote inner-local inner-remote start
  local d="$TMP/swan-$1"; mkdir -p "$d"
  cat > "$d/strongswan.conf" <<C
charon {
  load = random nonce kdf aes sha1 sha2 hmac gcm x509 pubkey pem pkcs1 openssl kernel-libipsec kernel-netlink socket-default vici updown
  plugins {
    vici {
      socket = unix://$d/charon.vici
    }
    kernel-libipsec {
      allow_peer_ts = yes
    }
  }
  filelog {
    log {
      path = $d/charon.log
      default = 1
    }
  }
}
C
  cat > "$d/swanctl.conf" <<C
connections {
  c {
    version = 2
    local_addrs = $2
    remote_addrs = $3
    local_port = 4500
    remote_port = 4500
    encap = yes
    proposals = aes256gcm16-prfsha256-x25519
    local {
      auth = psk
      id = $2
    }
    remote {
      auth = psk
      id = $3
    }
    children {
      net {
        local_ts = $4/32
        remote_ts = $5/32
        esp_proposals = aes256gcm16
        start_action = $6
      }
    }
  }
}
secrets {
  ike-1 {
    id-a = $2
    id-b = $3
    secret = "$PSK"
  }
}
C
}
swan_conf a 198.19.251.1 198.19.251.2 100.64.251.1 100.64.251.2 start
swan_conf b 198.19.251.2 198.19.251.1 100.64.251.2 100.64.251.1 none

cat > "$TMP/wa.conf" <<C
[Interface]
Name = fibw$(( $$ % 10000 ))a
PrivateKey = WGKA
ListenPort = 51820
Address = 100.64.251.1/24
[Peer]
PublicKey = WGPB
Endpoint = 198.19.251.2:51820
AllowedIPs = 100.64.251.2/32
C
cat > "$TMP/wb.conf" <<C
[Interface]
Name = fibw$(( $$ % 10000 ))b
PrivateKey = WGKB
ListenPort = 51820
Address = 100.64.251.2/24
[Peer]
PublicKey = WGPA
Endpoint = 198.19.251.1:51820
AllowedIPs = 100.64.251.1/32
C
if [[ $IMPLS == *ferry-wg* ]]; then
  KA=$(wg genkey); KB=$(wg genkey)
  sed -i "s|WGKA|$KA|; s|WGPB|$(echo "$KB" | wg pubkey)|" "$TMP/wa.conf"
  sed -i "s|WGKB|$KB|; s|WGPA|$(echo "$KA" | wg pubkey)|" "$TMP/wb.conf"
fi

DPIDS=()
IFA=fibi$(( $$ % 10000 ))a IFB=fibi$(( $$ % 10000 ))b
start_ferry_ipsec() {
  ip netns exec "$NB" "$IPSEC_UP" --name "$IFB" --address 100.64.251.2/24 --local 198.19.251.2 --remote 198.19.251.1 \
    --psk-file "$TMP/psk" --local-ts 100.64.251.2/32 --remote-ts 100.64.251.1/32 >"$TMP/fb.log" 2>&1 & DPIDS=($!)
  ip netns exec "$NA" "$IPSEC_UP" --name "$IFA" --address 100.64.251.1/24 --local 198.19.251.1 --remote 198.19.251.2 \
    --psk-file "$TMP/psk" --local-ts 100.64.251.1/32 --remote-ts 100.64.251.2/32 --initiate >"$TMP/fa.log" 2>&1 & DPIDS+=($!)
  PIDS+=("${DPIDS[@]}")
}
start_strongswan() {
  ip -n "$NA" addr add 100.64.251.1/32 dev lo; ip -n "$NB" addr add 100.64.251.2/32 dev lo
  for s in b a; do
    local ns=$NA; [[ $s == b ]] && ns=$NB
    # charon's pid file is fixed at /var/run/charon.pid: give each its own /run.
    mkdir -p "$TMP/swan-$s/run"
    ip netns exec "$ns" env STRONGSWAN_CONF="$TMP/swan-$s/strongswan.conf" unshare --mount --propagation private \
      sh -c "mount --bind '$TMP/swan-$s/run' /run && exec /usr/lib/ipsec/charon" >/dev/null 2>&1 & DPIDS+=($!)
    PIDS+=($!)
    # The vici socket exists a moment before charon accepts on it: retry.
    for i in $(seq 100); do
      ip netns exec "$ns" swanctl --load-all --file "$TMP/swan-$s/swanctl.conf" \
        --uri "unix://$TMP/swan-$s/charon.vici" >/dev/null 2>&1 && break
      sleep 0.1
    done
  done
}
stop_strongswan_addrs() {
  ip -n "$NA" addr del 100.64.251.1/32 dev lo 2>/dev/null || true
  ip -n "$NB" addr del 100.64.251.2/32 dev lo 2>/dev/null || true
}
start_ferry_wg() {
  ip netns exec "$NA" $WG_UP "$TMP/wa.conf" >"$TMP/wa.log" 2>&1 & DPIDS=($!)
  ip netns exec "$NB" $WG_UP "$TMP/wb.conf" >"$TMP/wb.log" 2>&1 & DPIDS+=($!)
  PIDS+=("${DPIDS[@]}")
}
stop_daemons() {
  kill "${DPIDS[@]}" 2>/dev/null || true
  wait "${DPIDS[@]}" 2>/dev/null || true
  DPIDS=()
  stop_strongswan_addrs
  sleep 0.5
}
cpu_ticks() { # utime+stime of the daemons, in clock ticks
  local t=0
  for p in "${DPIDS[@]}"; do
    read -r -a f < "/proc/$p/stat"; t=$(( t + f[13] + f[14] ))
  done
  echo $t
}
HZ=$(getconf CLK_TCK)

measure() { # impl -> appends a line to results
  local impl=$1 up=0
  for i in $(seq 150); do
    ip netns exec "$NA" ping -c1 -W1 -q -I 100.64.251.1 100.64.251.2 >/dev/null 2>&1 && { up=1; break; }
    sleep 0.1
  done
  if [[ $up != 1 ]]; then
    echo "$impl: tunnel did not come up" >&2
    for f in "$TMP"/f*.log "$TMP"/swan-*/charon.log; do [[ -f $f ]] && { echo "== $f" >&2; tail -n 15 "$f" >&2; }; done
    exit 1
  fi
  local line="$impl"
  for streams in 1 4; do
    ip netns exec "$NB" iperf3 -s -1 -p 5298 -B 100.64.251.2 >/dev/null 2>&1 & local s=$!
    sleep 0.3
    local c0; c0=$(cpu_ticks)
    ip netns exec "$NA" iperf3 -c 100.64.251.2 -B 100.64.251.1 -p 5298 -t "$SECS" -P "$streams" -J > "$TMP/ip.json" || true
    local c1; c1=$(cpu_ticks)
    wait $s 2>/dev/null || true
    local r
    r=$(python3 -c 'import json,sys; e=json.load(open(sys.argv[1]))["end"]["sum_received"]; print(e["bits_per_second"], e["bytes"])' "$TMP/ip.json" 2>/dev/null || echo "0 0")
    line="$line $r $(( c1 - c0 ))"
  done
  local rtt
  rtt=$(ip netns exec "$NA" ping -c 200 -i 0.01 -q -I 100.64.251.1 100.64.251.2 | awk -F/ '/^rtt/{print $5}')
  echo "$line ${rtt:-0}" >> "$TMP/results"
}

for r in $(seq "$ROUNDS"); do
  for impl in $IMPLS; do
    case $impl in
      ferry-ipsec) start_ferry_ipsec ;;
      strongswan) start_strongswan ;;
      ferry-wg) start_ferry_wg ;;
    esac
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
    bps1, by1, cpu1, bps4, by4, cpu4, rtt = map(float, f[1:8])
    rows.setdefault(f[0], []).append(dict(
        s1=bps1 / 1e9, s4=bps4 / 1e9, rtt=rtt,
        cpu1=(cpu1 / hz) / (by1 / 1e9) if by1 else float("nan"),
        cpu4=(cpu4 / hz) / (by4 / 1e9) if by4 else float("nan")))
def med(impl, k):
    return st.median(r[k] for r in rows[impl]) if impl in rows else float("nan")
keys = [("s1", "iperf3 1 stream, Gbit/s"), ("s4", "iperf3 4 streams, Gbit/s"),
        ("rtt", "ping RTT avg, ms"), ("cpu1", "daemon CPU s/GB, 1 stream"),
        ("cpu4", "daemon CPU s/GB, 4 streams")]
n = len(rows.get("ferry-ipsec", []))
print(f"\nmedians over {n} rounds (alternating {', '.join(rows)})")
print(f"{'metric':28} {'ferry-ipsec':>11} {'strongswan':>11} {'ferry-wg':>10} {'ipsec/swan':>11} {'ipsec/wg':>9}")
for k, name in keys:
    a, b, c = med("ferry-ipsec", k), med("strongswan", k), med("ferry-wg", k)
    print(f"{name:28} {a:11.3f} {b:11.3f} {c:10.3f} {a / b if b else float('nan'):11.2f} {a / c if c else float('nan'):9.2f}")
PY
