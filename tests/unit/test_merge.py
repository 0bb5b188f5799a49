"""Per-platform layouts (one pipeline job each) joined into one store."""

from __future__ import annotations

from pathlib import Path

import pytest

from cairn.errors import StoreError, UsageError
from cairn.family.merge import merge_layouts
from cairn.family.spec import Family, load_family
from cairn.oci.layout import OciLayout, reachable
from tests.helpers import snapshot, tiny_image


def family(tmp_path: Path) -> Family:
    (tmp_path / "fam").mkdir()
    (tmp_path / "fam" / "cairn.toml").write_text(
        '[images.base]\npackages = []\n[images.app]\nfrom = "base"\npackages = ["hello"]\n'
    )
    return load_family(tmp_path / "fam")


def one_platform(root: Path, platform: str, **images: bytes) -> OciLayout:
    layout = OciLayout(root)
    with layout.staging() as stage:
        for name, content in images.items():
            tiny_image(stage, name, content, platforms=(platform,))
    return layout


def test_per_platform_layouts_become_one_index_per_image(tmp_path: Path) -> None:
    fam = family(tmp_path)
    amd = one_platform(tmp_path / "amd64", "linux/amd64", base=b"b", app=b"a")
    # the arm64 job of app also holds its parent, as the job that built it left it
    arm = one_platform(tmp_path / "arm64", "linux/arm64", base=b"b", app=b"a")
    arm_base_only = one_platform(tmp_path / "arm64-base", "linux/arm64", base=b"b")

    merged = merge_layouts(fam, [amd.root, arm_base_only.root, arm.root], f"oci:{tmp_path / 'out'}")

    assert [(m.name, m.platforms, m.missing) for m in merged] == [
        ("base", ("linux/amd64", "linux/arm64"), ()),
        ("app", ("linux/amd64", "linux/arm64"), ()),
    ]
    out = OciLayout(tmp_path / "out")
    for name in ("base", "app"):
        got = {m.platform.name: m.digest for m in out.platform_manifests(name) if m.platform}
        assert got["linux/amd64"] == amd.platform_manifests(name)[0].digest
        assert got["linux/arm64"] == arm.platform_manifests(name)[0].digest
    # every blob the merged indexes reach was copied, and nothing else
    blobs = {p.name for p in (tmp_path / "out" / "blobs" / "sha256").iterdir()}
    assert blobs == {d.partition(":")[2] for d in reachable(out)}
    assert out.read_json(out.refs()["app"].digest)["annotations"]["vnd.cairn.debian.suite"]


def test_a_platform_nobody_built_is_reported(tmp_path: Path) -> None:
    fam = family(tmp_path)
    amd = one_platform(tmp_path / "amd64", "linux/amd64", base=b"b")
    (merged,) = merge_layouts(fam, [amd.root], f"oci:{tmp_path / 'out'}")
    assert merged.missing == ("linux/arm64",)


def test_disagreeing_layouts_change_nothing(tmp_path: Path) -> None:
    fam = family(tmp_path)
    one = one_platform(tmp_path / "one", "linux/amd64", base=b"b")
    other = one_platform(tmp_path / "other", "linux/amd64", base=b"rebuilt differently")
    one_platform(tmp_path / "out", "linux/arm64", app=b"already here")
    before = snapshot(tmp_path / "out")
    with pytest.raises(UsageError, match="different linux/amd64 images of base"):
        merge_layouts(fam, [one.root, other.root], f"oci:{tmp_path / 'out'}")
    assert snapshot(tmp_path / "out") == before


def test_a_damaged_blob_is_refused(tmp_path: Path) -> None:
    fam = family(tmp_path)
    amd = one_platform(tmp_path / "amd64", "linux/amd64", base=b"b")
    manifest = amd.read_json(amd.platform_manifests("base")[0].digest)
    amd.blob_path(manifest["layers"][0]["digest"]).write_bytes(b"not the layer")
    with pytest.raises(StoreError, match="does not match its digest"):
        merge_layouts(fam, [amd.root], f"oci:{tmp_path / 'out'}")
    assert not (tmp_path / "out").exists()


def test_sources_must_be_layouts_and_not_the_output(tmp_path: Path) -> None:
    fam = family(tmp_path)
    amd = one_platform(tmp_path / "amd64", "linux/amd64", base=b"b")
    with pytest.raises(UsageError, match="not an OCI image layout"):
        merge_layouts(fam, [tmp_path / "fam"], f"oci:{tmp_path / 'out'}")
    with pytest.raises(UsageError, match="also one of the sources"):
        merge_layouts(fam, [amd.root], f"oci:{amd.root}")
    with pytest.raises(UsageError, match="holds an image of"):
        merge_layouts(
            fam,
            [one_platform(tmp_path / "x", "linux/amd64", other=b"o").root],
            f"oci:{tmp_path / 'out'}",
        )
