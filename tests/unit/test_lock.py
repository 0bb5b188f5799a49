"""cairn.lock's bookkeeping, without an archive: which entries answer the spec, what a
lock run keeps, adds and updates, and how a broken lock file is refused."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from cairn.debian.resolver import Resolved
from cairn.errors import SpecError
from cairn.family import lock as lock_module
from cairn.family.jobs import BuildOptions, plan_jobs
from cairn.family.lock import (
    Lock,
    LockEntry,
    current_entry,
    entry_state,
    load_lock,
    lock_family,
    lock_path,
    lock_warnings,
    request_digest,
)
from cairn.family.spec import Family, Image
from cairn.platforms import Platform, parse_platform
from tests.unit.test_plan_decisions import family

AMD64 = parse_platform("linux/amd64")


def image(fam: Family, name: str) -> Image:
    return fam.image(name)


def test_entry_states(tmp_path: Path) -> None:
    fam = family(tmp_path)
    root = image(fam, "root")
    assert entry_state(None, root, AMD64) == "none"
    lock = Lock(lock_path(fam))
    assert entry_state(lock, root, AMD64) == "missing"
    lock.entries[("root", "linux/amd64")] = LockEntry("sha256:old", {"tzdata": "1"})
    assert entry_state(lock, root, AMD64) == "stale"
    assert current_entry(lock, root, AMD64) is None  # a stale entry is never pinned
    lock.entries[("root", "linux/amd64")] = LockEntry(request_digest(root, AMD64), {"tzdata": "1"})
    assert entry_state(lock, root, AMD64) == "locked"
    assert current_entry(lock, root, AMD64) == lock.entries[("root", "linux/amd64")]


def test_warnings_name_the_missing_and_the_stale(tmp_path: Path) -> None:
    fam = family(tmp_path)
    jobs = plan_jobs(fam, BuildOptions())
    assert "No cairn.lock" in lock_warnings(fam, None, jobs)[0]
    lock = Lock(lock_path(fam))
    lock.entries[("root", "linux/amd64")] = LockEntry("sha256:old", {})
    warned = lock_warnings(fam, lock, jobs)
    assert "stale for root linux/amd64" in warned[0]
    assert "no entry for child linux/amd64" in warned[1]


def test_a_lock_round_trips_and_a_broken_one_is_refused(tmp_path: Path) -> None:
    fam = family(tmp_path)
    lock = Lock(lock_path(fam), {("root", "linux/amd64"): LockEntry("sha256:r", {"a": "1"})})
    lock.write()
    assert load_lock(fam) == lock
    lock_path(fam).write_text("{not json")
    with pytest.raises(SpecError, match="not a lock cairn can read"):
        load_lock(fam)
    lock_path(fam).write_text(json.dumps({"lock_version": 99, "images": {}}))
    with pytest.raises(SpecError, match="lock_version 99"):
        load_lock(fam)


def run_all(tasks: list[Callable[[], None]]) -> None:
    for task in tasks:
        task()


def fake_archive(versions: dict[str, str]) -> object:
    def resolve(family: Family, image: Image, platform: Platform) -> dict[str, Resolved]:
        return {
            n: Resolved(v, "Debian:13/stable") for n, v in versions.items() if n in image.packages
        }

    return resolve


def test_lock_keeps_adds_updates_and_forgets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fam = family(tmp_path)
    jobs = plan_jobs(fam, BuildOptions())
    monkeypatch.setattr(lock_module, "resolve", fake_archive({"tzdata": "1", "curl": "7"}))
    # an image the spec no longer has is forgotten
    Lock(lock_path(fam), {("gone", "linux/amd64"): LockEntry("sha256:x", {})}).write()
    rows = lock_family(fam, jobs, update=False, run=run_all)
    assert [(r.image, r.state) for r in rows] == [("root", "locked"), ("child", "locked")]
    rows = lock_family(fam, jobs, update=False, run=run_all)
    assert [r.state for r in rows] == ["kept", "kept"]
    monkeypatch.setattr(lock_module, "resolve", fake_archive({"tzdata": "2", "curl": "7"}))
    rows = lock_family(fam, jobs, update=True, run=run_all)
    assert [(r.image, r.state, r.changed) for r in rows] == [
        ("root", "updated", ("tzdata",)),
        ("child", "updated", ("tzdata",)),
    ]
    saved = load_lock(fam)
    assert saved is not None
    assert set(saved.entries) == {("root", "linux/amd64"), ("child", "linux/amd64")}
    assert saved.entries[("child", "linux/amd64")].packages == {"tzdata": "2", "curl": "7"}
