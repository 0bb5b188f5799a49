from __future__ import annotations

from pathlib import Path

from cairn.debian.cache import DebCache


def test_cache_records_and_drops_damaged_debs(tmp_path: Path) -> None:
    cache = DebCache.for_arch(tmp_path, "amd64")
    assert cache.directory == tmp_path / "amd64" / "debs"
    assert cache.verify() == 0
    (cache.directory / "a_1_amd64.deb").write_bytes(b"good")
    (cache.directory / "b_1_all.deb").write_bytes(b"good too")
    assert cache.record_new() == 2
    assert cache.record_new() == 0
    assert cache.verify() == 0

    # altered after it was recorded: same size, other bytes
    (cache.directory / "a_1_amd64.deb").write_bytes(b"evil")
    # never recorded (left by something else)
    (cache.directory / "c_1_all.deb").write_bytes(b"?")
    assert cache.verify() == 2
    assert sorted(p.name for p in cache.directory.glob("*.deb")) == ["b_1_all.deb"]
    assert (cache.directory / "SHA256SUMS").read_text().count("\n") == 1
