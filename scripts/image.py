#!/usr/bin/env python3
"""Builds ferry's OCI image archive from a built binary, reproducibly.

The image holds exactly: the `ferry` binary and the per-daemon binaries
beside it (`ferry-agent`, `ferry-dns`, `ferry-gateway`, `ferry-route-agent`),
the host programs ferry runs on
nodes (`ip`, `bridge`, `nft`, `sysctl`), the shared libraries those ELF files
need (found with ldd, resolved to real files), the ELF interpreter,
/etc/passwd and /etc/group naming root and the non-root user `ferry`
(65532), and empty /tmp and /var/lib/ferry. No shell, no package manager.

Reproducible: every tar entry has owner 0:0, mode from the source, mtime
SOURCE_DATE_EPOCH (the commit's time), sorted names; gzip carries no name or
time; the config's `created` is the same epoch. Two builds from one commit
on one toolchain give one digest.

Usage: image.py --binary target/release/ferry --tag ferry:0.1.0 --out F.tar
"""

import argparse
import gzip
import hashlib
import io
import json
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import time

NONROOT = 65532
# Programs ferry runs on a node (ferry-net: ip, bridge, nft, sysctl).
HOST_PROGRAMS = ["ip", "bridge", "nft", "sysctl"]
# One binary per daemon (what the manifests run; each links only its daemon,
# so an idle one maps less code than `ferry <daemon>` would: issue #19).
DAEMON_BINARIES = ["ferry-agent", "ferry-dns", "ferry-gateway", "ferry-route-agent"]


def which(prog):
    for d in ["/usr/sbin", "/usr/bin", "/sbin", "/bin"]:
        p = os.path.join(d, prog)
        if os.path.isfile(p) and os.access(p, os.X_OK):
            return p
    sys.exit(f"error: {prog} not found\nhint: apt-get install iproute2 nftables procps")


def needed_libraries(elf):
    """Absolute paths of the shared objects `elf` loads, and its interpreter."""
    out = subprocess.run(["ldd", elf], capture_output=True, text=True)
    if out.returncode != 0:
        if "not a dynamic executable" in out.stdout + out.stderr:
            return []
        sys.exit(f"error: ldd {elf}: {out.stderr.strip()}")
    libs = []
    for line in out.stdout.splitlines():
        m = re.search(r"=>\s+(/\S+)", line) or re.match(r"\s*(/\S+)\s+\(", line)
        if m:
            libs.append(m.group(1))
        elif "not found" in line:
            sys.exit(f"error: {elf} needs {line.strip()}, which is not installed")
    return libs


def rootfs_files(binary):
    """{path in image: source path} of every regular file in the image."""
    files = {"/usr/bin/ferry": binary}
    elves = [binary]
    # The per-daemon binaries ferry's manifests run, built beside ferry.
    for name in DAEMON_BINARIES:
        src = os.path.join(os.path.dirname(os.path.abspath(binary)), name)
        if not os.path.isfile(src):
            sys.exit(f"error: {src} not found\nhint: cargo build -p ferry builds it beside ferry")
        files[f"/usr/bin/{name}"] = src
        elves.append(src)
    for prog in HOST_PROGRAMS:
        src = which(prog)
        files[f"/usr/sbin/{prog}"] = src
        elves.append(src)
    for elf in elves:
        for lib in needed_libraries(elf):
            # The image keeps the path the loader asks for (e.g.
            # /lib64/ld-linux-x86-64.so.2) with the real file's bytes.
            files[lib] = os.path.realpath(lib)
    return files


def stripped(src):
    """`src`'s bytes without debug sections (line tables make ferry ~200 MB;
    backtraces still name functions from the symbol table). GNU strip is
    deterministic: one input, one output."""
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "stripped")
        subprocess.run(["strip", "--strip-debug", "-o", out, src], check=True)
        with open(out, "rb") as f:
            return f.read()


def etc_files():
    passwd = f"root:x:0:0:root:/root:/usr/sbin/nologin\nferry:x:{NONROOT}:{NONROOT}:ferry:/nonexistent:/usr/sbin/nologin\n"
    group = f"root:x:0:\nferry:x:{NONROOT}:\n"
    return {"/etc/passwd": passwd.encode(), "/etc/group": group.encode()}


