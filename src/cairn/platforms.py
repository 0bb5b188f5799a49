"""OCI platforms, their Debian architectures and the emulation a foreign one needs."""

from __future__ import annotations

import platform as host_platform
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from cairn.data import load_toml
from cairn.errors import EngineMissingError, UsageError

BINFMT_DIR = Path("/proc/sys/fs/binfmt_misc")


@dataclass(frozen=True, order=True)
class Platform:
    """One OCI platform such as linux/arm64 (variant v8)."""

    os: str
    architecture: str
    variant: str | None
    debian_arch: str
    machine: str
    binfmt: str
    qemu_cpu: str | None = None

    @property
    def name(self) -> str:
        """The short form users write: linux/arm64, linux/arm/v7."""
        if self.variant and self.architecture == "arm":
            return f"{self.os}/{self.architecture}/{self.variant}"
        return f"{self.os}/{self.architecture}"

    def oci(self) -> dict[str, str]:
        """The `platform` object of an OCI descriptor."""
        out = {"architecture": self.architecture, "os": self.os}
        if self.variant:
            out["variant"] = self.variant
        return out


@cache
def known_platforms() -> dict[str, Platform]:
    table = load_toml("platforms.toml")
    out: dict[str, Platform] = {}
    for name, row in table.items():
        os_, arch = name.split("/")[:2]
        out[name] = Platform(
            os=os_,
            architecture=arch,
            variant=row.get("variant"),
            debian_arch=row["debian_arch"],
            machine=row["machine"],
            binfmt=row["binfmt"],
            qemu_cpu=row.get("qemu_cpu"),
        )
    return out


def parse_platform(name: str) -> Platform:
    """linux/arm64 or linux/arm64/v8 -> Platform; KeyError names the unknown one."""
    table = known_platforms()
    if name in table:
        return table[name]
    for p in table.values():
        if name == f"{p.os}/{p.architecture}/{p.variant}":
            return p
    raise KeyError(name)


def platform_option(name: str) -> Platform:
    """A --platform the user gave; UsageError names the known ones."""
    try:
        return parse_platform(name)
    except KeyError:
        raise UsageError(
            f"--platform {name} is not a platform cairn knows.",
            f"Try: one of {', '.join(known_platforms())}.",
        ) from None


def host_machine() -> str:
    return host_platform.machine()


def native_platform() -> Platform | None:
    """The platform this machine runs natively, if cairn knows it."""
    return next((p for p in known_platforms().values() if p.machine == host_machine()), None)


def emulation_env(platform: Platform, environ: Mapping[str, str]) -> dict[str, str]:
    """What a foreign build adds to its engines' environment (and a fragment's steps, as a
    build argument): the CPU qemu-user emulates, the user's QEMU_CPU if set.

    Nothing for the native platform.
    """
    if platform.machine == host_machine():
        return {}
    cpu = environ.get("QEMU_CPU") or platform.qemu_cpu
    return {"QEMU_CPU": cpu} if cpu else {}


def emulation_problem(platform: Platform, binfmt_dir: Path = BINFMT_DIR) -> str | None:
    """Why this host cannot run `platform` binaries, or None when it can (natively or via
    an enabled qemu-user binfmt_misc handler)."""
    if platform.machine == host_machine():
        return None
    handler = binfmt_dir / platform.binfmt
    try:
        text = handler.read_text()
    except FileNotFoundError:
        return (
            f"no binfmt_misc handler '{platform.binfmt}' is registered in {binfmt_dir}, "
            "so the kernel cannot run its programs"
        )
    except OSError as e:
        return f"{handler} cannot be read ({e})"
    if not text.startswith("enabled"):
        return f"the binfmt_misc handler {handler} is registered but disabled"
    return None


def check_emulation(platform: Platform, binfmt_dir: Path = BINFMT_DIR) -> None:
    """Raise unless this host can run `platform` binaries (natively or via qemu-user).

    mmdebstrap runs the target's maintainer scripts, so a foreign architecture
    needs an enabled binfmt_misc handler for qemu.
    """
    problem = emulation_problem(platform, binfmt_dir)
    if problem is not None:
        raise EngineMissingError(
            f"Building for {platform.name} on this {host_machine()} host failed because {problem}.",
            "Try: cairn setup --install (as root: it installs qemu-user and registers the "
            "handler), or build that platform on a machine of its own.",
        )
