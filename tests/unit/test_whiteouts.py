"""One whiteout rule for every reader of layers: unpacking, diffing and measuring agree."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from cairn.measure.operations import analyze_image
from cairn.oci.layerdiff import read_filesystem
from cairn.oci.unpack import unpack_layers
from cairn.oci.whiteouts import LayerMarkers, Marker, apply_layer, marker
from tests.layers import M, oci_image, tar_bytes

# Layer 1 puts d/new in *before* its opaque marker for d: the marker hides only what
# layer 0 put there. .wh.g deletes g with all below it.
STACK = [
    [
        M("d/", "dir"),
        M("d/old", data=b"o" * 3),
        M("g/", "dir"),
        M("g/x", data=b"x" * 7),
        M("keep", data=b"k" * 11),
    ],
    [
        M("d/", "dir"),
        M("d/new", data=b"n" * 13),
        M("d/.wh..wh..opq"),
        M(".wh.g"),
    ],
]
SURVIVORS = {"d", "d/new", "keep"}


def gz_layers(tmp_path: Path) -> list[Path]:
    out = []
    for i, members in enumerate(STACK):
        path = tmp_path / f"layer{i}.tar.gz"
        path.write_bytes(gzip.compress(tar_bytes(members), mtime=0))
        out.append(path)
    return out


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("usr/.wh.bin", Marker("delete", "usr/bin")),
        (".wh.etc", Marker("delete", "etc")),
        ("usr/.wh..wh..opq", Marker("opaque", "usr")),
        (".wh..wh..opq", Marker("opaque", "")),
        ("usr/bin", None),
        ("usr/wh.bin", None),
    ],
)
def test_a_marker_names_what_it_hides(path: str, expected: Marker | None) -> None:
    assert marker(path) == expected


def test_markers_hide_lower_paths_only_below_their_target() -> None:
    markers = LayerMarkers(deleted=["g"], opaque=["d"])
    assert markers.hides("g") and markers.hides("g/x")
    assert not markers.hides("gx") and not markers.hides("d")
    assert markers.hides("d/old") and not markers.hides("dd/old")
    assert LayerMarkers(opaque=[""]).hides("anything")


def test_apply_layer_keeps_the_layers_own_entries_whatever_their_order() -> None:
    lower = {"d": 0, "d/old": 0, "g": 0, "g/x": 0, "keep": 0}
    layer: list[tuple[str, int | Marker]] = [
        ("d/new", 1),
        ("d/.wh..wh..opq", Marker("opaque", "d")),
        ("d", 1),
    ]
    apply_layer(lower, layer)
    assert lower == {"d": 1, "d/new": 1, "g": 0, "g/x": 0, "keep": 0}


def test_unpacking_diffing_and_measuring_agree(tmp_path: Path) -> None:
    layers = gz_layers(tmp_path)
    root = tmp_path / "root"
    root.mkdir()
    unpack_layers(layers, root)
    on_disk = {str(p.relative_to(root)) for p in root.rglob("*")}
    assert on_disk == SURVIVORS
    assert set(read_filesystem(layers)) == SURVIVORS
    layout, _ = oci_image(tmp_path / "oci", STACK)
    analysis = analyze_image(f"oci:{layout}", None)
    assert analysis["total_bytes"] == 13 + 11  # d/new and keep
    assert analysis["wasted_bytes"] == 3 + 7  # d/old and g/x


# A layer that lists a directory again (as engines do for every parent of a new file)
# and then its marker: the directory is the layer's own, what lower layers put below it
# is still hidden.
RELISTED = [
    [
        M("d/", "dir"),
        M("d/sub/", "dir"),
        M("d/sub/old", data=b"o" * 3),
        M("g/", "dir"),
        M("g/x", data=b"x" * 7),
    ],
    [
        M("d/sub/", "dir"),
        M("d/sub/new", data=b"n" * 2),
        M("d/.wh..wh..opq"),
        M("g/", "dir"),
        M("g/y", data=b"y" * 5),
        M(".wh.g"),
    ],
]


def test_a_relisted_directory_is_the_layers_own_and_its_lower_contents_go(
    tmp_path: Path,
) -> None:
    layers = []
    for i, members in enumerate(RELISTED):
        path = tmp_path / f"layer{i}.tar.gz"
        path.write_bytes(gzip.compress(tar_bytes(members), mtime=0))
        layers.append(path)
    root = tmp_path / "root"
    root.mkdir()
    unpack_layers(layers, root)
    survivors = {str(p.relative_to(root)) for p in root.rglob("*")}
    assert survivors == {"d", "d/sub", "d/sub/new", "g", "g/y"}
    assert set(read_filesystem(layers)) == survivors
    layout, _ = oci_image(tmp_path / "oci", RELISTED)
    analysis = analyze_image(f"oci:{layout}", None)
    assert analysis["total_bytes"] == 2 + 5
    assert analysis["wasted_bytes"] == 3 + 7
