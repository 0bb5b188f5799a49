"""cairn build: the family's images, for each platform, into an OCI layout or an archive.

The plan says what to build; each (image, platform) is built by
cairn.family.platform_build, a level of the family at a time (parents first),
the platforms of a level in parallel; the store changes only when every job
has succeeded.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from pathlib import Path

from cairn.engines import require
from cairn.errors import CairnError, UsageError
from cairn.family.annotations import image_annotations
from cairn.family.fragment_engines import engine
from cairn.family.jobs import BuildOptions, Progress, Silent, plan_jobs
from cairn.family.lock import Lock, load_lock, lock_warnings
from cairn.family.plan import ANN_WARNINGS, Step, make_plan
from cairn.family.platform_build import base_of, build_platform
from cairn.family.results import BuildResult, ImageBuild, PlatformBuild
from cairn.family.spec import Family
from cairn.oci import skopeo
from cairn.oci.image import (
    ANN_FILES,
    ANN_PACKAGES,
    ANN_UNCOMPRESSED,
    Descriptor,
    image_index,
)
from cairn.oci.layout import OciLayout, store_failure
from cairn.oci.reference import ImageRef, parse_ref
from cairn.parallel import run_parallel
from cairn.platforms import Platform, check_emulation


def build(family: Family, opts: BuildOptions, progress: Progress | None = None) -> BuildResult:
    progress = progress or Silent()
    jobs = plan_jobs(family, opts)
    out = parse_ref(opts.output or family.output)
    if out.transport not in ("oci", "docker-archive"):
        raise UsageError(
            f"cairn build cannot write to {out}.",
            "Try: --output oci:DIR or --output docker-archive:FILE.",
        )
    if out.transport == "docker-archive" and len(jobs) != 1:
        raise UsageError(
            f"A docker-archive holds one image for one platform, and this build makes {len(jobs)}.",
            "Try: --image NAME --platform linux/amd64 (or --output oci:DIR for several).",
        )
    if out.transport == "docker-archive" and jobs[0][0].parent:
        raise UsageError(
            f"cairn build writes a docker-archive of root images only; {jobs[0][0].name} "
            f"is built on {jobs[0][0].parent}.",
            f"Try: build into the layout, then `skopeo copy --override-arch ARCH "
            f"oci:DIR:{jobs[0][0].name} {out}`.",
        )
    lock = load_lock(family)
    warnings = lock_warnings(family, lock, jobs)
    if out.transport == "oci":
        layout = OciLayout(out.path)
        steps = make_plan(family, jobs, layout, opts.force, lock)
        if any(s.action == "build" for s in steps):
            _preflight([s for s in steps if s.action == "build"], out, opts)
        results = _build_into(layout, family, steps, opts, progress, lock=lock)
        return BuildResult(str(out), family.source_date_epoch, results, warnings + _found(results))

    with tempfile.TemporaryDirectory(prefix="cairn-build-", dir=_tmp_beside(out.path)) as tmp:
        layout = OciLayout(Path(tmp) / "oci")
        steps = make_plan(family, jobs, layout, opts.force, lock)
        _preflight(list(steps), out, opts)
        results = _build_into(layout, family, steps, opts, progress, lock=lock)
        name = results[0].name
        _export_archive(layout, name, out, jobs[0][1], progress)
    return BuildResult(str(out), family.source_date_epoch, results, warnings + _found(results))


def _found(results: list[ImageBuild]) -> list[str]:
    """What the builds found, once per image (every platform says the same)."""
    return list(
        dict.fromkeys(f"{i.name}: {w}" for i in results for p in i.platforms for w in p.warnings)
    )


def _tmp_beside(path: Path) -> Path:
    parent = path.absolute().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise store_failure("Creating the output directory", parent, e) from None
    return parent


def _preflight(steps: list[Step], out: ImageRef, opts: BuildOptions) -> None:
    """Everything that can be checked before minutes of work."""
    if any(s.image.dockerfile is None for s in steps):
        require("mmdebstrap", "Building a Debian root file system")
        require("mmtarfilter", "Building a Debian root file system")
    fragments = [s.image.name for s in steps if s.image.dockerfile is not None]
    if fragments:
        engine(opts.builder).preflight(fragments[0])
    require("pigz", "Compressing a layer")
    if out.transport == "docker-archive":
        require("skopeo", f"Writing {out}")
    # a runtime image runs nothing of its platform's while it is built
    for p in sorted({s.platform for s in steps if not s.image.runtime}):
        check_emulation(p)


def _build_into(
    layout: OciLayout,
    family: Family,
    steps: tuple[Step, ...],
    opts: BuildOptions,
    progress: Progress,
    *,
    lock: Lock | None,
) -> list[ImageBuild]:
    done: dict[Step, tuple[Descriptor, PlatformBuild]] = {
        s: _skipped(layout, s) for s in steps if s.action == "skip"
    }
    for s in done:
        progress.kept(s.label)
    images = list(dict.fromkeys(s.image for s in steps))
    if len(done) == len(steps):
        # nothing to build: nothing is written either
        refs = layout.refs()
        return [
            ImageBuild(i.name, refs[i.name].digest, [done[s][1] for s in steps if s.image == i])
            for i in images
        ]
    depth: dict[str, int] = {}
    for img in family.images:  # parents come first
        depth[img.name] = depth[img.parent] + 1 if img.parent else 0
    to_build = [s for s in steps if s.action == "build"]
    with layout.staging() as stage:

        def one(step: Step) -> Callable[[], None]:
            def task() -> None:
                base = base_of(stage, done, step) if step.image.parent else None
                done[step] = build_platform(
                    stage, family, step, opts, progress, base=base, lock=lock
                )

            return task

        # a level at a time: every parent is done before its children start
        for level in sorted({depth[s.image.name] for s in to_build}):
            run_parallel([one(s) for s in to_build if depth[s.image.name] == level], opts.jobs)
        results: list[ImageBuild] = []
        refs = layout.refs()
        for image in images:
            mine = [s for s in steps if s.image == image]
            if all(s.action == "skip" for s in mine):
                index_digest = refs[image.name].digest
            else:
                # Platforms not rebuilt this time keep their manifests (and blobs).
                listed = {s.platform for s in mine}
                kept = [
                    m for m in layout.platform_manifests(image.name) if m.platform not in listed
                ]
                manifests = tuple(done[s][0] for s in mine) + tuple(kept)
                index = stage.add(image_index(manifests, image_annotations(family, image)))
                stage.set_ref(image.name, index)
                index_digest = index.digest
            results.append(ImageBuild(image.name, index_digest, [done[s][1] for s in mine]))
    return results


def _skipped(layout: OciLayout, step: Step) -> tuple[Descriptor, PlatformBuild]:
    """An unchanged image as the layout has it, described as a build would."""
    desc = step.recorded
    assert desc is not None  # a step is skipped only when its manifest was found
    manifest = layout.read_json(desc.digest)
    ann = manifest.get("annotations", {})
    return desc, PlatformBuild(
        platform=step.platform.name,
        manifest_digest=desc.digest,
        config_digest=manifest["config"]["digest"],
        layers=[layer["digest"] for layer in manifest["layers"]],
        uncompressed_bytes=int(ann.get(ANN_UNCOMPRESSED, 0)),
        compressed_bytes=sum(layer["size"] for layer in manifest["layers"]),
        packages=int(ann.get(ANN_PACKAGES, 0)),
        files=int(ann.get(ANN_FILES, 0)),
        seconds=0.0,
        action="skip",
        reason=step.reason,
        warnings=json.loads(ann.get(ANN_WARNINGS, "[]")),
    )


def _export_archive(
    layout: OciLayout, name: str, out: ImageRef, platform: Platform, progress: Progress
) -> None:
    """skopeo writes the archive beside its final name; a rename publishes it."""
    final = out.path
    partial = final.with_name(f".{final.name}.cairn-partial")
    progress.step(f"{name} {platform.name}", f"writing {out}")
    tag = out.name or f"{name}:latest"
    try:
        partial.unlink(missing_ok=True)
        skopeo.copy(f"oci:{layout.root}:{name}", f"docker-archive:{partial}:{tag}", platform)
        partial.replace(final)
    except OSError as e:
        raise store_failure("Writing the archive", final, e) from None
    except CairnError:
        partial.unlink(missing_ok=True)
        raise
    finally:
        if partial.exists():
            partial.unlink()
