#!/usr/bin/env bash
# Builds ferry's OCI image archive, offline and reproducibly:
#   target/image/ferry-<version>.oci.tar, named ferry:<version> (what
#   `ferry join --image` defaults to), and prints its manifest digest.
# Load it:  podman load -i target/image/ferry-<version>.oci.tar
# Push it:  skopeo copy oci-archive:target/image/ferry-<version>.oci.tar \
#               docker://REGISTRY/ferry:<version>
#           (then `ferry join … --image REGISTRY/ferry:<version>`)
# FERRY_BIN=path uses that binary instead of building target/release/ferry.
set -euo pipefail
cd "$(dirname "$0")/.."
version=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"/\1/p' Cargo.toml)
bin=${FERRY_BIN:-}
if [ -z "$bin" ]; then
    # Paths inside the binary (panic locations) must not depend on where
    # the repository was cloned, or two clones would build two digests.
    export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
    cargo build --release --locked -p ferry
    bin=$CARGO_TARGET_DIR/release/ferry
fi
# The commit's time, so a rebuild from the same commit stamps the same time.
epoch=$(git log -1 --format=%ct 2>/dev/null || echo 0)
mkdir -p target/image
out=target/image/ferry-$version.oci.tar
digest=$(python3 scripts/image.py --binary "$bin" --tag "ferry:$version" \
    --version "$version" --epoch "$epoch" --out "$out")
echo "$out ferry:$version $digest"
