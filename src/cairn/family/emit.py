"""The family past one machine: a bake file for remote BuildKit builders, and CI pipelines.

`bake`: each image a target with its platforms and tags; a child names its
parent through `contexts = { parent = "target:parent" }` and installs its
packages with the parent's install_packages (or runs its fragment), so
BuildKit builds the tree in order and shares the parent's layers. A root runs
mmdebstrap in a build stage (it needs the `security.insecure` entitlement for
its chroot). Bake builds follow the spec but are not byte-identical to
cairn's: cairn's own slimming pass and layer writer run only in `cairn build`.

`github-actions` and `gitlab-ci`: one job per image and platform, on a runner
of that platform where the host offers one (arm64 builds natively instead of
under qemu). A job needs its parent's job for the same platform, starts from
the layout that job left (an artifact) and leaves its own; the `publish` job
joins them with `cairn merge` into one multi-platform index per image and
pushes them when a registry is configured.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from cairn.family.spec import Family, Image
from cairn.platforms import Platform

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


PARTS = "cairn-parts"  # one layout per job, named NAME-ARCH
# Hosted runners that are the platform itself; any other platform builds on
# an amd64 runner under qemu (scripts/setup registers the handler).
GITHUB_RUNNERS = {"linux/amd64": "ubuntu-24.04", "linux/arm64": "ubuntu-24.04-arm"}
GITLAB_RUNNER_TAGS = {
    "linux/amd64": "saas-linux-small-amd64",
    "linux/arm64": "saas-linux-small-arm64",
}


@dataclass(frozen=True)
class PipelineJob:
    """One image on one platform: built on its parent's layout for that platform."""

    family: Family
    image: Image
    platform: Platform

    @property
    def part(self) -> str:
        return f"{self.image.name}-{self.platform.debian_arch}"

    @property
    def id(self) -> str:
        return "build-" + self.part.replace(".", "-")

    def parent(self) -> PipelineJob | None:
        if self.image.parent is None:
            return None
        return PipelineJob(self.family, self.family.image(self.image.parent), self.platform)


def _jobs(family: Family) -> list[PipelineJob]:
    return [PipelineJob(family, image, plat) for image in family.images for plat in image.platforms]


def _spec(family: Family) -> str:
    return _relative(family.directory.resolve(), Path.cwd())


def _build_command(job: PipelineJob) -> str:
    return (
        f".venv/bin/cairn build {_spec(job.family)} --image {job.image.name} "
        f"--platform {job.platform.name} --output oci:{PARTS}/{job.part}"
    )


def _publish_commands(family: Family) -> list[str]:
    spec = _spec(family)
    store = "oci:" + _relative(Path(family.output.removeprefix("oci:")), Path.cwd())
    return [
        "./scripts/setup",
        f".venv/bin/cairn merge {spec} {PARTS}/* --output {store}",
        f'if [ -n "$CAIRN_REGISTRY" ]; then .venv/bin/cairn push {spec} "$CAIRN_REGISTRY" '
        f"--output {store}; fi",
    ]


def github_actions(family: Family) -> str:
    jobs: dict[str, Any] = {}
    for job in _jobs(family):
        steps: list[dict[str, Any]] = [{"uses": "actions/checkout@v4"}]
        parent = job.parent()
        if parent is not None:
            # the parent's layout for this platform is where this job builds
            steps.append(
                {
                    "uses": "actions/download-artifact@v4",
                    "with": {"name": f"oci-{parent.part}", "path": f"{PARTS}/{job.part}"},
                }
            )
        steps.append({"run": "./scripts/setup\n" + _build_command(job)})
        steps.append(
            {
                "uses": "actions/upload-artifact@v4",
                "with": {
                    "name": f"oci-{job.part}",
                    "path": f"{PARTS}/{job.part}",
                    "retention-days": 1,
                },
            }
        )
        spec: dict[str, Any] = {
            "runs-on": GITHUB_RUNNERS.get(job.platform.name, GITHUB_RUNNERS["linux/amd64"]),
            "steps": steps,
        }
        if parent is not None:
            spec["needs"] = [parent.id]
        jobs[job.id] = spec
    jobs["publish"] = {
        "runs-on": GITHUB_RUNNERS["linux/amd64"],
        "needs": [job.id for job in _jobs(family)],
        "steps": [
            {"uses": "actions/checkout@v4"},
            {
                # each artifact into its own directory: cairn-parts/oci-NAME-ARCH
                "uses": "actions/download-artifact@v4",
                "with": {"pattern": "oci-*", "path": PARTS},
            },
            {"run": "\n".join(_publish_commands(family))},
        ],
    }
    doc = {
        "name": "cairn image family",
        "on": {
            "push": {"branches": ["main"]},
            "schedule": [{"cron": "17 5 * * *"}],
            "workflow_dispatch": {},
        },
        "env": {"CAIRN_REGISTRY": "${{ vars.CAIRN_REGISTRY }}"},
        "jobs": jobs,
    }
    header = (
        "# Written by `cairn plan --emit github-actions`: one job per image and platform\n"
        "# (arm64 on arm64 runners), parents first; `publish` merges and pushes.\n"
    )
    return header + yaml.safe_dump(doc, sort_keys=False, width=100)


def gitlab_ci(family: Family) -> str:
    doc: dict[str, Any] = {"stages": ["build", "publish"]}
    for job in _jobs(family):
        parent = job.parent()
        script = ["./scripts/setup"]
        if parent is not None:
            # GitLab puts the parent's artifact back at its own path
            script.append(f"cp -a {PARTS}/{parent.part} {PARTS}/{job.part}")
        script.append(_build_command(job))
        doc[job.id] = {
            "stage": "build",
            "image": "debian:trixie",
            "tags": [GITLAB_RUNNER_TAGS.get(job.platform.name, GITLAB_RUNNER_TAGS["linux/amd64"])],
            "needs": [{"job": parent.id, "artifacts": True}] if parent else [],
            "script": script,
            "artifacts": {"paths": [f"{PARTS}/{job.part}"], "expire_in": "1 day"},
        }
    doc["publish"] = {
        "stage": "publish",
        "image": "debian:trixie",
        "tags": [GITLAB_RUNNER_TAGS["linux/amd64"]],
        "needs": [{"job": job.id, "artifacts": True} for job in _jobs(family)],
        "script": _publish_commands(family),
    }
    header = (
        "# Written by `cairn plan --emit gitlab-ci`: one job per image and platform\n"
        "# (arm64 on arm64 runners), parents first; `publish` merges and pushes.\n"
    )
    return header + yaml.safe_dump(doc, sort_keys=False, width=100)
