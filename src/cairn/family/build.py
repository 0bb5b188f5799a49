"""cairn build: a family's root images, for each platform, into an OCI layout or an archive.

A fixed sequence of named steps per image and platform (rootfs, layer,
manifest), run in parallel across platforms; the store changes only when
every step of every job has succeeded.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from cairn import engines
from cairn.debian.cache import DebCache
from cairn.debian.mmdebstrap import RootfsTar, build_rootfs, describe, read_rootfs_tar
from cairn.engines import require
from cairn.errors import BuildError, CairnError, UsageError
from cairn.family.fragment import (
    Builder,
    FragmentJob,
    build_fragment,
    docker_command,
    ignored,
    run_config,
    write_parent_layout,
)
from cairn.family.lock import LOCK_FILE, Lock, load_lock, lock_warnings, rootfs_request
from cairn.family.plan import ANN_INPUT, ANN_INPUTS, ANN_VERSIONS, Step, make_plan, versions_digest
from cairn.family.publish import load_image, push_images
from cairn.family.results import BuildResult, ImageBuild, PlatformBuild, PushedImage
from cairn.family.spec import Family, Image
from cairn.oci import skopeo
from cairn.oci.image import (
    ANN_BASE_DIGEST,
    ANN_BASE_NAME,
    ANN_CREATED,
    ANN_DESCRIPTION,
    ANN_FILES,
    ANN_PACKAGES,
    ANN_REVISION,
    ANN_SOURCE,
    ANN_TITLE,
    ANN_UNCOMPRESSED,
    Descriptor,
    LayerInfo,
    RunConfig,
    image_config,
    image_index,
    image_manifest,
    rfc3339,
)
from cairn.oci.layer import compress_layer
from cairn.oci.layerdiff import layer_sizes, read_filesystem, write_diff
from cairn.oci.layout import OciLayout, Staging, layout_named, store_failure
from cairn.oci.reference import ImageRef, parse_ref
from cairn.oci.registry import RetryPolicy
from cairn.platforms import Platform, check_emulation, native_platform, parse_platform
from cairn.scratch import scratch_dir


class Progress(Protocol):
    """How a build tells the user what it is doing (the CLI renders it)."""

    def step(self, job: str, text: str) -> None: ...

    def done(self, job: str, seconds: float) -> None: ...

    def kept(self, job: str) -> None: ...


class Silent:
    def step(self, job: str, text: str) -> None:
        pass

    def done(self, job: str, seconds: float) -> None:
        pass

    def kept(self, job: str) -> None:
        pass


@dataclass(frozen=True)
class BuildOptions:
    images: tuple[str, ...] = ()
    platforms: tuple[str, ...] = ()
    output: str | None = None
    cache_dir: Path | None = None
    jobs: int = 2
    force: bool = False
    builder: Builder = "buildah"


def plan_jobs(family: Family, opts: BuildOptions) -> tuple[tuple[Image, Platform], ...]:
    """The (image, platform) pairs to build, parents before children; pure."""
    chosen_names = {family.image(n).name for n in opts.images}  # unknown names fail here
    images = tuple(i for i in family.images if not opts.images or i.name in chosen_names)
    chosen: tuple[Platform, ...] | None = None
    if opts.platforms:
        try:
            chosen = tuple(parse_platform(p) for p in opts.platforms)
        except KeyError as e:
            raise UsageError(
                f"--platform {e.args[0]} is not a platform cairn knows.",
                "Try: linux/amd64 or linux/arm64.",
            ) from None
    return tuple((img, p) for img in images for p in (chosen or img.platforms))


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
        return BuildResult(str(out), family.source_date_epoch, results, warnings)

    with tempfile.TemporaryDirectory(prefix="cairn-build-", dir=_tmp_beside(out.path)) as tmp:
        layout = OciLayout(Path(tmp) / "oci")
        steps = make_plan(family, jobs, layout, opts.force, lock)
        _preflight(list(steps), out, opts)
        results = _build_into(layout, family, steps, opts, progress, lock=lock)
        name = results[0].name
        _export_archive(layout, name, out, jobs[0][1], progress)
    return BuildResult(str(out), family.source_date_epoch, results, warnings)


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
    if fragments and opts.builder == "buildah":
        require("buildah", f"Building {fragments[0]} from its Dockerfile")
    if fragments and opts.builder == "docker":
        docker_command()
    require("pigz", "Compressing a layer")
    if out.transport == "docker-archive":
        require("skopeo", f"Writing {out}")
    for p in sorted({s.platform for s in steps}):
        check_emulation(p)


def plan(family: Family, opts: BuildOptions) -> tuple[Step, ...]:
    """What `cairn build` with these options would build, and why."""
    layout = layout_named(parse_ref(opts.output or family.output), "cairn plan compares with")
    return make_plan(family, plan_jobs(family, opts), layout, opts.force, load_lock(family))


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
                base = _base_of(stage, done, step) if step.image.parent else None
                done[step] = _build_platform(
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
    )


def run_parallel(tasks: list[Callable[[], None]], workers: int) -> None:
    """Run every task; when some fail, wait for the rest and raise the first error."""
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        futures: list[Future[None]] = [pool.submit(t) for t in tasks]
        try:
            errors = [f.exception() for f in futures]
        except KeyboardInterrupt:
            for f in futures:
                f.cancel()
            engines.interrupt_all()
            raise
    for e in errors:
        if e is not None:
            raise e


@dataclass(frozen=True)
class _Base:
    """What a child image builds on: its parent's manifest for the platform, read back."""

    name: str
    manifest: Descriptor
    layers: tuple[LayerInfo, ...]
    layer_paths: tuple[Path, ...]
    config: Descriptor


