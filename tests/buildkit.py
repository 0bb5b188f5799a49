"""BuildKit in a fresh Debian 13 root (tests/freshroot.py), for the bake file's test.

Debian 13's `docker.io` (26.1) and `docker-buildx` (0.13) run `docker buildx bake` with
the docker driver. A multi-platform build needs the containerd image store there
(`features.containerd-snapshotter`; its `native` snapshotter works on any file system).

The engine runs in a network namespace of its own, reaching the Debian archive through
slirp4netns (user-mode networking), so that its bridge and firewall rules live and die
with the namespace: nothing of them is left on the machine. The root's removal ends
every process in it, the engine included.
"""

from __future__ import annotations

import hashlib
import json
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.freshroot import FreshRoot

SOCKET = "/run/cairn-test-docker.sock"
DOCKER = f"DOCKER_HOST=unix://{SOCKET} docker"
PACKAGES = ("docker.io", "docker-cli", "docker-buildx", "slirp4netns")

START = f"""
mkdir -p /etc/docker
echo '{{"features": {{"containerd-snapshotter": true}}}}' > /etc/docker/daemon.json
unshare --net --fork -- dockerd --storage-driver=native -H unix://{SOCKET} \\
    > /root/dockerd.log 2>&1 &
netns=$!
# only once unshare has its namespace (before, it is the machine's): there tap0 gets
# 10.0.2.100 and a route out through slirp4netns's own sockets
for _ in $(seq 100); do
    [ "$(readlink /proc/$netns/ns/net)" != "$(readlink /proc/self/ns/net)" ] && break
    sleep 0.1
done
[ "$(readlink /proc/$netns/ns/net)" != "$(readlink /proc/self/ns/net)" ]
slirp4netns --configure --mtu=65520 --disable-host-loopback $netns tap0 \\
    > /root/slirp4netns.log 2>&1 &
for _ in $(seq 120); do {DOCKER} info >/dev/null 2>&1 && break; sleep 0.5; done
{DOCKER} info --format '{{{{.ServerVersion}}}} {{{{.Driver}}}}'
{DOCKER} buildx version
"""


def start_engine(root: FreshRoot) -> str:
    """Install the engine's packages in the root and start it; its versions."""
    root.run(
        "install docker.io and docker-buildx",
        "apt-get update -qq\n"
        f"DEBIAN_FRONTEND=noninteractive apt-get install -y -qq {' '.join(PACKAGES)} >/dev/null",
    )
    return root.run("start dockerd", START)


@dataclass(frozen=True)
class Entry:
    """One path of an image's file system as a tar exporter writes it."""

    kind: str  # tarfile's type, decoded: "0" file, "2" symlink, "5" directory, ...
    mode: int
    owner: str  # uname:gname (uid:gid where no name is given)
    link: str
    digest: str | None  # sha256 of a file's contents


def listing(tar: Path) -> dict[str, dict[str, Entry]]:
    """platform directory (linux_amd64, ...) -> path -> Entry, from a multi-platform
    `type=tar` export. mtimes are left out: the engines date files differently."""
    platforms: dict[str, dict[str, Entry]] = {}
    with tarfile.open(tar) as archive:
        for member in archive:
            platform, _, path = member.name.partition("/")
            if not path:
                continue
            digest = None
            if member.isfile():
                stream = archive.extractfile(member)
                assert stream is not None
                digest = hashlib.sha256(stream.read()).hexdigest()
            platforms.setdefault(platform, {})[path] = Entry(
                kind=member.type.decode(),
                mode=member.mode,
                owner=f"{member.uname or member.uid}:{member.gname or member.gid}",
                link=member.linkname,
                digest=digest,
            )
    return platforms


KINDS = {"0": "file", "2": "symlink", "5": "directory"}


def summary(entry: Entry | None) -> str:
    """'absent', or kind, mode and owner: "file 644 0:0"."""
    if entry is None:
        return "absent"
    return f"{KINDS.get(entry.kind, entry.kind)} {entry.mode:o} {entry.owner}"


def differences(a: dict[str, Entry], b: dict[str, Entry]) -> dict[str, tuple[str, str]]:
    """path -> (a's summary, b's) for every path not the same in both; where only the
    contents or the link target differ, the summaries end with them."""
    out = {}
    for path in sorted(a.keys() | b.keys()):
        x, y = a.get(path), b.get(path)
        if x == y:
            continue
        sx, sy = summary(x), summary(y)
        if sx == sy and x is not None and y is not None:
            sx, sy = f"{sx} {x.link or x.digest}", f"{sy} {y.link or y.digest}"
        out[path] = (sx, sy)
    return out


@dataclass(frozen=True)
class Image:
    """One platform's image: its layers' digests, and its config's `config` (Env, Cmd...)."""

    layers: list[str]
    config: dict[str, Any]


def oci_images(tar: Path) -> dict[str, Image]:
    """A `type=oci` export's images by platform (BuildKit's attestation manifests left out)."""
    with tarfile.open(tar) as archive:

        def blob(digest: str) -> dict[str, Any]:
            stream = archive.extractfile(f"blobs/sha256/{digest.removeprefix('sha256:')}")
            assert stream is not None
            return dict(json.load(stream))

        index_file = archive.extractfile("index.json")
        assert index_file is not None
        (top,) = json.load(index_file)["manifests"]
        return _platform_images(blob, top["digest"])


def layout_images(layout: Path, name: str) -> dict[str, Image]:
    """The same for the image `name` of an OCI layout (cairn's output)."""

    def blob(digest: str) -> dict[str, Any]:
        return dict(json.loads((layout / "blobs/sha256" / digest.split(":")[1]).read_bytes()))

    index = json.loads((layout / "index.json").read_text())
    (top,) = [
        m
        for m in index["manifests"]
        if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == name
    ]
    return _platform_images(blob, top["digest"])


def _platform_images(read: Callable[[str], dict[str, Any]], digest: str) -> dict[str, Image]:
    out: dict[str, Image] = {}
    for m in read(digest)["manifests"]:
        platform = m.get("platform", {})
        if platform.get("os") != "linux":  # BuildKit's attestation manifests: "unknown"
            continue
        manifest = read(m["digest"])
        config = read(manifest["config"]["digest"])
        out[f"linux/{platform['architecture']}"] = Image(
            layers=[layer["digest"] for layer in manifest["layers"]],
            config=config.get("config", {}),
        )
    return out
