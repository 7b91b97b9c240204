#!/usr/bin/env bash
# Runs every check CI runs: formatting, clippy, and the whole test suite.
# Tests that build network namespaces need root.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
# The end-to-end tests run this binary (target/debug/ferry) in sandbox clusters.
cargo build -p ferry
# setup.sh installed the client-compatibility suite's clients: run it.
export FERRY_REQUIRE_CLIENT_COMPAT=1
# ... and strongSwan, the IPsec interop peer (crates/ferry-ipsec/tests/strongswan.rs).
export FERRY_REQUIRE_STRONGSWAN=1
INSTA_UPDATE=no cargo nextest run --workspace --no-fail-fast "$@"