def _base_of(
    stage: Staging, done: dict[Step, tuple[Descriptor, PlatformBuild]], job: Step
) -> _Base:
    """The parent as built in this run, else as it is in the layout."""
    name = job.image.parent
    assert name is not None
    desc = next(
        (d for j, (d, _) in done.items() if j.image.name == name and j.platform == job.platform),
        None,
    )
    if desc is None:
        desc = next(
            (m for m in stage.layout.platform_manifests(name) if m.platform == job.platform), None
        )
    if desc is None:
        raise BuildError(
            f"Building {job.label} failed because its parent '{name}' has no "
            f"{job.platform.name} image in {stage.layout.root}.",
            f"Try: build both together, or first: cairn build DIR --image {name}.",
        )
    manifest = stage.read_json(desc.digest)
    config = stage.read_json(manifest["config"]["digest"])
    paths = tuple(stage.blob_path(layer["digest"]) for layer in manifest["layers"])
    history = [h for h in config.get("history", []) if not h.get("empty_layer")]
    if len(history) != len(paths):
        history = [{}] * len(paths)
    layers = tuple(
        LayerInfo(
            digest=layer["digest"],
            size=layer["size"],
            diff_id=diff_id,
            uncompressed_size=size,
            created_by=h.get("created_by", ""),
            comment=h.get("comment", ""),
        )
        for layer, diff_id, size, h in zip(
            manifest["layers"],
            config["rootfs"]["diff_ids"],
            layer_sizes(paths),
            history,
            strict=True,
        )
    )
    config_desc = Descriptor.from_json(manifest["config"])
    return _Base(name, desc, layers, paths, config_desc)


