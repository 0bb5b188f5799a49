"""The family past one machine: a bake file for remote BuildKit builders, and CI pipelines.

`bake`: each image a target with its platforms and tags. A root, and every
runtime image (which has no shell to run a step in), is cairn's own build, read
from the family's OCI layout through an `oci-layout://` named context, so
nothing is pulled from a registry. A child names its parent
through `contexts = { parent = "target:parent" }`, installs its packages with
the parent's install_packages (or runs its fragment) and sets the config
cairn's build gives it, so BuildKit builds the tree in order on the parent's
layers; its files are those of cairn's build of it (the README says where
they differ), its layer is BuildKit's own.

`github-actions` and `gitlab-ci`: both written from cairn.family.pipeline's
jobs (one per image and platform, and `publish`), so they cannot drift apart;
here only the CI system's own words: runners, artifacts, variables.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Literal

import yaml

from cairn import __version__
from cairn.errors import UsageError
from cairn.family.annotations import image_labels
from cairn.family.pipeline import PARTS, VARIABLES, ci_jobs
from cairn.family.spec import Family, Image
from cairn.oci.reference import parse_ref
from cairn.platforms import Platform, parse_platform

Emit = Literal["bake", "github-actions", "gitlab-ci"]
EMITS: tuple[Emit, ...] = ("bake", "github-actions", "gitlab-ci")
DEFAULT_FILES: dict[Emit, str] = {
    "bake": "docker-bake.hcl",
    "github-actions": ".github/workflows/cairn.yml",
    "gitlab-ci": ".gitlab-ci.yml",
}


def emit(family: Family, kind: Emit, registry: str, directory: Path) -> str:
    """The file `kind`, to be written in `directory` (paths in it are relative to that)."""
    if kind == "bake":
        return bake(family, registry, directory)
    if kind == "github-actions":
        return github_actions(family)
    return gitlab_ci(family)


def _hcl_string(text: str) -> str:
    """An HCL quoted string: JSON escapes, and template sequences made literal."""
    return json.dumps(text).replace("${", "$${").replace("%{", "%%{")


def _hcl_list(items: list[str]) -> str:
    return "[" + ", ".join(_hcl_string(i) for i in items) + "]"


def child_dockerfile(family: Family, image: Image, parent: Image) -> str:
    """The child on its parent: its fragment, or its packages through the parent's
    install_packages; then what of its config differs from the parent's (cairn's own build
    gives a child these labels, and what its spec sets)."""
    head = f"FROM {parent.name}\nARG SOURCE_DATE_EPOCH\n"
    if image.dockerfile is not None:
        # cairn's build takes the rest of a fragment's config from the fragment itself;
        # QEMU_CPU stays unset unless the bake sets it (--set NAME.args.QEMU_CPU=...)
        fragment = image.dockerfile.read_text(encoding="utf-8").rstrip("\n") + "\n"
        return head + "ARG QEMU_CPU\n" + fragment + _labels(family, image, parent)
    body = _install(image) if image.added else ""
    return head + body + _config_changes(family, image, parent)


def _install(image: Image) -> str:
    """install_packages; for a foreign platform, with the CPU cairn's own builds have
    qemu-user emulate (cairn.platforms): qemu's default makes apt several times slower."""
    # BuildKit's TARGETARCH is the OCI architecture (arm64, arm, ppc64le), not Debian's
    cpus = " ".join(
        f"{p.architecture}) export QEMU_CPU={p.qemu_cpu};;" for p in image.platforms if p.qemu_cpu
    )
    packages = " ".join(image.added)
    if not cpus:
        return f"RUN install_packages {packages}\n"
    return (
        "ARG BUILDARCH\nARG TARGETARCH\n"
        f'RUN [ "$BUILDARCH" = "$TARGETARCH" ] || case "$TARGETARCH" in {cpus} esac; '
        f"install_packages {packages}\n"
    )


def _config_changes(family: Family, image: Image, parent: Image) -> str:
    """ENV, USER, WORKDIR, ENTRYPOINT, CMD and LABEL where the child's differ from its
    parent's (a Dockerfile can change a label, not remove one)."""
    lines = []
    inherited = dict(parent.env)
    lines += [f"ENV {k}={json.dumps(v)}" for k, v in image.env if inherited.get(k) != v]
    if image.user != parent.user and image.user:
        lines.append(f"USER {image.user}")
    if image.workdir != parent.workdir and image.workdir:
        lines.append(f"WORKDIR {image.workdir}")
    if image.entrypoint != parent.entrypoint and image.entrypoint is not None:
        lines.append(f"ENTRYPOINT {json.dumps(list(image.entrypoint))}")
    if image.cmd != parent.cmd:
        lines.append(f"CMD {json.dumps(list(image.cmd))}")
    return "".join(line + "\n" for line in lines) + _labels(family, image, parent)


def _labels(family: Family, image: Image, parent: Image) -> str:
    """LABEL for the labels cairn's build gives the child that its parent lacks or has
    with another value."""
    theirs = dict(image_labels(family, parent))
    labels = [(k, v) for k, v in image_labels(family, image) if theirs.get(k) != v]
    if not labels:
        return ""
    return "LABEL " + " ".join(f"{json.dumps(k)}={json.dumps(v)}" for k, v in labels) + "\n"


