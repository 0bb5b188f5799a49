from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
from pathlib import Path

import pytest

from cairn.errors import StoreError
from cairn.oci import layout as layout_module
from cairn.oci.layout import OciLayout, reachable, store_failure
from tests.helpers import layout_with, snapshot, tiny_image


def test_new_layout_is_valid_and_named(tmp_path: Path) -> None:
    layout = layout_with(tmp_path / "store", base=b"one")
    assert json.loads((tmp_path / "store" / "oci-layout").read_text()) == {
        "imageLayoutVersion": "1.0.0"
    }
    assert set(layout.refs()) == {"base"}
    # nothing but the layout itself is left beside it
    assert [p.name for p in tmp_path.iterdir()] == ["store"]
    # every blob is reachable and matches its digest
    blobs = {p.name for p in (tmp_path / "store" / "blobs" / "sha256").iterdir()}
    assert blobs == {d.partition(":")[2] for d in reachable(layout)}


def test_adding_keeps_others_and_replacing_collects_garbage(tmp_path: Path) -> None:
    layout = layout_with(tmp_path / "store", base=b"one", other=b"two")
    old_base = layout.refs()["base"].digest
    layout_with(tmp_path / "store", base=b"three")
    refs = layout.refs()
    assert set(refs) == {"base", "other"}
    assert refs["base"].digest != old_base
    assert not layout.blob_path(old_base).exists()
    blobs = {p.name for p in (tmp_path / "store" / "blobs" / "sha256").iterdir()}
    assert blobs == {d.partition(":")[2] for d in reachable(layout)}


def test_failed_build_leaves_store_byte_identical(tmp_path: Path) -> None:
    layout_with(tmp_path / "store", base=b"one")
    before = snapshot(tmp_path / "store")
    layout = OciLayout(tmp_path / "store")
    with pytest.raises(RuntimeError), layout.staging() as stage:
        tiny_image(stage, "base", b"changed")
        tiny_image(stage, "new", b"new")
        raise RuntimeError("the build failed here")
    assert snapshot(tmp_path / "store") == before


def test_failed_first_build_leaves_nothing(tmp_path: Path) -> None:
    with (
        pytest.raises(RuntimeError),
        OciLayout(tmp_path / "out" / "deep" / "store").staging() as stage,
    ):
        tiny_image(stage, "base", b"one")
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_stale_staging_of_dead_process_is_removed(tmp_path: Path) -> None:
    stale = tmp_path / ".store.cairn-staging-999999999-abcd"
    (stale / "blobs").mkdir(parents=True)
    mine = tmp_path / f".store.cairn-staging-{os.getpid()}-live"
    mine.mkdir()
    layout_with(tmp_path / "store", base=b"one")
    assert not stale.exists()
    assert mine.exists()


def test_disk_full_and_read_only_errors_name_the_fix(tmp_path: Path) -> None:
    full = store_failure(
        "Writing a blob", tmp_path, OSError(errno.ENOSPC, "No space left on device")
    )
    assert isinstance(full, StoreError)
    assert "disk holding" in full.message and "full" in full.message
    assert "--output" in full.hint
    ro = store_failure("Writing a blob", tmp_path, OSError(errno.EROFS, "Read-only file system"))
    assert "not writable" in ro.message


def test_skopeo_reads_our_layout_by_name_and_platform(tmp_path: Path) -> None:
    layout_with(tmp_path / "store", base=b"one", other=b"two")
    for arch in ("amd64", "arm64"):
        out = subprocess.run(
            ["skopeo", "inspect", "--override-arch", arch, f"oci:{tmp_path / 'store'}:other"],
            capture_output=True,
            text=True,
            check=True,
        )
        assert json.loads(out.stdout)["Architecture"] == arch
    # skopeo's own copy of the named image validates every digest on the way
    subprocess.run(
        [
            "skopeo",
            "copy",
            "--all",
            f"oci:{tmp_path / 'store'}:base",
            f"oci:{tmp_path / 'copy'}:base",
        ],
        check=True,
        capture_output=True,
    )


def test_platform_manifests_of_a_named_index(tmp_path: Path) -> None:
    layout = layout_with(tmp_path / "store", base=b"one")
    manifests = layout.platform_manifests("base")
    assert [m.platform.name if m.platform else None for m in manifests] == [
        "linux/amd64",
        "linux/arm64",
    ]
    assert layout.platform_manifests("missing") == ()


def test_a_killed_commit_leaves_no_temporary_file_after_the_next(tmp_path: Path) -> None:
    layout_with(tmp_path / "store", base=b"one")
    # what a cairn killed between writing index.json's copy and renaming it leaves
    (tmp_path / "store" / ".index.json.999999999.tmp").write_text("{")
    layout_with(tmp_path / "store", other=b"two")
    assert sorted(p.name for p in (tmp_path / "store").iterdir()) == [
        "blobs",
        "index.json",
        "oci-layout",
    ]


@pytest.mark.parametrize("first", [True, False])
def test_a_sigterm_during_a_commit_stops_cairn_once_the_layout_is_whole(
    first: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = tmp_path / "store"
    if not first:
        layout_with(store, base=b"one")
    real_fsync = layout_module._fsync_dir

    def fsync_and_stop(path: Path) -> None:
        os.kill(os.getpid(), signal.SIGTERM)  # arrives half-way through the commit
        real_fsync(path)

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(layout_module, "_fsync_dir", fsync_and_stop)
    previous = signal.signal(signal.SIGTERM, stop)
    try:
        with pytest.raises(KeyboardInterrupt):
            layout_with(store, other=b"two")
    finally:
        signal.signal(signal.SIGTERM, previous)
    layout = OciLayout(store)
    assert set(layout.refs()) == ({"other"} if first else {"base", "other"})
    blobs = {p.name for p in (store / "blobs" / "sha256").iterdir()}
    assert blobs == {d.partition(":")[2] for d in reachable(layout)}
    assert sorted(p.name for p in store.iterdir()) == ["blobs", "index.json", "oci-layout"]
    assert [p.name for p in tmp_path.iterdir()] == ["store"]


def test_a_first_layout_appears_whole_or_not_at_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Up to the last rename of a first commit, the layout's path holds nothing."""
    store = tmp_path / "store"
    seen: list[bool] = []
    real_fsync = layout_module._fsync_dir

    def look(path: Path) -> None:
        seen.append(store.exists())
        real_fsync(path)

    monkeypatch.setattr(layout_module, "_fsync_dir", look)
    layout_with(store, base=b"one")
    assert seen[:-1] == [False] * (len(seen) - 1) and seen[-1] is True
