#!/usr/bin/env bash
# Installs what ferry's build, tests, demo and benchmarks need on Debian 12.
# Idempotent: packages already present are not fetched again.
set -euo pipefail

PACKAGES=(
  iproute2 nftables iptables iputils-ping dnsutils iperf3 procps psmisc
  wireguard-go wireguard-tools etcd-server etcd-client tcpdump curl ca-certificates
  python3-venv
  # runc: the sandbox's `--runtime runc` (pods as containers of ferry's image;
  # crun 1.8 refuses the hybrid cgroup layout these machines have).
  runc
  # chromium: the headless browser tests/e2e/tests/dashboard.rs looks at
  # `ferry dashboard` with (screenshot, DOM, DevTools protocol).
  chromium
  # strongSwan with user-space ESP (kernel-libipsec): the IPsec interop peer and
  # benchmark anchor of crates/ferry-ipsec (standard-plugins: gcm, openssl).
  strongswan-charon strongswan-swanctl libcharon-extra-plugins libstrongswan-standard-plugins
)

need_root() {
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup.sh: installing packages needs root (run with sudo)" >&2
    exit 1
  fi
}

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  need_root
  echo "setup.sh: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null; then
  echo "setup.sh: cargo not found; install Rust 1.95 (rustup) first" >&2
  exit 1
fi
if ! cargo nextest --version >/dev/null 2>&1; then
  echo "setup.sh: installing cargo-nextest"
  cargo install --locked cargo-nextest
fi
# Node.js and npm: the machine's own when present (it may carry newer ones
# than Debian's, from another source, which Debian's npm package conflicts
# with); Debian's otherwise.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  need_root
  echo "setup.sh: installing nodejs npm"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi
# The API server's client-compatibility suite
# (crates/ferry-apiserver/tests/clients.rs): the official Python client in
# two versions from PyPI, 32.0.1 (sends watch=True) and 37.0.2, and the
# JavaScript client from npm.
compat_dir="${FERRY_CLIENT_COMPAT_DIR:-$HOME/.cache/ferry/client-compat}"
for v in 32.0.1 37.0.2; do
  venv="$compat_dir/python-kubernetes-$v"
  if ! "$venv/bin/python" -c "import kubernetes" 2>/dev/null; then
    echo "setup.sh: installing the Python kubernetes client $v into $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q "kubernetes==$v"
  fi
done
if [ ! -d "$compat_dir/node-client-1.4.0/node_modules/@kubernetes/client-node" ]; then
  echo "setup.sh: installing @kubernetes/client-node 1.4.0 into $compat_dir/node-client-1.4.0"
  npm install --silent --no-audit --no-fund --prefix "$compat_dir/node-client-1.4.0" @kubernetes/client-node@1.4.0
fi
command -v kubectl >/dev/null || echo "setup.sh: note: kubectl not found; the kubectl tests will fail" >&2
# A build that runs out of disk dies with confusing linker errors (SIGBUS);
# say so up front instead.
avail_kb=$(df -Pk . | awk 'NR==2 {print $4}')
if [ "${avail_kb:-0}" -lt $((8 * 1024 * 1024)) ]; then
  echo "setup.sh: warning: only $((avail_kb / 1024)) MiB free on $(df -P . | awk 'NR==2 {print $6}'); a clean build and test run needs ~8 GiB" >&2
fi
echo "setup.sh: ready"
