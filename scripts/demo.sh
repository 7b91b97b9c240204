#!/usr/bin/env bash
# ferry's main job on a fresh machine. Today: start `ferry apiserver`, install
# ferry's CRDs into it and show kubectl working against it (the multi-cluster
# sandbox demo replaces this once `ferry sandbox demo` exists).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
cargo build -p ferry
FERRY=target/debug/ferry
DATA=${FERRY_DEMO_DIR:-$PWD/.ferry-demo}
LISTEN=${FERRY_DEMO_LISTEN:-127.0.0.1:6443}

"$FERRY" apiserver --data-dir "$DATA" --listen "$LISTEN" &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
export KUBECONFIG="$DATA/admin.kubeconfig"
for _ in $(seq 100); do
  [ -f "$KUBECONFIG" ] && kubectl get --raw /readyz >/dev/null 2>&1 && break
  sleep 0.1
done
"$FERRY" crds | kubectl apply -f -
kubectl apply -f examples/broker-serviceimport.yaml
kubectl -n ferry-broker get serviceimport
kubectl -n ferry-broker get endpointslice
cat <<MSG

ferry apiserver is running (pid $SERVER), data in $DATA.
Use it from another shell:
    export KUBECONFIG=$KUBECONFIG
    kubectl get namespaces
    kubectl -n ferry-broker get serviceimport -o yaml
Press Ctrl-C to stop it.
MSG
wait $SERVER
