"""The family past one machine: a bake file for remote BuildKit builders, and CI pipelines.

`bake`: each image a target with its platforms and tags; a child names its
parent through `contexts = { parent = "target:parent" }` and installs its
packages with the parent's install_packages (or runs its fragment), so
BuildKit builds the tree in order and shares the parent's layers. A root runs
mmdebstrap in a build stage (it needs the `security.insecure` entitlement for
its chroot). Bake builds follow the spec but are not byte-identical to
cairn's: cairn's own slimming pass and layer writer run only in `cairn build`.

`github-actions` and `gitlab-ci`: both written from cairn.family.pipeline's
jobs (one per image and platform, and `publish`), so they cannot drift apart;
here only the CI system's own words: runners, artifacts, variables.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import yaml

from cairn import __version__
from cairn.family.pipeline import PARTS, VARIABLES, ci_jobs
from cairn.family.spec import Family, Image
from cairn.platforms import Platform, parse_platform

Emit = Literal["bake", "github-actions", "gitlab-ci"]
EMITS: tuple[Emit, ...] = ("bake", "github-actions", "gitlab-ci")
DEFAULT_FILES: dict[Emit, str] = {
    "bake": "docker-bake.hcl",
    "github-actions": ".github/workflows/cairn.yml",
    "gitlab-ci": ".gitlab-ci.yml",
}


def emit(family: Family, kind: Emit, registry: str) -> str:
    if kind == "bake":
        return bake(family, registry)
    if kind == "github-actions":
        return github_actions(family)
    return gitlab_ci(family)


def _hcl_string(text: str) -> str:
    """An HCL quoted string: JSON escapes, and template sequences made literal."""
    return json.dumps(text).replace("${", "$${").replace("%{", "%%{")


def _hcl_list(items: list[str]) -> str:
    return "[" + ", ".join(_hcl_string(i) for i in items) + "]"


def root_dockerfile(family: Family, image: Image) -> str:
    """mmdebstrap in a build stage, the root file system copied into an empty image."""
    includes = f" --include={','.join(image.packages)}" if image.packages else ""
    dpkg = " ".join(f"--dpkgopt={o}" for o in image.profile.dpkg_options())
    sources = " ".join(json.dumps(s) for s in image.sources)
    env = "".join(f"ENV {k}={json.dumps(v)}\n" for k, v in image.env)
    cmd = json.dumps(list(image.cmd))
    return (
        "# syntax=docker/dockerfile:1\n"
        f"FROM --platform=$BUILDPLATFORM debian:{image.suite.name}-slim AS rootfs\n"
        "RUN apt-get update && apt-get install -y --no-install-recommends mmdebstrap "
        "ca-certificates qemu-user-static && rm -rf /var/lib/apt/lists/*\n"
        "ARG TARGETARCH\n"
        f"ENV SOURCE_DATE_EPOCH={family.source_date_epoch}\n"
        "RUN --security=insecure mmdebstrap --mode=root "
        f"--variant={image.variant} --architectures=$TARGETARCH "
        f"--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr {dpkg}{includes} "
        f"--format=directory {image.suite.name} /rootfs {sources}\n"
        "FROM scratch\n"
        "COPY --from=rootfs /rootfs/ /\n"
        f"{env}CMD {cmd}\n"
    )


def child_dockerfile(image: Image, parent: Image) -> str:
    head = f"FROM {parent.name}\n"
    if image.dockerfile is not None:
        return head + image.dockerfile.read_text(encoding="utf-8")
    inherited = dict(parent.env)
    env = "".join(f"ENV {k}={json.dumps(v)}\n" for k, v in image.env if inherited.get(k) != v)
    run = f"RUN install_packages {' '.join(image.added)}\n" if image.added else ""
    return head + run + env


def bake(family: Family, registry: str) -> str:
    prefix = registry.rstrip("/") + "/" if registry else ""
    lines = [
        "# Written by `cairn plan --emit bake`: the family as BuildKit targets.",
        "# Build it with: docker buildx bake --allow security.insecure",
        "",
        'group "default" {',
        f"  targets = {_hcl_list([i.name for i in family.images])}",
        "}",
    ]
    for image in family.images:
        context = "."
        if image.dockerfile is not None and image.context is not None:
            context = _relative(image.context, family.directory)
        dockerfile = (
            root_dockerfile(family, image)
            if image.parent is None
            else child_dockerfile(image, family.image(image.parent))
        )
        lines += [
            "",
            f"target {_hcl_string(image.name)} {{",
            f"  context = {_hcl_string(context)}",
            f"  dockerfile-inline = {_hcl_string(dockerfile)}",
            f"  platforms = {_hcl_list([p.name for p in image.platforms])}",
            f"  tags = {_hcl_list([f'{prefix}{image.name}:{t}' for t in image.tags])}",
        ]
        if image.parent is not None:
            lines.append(
                f"  contexts = {{ {_hcl_string(image.parent)} = "
                f"{_hcl_string('target:' + image.parent)} }}"
            )
        else:
            lines.append(f"  entitlements = {_hcl_list(['security.insecure'])}")
        if image.description:
            lines.append(
                "  annotations = "
                + _hcl_list(
                    [f"index,manifest:org.opencontainers.image.description={image.description}"]
                )
            )
        lines.append("}")
    return "\n".join(lines) + "\n"


def _relative(path: Path, start: Path) -> str:
    try:
        return path.relative_to(start.resolve()).as_posix() or "."
    except ValueError:
        return str(path)


GITHUB_RUNNERS = {"linux/amd64": "ubuntu-24.04", "linux/arm64": "ubuntu-24.04-arm"}
GITLAB_RUNNER_TAGS = {
    "linux/amd64": "saas-linux-small-amd64",
    "linux/arm64": "saas-linux-small-arm64",
}


def _github_runner(platform: Platform) -> str:
    """A runner of the platform itself; any other builds on amd64 under qemu."""
    return GITHUB_RUNNERS.get(platform.name, GITHUB_RUNNERS["linux/amd64"])


def _gitlab_tag_variable(platform: Platform) -> str:
    arch = platform.name if platform.name in GITLAB_RUNNER_TAGS else "linux/amd64"
    return "CAIRN_RUNNER_TAG_" + arch.split("/")[1].upper()


def _header(kind: str) -> str:
    return (
        f"# Written by `cairn plan --emit {kind}` (cairn {__version__}): one job per image and\n"
        "# platform on a runner of that platform, parents first; `publish` merges the layouts\n"
        "# and pushes them when CAIRN_REGISTRY is set. Every job installs cairn\n"
        "# (CAIRN_PACKAGE: a requirement or a wheel's path) and the engines it needs.\n"
    )


def github_actions(family: Family) -> str:
    jobs: dict[str, Any] = {}
    for job in ci_jobs(family):
        steps: list[dict[str, Any]] = [{"uses": "actions/checkout@v4"}]
        if job.id == "publish":
            # every artifact into a directory of its name: cairn-parts/NAME-ARCH
            steps.append({"uses": "actions/download-artifact@v4", "with": {"path": PARTS}})
        elif job.takes is not None:
            steps.append(
                {
                    "uses": "actions/download-artifact@v4",
                    "with": {"name": Path(job.takes).name, "path": job.takes},
                }
            )
        steps.append({"run": "\n".join(job.script)})
        steps.append(
            {
                "uses": "actions/upload-artifact@v4",
                "with": {
                    "name": Path(job.leaves).name,
                    "path": job.leaves,
                    "retention-days": 1,
                },
            }
        )
        spec: dict[str, Any] = {"runs-on": _github_runner(job.platform)}
        if job.needs:
            spec["needs"] = list(job.needs)
        spec["steps"] = steps
        jobs[job.id] = spec
    env = {name: f"${{{{ vars.{name} }}}}" for name in VARIABLES}
    doc = {
        "name": "cairn image family",
        "on": {
            "push": {"branches": ["main"]},
            "schedule": [{"cron": "17 5 * * *"}],
            "workflow_dispatch": {},
        },
        "env": env,
        "jobs": jobs,
    }
    return _header("github-actions") + yaml.safe_dump(doc, sort_keys=False, width=100)


def gitlab_ci(family: Family) -> str:
    variables = {
        **VARIABLES,
        **{
            _gitlab_tag_variable(parse_platform(name)): tag
            for name, tag in GITLAB_RUNNER_TAGS.items()
        },
    }
    # No image: a job runs in the runner's default one (GitLab.com's is Debian 12 based), and
    # a shell executor runs it on the host. Either way a Debian 12 or 13 or Ubuntu 24.04
    # userland, and a privileged docker executor: mmdebstrap mounts /proc in its chroot.
    doc: dict[str, Any] = {"stages": ["build", "publish"], "variables": variables}
    for job in ci_jobs(family):
        doc[job.id] = {
            "stage": "publish" if job.id == "publish" else "build",
            "tags": [f"${_gitlab_tag_variable(job.platform)}"],
            "needs": [{"job": n, "artifacts": True} for n in job.needs],
            "script": list(job.script),
            "artifacts": {"paths": [job.leaves], "expire_in": "1 day"},
        }
    return _header("gitlab-ci") + yaml.safe_dump(doc, sort_keys=False, width=100)
