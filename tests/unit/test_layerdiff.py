from __future__ import annotations

import gzip
import io
import shutil
import tarfile
from pathlib import Path

from cairn.oci.layerdiff import read_filesystem, write_diff

Tree = dict[str, tuple[str, str]]  # name -> (kind, content or link target)


def make_tar(path: Path, tree: Tree, mode: int = 0o644, mtime: int = 1000) -> None:
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tf:
        for name, (kind, data) in sorted(tree.items()):
            info = tarfile.TarInfo(f"./{name}")
            info.mtime = mtime
            if kind == "dir":
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tf.addfile(info)
            elif kind == "sym":
                info.type, info.linkname = tarfile.SYMTYPE, data
                tf.addfile(info)
            elif kind == "hard":
                info.type, info.linkname = tarfile.LNKTYPE, f"./{data}"
                tf.addfile(info)
            else:
                raw = data.encode()
                info.size, info.mode = len(raw), int(kind) if kind.isdigit() else mode
                tf.addfile(info, io.BytesIO(raw))


def gz(src: Path) -> Path:
    out = src.with_suffix(".tar.gz")
    with src.open("rb") as f, gzip.open(out, "wb") as g:
        shutil.copyfileobj(f, g)
    return out


PARENT: Tree = {
    "etc": ("dir", ""),
    "etc/keep": ("file", "same"),
    "etc/change": ("file", "old"),
    "etc/mode": ("file", "x"),
    "usr": ("dir", ""),
    "usr/bin": ("dir", ""),
    "usr/bin/perl": ("file", "perl 1"),
    "usr/bin/perl5": ("hard", "usr/bin/perl"),
    "usr/bin/gzip": ("file", "gzip"),
    "usr/bin/gunzip": ("hard", "usr/bin/gzip"),
    "usr/lib": ("dir", ""),
    "usr/lib/old": ("dir", ""),
    "usr/lib/old/a": ("file", "a"),
    "usr/lib/old/b": ("file", "b"),
    "link": ("sym", "etc/keep"),
    "gone": ("file", "bye"),
}


def child_of(parent: Tree) -> Tree:
    child = dict(parent)
    child["etc/change"] = ("file", "new")
    child["etc/mode"] = ("755", "x")
    child["etc/new"] = ("file", "hello")
    child["usr/bin/perl"] = ("file", "perl 2")  # its hard link must follow
    child["usr/bin/zcat"] = ("hard", "usr/bin/gzip")  # new link to an unchanged file
    child["link"] = ("sym", "etc/new")
    for name in ("usr/lib/old", "usr/lib/old/a", "usr/lib/old/b", "gone"):
        del child[name]
    return child


def test_parent_plus_diff_is_the_child(tmp_path: Path) -> None:
    make_tar(tmp_path / "parent.tar", PARENT)
    make_tar(tmp_path / "child.tar", child_of(PARENT))
    parent = read_filesystem([gz(tmp_path / "parent.tar")])
    stats = write_diff(parent, tmp_path / "child.tar", tmp_path / "diff.tar", mtime=5000)

    applied = read_filesystem([gz(tmp_path / "parent.tar"), gz(tmp_path / "diff.tar")])
    expected = read_filesystem([gz(tmp_path / "child.tar")])
    # the one deliberate difference: a new hard link to a file of a lower layer
    # becomes a copy of that file (same content), since links stay within a layer
    zcat, want = applied.pop("usr/bin/zcat"), expected.pop("usr/bin/zcat")
    assert (zcat.type, zcat.digest) == (b"0", want.digest)
    assert applied == expected
    assert (stats.added, stats.modified, stats.deleted) == (2, 5, 2)

    with tarfile.open(tmp_path / "diff.tar") as tf:
        names = {m.name: m for m in tf.getmembers()}
    # only what changed, and one whiteout for the whole deleted directory
    assert sorted(names) == [
        "./.wh.gone",
        "./etc/change",
        "./etc/mode",
        "./etc/new",
        "./link",
        "./usr/bin/perl",
        "./usr/bin/perl5",
        "./usr/bin/zcat",
        "./usr/lib/.wh.old",
    ]
    # a hard link into a lower layer is carried as the file itself
    assert names["./usr/bin/zcat"].isreg()
    assert names["./usr/bin/perl5"].islnk()
    assert names["./usr/lib/.wh.old"].mtime == 5000


def test_later_times_are_clamped_and_engine_files_ignored(tmp_path: Path) -> None:
    """A step that only touches files (or an engine's /etc/hosts) changes no layer."""
    make_tar(tmp_path / "parent.tar", PARENT)
    touched = {**child_of(PARENT), "etc/hosts": ("file", "127.0.0.1 build-host")}
    make_tar(tmp_path / "child.tar", touched, mtime=9999)
    parent = read_filesystem([gz(tmp_path / "parent.tar")])
    write_diff(
        parent,
        tmp_path / "child.tar",
        tmp_path / "diff.tar",
        mtime=1000,
        ignore=lambda name: name == "etc/hosts",
    )
    with tarfile.open(tmp_path / "diff.tar") as tf:
        members = {m.name: m for m in tf.getmembers()}
    assert "./etc/hosts" not in members
    assert "./etc/keep" not in members  # same content, only touched
    assert {m.mtime for m in members.values()} == {1000}


def test_identical_file_systems_give_an_empty_layer(tmp_path: Path) -> None:
    make_tar(tmp_path / "parent.tar", PARENT)
    parent = read_filesystem([gz(tmp_path / "parent.tar")])
    stats = write_diff(parent, tmp_path / "parent.tar", tmp_path / "diff.tar", mtime=0)
    assert (stats.added, stats.modified, stats.deleted) == (0, 0, 0)
    with tarfile.open(tmp_path / "diff.tar") as tf:
        assert tf.getmembers() == []


def test_opaque_whiteout_hides_the_lower_directory(tmp_path: Path) -> None:
    make_tar(tmp_path / "lower.tar", {"d": ("dir", ""), "d/a": ("file", "a")})
    with tarfile.open(tmp_path / "upper.tar", "w") as tf:
        tf.addfile(tarfile.TarInfo("d/.wh..wh..opq"))
        info = tarfile.TarInfo("d/b")
        info.size = 1
        tf.addfile(info, io.BytesIO(b"b"))
    fs = read_filesystem([gz(tmp_path / "lower.tar"), gz(tmp_path / "upper.tar")])
    assert sorted(fs) == ["d", "d/b"]
