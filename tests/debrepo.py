"""A small Debian archive made by a test: real .debs (dpkg-deb), Packages and Release,
served over HTTP on 127.0.0.1. The archive holds one version of each package at a
time, as Debian's suites do."""

from __future__ import annotations

import email.utils
import gzip
import hashlib
import http.server
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path

from tests.helpers import http_server

SUITE = "local"
ARCHES = ("amd64", "arm64")


def build_deb(work: Path, name: str, version: str) -> Path:
    """An Architecture: all package holding /usr/share/NAME/VERSION."""
    root = work / f"{name}_{version}"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "usr" / "share" / name).mkdir(parents=True)
    (root / "usr" / "share" / name / "VERSION").write_text(f"{version}\n")
    (root / "DEBIAN" / "control").write_text(
        f"Package: {name}\nVersion: {version}\nArchitecture: all\n"
        "Maintainer: cairn tests <tests@example.invalid>\nSection: misc\nPriority: optional\n"
        f"Description: test package {name}\n published by the cairn test suite\n"
    )
    deb = work / f"{name}_{version}_all.deb"
    subprocess.run(
        ["dpkg-deb", "--root-owner-group", "--build", str(root), str(deb)],
        check=True,
        capture_output=True,
    )
    return deb


def publish(repo: Path, packages: dict[str, str]) -> None:
    """Make `repo` an archive holding exactly `packages` (name -> version)."""
    shutil.rmtree(repo, ignore_errors=True)
    pool = repo / "pool"
    pool.mkdir(parents=True)
    stanzas = []
    for name, version in sorted(packages.items()):
        deb = build_deb(repo / "work", name, version)
        target = pool / deb.name
        shutil.move(deb, target)
        data = target.read_bytes()
        control = subprocess.run(
            ["dpkg-deb", "--field", str(target)], capture_output=True, text=True, check=True
        ).stdout.strip()
        stanzas.append(
            f"{control}\nFilename: pool/{target.name}\nSize: {len(data)}\n"
            f"SHA256: {hashlib.sha256(data).hexdigest()}\n"
        )
    shutil.rmtree(repo / "work")
    listing = "\n".join(stanzas).encode()
    files = []
    for arch in ARCHES:
        rel = f"main/binary-{arch}/Packages"
        path = repo / "dists" / SUITE / rel
        path.parent.mkdir(parents=True)
        path.write_bytes(listing)
        (path.parent / "Packages.gz").write_bytes(gzip.compress(listing, mtime=0))
        for f in (rel, rel + ".gz"):
            blob = (repo / "dists" / SUITE / f).read_bytes()
            files.append(f" {hashlib.sha256(blob).hexdigest()} {len(blob)} {f}")
    (repo / "dists" / SUITE / "Release").write_text(
        f"Origin: cairn-tests\nLabel: cairn-tests\nSuite: {SUITE}\nCodename: {SUITE}\n"
        f"Date: {email.utils.formatdate(usegmt=True)}\n"
        f"Architectures: {' '.join(ARCHES)}\nComponents: main\nSHA256:\n" + "\n".join(files) + "\n"
    )


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def serve(repo: Path) -> Iterator[str]:
    """Serve `repo` on 127.0.0.1; yields its URL."""
    repo.mkdir(parents=True, exist_ok=True)
    with http_server(partial(_Quiet, directory=str(repo))) as host:
        yield f"http://{host}"
