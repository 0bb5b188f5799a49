"""Dockerfile fragments: an image's own build steps run on its parent by buildah or Docker.

The engine only runs the steps. cairn hands it the parent exactly as the store
holds it, takes back the whole resulting file system, and makes the child's
layer itself (`layerdiff.write_diff`), so the parent's layers are reused
byte for byte and the new layer is as reproducible as the steps are.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal, Protocol

from cairn.engines import run_logged, tail
from cairn.errors import BuildError
from cairn.oci.image import ANN_REF_NAME, Descriptor, RunConfig, canonical_json
from cairn.platforms import Platform, emulation_env

Builder = Literal["buildah", "docker"]
BUILDERS: tuple[Builder, ...] = ("buildah", "docker")


class FragmentEngine(Protocol):
    """An engine that runs a fragment's steps: buildah (cairn.family.fragment_buildah) or
    a Docker engine's BuildKit (cairn.family.fragment_buildkit)."""

    name: str

    def preflight(self, image: str) -> None:
        """Raise EngineMissingError, naming the fix, unless the engine can run here."""

    def build(self, job: FragmentJob) -> FragmentResult:
        """Run the fragment on the parent; the resulting file system and config."""


# Files an engine puts into every container; the parent's copies stand.
ENGINE_FILES = frozenset({".dockerenv", "etc/hosts", "etc/hostname", "etc/resolv.conf", "etc/mtab"})


def context_digest(dockerfile: Path, context: Path) -> str:
    """The fragment and every file of its build context: what the steps can read."""
    h = hashlib.sha256()
    h.update(canonical_json({"dockerfile": dockerfile.read_bytes().hex()}))
    for path in sorted(context.rglob("*")):
        rel = path.relative_to(context).as_posix()
        if rel == ".git" or rel.startswith(".git/") or not (path.is_file() or path.is_symlink()):
            continue
        h.update(rel.encode() + b"\0" + oct(path.lstat().st_mode).encode() + b"\0")
        h.update(str(path.readlink()).encode() if path.is_symlink() else path.read_bytes())
    return "sha256:" + h.hexdigest()


def ignored(name: str) -> bool:
    """Paths of a container's file system that are the engine's, not the image's."""
    return name in ENGINE_FILES or name.startswith("dev/") or name.startswith("run/.containerenv")


@dataclass(frozen=True)
class FragmentJob:
    image: str
    platform: Platform
    dockerfile: Path
    context: Path
    parent_layout: Path  # an OCI layout holding the parent as `parent`
    workdir: Path  # scratch space the caller removes
    source_date_epoch: int


def dockerfile_for(job: FragmentJob, parent_ref: str) -> Path:
    """The fragment with the parent it builds on: the one FROM cairn controls."""
    path = job.workdir / "Dockerfile.cairn"
    # SOURCE_DATE_EPOCH reaches the steps' environment only (an ARG, not an ENV):
    # useradd and friends then write the source date, not today's. So does QEMU_CPU, the
    # CPU qemu-user emulates for a foreign platform's steps (cairn.platforms).
    emulated = "".join(f"ARG {k}\n" for k in emulation_env(job.platform, os.environ))
    head = f"FROM {parent_ref}\nARG SOURCE_DATE_EPOCH\n{emulated}"
    path.write_text(head + job.dockerfile.read_text(encoding="utf-8"))
    return path


@dataclass(frozen=True)
class FragmentResult:
    rootfs: Path  # a tar of the whole resulting file system
    config: dict[str, Any]  # the engine's image config ("Env", "User", "Cmd", ...)


def run_config(engine: dict[str, Any], labels: tuple[tuple[str, str], ...]) -> RunConfig:
    """What the fragment's ENV, USER, WORKDIR, CMD and ENTRYPOINT made of the parent's config."""
    env = tuple(tuple(e.split("=", 1)) for e in engine.get("Env") or [] if "=" in e)
    cmd, entrypoint = engine.get("Cmd"), engine.get("Entrypoint")
    return RunConfig(
        env=env,
        cmd=tuple(cmd) if cmd else None,
        entrypoint=tuple(entrypoint) if entrypoint else None,
        user=engine.get("User") or None,
        workdir=engine.get("WorkingDir") or None,
        labels=labels,
    )


def write_parent_layout(root: Path, manifest: Descriptor, blobs: dict[str, Path]) -> None:
    """A one-image OCI layout, the parent tagged `parent`, for the engine to read (blobs
    hard-linked where the file system allows)."""
    (root / "blobs" / "sha256").mkdir(parents=True)
    (root / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    tagged = replace(manifest, annotations=((ANN_REF_NAME, "parent"),))
    index = {"schemaVersion": 2, "manifests": [tagged.to_json()]}
    (root / "index.json").write_bytes(canonical_json(index))
    for digest, path in blobs.items():
        target = root / "blobs" / "sha256" / digest.removeprefix("sha256:")
        try:
            os.link(path, target)
        except OSError:
            shutil.copyfile(path, target)


def build_arguments(job: FragmentJob, parent_ref: str, tag: str) -> list[str]:
    """What both engines' build commands take: the platform, the source date, cairn's
    Dockerfile on `parent_ref`, the tag and the context."""
    emulated = [f"--build-arg={k}={v}" for k, v in emulation_env(job.platform, os.environ).items()]
    return [
        "--network=host",
        f"--platform={job.platform.name}",
        f"--build-arg=SOURCE_DATE_EPOCH={job.source_date_epoch}",
        *emulated,
        "-f",
        str(dockerfile_for(job, parent_ref)),
        "-t",
        tag,
        str(job.context),
    ]


def engine_failed(job: FragmentJob, engine: str, log: Path, doing: str = "") -> BuildError:
    """An engine's failure: running the fragment's steps, or `doing` something around them
    (handing it the parent image), which no edit of the fragment fixes."""
    if doing:
        return BuildError(
            f"Building {job.image} {job.platform.name} failed: {engine} could not {doing}:\n"
            f"{tail(log, 20)}",
            f"Try: check that {engine} works on this machine; its whole log is named below.",
        )
    return BuildError(
        f"Building {job.image} {job.platform.name} failed: {engine} could not run "
        f"{job.dockerfile}:\n{tail(log, 20)}",
        f"Try: fix the failing step in {job.dockerfile.name}; the whole log is above.",
    )


def last_line(job: FragmentJob, cmd: list[str], log: Path, env: dict[str, str]) -> str:
    """The last line a command prints on stdout (an image ID, a mount point)."""
    out = job.workdir / "stdout.txt"
    if run_logged(cmd, log, env=env, stdout=out) != 0:
        raise engine_failed(job, Path(cmd[0]).name, log)
    lines = [line.strip() for line in out.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1] if lines else ""