def bake(family: Family, registry: str, directory: Path) -> str:
    """The bake file, to be written in `directory`: its paths are relative to that."""
    layout = _relative(roots_layout(family), directory)
    prefix = registry.rstrip("/") + "/" if registry else ""
    roots = [i.name for i in family.images if i.parent is None or i.runtime]
    lines = [
        f"# Written by `cairn plan --emit bake` (cairn {__version__}): the family as BuildKit",
        "# targets. The roots (and runtime images) are cairn's own build, read from its OCI",
        "# layout: nothing is pulled from a registry. Build them first, then the rest, from",
        "# this file's directory:",
        f"#   cairn build FAMILY --image {' --image '.join(roots)}",
        "#   docker buildx bake [--push]",
        "# Each child installs its packages with its parent's install_packages, from the",
        "# Debian archive. Several platforms at once need a builder that keeps image indexes:",
        "# the docker driver with the containerd image store, or docker-container.",
        "",
        'variable "CAIRN_LAYOUT" {',
        f"  default = {_hcl_string(layout)}",
        "}",
        "",
        'group "default" {',
        f"  targets = {_hcl_list([i.name for i in family.images])}",
        "}",
    ]
    for image in family.images:
        context = "."
        if image.dockerfile is not None and image.context is not None:
            context = _relative(image.context, directory)
        if image.parent is None or image.runtime:
            name = image.name
            dockerfile = f"FROM {image.name}\n"
            # ${CAIRN_LAYOUT} is HCL's own interpolation; image names need no escaping
            source = f'"oci-layout://${{CAIRN_LAYOUT}}:{image.name}"'
        else:
            name = image.parent
            dockerfile = child_dockerfile(family, image, family.image(image.parent))
            source = _hcl_string(f"target:{image.parent}")
        lines += [
            "",
            f"target {_hcl_string(image.name)} {{",
            f"  context = {_hcl_string(context)}",
            f"  dockerfile-inline = {_hcl_string(dockerfile)}",
            f"  contexts = {{ {_hcl_string(name)} = {source} }}",
            f"  args = {{ SOURCE_DATE_EPOCH = {_hcl_string(str(family.source_date_epoch))} }}",
            f"  platforms = {_hcl_list([p.name for p in image.platforms])}",
            f"  tags = {_hcl_list([f'{prefix}{image.name}:{t}' for t in image.tags])}",
        ]
        if image.description:
            lines.append(
                "  annotations = "
                + _hcl_list(
                    [f"index,manifest:org.opencontainers.image.description={image.description}"]
                )
            )
        lines.append("}")
    return "\n".join(lines) + "\n"


def roots_layout(family: Family) -> Path:
    """The OCI layout the bake file reads the roots from: the family's output."""
    ref = parse_ref(family.output)
    if ref.transport != "oci":
        raise UsageError(
            f"--emit bake reads the roots from cairn's OCI layout, and {family.path} builds "
            f"into {family.output}.",
            'Try: output = "oci:out/oci" in its [defaults].',
        )
    return ref.path


def _relative(path: Path, start: Path) -> str:
    """`path` as seen from the directory `start` (with `..` where needed)."""
    return Path(os.path.relpath(path.resolve(), start.resolve())).as_posix()


GITHUB_RUNNERS = {"linux/amd64": "ubuntu-24.04", "linux/arm64": "ubuntu-24.04-arm"}
GITLAB_RUNNER_TAGS = {
    "linux/amd64": "saas-linux-small-amd64",
    "linux/arm64": "saas-linux-small-arm64",
}


# what `publish` logs in with and pushes to when the repository sets nothing else (names in
# cairn.family.pipeline.CI_REGISTRY_VARIABLES); secrets come from secrets, never vars
GITHUB_PUBLISH_ENV = {
    "CAIRN_CI_REGISTRY": "ghcr.io",
    "CAIRN_CI_REGISTRY_IMAGE": "ghcr.io/${{ github.repository }}",
    "CAIRN_CI_USER": "${{ github.actor }}",
    "CAIRN_CI_PASSWORD": "${{ secrets.GITHUB_TOKEN }}",
    "CAIRN_REGISTRY_PASSWORD": "${{ secrets.CAIRN_REGISTRY_PASSWORD }}",
    "CAIRN_SIGN_KEY": "${{ secrets.CAIRN_SIGN_KEY }}",
    "CAIRN_KEY_PASSPHRASE": "${{ secrets.CAIRN_KEY_PASSPHRASE }}",
}
GITLAB_PUBLISH_VARIABLES = {
    "CAIRN_CI_REGISTRY": "$CI_REGISTRY",
    "CAIRN_CI_REGISTRY_IMAGE": "$CI_REGISTRY_IMAGE",
    "CAIRN_CI_USER": "$CI_REGISTRY_USER",
    "CAIRN_CI_PASSWORD": "$CI_REGISTRY_PASSWORD",
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
        "# and pushes them to CAIRN_REGISTRY, else the CI's own registry, logging in with\n"
        "# CAIRN_REGISTRY_USER and CAIRN_REGISTRY_PASSWORD, else the job's own token; a\n"
        "# CAIRN_SIGN_KEY (with CAIRN_KEY_PASSPHRASE) signs them. Every job installs cairn\n"
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
        if job.id == "publish":
            # the repository's own package registry, with the job's token
            spec["permissions"] = {"contents": "read", "packages": "write"}
            spec["env"] = GITHUB_PUBLISH_ENV
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
        if job.id == "publish":
            # GitLab's own registry and the job's token, unless CAIRN_REGISTRY (and
            # CAIRN_REGISTRY_USER, CAIRN_REGISTRY_PASSWORD) are set as CI/CD variables
            doc[job.id]["variables"] = GITLAB_PUBLISH_VARIABLES
    return _header("gitlab-ci") + yaml.safe_dump(doc, sort_keys=False, width=100)