def _build_platform(
    stage: Staging,
    family: Family,
    job: Step,
    opts: BuildOptions,
    progress: Progress,
    *,
    base: _Base | None,
    lock: Lock | None,
) -> tuple[Descriptor, PlatformBuild]:
    start = time.monotonic()
    img, plat = job.image, job.platform
    cache = DebCache.for_arch(opts.cache_dir, plat.debian_arch) if opts.cache_dir else None

    # The root file system is built in scratch space (memory, where there is
    # room); only the compressed layer is written next to the store.
    label = f"{img.name}-{plat.debian_arch}"
    with scratch_dir("build") as work, engines.logs_kept(work, opts.cache_dir, label):
        if img.dockerfile is not None:
            assert base is not None  # the spec gives every fragment a parent
            rootfs, created_by, engine_config = _run_fragment(
                stage,
                job,
                base,
                work,
                builder=opts.builder,
                progress=progress,
                source_date_epoch=family.source_date_epoch,
            )
        else:
            engine_config = None
            req = replace(
                rootfs_request(family, img, plat),
                pins=job.pins,
                parent_layers=base.layer_paths if base else (),
            )
            progress.step(job.label, f"mmdebstrap {img.suite.name} {plat.debian_arch}")
            rootfs = build_rootfs(req, work, cache)
            _check_pins(job, rootfs, lock)
            created_by = describe(req)
        tar = rootfs.tar
        if base is not None:
            # A child is its parent's layers plus what its packages (or steps) changed.
            progress.step(job.label, f"comparing with {base.name}")
            tar = work / "layer.tar"
            diff = write_diff(
                read_filesystem(base.layer_paths),
                rootfs.tar,
                tar,
                family.source_date_epoch,
                ignore=ignored if img.dockerfile is not None else lambda name: False,
            )
            what = img.dockerfile.name if img.dockerfile else " ".join(img.added) or "nothing"
            created_by = (
                f"cairn: {what} on {base.name}: {diff.added} added, "
                f"{diff.modified} changed, {diff.deleted} removed ({created_by})"
            )

        progress.step(job.label, "compressing the layer")
        blob = stage.work / f"{img.name}-{plat.debian_arch}.tar.gz"
        try:
            layer = compress_layer(tar, blob)
        except OSError as e:
            raise store_failure("Compressing the layer", blob, e) from None
    stage.adopt(layer.path, layer.digest)

    progress.step(job.label, "writing config and manifest")
    info = LayerInfo(
        digest=layer.digest,
        size=layer.size,
        diff_id=layer.diff_id,
        uncompressed_size=layer.uncompressed_size,
        created_by=created_by,
    )
    layers = (base.layers if base else ()) + (info,)
    annotations = image_annotations(family, img)
    labels = tuple({**dict(annotations), **dict(img.labels)}.items())
    run = (
        RunConfig(
            env=img.env,
            cmd=img.cmd,
            entrypoint=img.entrypoint,
            user=img.user,
            workdir=img.workdir,
            labels=labels,
        )
        if engine_config is None
        else run_config(engine_config, labels)
    )
    config = stage.add(image_config(plat, layers, family.source_date_epoch, run))
    uncompressed = sum(layer.uncompressed_size for layer in layers)
    recorded = {
        ANN_INPUTS: job.inputs,
        ANN_INPUT: job.input,
        # the lock's digest when the build was pinned (and checked) to it
        ANN_VERSIONS: job.versions or versions_digest(dict(rootfs.packages)),
        ANN_PACKAGES: str(len(rootfs.packages)),
        ANN_FILES: str(rootfs.files),
        ANN_UNCOMPRESSED: str(uncompressed),
    }
    if base is not None:
        recorded[ANN_BASE_DIGEST] = base.manifest.digest
    manifest_annotations = tuple(sorted({**dict(annotations), **recorded}.items()))
    manifest = stage.add(image_manifest(plat, config, layers, manifest_annotations))
    seconds = time.monotonic() - start
    progress.done(job.label, seconds)
    return manifest, PlatformBuild(
        platform=plat.name,
        manifest_digest=manifest.digest,
        config_digest=config.digest,
        layers=[layer.digest for layer in layers],
        uncompressed_bytes=uncompressed,
        compressed_bytes=sum(layer.size for layer in layers),
        packages=len(rootfs.packages),
        files=rootfs.files,
        seconds=round(seconds, 2),
        action="build",
        reason=job.reason,
    )


