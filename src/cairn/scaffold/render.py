"""The files `cairn init` writes, as text: nothing here touches the disk."""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import PurePosixPath

import yaml

from cairn.scaffold.family import FamilyImages
from cairn.scaffold.languages import Language
from cairn.scaffold.services import SERVICES

# The recipes every project has, in the order `just --list` shows them.
RECIPES = ("setup", "fmt", "lint", "test", "build", "docker-build", "docker-push", "docker-lint")
RECIPE_DOCS = {
    "setup": "Prepare a fresh checkout (the dev container runs this once)",
    "fmt": "Format the code",
    "lint": "Check the code without running it",
    "test": "Run the tests",
    "build": "Build for this machine, outside any container",
    "clean": "Remove what builds leave behind",
}
DEV_USER_WORKSPACE = "/workspace"


@dataclass(frozen=True)
class Project:
    name: str
    lang: Language
    family: FamilyImages
    services: tuple[str, ...]


def project_name(directory_name: str) -> str:
    """A name fit for an image, a Go module and a jar: lower case, digits, dashes."""
    name = re.sub(r"[^a-z0-9-]+", "-", directory_name.lower()).strip("-")
    return name or "app"


def _fill(text: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        text = text.replace(f"@@{key}@@", value)
    return text


def _values(p: Project) -> dict[str, str]:
    return {
        "PROJECT": p.name,
        "MODULE": f"example.com/{p.name}",
        "FAMILY": p.family.registry,
        "BUILD_IMAGE": p.family.refs[p.lang.build_image],
        "RUNTIME_IMAGE": p.family.refs[p.lang.runtime_image],
    }


@functools.cache
def _template_files(lang: str) -> dict[str, str]:
    root = resources.files("cairn.data").joinpath("scaffold", lang)
    out: dict[str, str] = {}

    def walk(node: resources.abc.Traversable, prefix: PurePosixPath) -> None:
        for child in node.iterdir():
            if child.is_dir():
                walk(child, prefix / child.name)
            else:
                out[str(prefix / child.name)] = child.read_text(encoding="utf-8")

    walk(root, PurePosixPath())
    return out


def dockerfile(p: Project) -> str:
    return _fill(_template_files(p.lang.name)["Dockerfile"], _values(p))


def hello_files(p: Project) -> dict[str, str]:
    """A minimal program, its test and its dependency files: for an empty directory."""
    values = _values(p)
    return {
        name.removeprefix("hello/"): _fill(text, values)
        for name, text in _template_files(p.lang.name).items()
        if name.startswith("hello/")
    }


def justfile(p: Project) -> str:
    lang = p.lang
    lines = [
        f"# Tasks for {p.name}: `just` lists them. Every project has the same recipes.",
        "",
        "set dotenv-load",
        "",
        "# Settings: from the environment (or .env), with these defaults.",
        f'image := env("IMAGE", "{p.name}")',
        'tag := env("TAG", "dev")',
        f'registry := env("REGISTRY", "{p.family.registry}")',
        f'family := env("FAMILY", "{p.family.registry}")',
        'platforms := env("PLATFORMS", "linux/amd64,linux/arm64")',
        "# docker buildx where it is installed, else buildah",
        'builder := env("BUILDER", if `docker buildx version >/dev/null 2>&1 && echo buildx '
        '|| echo buildah` == "buildx" { "buildx" } else { "buildah" })',
        "",
        "# List the recipes",
        "default:",
        "    @just --list",
        "",
    ]
    for recipe in ("setup", "fmt", "lint", "test", "build"):
        lines += [f"# {RECIPE_DOCS[recipe]}", f"{recipe}:", f"    {lang.recipes[recipe]}", ""]
    ref = "{{ registry }}/{{ image }}:{{ tag }}"
    args = "--build-arg FAMILY={{ family }}"
    build_here = (
        '{{ if builder == "buildx" { "docker buildx build --load" } else { "buildah build" } }}'
    )
    push_all = (
        '{{ if builder == "buildx" { "docker buildx build --platform " + platforms + '
        '" --provenance=true --sbom=true --push -t" } else { "buildah build --platform " + '
        'platforms + " --manifest" } }}'
    )
    push_list = (
        '{{ if builder == "buildah" { "buildah manifest push --all " + registry + "/" + image'
        ' + ":" + tag + " docker://" + registry + "/" + image + ":" + tag } else { ": pushed" } }}'
    )
    lines += [
        "# Build the image for this machine and load it into the local engine",
        "docker-build:",
        f"    {build_here} {args} -t {ref} .",
        "",
        "# buildx adds provenance and an SBOM; buildah makes neither",
        "# Build for every platform and push one multi-arch image",
        "docker-push:",
        f"    {push_all} {ref} {args} .",
        f"    {push_list}",
        "",
        "# Lint the Dockerfile",
        "docker-lint:",
        "    hadolint Dockerfile",
        "",
        f"# {RECIPE_DOCS['clean']}",
        "clean:",
        f"    {lang.recipes['clean']}",
    ]
    return "\n".join(lines) + "\n"


def dockerignore(p: Project) -> str:
    common = [".git", ".devcontainer", ".env", "justfile", "README.md", "Dockerfile"]
    per_lang = {
        "go": ["bin"],
        "python": [".venv", "**/__pycache__", "tests"],
        "node": ["node_modules", "dist"],
        "java": ["target"],
    }
    return "\n".join(common + per_lang[p.lang.name]) + "\n"


def compose(p: Project) -> str:
    env: dict[str, str] = {}
    for s in p.services:
        env.update(SERVICES[s].env)
    dev: dict[str, object] = {
        "image": p.family.image(p.lang.build_image),
        # the dev container idles; the editor attaches to it
        "command": ["sleep", "infinity"],
        "volumes": [
            f"..:{DEV_USER_WORKSPACE}:cached",
            # the host's engine, which docker-outside-of-docker hands to the container's CLI
            "/var/run/docker.sock:/var/run/docker-host.sock",
        ],
    }
    if env:
        dev["environment"] = env
    if p.services:
        dev["depends_on"] = list(p.services)
    services: dict[str, object] = {"dev": dev}
    for s in p.services:
        services[s] = SERVICES[s].compose
    doc = {"services": services}
    header = f"# The dev environment of {p.name}: `dev` is where the editor works.\n"
    return header + yaml.safe_dump(doc, sort_keys=False, width=100)


def devcontainer(p: Project) -> str:
    doc: dict[str, object] = {
        "name": p.name,
        "dockerComposeFile": "compose.yaml",
        "service": "dev",
        "runServices": ["dev", *p.services],
        "workspaceFolder": DEV_USER_WORKSPACE,
        "shutdownAction": "stopCompose",
        "features": {
            # the host's Docker engine from inside; Docker's own CLI packages, since
            # Microsoft's moby packages do not exist for every Debian release
            "ghcr.io/devcontainers/features/docker-outside-of-docker:1": {"moby": False},
            "ghcr.io/eitsupi/devcontainer-features/just:0": {},
        },
        "customizations": {
            "vscode": {"extensions": list(p.lang.extensions), "settings": p.lang.settings}
        },
        "postCreateCommand": "just setup",
    }
    if p.lang.port:
        doc["forwardPorts"] = [p.lang.port]
    return json.dumps(doc, indent=2) + "\n"


README_MARK = "<!-- cairn init -->"


def readme_section(p: Project) -> str:
    return (
        f"{README_MARK}\n"
        "## Getting started\n\n"
        "Open the folder in VS Code and choose *Reopen in Container* (or run\n"
        "`devcontainer up --workspace-folder .`): the dev container has the toolchain,\n"
        + (f"{', '.join(p.services)}, " if p.services else "")
        + "the host's Docker engine and `just`. Then:\n\n"
        "```sh\n"
        "just test           # run the tests\n"
        "just docker-build   # build the image for this machine\n"
        "```\n\n"
        "`just` lists every recipe; `just docker-push` builds linux/amd64 and linux/arm64\n"
        f"and pushes `$REGISTRY/{p.name}:$TAG`. The Dockerfile builds on the family's images\n"
        f"under `{p.family.registry}` (build argument `FAMILY`).\n"
    )


def project_files(p: Project, with_hello: bool) -> dict[str, str]:
    files = {
        "Dockerfile": dockerfile(p),
        ".dockerignore": dockerignore(p),
        "justfile": justfile(p),
        ".devcontainer/devcontainer.json": devcontainer(p),
        ".devcontainer/compose.yaml": compose(p),
    }
    if with_hello:
        files.update(hello_files(p))
    return files
