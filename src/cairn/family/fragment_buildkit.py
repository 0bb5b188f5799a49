"""The BuildKit engine for Dockerfile fragments: a Docker engine's builder (buildx, or the
BuildKit built into Debian 12's docker.io 20.10), the parent loaded with skopeo."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from pathlib import Path

from cairn.engines import CLEANUP_LOG, require, run_logged
from cairn.errors import EngineMissingError
from cairn.family.fragment import (
    FragmentJob,
    FragmentResult,
    build_arguments,
    engine_failed,
    last_line,
)


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


class BuildKit:
    name = "docker"

    def preflight(self, image: str) -> None:
        docker_command()

    def build(self, job: FragmentJob) -> FragmentResult:
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
                raise engine_failed(job, "skopeo", log, "load the parent image into Docker")
            cmd = [*build_cmd, *build_arguments(job, parent, built)]
            if run_logged(cmd, log, env=env) != 0:
                raise engine_failed(job, "docker", log)
            config = json.loads(
                last_line(
                    job, [docker, "image", "inspect", "--format={{json .Config}}", built], log, env
                )
            )
            if run_logged([docker, "create", "--name", container, built], log, env=env) != 0:
                raise engine_failed(job, "docker", log)
            tar = job.workdir / "rootfs.tar"
            if run_logged([docker, "export", "-o", str(tar), container], log, env=env) != 0:
                raise engine_failed(job, "docker", log)
            return FragmentResult(tar, config)
        finally:
            cleanup = job.workdir / CLEANUP_LOG
            run_logged([docker, "rm", "-f", container], cleanup, env=env)
            run_logged([docker, "rmi", "-f", built, parent], cleanup, env=env)