def _check_pins(job: Step, rootfs: RootfsTar, lock: Lock | None) -> None:
    """A locked version the archive no longer has is not installed: say so, write nothing."""
    installed = dict(rootfs.packages)
    moved = [(n, v, installed.get(n)) for n, v in job.pins if installed.get(n) != v]
    if not moved:
        return
    shown = ", ".join(f"{n} {v} (got {got or 'nothing'})" for n, v, got in moved[:5])
    more = f" and {len(moved) - 5} more" if len(moved) > 5 else ""
    path = lock.path if lock else LOCK_FILE
    raise BuildError(
        f"{path} no longer matches Debian's archive: building {job.label} could not install "
        f"the locked {shown}{more}. The archive keeps only the newest version of a package "
        "in each suite.",
        "Try: cairn lock --update (or cairn refresh) to lock the versions the archive has now.",
    )


def _run_fragment(
    stage: Staging,
    job: Step,
    base: _Base,
    work: Path,
    *,
    builder: Builder,
    progress: Progress,
    source_date_epoch: int,
) -> tuple[RootfsTar, str, dict[str, Any]]:
    """The Dockerfile fragment run on the parent by buildah or Docker: the resulting file
    system, its history line, and the config the engine made of the parent's."""
    img = job.image
    assert img.dockerfile is not None and img.context is not None
    parent_dir = work / "parent"
    blobs = {base.manifest.digest: stage.blob_path(base.manifest.digest)}
    blobs[base.config.digest] = stage.blob_path(base.config.digest)
    blobs |= {layer.digest: path for layer, path in zip(base.layers, base.layer_paths, strict=True)}
    write_parent_layout(parent_dir, base.manifest, blobs)
    progress.step(job.label, f"{builder} {img.dockerfile.name}")
    frag = FragmentJob(
        img.name, job.platform, img.dockerfile, img.context, parent_dir, work, source_date_epoch
    )
    result = build_fragment(frag, builder)
    packages, files = read_rootfs_tar(result.rootfs)
    rootfs = RootfsTar(tar=result.rootfs, packages=packages, files=files)
    return rootfs, f"{builder} build {img.dockerfile.name}", result.config


def image_annotations(family: Family, img: Image) -> tuple[tuple[str, str], ...]:
    ann = {
        ANN_CREATED: rfc3339(family.source_date_epoch),
        ANN_TITLE: img.name,
        "vnd.cairn.debian.suite": img.suite.name,
    }
    if img.description:
        ann[ANN_DESCRIPTION] = img.description
    if img.parent:
        ann[ANN_BASE_NAME] = img.parent
    if family.source:
        ann[ANN_SOURCE] = family.source
    if family.revision:
        ann[ANN_REVISION] = family.revision
    return tuple(sorted(ann.items()))


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


def _built_layout(family: Family, opts: BuildOptions) -> OciLayout:
    return layout_named(
        parse_ref(opts.output or family.output), "Pushing and loading read images from"
    )


def publish(
    family: Family,
    opts: BuildOptions,
    destination: str,
    *,
    insecure: bool,
    say: Callable[[str], None],
    policy: RetryPolicy | None = None,
) -> list[PushedImage]:
    """Push the chosen images (all by default), parents first."""
    images = tuple(dict.fromkeys(image for image, _ in plan_jobs(family, opts)))
    layout = _built_layout(family, opts)
    return push_images(
        family, layout, images, destination, insecure=insecure, say=say, policy=policy
    )


def load_all(family: Family, opts: BuildOptions, *, say: Callable[[str], None]) -> list[str]:
    """Load each chosen image into Docker: one platform, the host's unless --platform names one."""
    layout = _built_layout(family, opts)
    jobs = plan_jobs(family, opts)
    if not opts.platforms:
        host = native_platform()
        jobs = tuple((i, p) for i, p in jobs if p == host)
    if len({p for _, p in jobs}) > 1:
        raise UsageError(
            "--load puts one platform of each image into Docker, and several were chosen.",
            "Try: --platform linux/amd64 (or leave it out for this machine's platform).",
        )
    return [load_image(layout, image, platform, say) for image, platform in jobs]
