"""One rule for paths inside a root: on disk and in an index of layers alike, and as the
kernel itself resolves them from a chroot."""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from cairn.inroot import LinkLoop, directory_lookup, index_lookup, resolve

LINKS = {
    "bin": "usr/bin",  # merged /usr, relative
    "lib": "/usr/lib",  # absolute: restarts at the root
    "usr/lib/up": "../../../../usr",  # climbs past the root: stays at it
    "usr/bin/sh": "dash",
    "usr/bin/dangling": "/nowhere",
    "loop/a": "b",
    "loop/b": "a",
    "usr/lib/self": ".",
}
DIRS = ["usr", "usr/bin", "usr/lib", "loop"]
FILES = ["usr/bin/dash", "usr/lib/libc.so.6"]
QUERIES = [
    "/bin/sh",
    "bin/dash",
    "/lib/libc.so.6",
    "/usr/lib/up/lib/libc.so.6",
    "/usr/lib/self/self/libc.so.6",
    "/bin/dangling",
    "/bin/missing",
    "/usr/bin/dash/x",
    "/../../usr/bin/dash",
    "/",
]


@dataclass
class Node:
    kind: str
    linkname: str = ""


def make_root(root: Path) -> None:
    for d in DIRS:
        (root / d).mkdir(parents=True, exist_ok=True)
    for f in FILES:
        (root / f).write_text(f)
    for link, target in LINKS.items():
        (root / link).symlink_to(target)


def index() -> dict[str, Node]:
    out = {d: Node("dir") for d in DIRS}
    out.update({f: Node("file") for f in FILES})
    out.update({link: Node("symlink", target) for link, target in LINKS.items()})
    return out


def test_resolution_by_hand() -> None:
    lookup = index_lookup(index())
    assert resolve(lookup, "/bin/sh") == "usr/bin/dash"
    assert resolve(lookup, "/bin/sh", follow_last=False) == "usr/bin/sh"
    assert resolve(lookup, "/lib/libc.so.6") == "usr/lib/libc.so.6"
    assert resolve(lookup, "/usr/lib/up/lib/libc.so.6") == "usr/lib/libc.so.6"
    assert resolve(lookup, "/bin/dangling") is None
    assert resolve(lookup, "/usr/bin/dash/x") is None  # a file is no directory
    assert resolve(lookup, "/") == ""
    with pytest.raises(LinkLoop):
        resolve(lookup, "/loop/a")


def test_disk_and_index_agree(tmp_path: Path) -> None:
    make_root(tmp_path)
    on_disk, in_index = directory_lookup(tmp_path), index_lookup(index())
    for query in QUERIES:
        assert resolve(on_disk, query) == resolve(in_index, query), query


@pytest.mark.skipif(os.geteuid() != 0, reason="chroot(2) needs root")
def test_the_kernel_agrees_from_a_chroot(tmp_path: Path) -> None:
    make_root(tmp_path)
    lookup = directory_lookup(tmp_path)
    for query in [*QUERIES, "/loop/a"]:
        try:
            expected: int | None = None
            found = resolve(lookup, query)
            if found is not None:
                expected = (tmp_path / found).stat().st_ino if found else tmp_path.stat().st_ino
        except LinkLoop:
            expected = -1  # ELOOP
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: the kernel resolves the query inside the root
            try:
                os.chroot(tmp_path)
                os.chdir("/")
                try:
                    answer = str(Path(query).stat().st_ino)
                except OSError as e:
                    answer = "-1" if e.errno == errno.ELOOP else "none"
                os.write(write, answer.encode())
            finally:
                os._exit(0)
        os.close(write)
        answer = os.read(read, 64).decode()
        os.close(read)
        os.waitpid(pid, 0)
        assert answer == ("none" if expected is None else str(expected)), query
