"""Security freshness: which installed packages Debian's archive has newer versions of.

For every built package image and platform, the versions installed (read from
the image's own dpkg status) are compared with what apt would install from the
image's sources now (the suite, its updates and security suites, any extra
repositories). `refresh` then locks the newer versions for the images that
have any and rebuilds; the plan rebuilds those and their descendants only.
"""

from __future__ import annotations

import tarfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from debian.debian_support import Version

from cairn.debian import dpkg
from cairn.debian.resolver import Resolved
from cairn.errors import UsageError
from cairn.family.build import build
from cairn.family.jobs import BuildOptions, Progress, plan_jobs
from cairn.family.lock import Lock, LockEntry, load_lock, lock_path, lockable, request_digest
from cairn.family.lock import resolve as resolve_now
from cairn.family.plan import recorded
from cairn.family.results import (
    BuildResult,
    PackageUpdate,
    RefreshImage,
    RefreshResult,
)
from cairn.family.spec import Family, Image
from cairn.oci.layout import OciLayout, layout_named
from cairn.oci.reference import parse_ref
from cairn.parallel import run_parallel
from cairn.platforms import Platform


def installed_versions(layout: OciLayout, image: str, platform: Platform) -> dict[str, str]:
    """name -> version of the packages the image's package database lists."""
    desc = recorded(layout, image, platform)
    if desc is None:
        return {}
    manifest = layout.read_json(desc.digest)
    return layers_versions([layout.blob_path(layer["digest"]) for layer in manifest["layers"]])


def layers_versions(layers: list[Path]) -> dict[str, str]:
    """name -> version from the dpkg status file of the topmost layer that has one; for a
    runtime image, which has none, from the status.d files of every layer (an upper
    layer's entry over a lower one's)."""
    found: dict[str, str] = {}
    for path in reversed(layers):
        with tarfile.open(path, "r|*") as tf:
            for member in tf:
                name = member.name.removeprefix("./")
                if not member.isfile():
                    continue
                if name != dpkg.STATUS and not dpkg.is_status_entry(name):
                    continue
                f = tf.extractfile(member)
                assert f is not None
                versions = dpkg.installed_versions(f.read())
                if name == dpkg.STATUS:
                    return versions
                for package, version in versions.items():
                    found.setdefault(package, version)
    return found


def newer(installed: dict[str, str], now: dict[str, Resolved]) -> list[PackageUpdate]:
    """Installed packages the archive has a newer version of, by name."""
    return [
        PackageUpdate(name, version, now[name].version, now[name].suite)
        for name, version in sorted(installed.items())
        if name in now and Version(now[name].version) > Version(version)
    ]


@dataclass(frozen=True)
class Checked:
    image: Image
    platform: Platform
    update: RefreshImage
    resolved: dict[str, Resolved]


def check(
    family: Family,
    jobs: tuple[tuple[Image, Platform], ...],
    output: str | None,
    run: Callable[[list[Callable[[], None]]], None],
) -> list[Checked]:
    """Every built package image in `jobs` against the archive; `run` runs the resolutions."""
    ref = parse_ref(output or family.output)
    layout = layout_named(ref, "cairn refresh reads the images from")
    built = [(i, p) for i, p in jobs if lockable(i) and recorded(layout, i.name, p) is not None]
    if not built:
        raise UsageError(
            f"There is nothing built in {ref} to check.",
            f"Try: cairn build {family.directory} first.",
        )
    results: dict[tuple[str, Platform], dict[str, Resolved]] = {}

    def task(image: Image, platform: Platform) -> Callable[[], None]:
        def go() -> None:
            results[(image.name, platform)] = resolve_now(family, image, platform)

        return go

    run([task(i, p) for i, p in built])
    out = []
    for image, platform in built:
        now = results[(image.name, platform)]
        updates = newer(installed_versions(layout, image.name, platform), now)
        out.append(Checked(image, platform, RefreshImage(image.name, platform.name, updates), now))
    return out


def lock_updates(family: Family, checked: list[Checked]) -> Lock:
    """The lock with fresh versions for every checked image that has updates, and an entry
    for every checked image that had none (the versions it has: nothing to rebuild)."""
    lock = load_lock(family) or Lock(lock_path(family))
    for c in checked:
        key = (c.image.name, c.platform.name)
        if c.update.updates or key not in lock.entries:
            lock.entries[key] = LockEntry(
                request_digest(c.image, c.platform), {n: r.version for n, r in c.resolved.items()}
            )
    return lock


def refresh(
    family: Family, opts: BuildOptions, *, check_only: bool, progress: Progress
) -> tuple[RefreshResult, BuildResult | None]:
    """Check every built image; unless `check_only`, lock the updates and rebuild."""
    jobs = plan_jobs(family, opts)
    checked = check(family, jobs, opts.output, lambda tasks: run_parallel(tasks, opts.jobs))
    images = [c.update for c in checked]
    result = RefreshResult(
        opts.output or family.output,
        images,
        sum(len(i.updates) for i in images),
    )
    if check_only or result.updates == 0:
        return result, None
    lock_updates(family, checked).write()
    built = build(family, opts, progress)
    return replace(result, build=built), built
