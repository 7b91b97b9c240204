#!/usr/bin/env bash
# DNS benchmark: `ferry dns` against NSD serving the same 10,000 service names
# (127.0.0.1 only), alternating, ROUNDS rounds; prints per-round figures,
# medians and ratios (ferry / NSD), and ferry's RSS.
#
#   bench/dns/run.sh                      # defaults below
#   ROUNDS=5 DURATION=15 SERVICES=10000 bench/dns/run.sh
#
# Per round and server: a QPS run (dnsperf, unlimited rate, DURATION s) and a
# latency run (dnsperf -v at a fixed LAT_QPS for LAT_DURATION s; p50/p99 from
# the per-query latencies). Both servers get the same worker count (WORKERS).
set -euo pipefail

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
LAT_QPS=${LAT_QPS:-20000}
LAT_DURATION=${LAT_DURATION:-5}
SERVICES=${SERVICES:-10000}
WORKERS=${WORKERS:-2}
CLIENTS=${CLIENTS:-4}
FERRY_PORT=${FERRY_PORT:-15353}
NSD_PORT=${NSD_PORT:-15354}

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"

need=()
command -v dnsperf >/dev/null || need+=(dnsperf)
command -v nsd >/dev/null || [ -x /usr/sbin/nsd ] || need+=(nsd)
command -v dig >/dev/null || need+=(dnsutils)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing ${need[*]}" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y "${need[@]}" >/dev/null
fi
NSD=$(command -v nsd || echo /usr/sbin/nsd)
# The Debian package starts a system nsd on port 53; we do not need it.
systemctl stop nsd >/dev/null 2>&1 || true

cargo build --release -q -p ferry -p ferry-bench-dns
FERRY="$root/target/release/ferry"

work=$(mktemp -d /tmp/ferry-dns-bench.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

"$root/target/release/ferry-bench-dns" "$work" "$SERVICES" >/dev/null
cat >"$work/nsd.conf" <<EOF
server:
  ip-address: 127.0.0.1@$NSD_PORT
  server-count: $WORKERS
  reuseport: yes
  username: ""
  chroot: ""
  zonesdir: "$work"
  database: ""
  zonelistfile: "$work/zone.list"
  xfrdfile: "$work/xfrd.state"
  xfrdir: "$work"
  pidfile: "$work/nsd.pid"
  logfile: "$work/nsd.log"
  verbosity: 0
  hide-version: yes
  # Debian's NSD has response rate limiting on (200 qps per /24): off, or it
  # would only be measuring its limiter.
  rrl-ratelimit: 0
  rrl-whitelist-ratelimit: 0
remote-control:
  control-enable: no
zone:
  name: clusterset.local
  zonefile: clusterset.local.zone
EOF

wait_up() { # port
  for _ in $(seq 1 100); do
    if dig @127.0.0.1 -p "$1" +short +tries=1 +time=1 dns-version.clusterset.local TXT 2>/dev/null | grep -q 1.0.0; then
      return 0
    fi
    sleep 0.1
  done
  echo "server on port $1 did not come up" >&2
  return 1
}

rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }

start_server() { # name -> sets SPID, SPORT
  case $1 in
  ferry)
    "$FERRY" dns --listen "127.0.0.1:$FERRY_PORT" --metrics-listen "" --udp-workers "$WORKERS" \
      --static-zone "$work/static-zone.json" >"$work/ferry.log" 2>&1 &
    SPID=$!
    SPORT=$FERRY_PORT
    ;;
  nsd)
    "$NSD" -d -c "$work/nsd.conf" >"$work/nsd.out" 2>&1 &
    SPID=$!
    SPORT=$NSD_PORT
    ;;
  esac
  pids+=("$SPID")
  wait_up "$SPORT"
}

stop_server() {
  kill "$SPID" 2>/dev/null || true
  wait "$SPID" 2>/dev/null || true
}

# Idle RSS of ferry with an empty zone, and loaded with SERVICES services.
echo '{"services": []}' >"$work/empty.json"
"$FERRY" dns --listen "127.0.0.1:$FERRY_PORT" --metrics-listen "" --udp-workers "$WORKERS" \
  --static-zone "$work/empty.json" >/dev/null 2>&1 &