def layer_tar(files, epoch):
    """The single layer as an uncompressed tar (bytes)."""
    entries = {}  # path -> (TarInfo, bytes or None)

    def add_dir(path, mode=0o755):
        parts = path.strip("/").split("/")
        for i in range(1, len(parts) + 1):
            d = "/".join(parts[:i])
            if d not in entries:
                ti = tarfile.TarInfo(d)
                ti.type = tarfile.DIRTYPE
                ti.mode = mode if i == len(parts) else 0o755
                entries[d] = (ti, None)

    def add_file(path, data, mode):
        add_dir(os.path.dirname(path))
        ti = tarfile.TarInfo(path.lstrip("/"))
        ti.size = len(data)
        ti.mode = mode
        entries[ti.name] = (ti, data)

    for path, src in files.items():
        add_file(path, stripped(src), os.stat(src).st_mode & 0o755)
    for path, data in etc_files().items():
        add_file(path, data, 0o644)
    add_dir("/tmp", 0o1777)
    add_dir("/var/lib/ferry", 0o755)

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(entries):
            ti, data = entries[name]
            ti.uid = ti.gid = 0
            ti.uname = ti.gname = ""
            ti.mtime = epoch
            tar.addfile(ti, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def gzip_bytes(data):
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0, filename="", compresslevel=6) as g:
        g.write(data)
    return buf.getvalue()


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def canonical(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def build(binary, tag, epoch, version):
    layer = layer_tar(rootfs_files(binary), epoch)
    layer_gz = gzip_bytes(layer)
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))
    config = canonical(
        {
            "architecture": "amd64",
            "os": "linux",
            "created": created,
            "config": {
                "Entrypoint": ["/usr/bin/ferry"],
                "User": f"{NONROOT}:{NONROOT}",
                "Env": ["PATH=/usr/sbin:/usr/bin"],
                "WorkingDir": "/",
                "Labels": {
                    "org.opencontainers.image.title": "ferry",
                    "org.opencontainers.image.version": version,
                },
            },
            "rootfs": {"type": "layers", "diff_ids": [sha256(layer)]},
            "history": [{"created": created, "created_by": "scripts/image.sh"}],
        }
    )
    manifest = canonical(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": sha256(config),
                "size": len(config),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": sha256(layer_gz),
                    "size": len(layer_gz),
                }
            ],
        }
    )
    index = canonical(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [
                {
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "digest": sha256(manifest),
                    "size": len(manifest),
                    "annotations": {
                        # podman/skopeo name the loaded image from this.
                        "org.opencontainers.image.ref.name": tag,
                        "io.containerd.image.name": tag,
                    },
                }
            ],
        }
    )
    blobs = {sha256(b): b for b in [layer_gz, config, manifest]}
    return sha256(manifest), index, blobs


def write_archive(out, index, blobs, epoch):
    files = {
        "oci-layout": canonical({"imageLayoutVersion": "1.0.0"}),
        "index.json": index,
    }
    for digest, data in blobs.items():
        files["blobs/sha256/" + digest.split(":", 1)[1]] = data
    dirs = ["blobs", "blobs/sha256"]
    tmp = out + ".tmp"
    with tarfile.open(tmp, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for d in dirs:
            ti = tarfile.TarInfo(d)
            ti.type, ti.mode, ti.mtime = tarfile.DIRTYPE, 0o755, epoch
            tar.addfile(ti)
        for name in sorted(files):
            ti = tarfile.TarInfo(name)
            ti.size, ti.mode, ti.mtime = len(files[name]), 0o644, epoch
            tar.addfile(ti, io.BytesIO(files[name]))
    os.replace(tmp, out)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--binary", required=True)
    p.add_argument("--tag", required=True, help="image name:tag (ferry join --image's default)")
    p.add_argument("--version", required=True)
    p.add_argument("--epoch", type=int, required=True, help="SOURCE_DATE_EPOCH")
    p.add_argument("--out", required=True)
    a = p.parse_args()
    digest, index, blobs = build(a.binary, a.tag, a.epoch, a.version)
    write_archive(a.out, index, blobs, a.epoch)
    print(digest)


if __name__ == "__main__":
    main()
