"""cairn.lock: the exact version of every package of every package image, per platform.

`cairn lock` asks apt (through mmdebstrap's dry run, so the choice is the one a
build makes) which versions the archive offers now and records them next to
cairn.toml. A build pins those versions, so the same lock and source date give
the same digests; the locked versions are part of each image's inputs, so a
changed lock rebuilds exactly the images whose packages changed.

Each entry records the digest of the request it answers (suite, variant,
sources, packages): when cairn.toml changes what an image installs, its entry
is stale and the build says so instead of pinning the wrong set.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from cairn.debian.mmdebstrap import RootfsRequest
from cairn.debian.resolver import Resolved, resolve_with_apt
from cairn.debian.runtime_rules import runtime_rules
from cairn.errors import SpecError
from cairn.family.spec import Family, Image
from cairn.oci.image import canonical_json, sha256_digest
from cairn.oci.layout import write_atomically
from cairn.platforms import Platform
from cairn.scratch import scratch_dir

LOCK_FILE = "cairn.lock"
LOCK_VERSION = 1


@dataclass(frozen=True)
class LockEntry:
    request: str  # digest of what decides the package set
    packages: dict[str, str]  # name -> version


@dataclass
class Lock:
    path: Path
    entries: dict[tuple[str, str], LockEntry] = field(default_factory=dict)

    def entry(self, image: str, platform: Platform) -> LockEntry | None:
        return self.entries.get((image, platform.name))

    def to_json(self) -> dict[str, Any]:
        images: dict[str, dict[str, Any]] = {}
        for (image, platform), e in sorted(self.entries.items()):
            images.setdefault(image, {})[platform] = {
                "request": e.request,
                "packages": dict(sorted(e.packages.items())),
            }
        return {"lock_version": LOCK_VERSION, "images": images}

    def write(self) -> None:
        """Atomically: a reader sees the old lock or the new one, never a part."""
        write_atomically(self.path, (json.dumps(self.to_json(), indent=2) + "\n").encode())


def lock_path(family: Family) -> Path:
    return family.directory / LOCK_FILE


def load_lock(family: Family) -> Lock | None:
    """The family's cairn.lock, or None when it has none."""
    path = lock_path(family)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        raise SpecError(
            f"{path} is not a lock cairn can read ({e}).",
            "Try: cairn lock --update to write it afresh.",
        ) from None
    if not isinstance(raw, dict) or raw.get("lock_version") != LOCK_VERSION:
        raise SpecError(
            f"{path} has lock_version {raw.get('lock_version') if isinstance(raw, dict) else '?'}"
            f"; this cairn reads version {LOCK_VERSION}.",
            "Try: cairn lock --update to write it afresh.",
        )
    lock = Lock(path)
    for image, platforms in raw.get("images", {}).items():
        for platform, row in platforms.items():
            lock.entries[(image, platform)] = LockEntry(row["request"], dict(row["packages"]))
    return lock


def lockable(image: Image) -> bool:
    """Package images are locked; a Dockerfile decides its own packages."""
    return image.dockerfile is None


def rootfs_request(family: Family, image: Image, platform: Platform) -> RootfsRequest:
    return RootfsRequest(
        suite=image.suite,
        platform=platform,
        variant=image.variant,
        packages=image.packages,
        sources=image.sources,
        # no maintainer script writes into a runtime image's man directories
        profile=replace(image.profile, keep_dirs=()) if image.runtime else image.profile,
        source_date_epoch=family.source_date_epoch,
        locales=image.locales,
    )


def request_digest(image: Image, platform: Platform) -> str:
    """What decides which packages an image installs (not how it is slimmed)."""
    doc = {
        "suite": image.suite.name,
        "variant": image.variant,
        "arch": platform.debian_arch,
        "sources": image.sources,
        "packages": sorted(image.packages),
    }
    if image.runtime:
        doc["script_only"] = runtime_rules().dummies(image.packages)
    return sha256_digest(canonical_json(doc))


