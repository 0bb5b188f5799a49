"""The family past one machine: a bake file for remote BuildKit builders, and CI pipelines.

`bake`: each image a target with its platforms and tags; a child names its
parent through `contexts = { parent = "target:parent" }` and installs its
packages with the parent's install_packages (or runs its fragment), so
BuildKit builds the tree in order and shares the parent's layers. A root runs
mmdebstrap in a build stage (it needs the `security.insecure` entitlement for
its chroot). Bake builds follow the spec but are not byte-identical to
cairn's: cairn's own slimming pass and layer writer run only in `cairn build`.

`github-actions` and `gitlab-ci`: one job per image running `cairn build` for
that image, needing its parent's job and receiving its parent's OCI layout as
an artifact; each job pushes its image when a registry is configured.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import yaml

from cairn.spec import Family, Image

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


def _job_id(name: str) -> str:
    return "build-" + name.replace(".", "-")


def _build_script(family: Family, image: Image) -> list[str]:
    spec = _relative(family.directory.resolve(), Path.cwd())
    return [
        "./scripts/setup",
        f".venv/bin/cairn build {spec} --image {image.name} "
        '${CAIRN_REGISTRY:+--push "$CAIRN_REGISTRY"}',
    ]


def github_actions(family: Family) -> str:
    store = _relative(Path(family.output.removeprefix("oci:")), Path.cwd())
    jobs: dict[str, Any] = {}
    for image in family.images:
        steps: list[dict[str, Any]] = [{"uses": "actions/checkout@v4"}]
        if image.parent is not None:
            steps.append(
                {
                    "uses": "actions/download-artifact@v4",
                    "with": {"name": f"oci-{image.parent}", "path": store},
                }
            )
        steps.append({"run": "\n".join(_build_script(family, image))})
        steps.append(
            {
                "uses": "actions/upload-artifact@v4",
                "with": {"name": f"oci-{image.name}", "path": store, "retention-days": 1},
            }
        )
        job: dict[str, Any] = {"runs-on": "ubuntu-24.04", "steps": steps}
        if image.parent is not None:
            job["needs"] = [_job_id(image.parent)]
        jobs[_job_id(image.name)] = job
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
    header = "# Written by `cairn plan --emit github-actions`: one job per image, parents first.\n"
    return header + yaml.safe_dump(doc, sort_keys=False, width=100)


def gitlab_ci(family: Family) -> str:
    store = _relative(Path(family.output.removeprefix("oci:")), Path.cwd())
    doc: dict[str, Any] = {"stages": ["build"]}
    for image in family.images:
        job: dict[str, Any] = {
            "stage": "build",
            "image": "debian:bookworm",
            "script": _build_script(family, image),
            "artifacts": {"paths": [store], "expire_in": "1 day"},
        }
        job["needs"] = [{"job": _job_id(image.parent), "artifacts": True}] if image.parent else []
        doc[_job_id(image.name)] = job
    header = "# Written by `cairn plan --emit gitlab-ci`: one job per image, parents first.\n"
    return header + yaml.safe_dump(doc, sort_keys=False, width=100)