SPID=$!
pids+=("$SPID")
for _ in $(seq 1 100); do
  dig @127.0.0.1 -p "$FERRY_PORT" +short +tries=1 +time=1 dns-version.clusterset.local TXT 2>/dev/null | grep -q 1.0.0 && break
  sleep 0.1
done
rss_empty=$(rss_kb "$SPID")
stop_server

results="$work/results.tsv"
: >"$results"
for round in $(seq 1 "$ROUNDS"); do
  if [ $((round % 2)) -eq 1 ]; then order="ferry nsd"; else order="nsd ferry"; fi
  for s in $order; do
    start_server "$s"
    rss_before=$(rss_kb "$SPID")
    dnsperf -s 127.0.0.1 -p "$SPORT" -d "$work/queries.txt" -l "$DURATION" -c "$CLIENTS" -T 1 -q 500 >"$work/perf-$s-$round.txt" 2>&1
    qps=$(awk '/Queries per second:/ {print $4}' "$work/perf-$s-$round.txt")
    lost=$(awk '/Queries lost:/ {print $3}' "$work/perf-$s-$round.txt")
    lat=$(dnsperf -v -s 127.0.0.1 -p "$SPORT" -d "$work/queries.txt" -l "$LAT_DURATION" -Q "$LAT_QPS" -c 1 -T 1 2>/dev/null |
      awk '$1 == ">" {print $NF}' | sort -g |
      awk '{a[NR]=$1} END {if (NR==0) {print "nan nan"} else {i50=int(NR*0.50); if(i50<1)i50=1; i99=int(NR*0.99); if(i99<1)i99=1; printf "%.1f %.1f\n", a[i50]*1e6, a[i99]*1e6}}')
    rss_after=$(rss_kb "$SPID")
    stop_server
    read -r p50 p99 <<<"$lat"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$s" "$qps" "$p50" "$p99" "$rss_before" "$rss_after" "$lost" | tee -a "$results" >&2
  done
done

echo
echo "ferry dns vs NSD $(nsd -v 2>&1 | head -1 | awk '{print $NF}'): $SERVICES services, $WORKERS workers each, 127.0.0.1, $ROUNDS rounds alternating"
echo "columns above (stderr): round server qps p50 p99 rss_before_kb rss_after_kb queries_lost"
echo "QPS: dnsperf -c $CLIENTS -T 1 -q 500 -l $DURATION; latency: dnsperf -Q $LAT_QPS -l $LAT_DURATION (µs)"
awk -F'\t' -v rss_empty="$rss_empty" '
  function median(arr, n,   i, j, t) {
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (arr[j] < arr[i]) { t = arr[i]; arr[i] = arr[j]; arr[j] = t }
    return (n % 2) ? arr[(n + 1) / 2] : (arr[n / 2] + arr[n / 2 + 1]) / 2
  }
  { n[$2]++; q[$2, n[$2]] = $3; p50[$2, n[$2]] = $4; p99[$2, n[$2]] = $5; if ($2 == "ferry") { rb = $6; ra = $7 } }
  END {
    for (s in n) {
      for (i = 1; i <= n[s]; i++) { a[i] = q[s, i] } ; mq[s] = median(a, n[s])
      for (i = 1; i <= n[s]; i++) { a[i] = p50[s, i] } ; m50[s] = median(a, n[s])
      for (i = 1; i <= n[s]; i++) { a[i] = p99[s, i] } ; m99[s] = median(a, n[s])
    }
    printf "%-6s %12s %10s %10s\n", "", "QPS(median)", "p50 µs", "p99 µs"
    printf "%-6s %12.0f %10.1f %10.1f\n", "ferry", mq["ferry"], m50["ferry"], m99["ferry"]
    printf "%-6s %12.0f %10.1f %10.1f\n", "nsd", mq["nsd"], m50["nsd"], m99["nsd"]
    printf "ratio ferry/nsd: QPS %.2fx, p99 latency %.2fx (lower is better)\n", mq["ferry"] / mq["nsd"], m99["ferry"] / m99["nsd"]
    printf "ferry RSS: idle (empty zone) %.1f MB; %s services loaded %.1f MB; after load %.1f MB\n", rss_empty / 1024, "'"$SERVICES"'", rb / 1024, ra / 1024
  }' "$results"
