"""The buildah engine for Dockerfile fragments: daemonless, chroot isolation, its own
storage in the job's scratch space."""

from __future__ import annotations

import json
import os
import resource
from pathlib import Path

from cairn.engines import CLEANUP_LOG, require, run_logged
from cairn.family.fragment import (
    FragmentJob,
    FragmentResult,
    build_arguments,
    engine_failed,
    last_line,
)

# (limit, buildah's name for it, the most a step gets): buildah 1.28 (Debian 12) gives a step
# 32768 processes; 1.39 (Debian 13) asks for 1048576 of each
_LIMITS = (
    (resource.RLIMIT_NPROC, "nproc", 32768),
    (resource.RLIMIT_NOFILE, "nofile", 1048576),
)


def _ulimits() -> list[str]:
    """The steps' limits, never above what cairn itself runs with (its soft limits): raising a
    limit needs CAP_SYS_RESOURCE, which a container (a CI runner) often lacks, and Debian 13's
    buildah raises nproc and nofile by default."""
    out = []
    for limit, name, most in _LIMITS:
        soft, _ = resource.getrlimit(limit)
        n = most if soft == resource.RLIM_INFINITY else min(soft, most)
        out.append(f"--ulimit={name}={n}:{n}")
    return out


class Buildah:
    name = "buildah"

    def preflight(self, image: str) -> None:
        require("buildah", f"Building {image} from its Dockerfile")

    def build(self, job: FragmentJob) -> FragmentResult:
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
                raise engine_failed(job, "skopeo", log, "hand the parent image to buildah")
            bud = [
                *base,
                "bud",
                "--isolation=chroot",
                "--pull-never",
                "--layers=false",
                *_ulimits(),
                *build_arguments(job, parent, built),
            ]
            if run_logged(bud, log, env=env) != 0:
                raise engine_failed(job, "buildah", log)
            if (
                run_logged(
                    [*base, "from", "--pull-never", "--name", "cairn-export", built], log, env=env
                )
                != 0
            ):
                raise engine_failed(job, "buildah", log)
            out = job.workdir / "inspect.json"
            if run_logged([*base, "inspect", "--type=image", built], log, env=env, stdout=out) != 0:
                raise engine_failed(job, "buildah", log)
            config = json.loads(out.read_text()).get("OCIv1", {}).get("config", {})
            mount = Path(last_line(job, [*base, "mount", "cairn-export"], log, env))
            tar = job.workdir / "rootfs.tar"
            code = run_logged(
                ["tar", "--numeric-owner", "--xattrs", "-C", str(mount), "-cf", str(tar), "."],
                log,
                env=env,
            )
            run_logged([*base, "umount", "cairn-export"], log, env=env)
            if code != 0:
                raise engine_failed(job, "tar", log, "read the built file system")
            return FragmentResult(tar, config)
        finally:
            # buildah forgets (and unmounts) its containers; the storage goes with the scratch
            run_logged([*base, "rm", "--all"], job.workdir / CLEANUP_LOG, env=env)
