from __future__ import annotations

from pathlib import Path

import pytest

from cairn.debian import cache as cache_module
from cairn.debian.cache import DebCache


def test_cache_records_and_drops_damaged_debs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
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
    # never recorded: a build running beside this one may still be copying it
    (cache.directory / "c_1_all.deb").write_bytes(b"?")
    assert cache.verify() == 1
    assert sorted(p.name for p in cache.directory.glob("*.deb")) == ["b_1_all.deb", "c_1_all.deb"]
    # ... until it is too old for that: then it was left by something else
    monkeypatch.setattr(cache_module, "IN_FLIGHT_SECONDS", -1)
    assert cache.verify() == 1
    assert sorted(p.name for p in cache.directory.glob("*.deb")) == ["b_1_all.deb"]
    assert (cache.directory / "SHA256SUMS").read_text().count("\n") == 1