EntryState = Literal["locked", "stale", "missing", "none"]


def entry_state(lock: Lock | None, image: Image, platform: Platform) -> EntryState:
    if lock is None:
        return "none"
    e = lock.entry(image.name, platform)
    if e is None:
        return "missing"
    return "locked" if e.request == request_digest(image, platform) else "stale"


def current_entry(lock: Lock | None, image: Image, platform: Platform) -> LockEntry | None:
    """The entry a build may pin: only one that answers the image's current request."""
    if lock is None or entry_state(lock, image, platform) != "locked":
        return None
    return lock.entry(image.name, platform)


def lock_warnings(
    family: Family, lock: Lock | None, jobs: tuple[tuple[Image, Platform], ...]
) -> list[str]:
    """What the user should know about the lock before trusting a build's versions."""
    lockable_jobs = [(i, p) for i, p in jobs if lockable(i)]
    if lock is None:
        return (
            [
                f"No {LOCK_FILE} beside {family.path.name}: packages are the archive's current "
                "versions. Run `cairn lock` to pin them."
            ]
            if lockable_jobs
            else []
        )
    out = []
    for image, platform in lockable_jobs:
        state = entry_state(lock, image, platform)
        if state == "missing":
            out.append(
                f"{lock.path.name} has no entry for {image.name} {platform.name}: it is built "
                "with the archive's current versions. Run `cairn lock` to add it."
            )
        elif state == "stale":
            out.append(
                f"{lock.path.name} is stale for {image.name} {platform.name}: cairn.toml changed "
                "what it installs since the lock was written. It is built with the archive's "
                "current versions; run `cairn lock` to lock them."
            )
    return out


def resolve(family: Family, image: Image, platform: Platform) -> dict[str, Resolved]:
    with scratch_dir("resolve") as tmp:
        return resolve_with_apt(
            arch=platform.debian_arch,
            suite=image.suite.name,
            variant=image.variant,
            packages=image.packages,
            sources=image.sources,
            workdir=Path(tmp),
        )


@dataclass(frozen=True)
class LockRow:
    image: str
    platform: str
    state: Literal["kept", "locked", "updated"]
    packages: int
    changed: tuple[str, ...]  # packages whose version moved


def lock_family(
    family: Family,
    jobs: tuple[tuple[Image, Platform], ...],
    *,
    update: bool,
    run: Callable[[list[Callable[[], None]]], None],
) -> list[LockRow]:
    """Lock what is missing or stale (everything with `update`), then write cairn.lock."""
    lock = load_lock(family) or Lock(lock_path(family))
    todo = [
        (i, p) for i, p in jobs if lockable(i) and (update or entry_state(lock, i, p) != "locked")
    ]
    found: dict[tuple[str, str], dict[str, Resolved]] = {}

    def task(image: Image, platform: Platform) -> Callable[[], None]:
        def go() -> None:
            found[(image.name, platform.name)] = resolve(family, image, platform)

        return go

    run([task(i, p) for i, p in todo])
    rows = []
    for image, platform in jobs:
        if not lockable(image):
            continue
        key = (image.name, platform.name)
        before = lock.entries.get(key)
        if key not in found:
            assert before is not None
            rows.append(LockRow(image.name, platform.name, "kept", len(before.packages), ()))
            continue
        packages = {n: r.version for n, r in found[key].items()}
        moved = tuple(
            sorted(n for n, v in packages.items() if before and before.packages.get(n, v) != v)
        )
        lock.entries[key] = LockEntry(request_digest(image, platform), packages)
        state: Literal["locked", "updated"] = "updated" if before else "locked"
        rows.append(LockRow(image.name, platform.name, state, len(packages), moved))
    names = {i.name for i in family.images}
    lock.entries = {k: v for k, v in lock.entries.items() if k[0] in names}
    lock.write()
    return rows
