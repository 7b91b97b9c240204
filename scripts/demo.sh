#!/usr/bin/env bash
# ferry's main job on a fresh machine: install what is needed, build ferry,
# and run `ferry sandbox demo` — two sandbox clusters on this machine, a
# broker, both joined through WireGuard, an HTTP service exported from
# cluster1 and reached by name from a pod in cluster0; ferry's components
# run as runc containers of its image, built here by scripts/image.sh.
#
# Re-running it rebuilds the demo clusters (cluster0, cluster1) from nothing.
# Everything stays up afterwards; remove it with `ferry sandbox delete --all`.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
cargo build -p ferry
FERRY=$PWD/target/debug/ferry
# ferry's image from that binary (seconds): the demo runs ferry's components
# from it under runc (`--runtime local` runs the host binary instead).
FERRY_BIN=$FERRY ./scripts/image.sh
# `ferry` on PATH, so the commands the demo suggests work as printed.
if [ "$(readlink -f /usr/local/bin/ferry 2>/dev/null)" != "$FERRY" ]; then
  ln -sf "$FERRY" /usr/local/bin/ferry
  echo "linked /usr/local/bin/ferry -> $FERRY"
fi
for c in cluster0 cluster1; do
  if "$FERRY" sandbox kubeconfig "$c" >/dev/null 2>&1; then
    "$FERRY" sandbox delete "$c"
  fi
done
exec "$FERRY" sandbox demo "$@"
