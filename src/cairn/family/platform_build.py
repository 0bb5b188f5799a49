"""One image for one platform: its root file system (mmdebstrap or a Dockerfile fragment),
the layer it adds to its parent's, its config and manifest. Each step is named, and an
error from a step says which one failed."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from cairn import engines
from cairn.debian.cache import DebCache
from cairn.debian.mmdebstrap import RootfsTar, build_rootfs, describe, read_rootfs_tar
from cairn.errors import BuildError, CairnError
from cairn.family.annotations import image_annotations, image_labels
from cairn.family.fragment import (
    Builder,
    FragmentJob,
    ignored,
    run_config,
    write_parent_layout,
)
from cairn.family.fragment_engines import build_fragment
from cairn.family.jobs import BuildOptions, Progress
from cairn.family.lock import LOCK_FILE, Lock, rootfs_request
from cairn.family.plan import (
    ANN_INPUT,
    ANN_INPUTS,
    ANN_VERSIONS,
    ANN_WARNINGS,
    Step,
    versions_digest,
)
from cairn.family.results import PlatformBuild
from cairn.family.spec import Family
from cairn.oci.image import (
    ANN_BASE_DIGEST,
    ANN_FILES,
    ANN_PACKAGES,
    ANN_UNCOMPRESSED,
    Descriptor,
    LayerInfo,
    RunConfig,
    image_config,
    image_manifest,
)
from cairn.oci.layer import CompressedLayer, compress_layer
from cairn.oci.layerdiff import layer_sizes, read_filesystem, write_diff
from cairn.oci.layout import Staging, store_failure
from cairn.scratch import scratch_dir


@dataclass(frozen=True)
class Base:
    """What a child image builds on: its parent's manifest for the platform, read back."""

    name: str
    manifest: Descriptor
    layers: tuple[LayerInfo, ...]
    layer_paths: tuple[Path, ...]
    config: Descriptor


def base_of(stage: Staging, done: dict[Step, tuple[Descriptor, PlatformBuild]], job: Step) -> Base:
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
    return Base(name, desc, layers, paths, config_desc)


STEPS = ("rootfs", "layer", "compress", "manifest")


@contextlib.contextmanager
def step(job: Step, name: str, progress: Progress, text: str) -> Iterator[None]:
    """One named step of a job: announced as it starts; an error from it names the job and
    the step ("base linux/arm64, step rootfs: ...")."""
    assert name in STEPS
    progress.step(job.label, text)
    try:
        yield
    except CairnError as e:
        e.message = f"{job.label}, step {name}: {e.message}"
        raise


def build_platform(
    stage: Staging,
    family: Family,
    job: Step,
    opts: BuildOptions,
    progress: Progress,
    *,
    base: Base | None,
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
            with step(job, "rootfs", progress, f"{opts.builder} {img.dockerfile.name}"):
                rootfs, created_by, engine_config = _run_fragment(
                    stage,
                    job,
                    base,
                    work,
                    builder=opts.builder,
                    source_date_epoch=family.source_date_epoch,
                )
        else:
            engine_config = None
            req = replace(
                rootfs_request(family, img, plat),
                pins=job.pins,
                parent_layers=base.layer_paths if base else (),
            )
            with step(job, "rootfs", progress, f"mmdebstrap {img.suite.name} {plat.debian_arch}"):
                rootfs = build_rootfs(req, work, cache)
                _check_pins(job, rootfs, lock)
            created_by = describe(req)
        tar = rootfs.tar
        if base is not None:
            # A child is its parent's layers plus what its packages (or steps) changed.
            tar = work / "layer.tar"
            with step(job, "layer", progress, f"comparing with {base.name}"):
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

        blob = stage.work / f"{img.name}-{plat.debian_arch}.tar.gz"
        with step(job, "compress", progress, "compressing the layer"):
            try:
                layer = compress_layer(tar, blob)
            except OSError as e:
                raise store_failure("Compressing the layer", blob, e) from None
    stage.adopt(layer.path, layer.digest)
    with step(job, "manifest", progress, "writing config and manifest"):
        manifest, built = _write_manifest(
            stage,
            family,
            job,
            base=base,
            layer=layer,
            created_by=created_by,
            rootfs=rootfs,
            engine_config=engine_config,
        )
    seconds = time.monotonic() - start
    progress.done(job.label, seconds)
    return manifest, replace(built, seconds=round(seconds, 2))


def _write_manifest(
    stage: Staging,
    family: Family,
    job: Step,
    *,
    base: Base | None,
    layer: CompressedLayer,
    created_by: str,
    rootfs: RootfsTar,
    engine_config: dict[str, Any] | None,
) -> tuple[Descriptor, PlatformBuild]:
    img, plat = job.image, job.platform
    info = LayerInfo(
        digest=layer.digest,
        size=layer.size,
        diff_id=layer.diff_id,
        uncompressed_size=layer.uncompressed_size,
        created_by=created_by,
    )
    layers = (base.layers if base else ()) + (info,)
    annotations = image_annotations(family, img)
    labels = image_labels(family, img)
    run = (
        RunConfig(
            env=img.env,
            cmd=img.cmd or None,
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
    if rootfs.warnings:
        recorded[ANN_WARNINGS] = json.dumps(list(rootfs.warnings))
    manifest_annotations = tuple(sorted({**dict(annotations), **recorded}.items()))
    manifest = stage.add(image_manifest(plat, config, layers, manifest_annotations))
    return manifest, PlatformBuild(
        platform=plat.name,
        manifest_digest=manifest.digest,
        config_digest=config.digest,
        layers=[layer.digest for layer in layers],
        uncompressed_bytes=uncompressed,
        compressed_bytes=sum(layer.size for layer in layers),
        packages=len(rootfs.packages),
        files=rootfs.files,
        seconds=0.0,  # the caller times the whole job
        action="build",
        reason=job.reason,
        warnings=list(rootfs.warnings),
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
    base: Base,
    work: Path,
    *,
    builder: Builder,
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
    frag = FragmentJob(
        img.name, job.platform, img.dockerfile, img.context, parent_dir, work, source_date_epoch
    )
    result = build_fragment(frag, builder)
    packages, files = read_rootfs_tar(result.rootfs)
    rootfs = RootfsTar(tar=result.rootfs, packages=packages, files=files)
    return rootfs, f"{builder} build {img.dockerfile.name}", result.config
