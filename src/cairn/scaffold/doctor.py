"""`cairn doctor`: check a project against the conventions `cairn init` writes.

The rules are data (cairn/data/doctor.toml: id, file, level, message, fix);
each check here looks at one file and reports the rules it finds broken, with
the line. Errors make `cairn doctor` exit 1.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import ClassVar, Literal, cast

import yaml

from cairn.data import load_toml
from cairn.errors import UsageError
from cairn.scaffold.dockerfile import Instruction, Stage, parse, stages
from cairn.scaffold.render import RECIPES
from cairn.scaffold.services import SERVICES

Severity = Literal["error", "warning", "info"]


@dataclass(frozen=True)
class DoctorFinding:
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
    errors: int  # findings of severity error
    findings: tuple[DoctorFinding, ...]


@cache
def rules() -> dict[str, dict[str, str]]:
    return load_toml("doctor.toml")


def finding(rule: str, line: int = 0, **fields: str) -> DoctorFinding:
    """The finding of a broken rule: its text from doctor.toml, `fields` filled in."""
    r = rules()[rule]
    level = cast("Severity", r["level"])
    return DoctorFinding(
        rule, level, r["file"], line, r["message"].format(**fields), r["fix"].format(**fields)
    )


# ---------------------------------------------------------------- Dockerfile

_SCRIPT = re.compile(r"(?:^|[\s;&|(])(?:\./|/|sh\s+|bash\s+)?([\w./-]*\w\.sh)\b")
_FAMILY_VAR = re.compile(r"^\$\{?FAMILY\}?/")


def _base_images(stage_list: list[Stage]) -> list[Stage]:
    names = {s.name.lower() for s in stage_list if s.name}
    return [s for s in stage_list if s.image.lower() not in names and s.image != "scratch"]


def _family_default(text: str) -> str | None:
    m = re.search(r"^ARG\s+FAMILY=(\S+)", text, re.MULTILINE)
    return m.group(1) if m else None


def check_dockerfile(root: Path, family: str | None = None) -> list[DoctorFinding]:
    path = root / "Dockerfile"
    if not path.is_file():
        return [finding("CD000")]
    text = path.read_text(encoding="utf-8")
    instructions = parse(text)
    stage_list = stages(instructions)
    found: list[DoctorFinding] = []
    if len(stage_list) < 2:
        found.append(finding("CD002", stage_list[0].line if stage_list else 0))
    prefix = family or _family_default(text)
    for stage in _base_images(stage_list):
        found += _check_base(stage, prefix)
    for ins in instructions:
        if ins.keyword == "RUN":
            found += _check_run(ins)
    if stage_list:
        found += _check_user(stage_list[-1])
    return found


def _check_base(stage: Stage, prefix: str | None) -> list[DoctorFinding]:
    image = stage.image
    found = []
    via_arg = bool(_FAMILY_VAR.match(image))
    if not via_arg and (prefix is None or not image.startswith(prefix.rstrip("/") + "/")):
        found.append(finding("CD003", stage.line, image=image))
    name = image.split("@", 1)[0]
    tag = name.rpartition(":")[2] if ":" in name.rpartition("/")[2] else ""
    if tag == "latest" or (not tag and "@" not in image):
        found.append(finding("CD005", stage.line, image=image, missing=tag or "no tag"))
    elif "@sha256:" not in image:
        found.append(finding("CD004", stage.line, image=image))
    return found


def _check_run(ins: Instruction) -> list[DoctorFinding]:
    found = []
    script = _SCRIPT.search(ins.args)
    if script:
        found.append(finding("CD001", ins.line, script=script.group(1)))
    if re.search(r"apt-get\s+(?:-\S+\s+)*install", ins.args):
        if "--no-install-recommends" not in ins.args:
            found.append(finding("CD006", ins.line))
        if "/var/lib/apt/lists" not in ins.args:
            found.append(finding("CD007", ins.line))
    return found


def _check_user(final: Stage) -> list[DoctorFinding]:
    users = [i for i in final.instructions if i.keyword == "USER"]
    if users and users[-1].args.split(":")[0] not in ("root", "0"):
        return []
    return [finding("CD008", users[-1].line if users else final.line)]


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


def check_justfile(root: Path) -> list[DoctorFinding]:
    if not (root / "justfile").is_file():
        return [finding("CJ001", recipes=", ".join(RECIPES))]
    names, push = _recipes(root)
    found = [
        finding("CJ002", recipe=recipe) for recipe in (*RECIPES, "clean") if recipe not in names
    ]
    if "docker-push" in names and not ("linux/amd64" in push and "linux/arm64" in push):
        found.append(finding("CJ003", _line_of(root / "justfile", "docker-push")))
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


def check_devcontainer(root: Path) -> list[DoctorFinding]:
    config = root / ".devcontainer" / "devcontainer.json"
    rel = ".devcontainer/devcontainer.json"
    if not config.is_file():
        return [finding("CC001")]
    try:
        doc = json.loads(config.read_text(encoding="utf-8"))
    except ValueError as e:
        return [finding("CC003", file=rel, error=str(e))]
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
            found.append(finding("CC002", source=source, service=service))
    return found


# ---------------------------------------------------------------- hadolint

_SEVERITY: dict[str, Severity] = {"error": "error", "warning": "warning"}


def check_hadolint(root: Path) -> list[DoctorFinding]:
    hadolint = shutil.which("hadolint")
    if not (root / "Dockerfile").is_file():
        return []
    if hadolint is None:
        return [finding("HL000")]
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
        DoctorFinding(
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
    return Report(str(root), sum(f.severity == "error" for f in findings), tuple(findings))
