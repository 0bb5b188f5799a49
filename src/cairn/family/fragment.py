"""Dockerfile fragments: an image's own build steps run on its parent by buildah or Docker.

The engine only runs the steps. cairn hands it the parent exactly as the store
holds it, takes back the whole resulting file system, and makes the child's
layer itself (`layerdiff.write_diff`), so the parent's layers are reused
byte for byte and the new layer is as reproducible as the steps are.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import uuid
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from cairn.engines import require, run_logged, tail
from cairn.errors import BuildError, EngineMissingError
from cairn.oci.image import ANN_REF_NAME, Descriptor, RunConfig, canonical_json
from cairn.platforms import Platform

Builder = Literal["buildah", "docker"]
BUILDERS: tuple[Builder, ...] = ("buildah", "docker")

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
    # useradd and friends then write the source date, not today's.
    head = f"FROM {parent_ref}\nARG SOURCE_DATE_EPOCH\n"
    path.write_text(head + job.dockerfile.read_text(encoding="utf-8"))
    return path


@dataclass(frozen=True)
class FragmentResult:
    rootfs: Path  # a tar of the whole resulting file system
    config: dict[str, Any]  # the engine's image config ("Env", "User", "Cmd", ...)


def build_fragment(job: FragmentJob, builder: Builder) -> FragmentResult:
    """Run the fragment on the parent with `builder`."""
    if builder == "docker":
        return _with_docker(job)
    return _with_buildah(job)


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


def _fail(job: FragmentJob, engine: str, log: Path) -> BuildError:
    return BuildError(
        f"Building {job.image} {job.platform.name} failed: {engine} could not run "
        f"{job.dockerfile}:\n{tail(log, 20)}",
        f"Try: fix the failing step in {job.dockerfile.name}; the whole log is above.",
    )


def _with_buildah(job: FragmentJob) -> FragmentResult:
    """buildah, daemonless, with its own throwaway storage in scratch space."""
    buildah = require("buildah", f"Building {job.image} from {job.dockerfile.name}")
    skopeo = require("skopeo", f"Handing {job.image}'s parent to buildah")
    store = job.workdir / "storage"
    base = [
        buildah,
        "--storage-driver=vfs",
        f"--root={store / 'root'}",
        f"--runroot={store / 'run'}",
    ]
    log = job.workdir / "buildah.log"
    env = {**os.environ, "TMPDIR": str(job.workdir), "BUILDAH_ISOLATION": "chroot"}
    parent = f"localhost/cairn-parent/{job.image}:{job.platform.debian_arch}"
    built = f"localhost/cairn-build/{job.image}:{job.platform.debian_arch}"
    # skopeo stores the parent under a name cairn chooses: `buildah pull oci:PATH`
    # would name it after PATH, which is no valid reference for every scratch path.
    storage = f"containers-storage:[vfs@{store / 'root'}+{store / 'run'}]{parent}"
    try:
        copy = [skopeo, "copy", "--quiet", f"oci:{job.parent_layout}:parent", storage]
        if run_logged(copy, log, env=env) != 0:
            raise _fail(job, "skopeo", log)
        bud = [
            *base,
            "bud",
            "--isolation=chroot",
            "--network=host",
            "--pull-never",
            f"--platform={job.platform.name}",
            f"--build-arg=SOURCE_DATE_EPOCH={job.source_date_epoch}",
            "--layers=false",
            "-f",
            str(dockerfile_for(job, parent)),
            "-t",
            built,
            str(job.context),
        ]
        if run_logged(bud, log, env=env) != 0:
            raise _fail(job, "buildah", log)
        if (
            run_logged(
                [*base, "from", "--pull-never", "--name", "cairn-export", built], log, env=env
            )
            != 0
        ):
            raise _fail(job, "buildah", log)
        out = job.workdir / "inspect.json"
        if run_logged([*base, "inspect", "--type=image", built], log, env=env, stdout=out) != 0:
            raise _fail(job, "buildah", log)
        config = json.loads(out.read_text()).get("OCIv1", {}).get("config", {})
        mount = Path(_output(job, [*base, "mount", "cairn-export"], log, env))
        tar = job.workdir / "rootfs.tar"
        code = run_logged(
            ["tar", "--numeric-owner", "--xattrs", "-C", str(mount), "-cf", str(tar), "."],
            log,
            env=env,
        )
        run_logged([*base, "umount", "cairn-export"], log, env=env)
        if code != 0:
            raise _fail(job, "tar", log)
        return FragmentResult(tar, config)
    finally:
        # buildah forgets (and unmounts) its containers; the storage goes with the scratch
        run_logged([*base, "rm", "--all"], job.workdir / "cleanup.log", env=env)


def _output(job: FragmentJob, cmd: list[str], log: Path, env: dict[str, str]) -> str:
    """The last line a command prints on stdout (an image ID, a mount point)."""
    out = job.workdir / "stdout.txt"
    if run_logged(cmd, log, env=env, stdout=out) != 0:
        raise _fail(job, Path(cmd[0]).name, log)
    lines = [line.strip() for line in out.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1] if lines else ""


def docker_command() -> tuple[list[str], dict[str, str]]:
    """A docker client that builds with BuildKit: buildx if present, else a client that has
    BuildKit built in (Debian's docker.io 20.10)."""
    found = shutil.which("docker")
    if found and _succeeds([found, "buildx", "version"]):
        return [found, "buildx", "build", "--load"], {}
    for candidate in (found, "/usr/bin/docker"):
        if candidate and Path(candidate).exists() and _major_version(candidate) in range(18, 23):
            return [candidate, "build"], {"DOCKER_BUILDKIT": "1"}
    raise EngineMissingError(
        "Building with --builder docker needs a docker client that builds with BuildKit: "
        "the buildx plugin, or a client from before buildx became required.",
        "Try: apt-get install docker-buildx (or docker.io), or use --builder buildah.",
    )


def _succeeds(cmd: list[str]) -> bool:
    try:
        return subprocess.run(cmd, capture_output=True, timeout=30, check=False).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def _major_version(docker: str) -> int:
    try:
        out = subprocess.run(
            [docker, "version", "--format", "{{.Client.Version}}"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        ).stdout
        return int(out.strip().split(".")[0])
    except (OSError, subprocess.SubprocessError, ValueError):
        return 0


def _with_docker(job: FragmentJob) -> FragmentResult:
    """A Docker engine's BuildKit (DOCKER_HOST decides which engine)."""
    build_cmd, build_env = docker_command()
    docker = build_cmd[0]
    skopeo = require("skopeo", "Loading the parent image into Docker")
    log = job.workdir / "docker.log"
    env = {**os.environ, **build_env}
    tag = uuid.uuid4().hex[:12]
    parent = f"cairn-parent/{job.image}:{tag}"
    built = f"cairn-build/{job.image}:{tag}"
    container = f"cairn-export-{tag}"
    daemon = ["--dest-daemon-host", env["DOCKER_HOST"]] if env.get("DOCKER_HOST") else []
    try:
        load = [
            skopeo,
            "copy",
            "--quiet",
            *daemon,
            f"oci:{job.parent_layout}:parent",
            f"docker-daemon:{parent}",
        ]
        if run_logged(load, log, env=env) != 0:
            raise _fail(job, "skopeo", log)
        cmd = [
            *build_cmd,
            "--network=host",
            f"--platform={job.platform.name}",
            f"--build-arg=SOURCE_DATE_EPOCH={job.source_date_epoch}",
            "-f",
            str(dockerfile_for(job, parent)),
            "-t",
            built,
            str(job.context),
        ]
        if run_logged(cmd, log, env=env) != 0:
            raise _fail(job, "docker", log)
        config = json.loads(
            _output(job, [docker, "image", "inspect", "--format={{json .Config}}", built], log, env)
        )
        if run_logged([docker, "create", "--name", container, built], log, env=env) != 0:
            raise _fail(job, "docker", log)
        tar = job.workdir / "rootfs.tar"
        if run_logged([docker, "export", "-o", str(tar), container], log, env=env) != 0:
            raise _fail(job, "docker", log)
        return FragmentResult(tar, config)
    finally:
        cleanup = job.workdir / "cleanup.log"
        run_logged([docker, "rm", "-f", container], cleanup, env=env)
        run_logged([docker, "rmi", "-f", built, parent], cleanup, env=env)


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
