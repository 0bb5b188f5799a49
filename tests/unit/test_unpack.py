from __future__ import annotations

from pathlib import Path

from cairn.oci.layerdiff import read_filesystem, write_diff
from cairn.oci.unpack import unpack_layers
from tests.unit.test_layerdiff import PARENT, child_of, gz, make_tar


def tree_of(root: Path) -> dict[str, tuple[str, str]]:
    out: dict[str, tuple[str, str]] = {}
    for path in sorted(root.rglob("*")):
        name = path.relative_to(root).as_posix()
        if path.is_symlink():
            out[name] = ("sym", str(path.readlink()))
        elif path.is_dir():
            out[name] = ("dir", "")
        else:
            out[name] = ("file", path.read_text())
    return out


# A tar writer puts a hard link after the file it names; PARENT's gunzip sorts first.
REAL_PARENT = {k: v for k, v in PARENT.items() if k != "usr/bin/gunzip"}


def test_parent_and_diff_unpack_to_the_child(tmp_path: Path) -> None:
    make_tar(tmp_path / "parent.tar", REAL_PARENT, mtime=1000)
    make_tar(tmp_path / "child.tar", child_of(REAL_PARENT), mtime=1000)
    parent = read_filesystem([gz(tmp_path / "parent.tar")])
    write_diff(parent, tmp_path / "child.tar", tmp_path / "diff.tar", mtime=5000)
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "keep").write_text("the build's own")

    unpack_layers(
        [gz(tmp_path / "parent.tar"), gz(tmp_path / "diff.tar")], root, keep=("etc/keep",)
    )

    expected = {
        name: ("file", content) if kind not in ("dir", "sym") else (kind, content)
        for name, (kind, content) in child_of(REAL_PARENT).items()
    }
    for name, (kind, target) in child_of(REAL_PARENT).items():
        if kind == "hard":
            expected[name] = ("file", child_of(REAL_PARENT)[target][1])
    expected["etc/keep"] = ("file", "the build's own")
    assert tree_of(root) == expected
    # whiteouts removed what the child deleted, the directory and all
    assert not (root / "usr/lib/old").exists() and not (root / "gone").exists()
    # times come from the layers, a symbolic link's own included (or it would read as changed)
    assert (root / "link").lstat().st_mtime == 1000
    assert (root / "etc/new").stat().st_mtime == 1000
    assert (root / "usr/bin/perl5").stat().st_ino == (root / "usr/bin/perl").stat().st_ino


def test_opaque_whiteout_empties_the_lower_directory(tmp_path: Path) -> None:
    make_tar(tmp_path / "lower.tar", {"d": ("dir", ""), "d/a": ("file", "a")})
    make_tar(
        tmp_path / "upper.tar",
        {"d": ("dir", ""), "d/.wh..wh..opq": ("file", ""), "d/b": ("file", "b")},
    )
    root = tmp_path / "root"
    root.mkdir()
    unpack_layers([gz(tmp_path / "lower.tar"), gz(tmp_path / "upper.tar")], root)
    assert tree_of(root) == {"d": ("dir", ""), "d/b": ("file", "b")}
