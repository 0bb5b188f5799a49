"""What this machine has of cairn's engines, and how to install what it lacks.

The engines, what needs each and the packages that bring them on each known
system are data (`data/engines.toml`). `check` looks: commands on PATH, files,
and for foreign platforms a registered binfmt_misc handler. `install` runs
apt-get for what is missing and registers the handlers (as root).
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, ClassVar

from cairn.data import load_toml
from cairn.errors import EngineMissingError, UsageError
from cairn.platforms import BINFMT_DIR, Platform, emulation_problem

OS_RELEASE = Path("/etc/os-release")
BINFMT_CONF = Path("/usr/lib/binfmt.d")


@cache
def _table() -> dict[str, Any]:
    return load_toml("engines.toml")


def known_systems() -> dict[str, str]:
    """System id (ID-VERSION_ID of os-release) -> its name."""
    systems: dict[str, str] = _table()["systems"]
    return systems


def system_of(os_release: str) -> tuple[str, str]:
    """(system id, the name os-release gives) of an /etc/os-release text."""
    fields = {
        key: " ".join(shlex.split(value))
        for key, _, value in (line.partition("=") for line in os_release.splitlines())
        if key and not key.startswith("#")
    }
    system = f"{fields.get('ID', 'unknown')}-{fields.get('VERSION_ID', '')}".rstrip("-")
    return system, fields.get("PRETTY_NAME") or system


def this_system(os_release: Path = OS_RELEASE) -> tuple[str, str]:
    try:
        return system_of(os_release.read_text())
    except OSError:
        return "unknown", f"an unknown system (no {os_release})"


def packages_for(engine: str, system: str) -> tuple[str, ...]:
    row = _table()["engines"][engine]
    return tuple(row.get("packages_on", {}).get(system, row["packages"]))


def package_of(program: str, system: str | None = None) -> str:
    """The package that brings `program` on `system` (this machine's by default)."""
    system = system or this_system()[0]
    for name, row in _table()["engines"].items():
        if program in row.get("commands", []):
            return " ".join(packages_for(name, system))
    return program


@dataclass(frozen=True)
class EngineStatus:
    name: str
    needed_for: str
    missing: tuple[str, ...]  # the commands, files or binfmt handlers not found
    packages: tuple[str, ...]  # what installs it on this system
    needs_package: bool  # False when only a handler needs registering

    @property
    def ok(self) -> bool:
        return not self.missing


@dataclass(frozen=True)
class SetupReport:
    """`cairn setup --check --json`."""

    SCHEMA_VERSION: ClassVar[int] = 1
    system: str  # ID-VERSION_ID from /etc/os-release
    system_name: str
    supported: bool  # one whose package names cairn knows
    platforms: tuple[str, ...]  # the platforms checked (foreign ones need a binfmt handler)
    engines: tuple[EngineStatus, ...]
    missing_packages: tuple[str, ...]
    install_command: str | None  # what `--install` runs (None: nothing missing, or no names)

    @property
    def ok(self) -> bool:
        return all(e.ok for e in self.engines)


def _found(
    row: Mapping[str, Any], platforms: Iterable[Platform], binfmt_dir: Path
) -> tuple[tuple[str, ...], bool]:
    """What of an engine is missing, and whether its packages would bring it (a handler
    whose file is installed only needs registering)."""
    missing = [c for c in row.get("commands", []) if shutil.which(c) is None]
    missing += [f for f in row.get("files", []) if not Path(f).exists()]
    needs_package = bool(missing)
    if row.get("binfmt"):
        for p in platforms:
            if emulation_problem(p, binfmt_dir) is None:
                continue
            conf = BINFMT_CONF / f"{p.binfmt}.conf"
            needs_package |= not conf.exists()
            missing.append(f"{p.name} handler" if conf.exists() else str(conf))
    return tuple(missing), needs_package


def check(
    platforms: Iterable[Platform],
    *,
    os_release: Path = OS_RELEASE,
    binfmt_dir: Path = BINFMT_DIR,
) -> SetupReport:
    platforms = tuple(platforms)
    system, name = this_system(os_release)
    engines = []
    for engine, row in _table()["engines"].items():
        absent, needs_package = _found(row, platforms, binfmt_dir)
        engines.append(
            EngineStatus(
                name=engine,
                needed_for=row["needed_for"],
                missing=absent,
                packages=packages_for(engine, system),
                needs_package=needs_package,
            )
        )
    missing = tuple(dict.fromkeys(p for e in engines if e.needs_package for p in e.packages))
    command = None
    if missing and system in known_systems():
        command = "apt-get install -y --no-install-recommends " + " ".join(missing)
    return SetupReport(
        system=system,
        system_name=name,
        supported=system in known_systems(),
        platforms=tuple(p.name for p in platforms),
        engines=tuple(engines),
        missing_packages=missing,
        install_command=command,
    )


def _unsupported(report: SetupReport) -> UsageError:
    known = ", ".join(known_systems().values())
    return UsageError(
        f"Installing cairn's engines on {report.system_name} failed because cairn knows the "
        f"package names of {known} only; nothing was installed.",
        "Try: install the engines `cairn setup --check` lists by hand, or run cairn on one of "
        "those systems (a root made with `mmdebstrap trixie ROOT` will do).",
    )


def install(
    platforms: Iterable[Platform],
    *,
    os_release: Path = OS_RELEASE,
    binfmt_dir: Path = BINFMT_DIR,
) -> SetupReport:
    """apt-get install what is missing, register the foreign platforms' binfmt handlers,
    and check again."""
    platforms = tuple(platforms)
    report = check(platforms, os_release=os_release, binfmt_dir=binfmt_dir)
    if report.ok:
        return report
    if report.missing_packages and not report.supported:
        raise _unsupported(report)
    if os.geteuid() != 0:
        raise UsageError(
            "Installing cairn's engines needs root (apt-get, and the binfmt_misc handlers "
            "of foreign platforms); nothing was installed.",
            f"Try: sudo {shlex.join(_cairn_argv())} setup --install",
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    apt = ["apt-get", "-q", "-o", "Dpkg::Use-Pty=0"]
    steps = [
        [*apt, "update"],
        [*apt, "install", "-y", "--no-install-recommends", *report.missing_packages],
    ]
    for cmd in steps if report.missing_packages else []:
        if subprocess.run(cmd, env=env, check=False).returncode != 0:
            raise EngineMissingError(
                f"Installing cairn's engines failed: `{shlex.join(cmd)}` failed (its output is "
                "above); nothing else was changed.",
                "Try: fix what apt-get said (a mirror, a full disk), then run "
                "`cairn setup --install` again.",
            )
    for p in platforms:
        if emulation_problem(p, binfmt_dir) is not None:
            register_binfmt(p, binfmt_dir)
    return check(platforms, os_release=os_release, binfmt_dir=binfmt_dir)


def register_binfmt(platform: Platform, binfmt_dir: Path = BINFMT_DIR) -> None:
    """Mount binfmt_misc if needed and register (or enable) qemu's handler for `platform`."""
    conf = BINFMT_CONF / f"{platform.binfmt}.conf"
    try:
        if not (binfmt_dir / "register").exists():
            subprocess.run(
                ["mount", "-t", "binfmt_misc", "binfmt_misc", str(binfmt_dir)],
                check=True,
                capture_output=True,
            )
        handler = binfmt_dir / platform.binfmt
        if handler.exists():
            handler.write_text("1")
        else:
            (binfmt_dir / "register").write_text(conf.read_text())
    except (OSError, subprocess.CalledProcessError) as e:
        raise EngineMissingError(
            f"Registering qemu's binfmt_misc handler for {platform.name} from {conf} failed ({e}).",
            "Try: run it where /proc/sys/fs/binfmt_misc can be mounted (a container needs "
            "--privileged), or build that platform on a runner of its own.",
        ) from None


def _cairn_argv() -> list[str]:
    """How this cairn was started, for a hint to run it again (a virtualenv's cairn too)."""
    return [sys.argv[0]] if sys.argv and sys.argv[0].endswith("cairn") else ["cairn"]
